"""The Activations view: the catalog with its measured properties, when-to-use notes, and curves."""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from actlab import catalog
from actlab.analysis import guide as tested
from actlab.catalog import guide, palette
from actlab.catalog.activations import names
from actlab.catalog.gated import MEANINGS, gated_properties
from actlab.catalog.properties import evaluate, properties
from actlab.catalog.table import Entry, row
from actlab.catalog.theory import meanfield
from actlab.errors import ActlabError
from actlab.jsonsafe import clean, number
from actlab.web.sessions import CatalogName, lookup

MAX_CURVES, MAX_CURVE_POINTS = 6, 4001
THEORY_SW2 = np.linspace(0.25, 4.0, 31)  # the χ₁(σ_w²) curve of the theory panel


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


class TheoryRequest(BaseModel):
    """Mean-field theory of one catalog activation at (σ_w², σ_b²)."""

    model_config = ConfigDict(extra="forbid")
    name: CatalogName
    params: dict[str, float] = {}
    sw2: Annotated[float | None, Field(gt=0, le=100)] = None  # default: the paired init's gain²
    sb2: Annotated[float, Field(ge=0, le=10)] = 0.0


class SoftmaxRequest(BaseModel):
    """Softmax of a logit vector at a temperature: probabilities and the Jacobian."""

    model_config = ConfigDict(extra="forbid")
    logits: Annotated[list[Annotated[float, Field(ge=-50, le=50)]], Field(min_length=2, max_length=10)]
    temperature: Annotated[float, Field(ge=1e-3, le=100)] = 1.0  # below 1e-3, z / T leaves float range


def _softmax(req: SoftmaxRequest) -> dict[str, Any]:
    """p = softmax(z / T) by the catalog's softmax, and J = ∂p/∂z by autograd (float64): diag(p) − p pᵀ, over T."""
    fn = catalog.get("softmax").fn
    z = torch.tensor(req.logits, dtype=torch.float64)
    p = fn(z / req.temperature)
    jac = torch.autograd.functional.jacobian(lambda v: fn(v / req.temperature), z)
    top = int(torch.argmax(p))
    return {"logits": req.logits, "temperature": req.temperature, "p": clean(p.numpy(), sig=9),
            "jacobian": clean(jac.numpy(), sig=9), "argmax": top,
            "entropy": number(float(-(p * torch.log(p.clamp_min(1e-300))).sum()), sig=9),
            "max_entropy": number(math.log(len(req.logits)), sig=9)}


def _theory(req: TheoryRequest) -> dict[str, Any]:
    act = lookup(req.name)
    if act.vector or act.gated:
        why = "output only" if act.vector else "two inputs"
        raise ActlabError(f"name: activation {act.name!r} is {act.kind} ({why}); mean-field theory is for "
                          "element-wise activations")
    params = act.resolve(**req.params)
    sw2 = req.sw2 if req.sw2 is not None else act.init_gain(**params) ** 2
    pts = meanfield.COARSE_POINTS
    r = meanfield.propagation(act, sw2, req.sb2, params, points=pts)
    k = meanfield.Kernel(act, params, pts)
    chis = [meanfield.chi1(act, float(w), req.sb2, params, points=pts) for w in THEORY_SW2]
    top = max(3.0, 2.0 * (r.q_star or 1.0))
    qs = np.linspace(0.0, top, 61)
    out: dict[str, Any] = {
        "name": act.name, "label": act.label(**params), "params": params, "sw2": sw2, "sb2": req.sb2,
        "prediction": json.loads(r.model_dump_json()),
        "critical_sw2": None if (crit := meanfield.critical_sw2(act, req.sb2, params)) is None
        else number(crit),
        "chi": {"sw2": clean(THEORY_SW2, sig=6), "chi1": [None if c is None else number(c, sig=6) for c in chis]},
        "q_map": {"q": clean(qs, sig=6), "v": clean([k.variance(float(q), sw2, req.sb2) for q in qs], sig=6)},
        "c_map": None}
    if r.q_star is not None and r.q_star > 0:
        cs = np.linspace(-1.0, 1.0, 41)
        out["c_map"] = {"c": clean(cs, sig=6), "C": clean([k.correlation(r.q_star, float(c), sw2, req.sb2) for c in cs],
                                                          sig=6)}
    return out


@lru_cache(maxsize=256)
def _properties(name: str, params: tuple[tuple[str, float], ...]) -> dict[str, Any]:
    """Measured properties (no timing: it varies) and the guidance; cached, measuring takes about a second."""
    p = properties(name, cost=False, **dict(params))
    act = catalog.get(name)
    shown = row(Entry(act, dict(params), p))  # a gated entry's: its diagonal's, and said so in the formula row
    # the explorer does not time (it would vary with the server's load): `actlab activations` measures the cost
    return {"table": {k: v for k, v in shown.items() if k not in ("activation", "cost vs ReLU")},
            "record": json.loads(p.model_dump_json()), "guidance": guide.guidance(name, None if act.gated else p)}


