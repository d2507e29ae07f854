"""The Runs view: the stored runs under the runs root, one run's tables, findings and figures, its report,
and the figure and report files (served only from inside the root)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from actlab.analysis.findings import findings
from actlab.analysis.overview import compare_runs, overview
from actlab.analysis.published import study_note
from actlab.catalog.activations import catalog_only
from actlab.errors import ActlabError, excerpt
from actlab.report import page
from actlab.report.figures import simulations as simfigures
from actlab.report.tables import depth_tables, published_table, results_table, simulation_tables
from actlab.store.results import Run, run_dirs, suite_members
from actlab.store.writer import DB_NAME

SERVED_SUFFIXES = (".png", ".svg", ".html")  # what /files/ serves from the runs root
MAX_RUN_DEPTH = 3


def contained(root: Path, rel: str) -> Path:
    """`rel` resolved inside `root`, or an HTTP error: 403 outside the root, 404 missing."""
    root = root.resolve()
    shown = excerpt(rel)
    if not rel or rel.startswith(("/", "\\")) or "\x00" in rel:
        raise HTTPException(403, f"path {shown} must be relative to the runs root")
    try:
        path = (root / rel).resolve()
        exists = path.exists()
    except OSError:  # a name too long for the file system, a loop of links: no such file here
        raise HTTPException(404, f"path {shown} does not exist under the runs root") from None
    if not path.is_relative_to(root):
        raise HTTPException(403, f"path {shown} is outside the runs root")
    if not exists:
        raise HTTPException(404, f"path {shown} does not exist under the runs root")
    return path


def code_named(run: Run) -> list[str]:
    """The activations a run names by import path (user code): the explorer draws no figure that needs them."""
    names = {c.model.get("activation", "") for c in run.cells} if run.kind == "train" else \
        {r.get(k) or "" for r in run.sim_rows() for k in ("activation", "approximation")}
    return sorted(n for n in names if isinstance(n, str) and ":" in n)


def _inside(root: Path, run_dir: Path) -> None:
    """Refuse to write a report whose figure folder or page would land outside the runs root via a link."""
    for p in (run_dir / page.FIGURE_DIR, run_dir / page.REPORT_NAME):
        if (p.exists() or p.is_symlink()) and not p.resolve().is_relative_to(root.resolve()):
            raise HTTPException(403, f"{p.name} in {run_dir.name!r} links outside the runs root; not writing there")


UNREADABLE = (ActlabError, sqlite3.Error, OSError, ValueError, TypeError, KeyError)  # a damaged or foreign store


def _rel(root: Path, run_dir: Path) -> str:
    """A run directory's path as listed: under the root as found (a link is not followed out and back)."""
    try:
        return run_dir.relative_to(root.resolve()).as_posix()
    except ValueError:
        return run_dir.resolve().relative_to(root.resolve()).as_posix()


def run_summary(root: Path, run: Run) -> dict[str, Any]:
    """One line of the runs list, from an open run."""
    counts: dict[str, int] = {}
    for c in run.cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    return {"path": _rel(root, run.dir), "name": run.name, "kind": run.kind,
            "description": run.study["config"].get("description", ""), "seeds": len(run.seeds), "cells": counts,
            "created": run.study["created"], "report": (run.dir / page.REPORT_NAME).exists()}


def run_detail(root: Path, run_dir: Path) -> dict[str, Any]:
    """A stored run's tables, findings and figure files, from its store (figures as written by the report)."""
    with catalog_only(), Run.open(run_dir) as run:
        tables = [results_table(run), *depth_tables(run)] if run.kind == "train" else simulation_tables(run)
        tables = [t for t in (published_table(run),) if t is not None] + tables
        info = run_summary(root, run)
        info.update(note=study_note(run), provenance=run.study["provenance"],
                    findings=[f.text for f in findings(run)],
                    tables=[{"title": t.title, "header": t.header, "rows": t.rows} for t in tables])
        custom = code_named(run)
        order = _report_order(run)
    info["not_drawn"] = (f"Figures that plot {', '.join(custom)} (user code) are not drawn by the explorer, which "
                         "imports no code named in a run: `actlab report` draws them in your own shell."
                         if custom else "")
    captions = dict(order)
    rank = {name: i for i, (name, _) in enumerate(order)}
    rel = run_dir.relative_to(root.resolve()).as_posix()
    folder = run_dir / page.FIGURE_DIR
    figs = sorted(folder.glob("*.png") if folder.is_dir() else [], key=lambda f: (rank.get(f.stem, len(rank)), f.stem))
    info["figures"] = [{"name": f.stem, "caption": captions.get(f.stem, f.stem.replace("_", " ")),
                        "png": f"/files/{rel}/{page.FIGURE_DIR}/{f.name}",
                        "svg": f"/files/{rel}/{page.FIGURE_DIR}/{f.stem}.svg"} for f in figs]
    info["report_url"] = f"/files/{rel}/{page.REPORT_NAME}" if info["report"] else None
    suite = run_dir.parent.resolve()  # a suite's page sits beside its members' run directories
    is_suite = (suite.is_relative_to(root.resolve()) and not (suite / DB_NAME).exists()
                and (suite / page.REPORT_NAME).is_file())
    where = suite.relative_to(root.resolve()).as_posix() if is_suite else ""
    info["suite_url"] = (f"/files/{where}/{page.REPORT_NAME}" if where and where != "." else
                         f"/files/{page.REPORT_NAME}") if is_suite else None
    info["suite"] = suite.name if is_suite else None
    return info


