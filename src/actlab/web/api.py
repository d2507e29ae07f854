"""The explorer's server: a FastAPI app over the catalog, live trainings and the stored runs.

Safety rules (DESIGN §8): every size a request can ask for is bounded by its typed model; activations are
looked up in the catalog by name only (a request can name no import path, so nothing it names is imported
or executed); files are served only from the static folder and the runs root, after resolving the path
and checking it lies inside; bad requests get a 4xx whose `detail` names the field, the value given and
what is allowed. The server binds 127.0.0.1 unless the CLI is told otherwise.
"""

from __future__ import annotations

import asyncio
import json
import math
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from actlab import __version__
from actlab.errors import ActlabError
from actlab.store import DB_NAME
from actlab.web.live import DATASETS, Busy, CatalogName, LiveManager, LiveRequest, lookup

STATIC = Path(__file__).parent / "static"
SERVED_SUFFIXES = (".png", ".svg", ".html")  # what /files/ serves from the runs root
MAX_CURVES, MAX_CURVE_POINTS, MAX_RUN_DEPTH = 6, 4001, 3


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


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _list(a: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), 8) for v in a]


@lru_cache(maxsize=256)
def _properties(name: str, params: tuple[tuple[str, float], ...]) -> dict[str, Any]:
    """Measured properties (no timing: it varies) and the guidance; cached, measuring takes about a second."""
    from actlab import guide
    from actlab.activations import get
    from actlab.catalog import Entry, row
    from actlab.properties import properties

    p = properties(name, cost=False, **dict(params))
    shown = row(Entry(get(name), dict(params), p))
    return {"table": {k: v for k, v in shown.items() if k not in ("activation",)},
            "record": json.loads(p.model_dump_json()), "guidance": guide.guidance(name, p)}


def _catalog() -> list[dict[str, Any]]:
    from actlab import guide
    from actlab.activations import get, names

    out = []
    for n in names():
        a = get(n)
        out.append({"name": a.name, "label": a.label(), "description": a.description, "formula": a.text,
                    "latex": a.latex, "init": a.init, "vector": a.vector,
                    "params": [{"name": p.name, "default": p.default, "low": _finite(p.low), "high": _finite(p.high),
                                "doc": p.doc} for p in a.params],
                    "note": guide.NOTES.get(a.name)})
    return out