@lru_cache(maxsize=64)
def _gated(name: str, params: tuple[tuple[str, float], ...], lo: float, hi: float) -> dict[str, Any]:
    """A gated entry's two-input view: φ(a)·b on a 61 × 61 grid over [lo, hi]² (rows: the value input b), its gate
    φ on the curve's axis, and its measured two-input properties with their meanings."""
    act = catalog.get(name)
    g = np.linspace(lo, hi, 61)
    t = torch.as_tensor(g, dtype=torch.float64)
    z = act.gated_fn(t.view(1, -1), t.view(-1, 1), **dict(params)).numpy()
    rec = gated_properties(name, **dict(params))
    def shown(v: Any) -> Any:  # quadrature's float noise around an exact 0 (E[f] of a value-linear f) shows as 0
        return v if isinstance(v, bool) else number(0.0 if abs(v) < 1e-12 else v, sig=6)

    props = [{"name": k, "value": shown(getattr(rec, k)), "meaning": v} for k, v in MEANINGS.items()]
    return {"gate": act.gate.name, "grid": clean(g, sig=6), "z": [clean(r, sig=5) for r in z], "properties": props}


def _catalog() -> list[dict[str, Any]]:
    out = []
    for n in names(include_gated=True):
        if n.startswith("gated:"):  # made in this process by a Python caller: not the catalog the explorer shows
            continue
        a = catalog.get(n)
        out.append({"name": a.name, "label": a.label(), "description": a.description, "formula": a.text,
                    "latex": a.latex, "init": a.init, "vector": a.vector, "kind": a.kind,
                    "params": [{"name": p.name, "default": p.default, "low": number(p.low), "high": number(p.high),
                                "low_open": p.low_open, "high_open": p.high_open,
                                "doc": p.doc} for p in a.params],
                    "note": guide.NOTES.get(a.name), "color": palette.activation_color(a.name)})
    return out


def tested_guide(root: Path | None) -> dict[str, Any]:
    """The selection guide with the verdicts of the claims decided by the stored runs under `root` (the explorer's
    runs folder) and the seeds' closing remark tested across them; the run directories are named relative to it."""
    g = guide.selection_guide()
    if root is None or not root.is_dir():
        return g | {"verdicts": {}, "remark": None}
    rows = tested.by_row(tested.scan(root))
    for records in rows.values():
        for v in records:
            v["run_dir"] = Path(os.path.relpath(v["run_dir"], root)).as_posix()
    everything = tested.scan_spreads(root, among=None)
    return g | {"verdicts": rows, "remark": tested.spread_verdict(tested.scan_spreads(root), everything)}


def router(root: Path | None = None) -> APIRouter:
    r = APIRouter()

    @r.get("/api/activations")
    async def activations() -> list[dict[str, Any]]:
        return _catalog()

    @r.get("/api/activations/guide")
    def selection_guide() -> dict[str, Any]:  # reads the stores: in the thread pool, not the event loop
        return tested_guide(root)

    @r.post("/api/activations/softmax")
    def softmax_view(req: SoftmaxRequest) -> dict[str, Any]:
        return _softmax(req)

    @r.post("/api/activations/curves")
    def curves(req: CurvesRequest) -> dict[str, Any]:
        if not req.lo < req.hi:
            raise ActlabError(f"lo={req.lo} must be smaller than hi={req.hi}")
        x = np.linspace(req.lo, req.hi, req.points)
        out = []
        col = palette.series_colors([f"{it.name}#{i}" for i, it in enumerate(req.items)])  # shades for repeats
        for i, item in enumerate(req.items):
            act = lookup(item.name)
            if act.vector:
                raise ActlabError(f"items: activation {act.name!r} is vector-valued (output only); it has no "
                                  "element-wise curve")
            params = act.resolve(**item.params)
            y, dy = evaluate(act, x, **params)
            key = tuple(sorted(params.items()))
            label = act.label(**item.params) + (" (diagonal a = b)" if act.gated else "")
            out.append({"name": act.name, "label": label, "params": params, "color": col[f"{item.name}#{i}"],
                        "kind": act.kind,
                        "y": clean(y, sig=9), "dy": clean(dy, sig=9), **_properties(act.name, key),
                        **({"gated": _gated(act.name, key, req.lo, req.hi)} if act.gated else {})})
        return {"x": clean(x, sig=9), "curves": out}

    @r.post("/api/activations/theory")
    def theory(req: TheoryRequest) -> dict[str, Any]:
        """What mean-field theory predicts for a wide random network with this activation: q*, χ₁, the phase,
        c*, ξ_c, the edge of chaos at this σ_b², χ₁ against σ_w², and the variance and correlation maps."""
        return _theory(req)

    return r
