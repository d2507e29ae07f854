"""The Activations view: the catalog with its measured properties, when-to-use notes, and curves."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from actlab.catalog import guide
from actlab.catalog.activations import get, names
from actlab.catalog.properties import evaluate, properties
from actlab.catalog.table import Entry, row
from actlab.errors import ActlabError
from actlab.jsonsafe import clean, number
from actlab.web.live import CatalogName, lookup

MAX_CURVES, MAX_CURVE_POINTS = 6, 4001


class CurveItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: CatalogName  # a catalog name, never an import path
    params: dict[str, float] = {}


class CurvesRequest(BaseModel):
    """Function and derivative of up to MAX_CURVES activations on [lo, hi]."""

    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[CurveItem], Field(min_length=1, max_length=MAX_CURVES)]
    lo: Annotated[float, Field(ge=-50, le=50)] = -5.0
    hi: Annotated[float, Field(ge=-50, le=50)] = 5.0
    points: Annotated[int, Field(ge=11, le=MAX_CURVE_POINTS)] = 401


@lru_cache(maxsize=256)
def _properties(name: str, params: tuple[tuple[str, float], ...]) -> dict[str, Any]:
    """Measured properties (no timing: it varies) and the guidance; cached, measuring takes about a second."""
    p = properties(name, cost=False, **dict(params))
    shown = row(Entry(get(name), dict(params), p))
    return {"table": {k: v for k, v in shown.items() if k not in ("activation",)},
            "record": json.loads(p.model_dump_json()), "guidance": guide.guidance(name, p)}


def _catalog() -> list[dict[str, Any]]:
    out = []
    for n in names():
        a = get(n)
        out.append({"name": a.name, "label": a.label(), "description": a.description, "formula": a.text,
                    "latex": a.latex, "init": a.init, "vector": a.vector,
                    "params": [{"name": p.name, "default": p.default, "low": number(p.low), "high": number(p.high),
                                "doc": p.doc} for p in a.params],
                    "note": guide.NOTES.get(a.name)})
    return out


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/api/activations")
    async def activations() -> list[dict[str, Any]]:
        return _catalog()

    @r.post("/api/activations/curves")
    def curves(req: CurvesRequest) -> dict[str, Any]:
        if not req.lo < req.hi:
            raise ActlabError(f"lo={req.lo} must be smaller than hi={req.hi}")
        x = np.linspace(req.lo, req.hi, req.points)
        out = []
        for item in req.items:
            act = lookup(item.name)
            if act.vector:
                raise ActlabError(f"items: activation {act.name!r} is vector-valued (output only); it has no "
                                  "element-wise curve")
            params = act.resolve(**item.params)
            y, dy = evaluate(act, x, **params)
            out.append({"name": act.name, "label": act.label(**item.params), "params": params,
                        "y": clean(y, sig=9), "dy": clean(dy, sig=9),
                        **_properties(act.name, tuple(sorted(params.items())))})
        return {"x": clean(x, sig=9), "curves": out}

    return r