def _report_order(run: Run) -> list[tuple[str, str]]:
    """(figure name, caption) in the order the report shows them."""
    if run.kind == "train":
        return [(name, caption) for name, caption, _ in page.TRAINING_FIGURES]
    sim = run.study["config"].get("simulation", {}).get("name", "")
    return [("activations", "The simulation's activations: function (solid) and derivative (dashed)."),
            *((name, page.caption_of(fn, name)) for name, fn in simfigures.FIGURES.get(sim, []))]


def _run_dir(root: Path, rel: str) -> Path:
    path = contained(root, rel)
    if not (path / DB_NAME).exists():
        raise HTTPException(404, f"{excerpt(rel)} is not a run directory (no {DB_NAME})")
    return path


def suite_dirs(runs: list[Path], root: Path) -> list[Path]:
    """The folders under the root that hold some of `runs` (run directories) directly and are no run themselves:
    a suite's folder (`actlab run tour` writes its studies there, and its report beside them), or a folder a user
    keeps runs in."""
    top = root.resolve()
    return sorted({p.parent for p in runs if p.parent.resolve() != top and not (p.parent / DB_NAME).exists()})


def folder_kind(path: Path) -> str:
    """'suite' where a suite's run wrote its report beside its studies, else 'folder' (runs kept together)."""
    return "suite" if (path / page.REPORT_NAME).is_file() else "folder"


def suite_detail(root: Path, path: Path) -> dict[str, Any]:
    """A suite's overview: one row per member study (cells, the source's numbers, headline, its path here)."""
    rel = _rel(root, path)
    members = []
    for m in suite_members(path):
        try:
            with catalog_only(), Run.open(m) as run:
                members.append({"path": _rel(root, m), "name": run.name, **overview(run)})
        except UNREADABLE as e:  # one damaged member is listed as such; the others still show
            members.append({"path": _rel(root, m), "name": m.name, "cells": "unreadable", "source": "—",
                            "headline": str(e) if isinstance(e, ActlabError) else f"{type(e).__name__}: {e}"})
    kind = folder_kind(path)
    return {"path": rel, "name": path.name, "kind": kind, "members": members,
            "report_url": f"/files/{rel}/{page.REPORT_NAME}" if kind == "suite" else None}


def router(root: Path) -> APIRouter:
    r = APIRouter()

    @r.get("/api/runs")
    def runs() -> dict[str, Any]:
        listed, found = [], run_dirs(root, MAX_RUN_DEPTH)
        for p in found:
            try:
                with Run.open(p) as run:
                    if run.store.study() is not None:  # a store still being created holds no study yet
                        listed.append(run_summary(root, run))
            except UNREADABLE as e:  # one unreadable store is listed as such, with why; the others still show
                why = str(e) if isinstance(e, ActlabError) else f"not a readable actlab store ({type(e).__name__}: {e})"
                listed.append({"path": _rel(root, p), "name": p.name, "kind": "unreadable", "description": why,
                               "seeds": 0, "cells": {}, "created": None, "report": False, "error": why})
        for p in suite_dirs(found, root):  # its studies counted from the runs just read, no store opened again
            kind = folder_kind(p)
            listed.append({"path": _rel(root, p), "name": p.name, "kind": kind,
                           "studies": sum(r.parent == p for r in found), "description": "", "seeds": 0, "cells": {},
                           "created": None, "report": kind == "suite"})
        listed.sort(key=lambda r: r["path"])
        return {"root": str(root), "runs": listed}

    @r.get("/api/compare")
    def compare(a: str, b: str) -> dict[str, Any]:
        """Two runs side by side: what their configurations set differently, the cells they share in one table
        (each run's score with its interval and n, b − a paired by seed), the cells only one has, and the mean
        curves of the shared cells overlaid (`actlab.analysis.overview.compare_runs`)."""
        pa, pb = _run_dir(root, a), _run_dir(root, b)
        try:
            with catalog_only(), Run.open(pa) as ra, Run.open(pb) as rb:
                out = compare_runs(ra, rb)
        except UNREADABLE as e:
            why = str(e) if isinstance(e, ActlabError) else f"{type(e).__name__}: {e}"
            raise HTTPException(422, f"{excerpt(a)} or {excerpt(b)} is not a readable actlab store ({why})") from None
        out["a"]["path"], out["b"]["path"] = _rel(root, pa), _rel(root, pb)
        return out

    @r.get("/api/runs/{rel:path}")
    def run(rel: str) -> dict[str, Any]:
        folder = contained(root, rel)
        if folder.is_dir() and not (folder / DB_NAME).exists() and run_dirs(folder):  # runs directly inside it
            return suite_detail(root, folder)
        path = _run_dir(root, rel)
        try:
            return run_detail(root, path)
        except UNREADABLE as e:  # a damaged store: the client's request names an unreadable run, not a server fault
            why = str(e) if isinstance(e, ActlabError) else f"{type(e).__name__}: {e}"
            raise HTTPException(422, f"{excerpt(rel)} is not a readable actlab store ({why})") from None

    @r.post("/api/runs/{rel:path}/report")
    def run_report(rel: str) -> dict[str, Any]:
        path = _run_dir(root, rel)
        _inside(root, path)
        try:
            with catalog_only():  # a stored `pkg.mod:fn` is never imported: its figures are skipped, with the reason
                page.build_report(path)
        except UNREADABLE as e:
            why = str(e) if isinstance(e, ActlabError) else f"{type(e).__name__}: {e}"
            raise HTTPException(422, f"{excerpt(rel)} is not a readable actlab store ({why})") from None
        return run_detail(root, path)

    @r.get("/files/{rel:path}")
    def files(rel: str) -> FileResponse:
        path = contained(root, rel)
        if not path.is_file() or path.suffix not in SERVED_SUFFIXES:
            allowed = ", ".join(SERVED_SUFFIXES)
            raise HTTPException(403, f"{excerpt(rel)} is not a figure or report file (allowed: {allowed})")
        return FileResponse(path)

    return r
