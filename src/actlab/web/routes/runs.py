"""The Runs view: the stored runs under the runs root, one run's tables, findings and figures, its report,
and the figure and report files (served only from inside the root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from actlab.errors import ActlabError
from actlab.report import page
from actlab.report.findings import findings
from actlab.report.tables import depth_tables, published_table, results_table, simulation_tables
from actlab.store.results import Run, run_dirs
from actlab.store.writer import DB_NAME

SERVED_SUFFIXES = (".png", ".svg", ".html")  # what /files/ serves from the runs root
MAX_RUN_DEPTH = 3


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


def run_summary(root: Path, run: Run) -> dict[str, Any]:
    """One line of the runs list, from an open run."""
    counts: dict[str, int] = {}
    for c in run.cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    return {"path": run.dir.resolve().relative_to(root.resolve()).as_posix(), "name": run.name, "kind": run.kind,
            "description": run.study["config"].get("description", ""), "seeds": len(run.seeds), "cells": counts,
            "created": run.study["created"], "report": (run.dir / page.REPORT_NAME).exists()}


def run_detail(root: Path, run_dir: Path) -> dict[str, Any]:
    """A stored run's tables, findings and figure files, from its store (figures as written by the report)."""
    with Run.open(run_dir) as run:
        tables = [results_table(run), *depth_tables(run)] if run.kind == "train" else simulation_tables(run)
        tables = [t for t in (published_table(run),) if t is not None] + tables
        info = run_summary(root, run)
        info.update(note=run.study["config"].get("note", ""), provenance=run.study["provenance"],
                    findings=[f.text for f in findings(run)],
                    tables=[{"title": t.title, "header": t.header, "rows": t.rows} for t in tables])
    captions = {name: caption for name, caption, _ in page.TRAINING_FIGURES}
    rel = run_dir.relative_to(root.resolve()).as_posix()
    folder = run_dir / page.FIGURE_DIR
    figs = sorted(folder.glob("*.png")) if folder.is_dir() else []
    info["figures"] = [{"name": f.stem, "caption": captions.get(f.stem, f.stem.replace("_", " ")),
                        "png": f"/files/{rel}/{page.FIGURE_DIR}/{f.name}",
                        "svg": f"/files/{rel}/{page.FIGURE_DIR}/{f.stem}.svg"} for f in figs]
    info["report_url"] = f"/files/{rel}/{page.REPORT_NAME}" if info["report"] else None
    return info


def _run_dir(root: Path, rel: str) -> Path:
    path = contained(root, rel)
    if not (path / DB_NAME).exists():
        raise HTTPException(404, f"{rel!r} is not a run directory (no {DB_NAME})")
    return path


def router(root: Path) -> APIRouter:
    r = APIRouter()

    @r.get("/api/runs")
    def runs() -> dict[str, Any]:
        listed = []
        for p in run_dirs(root, MAX_RUN_DEPTH):
            try:
                with Run.open(p) as run:
                    if run.store.study() is not None:  # a store still being created holds no study yet
                        listed.append(run_summary(root, run))
            except ActlabError as e:  # one unreadable store is listed as such; the others still show
                listed.append({"path": p.resolve().relative_to(root.resolve()).as_posix(), "name": p.name,
                               "kind": "unreadable", "description": str(e), "seeds": 0, "cells": {},
                               "created": None, "report": False, "error": str(e)})
        return {"root": str(root), "runs": listed}

    @r.get("/api/runs/{rel:path}")
    def run(rel: str) -> dict[str, Any]:
        return run_detail(root, _run_dir(root, rel))

    @r.post("/api/runs/{rel:path}/report")
    def run_report(rel: str) -> dict[str, Any]:
        path = _run_dir(root, rel)
        page.build_report(path)
        return run_detail(root, path)

    @r.get("/files/{rel:path}")
    def files(rel: str) -> FileResponse:
        path = contained(root, rel)
        if not path.is_file() or path.suffix not in SERVED_SUFFIXES:
            raise HTTPException(403, f"{rel!r} is not a figure or report file (allowed: {', '.join(SERVED_SUFFIXES)})")
        return FileResponse(path)

    return r
