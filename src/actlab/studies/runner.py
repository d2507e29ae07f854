"""Running a study: expand its grid into cells, run populations through an executor, write results to the
store, and return what happened.

One process writes the store: the executor (in-process by default, Ray for a cluster) hands each cell's
`CellResult` back, and the runner writes a population's cells in one transaction. Resume is a property of
the store: `run_study` on a run directory that already holds the same study skips the cells marked done
and re-runs the others, including cells left 'running' by a killed process. Ctrl-C stops after putting
the cell in progress back to 'pending'; every finished cell stays. A suite (`include`) runs its member
studies one after another, each into its own sub-directory.

`plan_run` turns what a user names (a study file, a shipped study, or a run directory to resume) into the
study and its run directory; `run_study` returns a `RunSummary` that already holds the per-cell summary
read from the store it wrote, so a caller prints it without opening the store again.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import scipy
import torch

from actlab import __version__
from actlab.analysis.published import Comparison, compare, study_note
from actlab.analysis.summary import sim_summary, summary_rows
from actlab.errors import ActlabError
from actlab.store.results import Run, show_value
from actlab.store.writer import DB_NAME, Store, writer_lock
from actlab.studies import executors
from actlab.studies.config import Cell, StudyConfig, expand, load_study, run_dir_name
from actlab.studies.datacache import DataCache
from actlab.studies.executors import EXECUTORS
from actlab.studies.memory import check_memory
from actlab.studies.populations import populations
from actlab.studies.solve import solve_transforms


class Progress(Protocol):
    """What a progress display gets told while a study runs (the CLI's bar; tests record it)."""

    def start(self, study: str, n_cells: int, already: int) -> None: ...
    def cell(self, label: str, n: int = 1) -> None: ...  # n cells start training together, under a short label
    def epoch(self, e: int, total: int) -> None: ...
    def cell_done(self, n: int) -> None: ...
    def done(self) -> None: ...
    def note(self, text: str) -> None: ...  # a line about a slow step before training (e.g. solving transforms)


def _short(v: Any, key: str = "") -> str:
    """A grid value in a few characters: a table of settings as its values ('relu/kaiming_normal'), a list as
    labels write it ('16-32'), a switch as its key or 'no key'."""
    if isinstance(v, dict):
        return "/".join(_short(x, k) for k, x in v.items())
    if isinstance(v, list):
        return show_value(v)
    if isinstance(v, bool):
        return key.rsplit(".", 1)[-1] if v and key else f"no {key.rsplit('.', 1)[-1]}" if key else str(v).lower()
    return v if isinstance(v, str) else json.dumps(v, default=str)


def group_label(cells: list[Cell]) -> str:
    """A short name for cells that train together: one cell's grid values (values only); several cells: how many,
    then each cell's values of the grid keys that tell them apart ("4 cells: relu, tanh, sigmoid, gelu")."""
    if len(cells) == 1:
        return " · ".join(_short(v, k) for k, v in cells[0].values.items()) or cells[0].label
    distinct: dict[str, list[str]] = {}
    for k in cells[0].values:
        for c in cells:
            v = _short(c.values.get(k), k)
            if v not in distinct.setdefault(k, []):
                distinct[k].append(v)
    keys = [k for k, vs in distinct.items() if len(vs) > 1]
    if math.prod(len(distinct[k]) for k in keys) == len(cells):  # every combination: "relu, tanh × he, lecun"
        return f"{len(cells)} cells: " + " × ".join(", ".join(distinct[k]) for k in keys)
    return f"{len(cells)} cells: " + ", ".join("/".join(_short(c.values.get(k), k) for k in keys) for c in cells)


@dataclass
class CellOutcome:
    key: str
    label: str
    status: Literal["done", "failed", "skipped"]  # skipped: already done in an earlier run
    wall_s: float = 0.0
    error: str | None = None


@dataclass
class RunSummary:
    """What `run_study` did, with the per-cell summary read back from the store it wrote."""

    study: str
    run_dir: Path
    outcomes: list[CellOutcome] = field(default_factory=list)
    members: list[RunSummary] = field(default_factory=list)  # a suite's studies
    note: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)  # results.summary_rows: one per cell
    sims: list[dict[str, Any]] = field(default_factory=list)  # results.sim_summary: a simulation's grouped rows
    published: list[Comparison] = field(default_factory=list)  # the source's numbers beside actlab's, with verdicts

    @property
    def failed(self) -> int:
        return sum(o.status == "failed" for o in self.outcomes) + sum(m.failed for m in self.members)


def provenance() -> dict[str, Any]:
    """Versions, code revision (with a dirty-tree flag), machine and command line, recorded with every study."""
    return {"actlab": __version__, **_code_version(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": version("scikit-learn"), "platform": platform.platform(), "machine": platform.machine(),
            "cpus": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "argv": sys.argv}


def _code_version() -> dict[str, Any]:
    """The git revision of actlab's source and whether its tree (the whole package) had uncommitted changes
    (None: not a git checkout)."""
    here = Path(__file__).resolve().parents[1]  # src/actlab: the pathspec '.' below is relative to it

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, cwd=here)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout if r.returncode == 0 else None

    rev = (git("rev-parse", "HEAD") or "").strip() or None
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".") if rev else None
    return {"code_revision": rev, "code_dirty": None if status is None else bool(status.strip())}