def _detail(err: RequestValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {e['msg'].replace('Value error, ', '')} (given {e.get('input')!r})")
    return "; ".join(parts)


def contained(root: Path, rel: str) -> Path:
    """`rel` resolved inside `root`, or an HTTP error: 403 outside the root, 404 missing."""
    root = root.resolve()
    if not rel or rel.startswith(("/", "\\")) or "\x00" in rel:
        raise HTTPException(403, f"path {rel!r} must be relative to the runs root")
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise HTTPException(403, f"path {rel!r} is outside the runs root")
    if not path.exists():
        raise HTTPException(404, f"path {rel!r} does not exist under the runs root")
    return path


def run_summary(root: Path, run: Any) -> dict[str, Any]:
    """One line of the runs list, from an open `actlab.results.Run`."""
    counts: dict[str, int] = {}
    for c in run.cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    return {"path": run.dir.resolve().relative_to(root.resolve()).as_posix(), "name": run.name, "kind": run.kind,
            "description": run.study["config"].get("description", ""), "seeds": len(run.seeds), "cells": counts,
            "created": run.study["created"], "report": (run.dir / "report.html").exists()}


def run_detail(root: Path, run_dir: Path) -> dict[str, Any]:
    """A stored run's tables, findings and figure files, from its store (figures as written by the report)."""
    from actlab import report
    from actlab.findings import findings
    from actlab.results import Run

    with Run.open(run_dir) as run:
        tables = [report.results_table(run), *report.depth_tables(run)] if run.kind == "train" else \
            report.simulation_tables(run)
        info = run_summary(root, run)
        info.update(note=run.study["config"].get("note", ""), provenance=run.study["provenance"],
                    findings=[f.text for f in findings(run)],
                    tables=[{"title": t.title, "header": t.header, "rows": t.rows} for t in tables])
    captions = {name: caption for name, caption, _ in report.TRAINING_FIGURES}
    rel = run_dir.relative_to(root.resolve()).as_posix()
    figs = sorted((run_dir / report.FIGURE_DIR).glob("*.png")) if (run_dir / report.FIGURE_DIR).is_dir() else []
    info["figures"] = [{"name": f.stem, "caption": captions.get(f.stem, f.stem.replace("_", " ")),
                        "png": f"/files/{rel}/{report.FIGURE_DIR}/{f.name}",
                        "svg": f"/files/{rel}/{report.FIGURE_DIR}/{f.stem}.svg"} for f in figs]
    info["report_url"] = f"/files/{rel}/report.html" if info["report"] else None
    return info


def create_app(runs_root: str | Path = "runs", max_trainings: int = 2) -> FastAPI:
    """The explorer app: `runs_root` is the only folder whose files it serves besides its own static files."""
    root = Path(runs_root)
    live = LiveManager(max_trainings)
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        live.stop_all()  # shutting down: every live training ends at its next epoch

    app = FastAPI(title="actlab explorer", version=__version__, docs_url="/api/docs", openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    app.state.live = live

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _detail(err)}, status_code=422)

    @app.exception_handler(ActlabError)
    async def _bad(_: Request, err: ActlabError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(Busy)
    async def _busy(_: Request, err: Busy) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=429)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__, "live": len(live.sessions), "max_trainings": live.max}

    # ------------------------------------------------------------------------------ activations

    @app.get("/api/activations")
    async def activations() -> list[dict[str, Any]]:
        return _catalog()

    @app.post("/api/activations/curves")
    def curves(req: CurvesRequest) -> dict[str, Any]:
        from actlab.properties import evaluate

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
            out.append({"name": act.name, "label": act.label(**item.params), "params": params, "y": _list(y),
                        "dy": _list(dy), **_properties(act.name, tuple(sorted(params.items())))})
        return {"x": _list(x), "curves": out}

    # ---------------------------------------------------------------------------------- live

    @app.get("/api/datasets")
    async def datasets() -> dict[str, str]:
        return DATASETS

    @app.get("/api/live")
    async def live_list() -> dict[str, Any]:
        return {"max": live.max, "sessions": [{"id": s.id, "state": s.state, "epoch": s.epoch,
                                               "request": s.request.model_dump()} for s in live.sessions.values()]}

    @app.post("/api/live", status_code=201)
    async def live_create(req: LiveRequest) -> dict[str, Any]:
        s = live.create(req)
        return {"id": s.id, "request": s.request.model_dump()}

    def _session(sid: str):
        try:
            return live.get(sid)
        except KeyError:
            raise HTTPException(404, f"live training {sid!r} does not exist (finished, stopped or expired)") from None

    @app.get("/api/live/{sid}/events")
    async def live_events(sid: str, request: Request) -> StreamingResponse:
        s = _session(sid)
        if s.state != "pending":
            raise HTTPException(409, f"live training {sid!r} is already streaming to a client")
        live.start(s, asyncio.get_running_loop())

        async def stream():
            try:
                yield f"event: session\ndata: {json.dumps({'id': s.id})}\n\n"
                while True:
                    try:
                        event, data = await asyncio.wait_for(s.queue.get(), timeout=10)
                    except TimeoutError:
                        if await request.is_disconnected():
                            break
                        yield ": keep-alive\n\n"
                        continue
                    yield f"event: {event}\ndata: {json.dumps(data)}\n\n"
                    if event in ("done", "stopped", "error"):
                        break
            finally:  # the client went away (or the training ended): stop the worker
                s.stop.set()
                s.running.set()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/api/live/{sid}/{action}")
    async def live_control(sid: str, action: Literal["pause", "resume"]) -> dict[str, str]:
        """Pause (the worker waits between epochs) or resume a live training."""
        s = _session(sid)
        if action == "pause":
            s.running.clear()
        else:
            s.running.set()
        s.state = "paused" if action == "pause" else "running"
        return {"id": sid, "state": s.state}

    @app.delete("/api/live/{sid}")
    async def live_stop(sid: str) -> dict[str, str]:
        s = _session(sid)
        s.stop.set()
        s.running.set()
        if s.thread is None:  # never started: nothing will remove it
            live.sessions.pop(sid, None)
        return {"id": sid, "state": "stopping"}

    # ---------------------------------------------------------------------------------- runs

    @app.get("/api/runs")
    def runs() -> dict[str, Any]:
        from actlab.results import Run, run_dirs

        listed = []
        for p in run_dirs(root, MAX_RUN_DEPTH):
            with Run.open(p) as r:
                if r.store.study() is not None:  # a store still being created holds no study yet
                    listed.append(run_summary(root, r))
        return {"root": str(root), "runs": listed}

    @app.get("/api/runs/{rel:path}")
    def run(rel: str) -> dict[str, Any]:
        path = contained(root, rel)
        if not (path / DB_NAME).exists():
            raise HTTPException(404, f"{rel!r} is not a run directory (no {DB_NAME})")
        return run_detail(root, path)

    @app.post("/api/runs/{rel:path}/report")
    def run_report(rel: str) -> dict[str, Any]:
        from actlab.report import build_report

        path = contained(root, rel)
        if not (path / DB_NAME).exists():
            raise HTTPException(404, f"{rel!r} is not a run directory (no {DB_NAME})")
        build_report(path)
        return run_detail(root, path)

    @app.get("/files/{rel:path}")
    def files(rel: str) -> FileResponse:
        path = contained(root, rel)
        if not path.is_file() or path.suffix not in SERVED_SUFFIXES:
            raise HTTPException(403, f"{rel!r} is not a figure or report file (allowed: {', '.join(SERVED_SUFFIXES)})")
        return FileResponse(path)

    return app
