"""Running a study: expand its grid into cells, run each cell through an executor, write results to the store.

One process writes the store: the executor (in-process by default, Ray for a cluster) hands each cell's
result back, and the runner writes it in one transaction. Resume is a property of the store: `run_study`
on a run directory that already holds the same study skips the cells marked done and re-runs the others,
including cells left 'running' by a killed process. Ctrl-C stops after putting the cell in progress back
to 'pending'; every finished cell stays.

A cell's replicas are its seeds, trained together as one population (`actlab.nn`); cells that differ
only in their activation or init share every tensor shape and, for MLPs, train together in one
population too (`group_cells = false` in a study turns that off). A suite (`include`) runs its member studies one after
another, each into its own sub-directory.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actlab import __version__
from actlab.config import Cell, StudyConfig, expand, load_study
from actlab.errors import ActlabError
from actlab.stats import mean_ci
from actlab.store import Store

EXECUTORS = ("inprocess", "ray")


@dataclass
class CellOutcome:
    key: str
    label: str
    status: str  # done, failed, skipped (already done)
    wall_s: float = 0.0
    error: str | None = None


@dataclass
class RunSummary:
    study: str
    run_dir: Path
    outcomes: list[CellOutcome] = field(default_factory=list)
    members: list[RunSummary] = field(default_factory=list)  # a suite's studies
    note: str = ""

    @property
    def failed(self) -> int:
        return sum(o.status == "failed" for o in self.outcomes) + sum(m.failed for m in self.members)


def provenance() -> dict[str, Any]:
    """Versions, code revision and machine, recorded with every study."""
    import scipy
    import sklearn

    rev = None
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"actlab": __version__, "code_revision": rev, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "platform": platform.platform(), "machine": platform.machine(),
            "cpus": torch.get_num_threads(), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "argv": sys.argv}


# ------------------------------------------------------------------------------------ one cell


_DATA_CACHE: dict[str, Any] = {}


def _dataset(cfg: StudyConfig):
    from actlab import data

    key = json.dumps([cfg.data.name, cfg.data.options], sort_keys=True)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = data.load(cfg.data.name, **cfg.data.options)
    return _DATA_CACHE[key]


def far_points(ds: Any) -> torch.Tensor:
    """The moons protocol's trace points: the class-0 training point farthest from (−1.2, −0.3) and the
    class-1 point farthest from (1.2, 0.3)."""
    x, y = ds.x_train, ds.y_train
    out = []
    for cls, centre in ((0, (-1.2, -0.3)), (1, (1.2, 0.3))):
        pts = x[y == cls]
        out.append(pts[(pts - torch.tensor(centre)).norm(dim=1).argmax()])
    return torch.stack(out)


def populations(cells: list[Cell], enabled: bool = True) -> list[list[Cell]]:
    """Cells grouped into populations: MLP cells whose configurations differ only in the model's MIXABLE
    fields (activation, init) share every tensor shape, data and training, and train as one population.
    ConvNet cells stay apart: splitting conv maps between activations made them slower (benchmarks/RESULTS.md)."""
    from actlab.nn.models import MIXABLE

    if not enabled:
        return [[c] for c in cells]
    groups: dict[str, list[Cell]] = {}
    for c in cells:
        if c.config.simulation is not None or c.config.model.kind != "mlp":
            key = c.key
        else:
            doc = c.config.model_dump(mode="json", exclude={"name", "description", "note", "grid", "include",
                                                             "overrides"})
            for f in MIXABLE:
                doc["model"].pop(f)
            key = json.dumps(doc, sort_keys=True)
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def run_population(cells: list[Cell], on_epoch: Callable[[int, int], None] | None = None
                   ) -> list[tuple[Cell, dict[str, Any]]]:
    """Train the cells of one population together (or run a simulation cell); one result per cell: a
    History (training) or rows (simulation), and artifacts. Wall time is shared equally among the cells."""
    from actlab import simulations
    from actlab.nn import build
    from actlab.training import train

    cfg = cells[0].config
    seeds = cfg.seed_list()
    t0 = time.perf_counter()
    if cfg.simulation is not None:
        res = simulations.run(cfg.simulation.name, cfg.simulation.params, seeds)
        return [(cells[0], {"rows": res["rows"], "wall_s": time.perf_counter() - t0, "device": "cpu"})]
    ds = _dataset(cfg)
    model = build([c.config.model for c in cells], ds.input_shape, ds.task, ds.n_classes, seeds)
    hist = train(model, ds, cfg.train, on_epoch=None if on_epoch is None else lambda e, h: on_epoch(e, cfg.train.epochs))
    shared, per_replica = _diagnostics(model, ds, cfg.diagnostics)
    wall = (time.perf_counter() - t0) / len(cells)
    out = []
    for i, cell in enumerate(cells):
        lo, hi = i * len(seeds), (i + 1) * len(seeds)
        arts = {name: {**shared.get(name, {}), **{k: v[lo:hi] for k, v in per_replica.get(name, {}).items()}}
                for name in {**shared, **per_replica}}
        out.append((cell, {"history": hist.take(lo, hi), "artifacts": arts, "wall_s": wall, "device": hist.device,
                           "population": len(cells)}))
    return out


def _diagnostics(model: Any, ds: Any, d: Any) -> tuple[dict[str, dict], dict[str, dict]]:
    """2-D extras as artifacts: (arrays shared by all replicas, arrays with a leading replica dimension)."""
    from actlab import probes

    shared: dict[str, dict] = {}
    per: dict[str, dict] = {}
    if ds.input_shape != (2,) or ds.task != "binary":
        return shared, per
    dev = next(model.parameters()).device
    shared["dataset"] = {"x_train": ds.x_train.numpy(), "y_train": ds.y_train.numpy(), "x_test": ds.x_test.numpy(),
                         "y_test": ds.y_test.numpy()}  # the points the report draws (a few KB)
    if d.decision_surface:
        gx, gy, p = probes.decision_surface(model, torch.cat([ds.x_train, ds.x_test]).to(dev), d.surface_step,
                                            d.surface_margin)
        shared["decision_surface"], per["decision_surface"] = {"gx": gx, "gy": gy}, {"p": p.astype(np.float32)}
    if d.signal_trace:
        pts = far_points(ds)
        shared["signal_trace"], per["signal_trace"] = {"points": pts.numpy()}, probes.signal_trace(model, pts.to(dev))
    if d.hidden_snapshot:
        snap = probes.hidden_snapshot(model, ds.x_test.to(dev))
        shared["hidden_snapshot"] = {"y": ds.y_test.numpy()}
        per["hidden_snapshot"] = {**{f"{k}_points": v["points"] for k, v in snap.items()},
                                  **{f"{k}_std": v["std"] for k, v in snap.items()}}
    return shared, per


# ---------------------------------------------------------------------------------- executors


Outcome = tuple[list[Cell], list[dict] | Exception]  # one population: its cells, and their results or the error


def _inprocess(groups: list[list[Cell]], on_epoch: Callable[[int, int], None] | None) -> Iterator[Outcome]:
    for cells in groups:
        try:
            yield cells, [res for _, res in run_population(cells, on_epoch)]
        except ActlabError as e:
            yield cells, e


def _ray(groups: list[list[Cell]], address: str | None, gpus: float) -> Iterator[Outcome]:
    """Each population a Ray task (1 CPU, and 1 GPU where this machine has one); results come back here, to
    the single writer, as they finish. Ray gives each task one thread (OMP_NUM_THREADS=1)."""
    try:
        import ray
    except ImportError:
        raise ActlabError("--executor ray needs Ray: pip install 'actlab[ray]'") from None
    if not ray.is_initialized():  # a cluster at `address`, or a local Ray on this machine's CPUs
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1, num_gpus=gpus)(_ray_task)
    pending = {remote.remote([c.model_dump_json() for c in cells]): cells for cells in groups}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        cells = pending.pop(done[0])
        try:
            yield cells, ray.get(done[0])
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(getattr(e, "cause", None), Exception) else e
            yield cells, cause if isinstance(cause, ActlabError) else ActlabError(str(cause))


def _ray_task(cells_json: list[str]) -> list[dict]:
    return [res for _, res in run_population([Cell.model_validate_json(c) for c in cells_json])]


# ------------------------------------------------------------------------------------- studies


def run_study(study: StudyConfig, run_dir: str | Path, *, executor: str = "inprocess", address: str | None = None,
              progress: Any = None) -> RunSummary:
    """Run (or resume) `study` into `run_dir`; returns what happened to each cell.

    `progress` is an optional object with `start(study, n_cells)`, `cell(label)`, `epoch(e, total)`, `done()`.
    """
    if executor not in EXECUTORS:
        raise ActlabError(f"--executor {executor!r} is unknown; allowed: {', '.join(EXECUTORS)}")
    run_dir = Path(run_dir)
    if study.kind == "suite":
        summary = RunSummary(study.name, run_dir, note=study.note)
        for name in study.include:
            member = load_study(name, study.overrides.get(name, []))
            summary.members.append(run_study(member, run_dir / member.name, executor=executor, address=address,
                                             progress=progress))
        return summary
    store = Store(run_dir)
    try:
        cfg_doc = study.model_dump(mode="json")
        held = store.study()
        if held is not None and held["config"] != cfg_doc:
            raise ActlabError(f"{run_dir} holds a different configuration of study {held['name']!r}; "
                              "resume it with `actlab run " + str(run_dir) + "`, or choose another --out")
        if held is None:
            store.save_study(study.name, cfg_doc, provenance())
        cells = expand(study)
        store.add_cells(cells)
        status = store.status()
        summary = RunSummary(study.name, run_dir, note=study.note)
        todo = [c for c in cells if status.get(c.key) != "done"]
        summary.outcomes += [CellOutcome(c.key, c.label, "skipped") for c in cells if status.get(c.key) == "done"]
        if progress is not None:
            progress.start(study.name, len(cells), len(cells) - len(todo))
        on_epoch = None if progress is None else progress.epoch
        groups = populations(todo, study.group_cells)
        if executor == "ray":
            gpus = 1.0 if torch.cuda.is_available() else 0.0
            for c in todo:
                store.mark_running(c.key)
            stream = _ray(groups, address, gpus)
        else:
            stream = _inprocess_lazy(groups, on_epoch, store, progress)
        try:
            for cells, results in stream:
                if isinstance(results, Exception):
                    for cell in cells:
                        store.mark_failed(cell.key, str(results))
                        summary.outcomes.append(CellOutcome(cell.key, cell.label, "failed", error=str(results)))
                else:
                    store.write_results([(c.key, r) for c, r in zip(cells, results, strict=True)])
                    summary.outcomes += [CellOutcome(c.key, c.label, "done", r.get("wall_s", 0.0))
                                         for c, r in zip(cells, results, strict=True)]
                if progress is not None:
                    progress.cell_done(len(cells))
        except KeyboardInterrupt:
            # Back to pending: the interrupted cell (and any not yet finished) will run on resume.
            with store.transaction() as db:
                db.execute("UPDATE cells SET status = 'pending' WHERE status = 'running'")
            raise
        finally:
            if progress is not None:
                progress.done()
        return summary
    finally:
        store.close()


def _inprocess_lazy(groups: list[list[Cell]], on_epoch, store: Store, progress) -> Iterator[Outcome]:
    """In-process populations, their cells marked running (and shown) just before they start."""
    for cells in groups:
        for cell in cells:
            store.mark_running(cell.key)
        if progress is not None:
            progress.cell(" | ".join(c.label for c in cells))
        yield from _inprocess([cells], on_epoch)


def summary_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per cell: label, status, n, final and best test accuracy with 95 % CIs, diverged count, wall time."""
    store = Store(run_dir)
    try:
        rows = []
        for c in store.cells():
            reps = store.query("SELECT final_test_acc, best_test_acc, diverged_epoch FROM replicas WHERE cell = ?",
                               (c["key"],))
            final = [r[0] if r[0] is not None else np.nan for r in reps]
            best = [r[1] if r[1] is not None else np.nan for r in reps]
            sim = store.query("SELECT COUNT(*) FROM sim_rows WHERE cell = ?", (c["key"],))[0][0]
            rows.append({"cell": c["label"], "status": c["status"], "replicas": len(reps),
                         "final_test_acc": mean_ci(final) if reps else None,
                         "best_test_acc": mean_ci(best) if reps else None,
                         "diverged": sum(1 for r in reps if r[2]), "sim_rows": sim, "wall_s": c["wall_s"],
                         "error": c["error"]})
        return rows
    finally:
        store.close()