def plan_run(source: str | None, out: str | Path | None = None, sets: list[str] | None = None
             ) -> tuple[StudyConfig, Path]:
    """(study, run directory) for what a user names: a run directory resumes its stored study in place
    (with `sets` applied); a study file or shipped name (default: the quick tour) goes to `out`, by default
    runs/NAME."""
    source = source or "tour"
    path = Path(source)
    if path.is_dir():
        if not (path / DB_NAME).exists():
            raise ActlabError(f"{path} is a directory but not a run directory (no {DB_NAME})")
        with Run.open(path) as run:
            held = run.store.study()
        if held is None:
            raise ActlabError(f"{path} holds no study yet; run a study file into it with --out")
        return load_study(held["config"], sets), path
    study = load_study(source, sets)
    return study, Path(out) if out is not None else Path("runs") / run_dir_name(study.name)


def run_study(study: StudyConfig, run_dir: str | Path, *, executor: str = "inprocess", address: str | None = None,
              progress: Progress | None = None) -> RunSummary:
    """Run (or resume) `study` into `run_dir`; returns what happened to each cell and the cells' summary."""
    if executor not in EXECUTORS:
        raise ActlabError(f"--executor {executor!r} is unknown; allowed: {', '.join(EXECUTORS)}")
    run_dir = Path(run_dir)
    if study.kind == "suite":
        summary = RunSummary(study.name, run_dir, note=study.note)
        for name in study.include:
            member = load_study(name, study.overrides.get(name, []))
            summary.members.append(run_study(member, run_dir / run_dir_name(member.name), executor=executor,
                                             address=address,
                                             progress=progress))
        return summary
    with writer_lock(run_dir):  # one writer per run directory, for the whole run
        store = Store(run_dir)
        try:
            summary = _run(study, run_dir, store, executor, address, progress)
            run = Run(run_dir, store)  # the writer's own connection: the summary reads what was just written
            summary.rows, summary.sims, summary.published = summary_rows(run), sim_summary(run), compare(run)
            summary.note = study_note(run)
            return summary
        finally:
            store.close()


PROSE = ("description", "note", "source", "published")  # what a study says about itself, not what it trains


def _trained(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored configuration without its prose: two that agree here train the same cells."""
    return {k: v for k, v in doc.items() if k not in PROSE}


def _run(study: StudyConfig, run_dir: Path, store: Store, executor: str, address: str | None,
         progress: Progress | None) -> RunSummary:
    cfg_doc = study.model_dump(mode="json")
    held = store.study()
    if held is not None and _trained(held["config"]) != _trained(cfg_doc):
        raise ActlabError(f"{run_dir} holds a different configuration of study {held['name']!r}; "
                          "resume it with `actlab run " + str(run_dir) + "`, or choose another --out")
    if held is not None and held["config"] != cfg_doc:  # only the words changed (a note, a published number)
        store.update_config(cfg_doc)
    cells = expand(study)
    status = store.status() if held is not None else {}
    todo = [c for c in cells if status.get(c.key) != "done"]
    groups = populations(todo, study.group_cells)
    datasets = DataCache()
    check_memory(groups, datasets)  # before anything is written or trained: a run that cannot fit is refused
    # so is a DKS/TAT target its depth cannot reach (validation does not solve)
    solve_transforms(todo, getattr(progress, "note", None))  # a caller's own progress may have no note()
    if held is None:
        changes = {"protocol_changes": study._protocol_changes} if study._protocol_changes else {}
        store.save_study(study.name, cfg_doc, provenance() | changes)
    store.add_cells(cells)
    summary = RunSummary(study.name, run_dir, note=study.note)
    summary.outcomes += [CellOutcome(c.key, c.label, "skipped") for c in cells if status.get(c.key) == "done"]
    if progress is not None:
        progress.start(study.name, len(cells), len(cells) - len(todo))
    if executor == "ray":
        for c in todo:
            store.mark_running(c.key)
        stream = executors.ray(groups, address, 1.0 if torch.cuda.is_available() else 0.0)
    else:
        def starting(cells: list[Cell]) -> None:  # marked running (and shown) just before they start
            for cell in cells:
                store.mark_running(cell.key)
            if progress is not None:
                progress.cell(group_label(cells), len(cells))

        stream = executors.inprocess(groups, None if progress is None else progress.epoch, starting, datasets,
                                     getattr(progress, "note", None))
    try:
        for group, results in stream:
            if isinstance(results, Exception):
                for cell in group:
                    store.mark_failed(cell.key, str(results))
                    summary.outcomes.append(CellOutcome(cell.key, cell.label, "failed", error=str(results)))
            else:
                store.write_results([(c.key, r) for c, r in zip(group, results, strict=True)])
                summary.outcomes += [CellOutcome(c.key, c.label, "done", r.wall_s)
                                     for c, r in zip(group, results, strict=True)]
            if progress is not None:
                progress.cell_done(len(group))
    except KeyboardInterrupt:
        store.reset_running()  # the interrupted cell (and any not yet finished) runs on resume
        raise
    finally:
        if progress is not None:
            progress.done()
    return summary