GROUP_INTS = ("depth", "layer", "epoch")  # integer fields that name a condition rather than measure one


def sim_summary(run_dir: str | Path) -> list[dict[str, Any]]:
    """A simulation's rows grouped over seeds: text fields (and depth/layer/epoch) as the group, each
    numeric field as a mean with its 95 % CI (a yes/no field becomes the fraction of yes)."""
    store = Store(run_dir)
    try:
        rows = [json.loads(r[0]) for r in store.query("SELECT row FROM sim_rows ORDER BY cell, idx")]
    finally:
        store.close()
    return group_sim_rows(rows)


def group_sim_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`sim_summary` of rows already read."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = tuple((k, v) for k, v in r.items() if k != "seed" and (isinstance(v, str) or k in GROUP_INTS))
        groups.setdefault(key, []).append(r)
    out = []
    for key, members in groups.items():
        entry: dict[str, Any] = dict(key)
        numeric = [k for k, v in members[0].items() if k != "seed" and k not in entry and
                   (isinstance(v, (int, float)) or v is None)]
        for k in numeric:
            vals = [None if m[k] is None else float(m[k]) for m in members]
            entry[k] = mean_ci([np.nan if v is None else v for v in vals])
            if any(v is None for v in vals):
                entry[f"{k}_missing"] = sum(v is None for v in vals)
        out.append(entry)
    return out
