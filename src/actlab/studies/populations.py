"""One population at a time: cells grouped by tensor shapes, trained together, and their 2-D diagnostics.

A cell's replicas are its seeds, trained together as one population (`actlab.nn`); cells that differ
only in their activation or init share every tensor shape and, for MLPs, train together in one
population too (`group_cells = false` in a study turns that off). Each cell's results come back as a
`CellResult` for the single writer.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from actlab import data, runtime
from actlab.data.record import Dataset
from actlab.errors import ActlabError
from actlab.nn import transforms
from actlab.nn.models import Population, build, out_features
from actlab.store.writer import CellResult
from actlab.studies import simulations
from actlab.studies.config import Cell, Diagnostics, StudyConfig
from actlab.training import fused, probes
from actlab.training.loop import train

EpochCallback = Callable[[int, int], None]  # (epoch, total epochs)


class DataCache:
    """Datasets loaded for one run, by source and options: cells that share data load it once."""

    def __init__(self) -> None:
        self._held: dict[str, Dataset] = {}

    def load(self, cfg: StudyConfig) -> Dataset:
        key = json.dumps([cfg.data.name, cfg.data.options], sort_keys=True)
        if key not in self._held:
            self._held[key] = data.load(cfg.data.name, **cfg.data.options)
        return self._held[key]


def far_points(ds: Dataset) -> torch.Tensor:
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
    fields (activation, init) share every tensor shape (`ModelConfig.shape_key`), data and training, and
    train as one population. ConvNet cells stay apart: splitting conv maps between activations made them
    slower (benchmarks/RESULTS.md)."""
    if not enabled:
        return [[c] for c in cells]
    groups: dict[str, list[Cell]] = {}
    for c in cells:
        if c.config.simulation is not None or c.config.model.kind != "mlp":
            key = c.key
        else:
            rest = c.config.model_dump(mode="json", exclude={"name", "description", "note", "grid", "include",
                                                              "overrides", "published", "source", "model"})
            key = json.dumps([rest, c.config.model.shape_key()], sort_keys=True)
        groups.setdefault(key, []).append(c)
    return list(groups.values())


@dataclass(frozen=True)
class MemoryEstimate:
    """What one population needs at its peak, in bytes, by part (an estimate, float32 tensors)."""

    replicas: int
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        big = sorted(self.parts.items(), key=lambda kv: -kv[1])[:3]
        return f"{gib(self.total)} for {self.replicas} replicas (" + ", ".join(f"{k} {gib(v)}" for k, v in big) + ")"


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**27 else f"{n / 2**20:.0f} MiB"


def memory_estimate(cells: list[Cell], ds: Dataset) -> MemoryEstimate:
    """The peak memory one population of `cells` on `ds` should need: parameters with their gradients and
    optimizer state, the activations a minibatch keeps for backward, the shuffled data, evaluation chunks,
    the recorded history and, for 2-D inputs, the decision surface (evaluated in chunks of bounded size, its
    summaries and a few seeds' surfaces kept).
    An estimate (float32, torch's allocator overhead not counted), checked against the machine's memory
    before anything trains."""
    cfg = cells[0].config
    m, t = cfg.model, cfg.train
    r = len(cfg.seed_list()) * len(cells)
    k = out_features(ds.task, ds.n_classes)
    n = len(ds.x_train)
    batch = n if t.batch_size in (None, "full") else min(int(t.batch_size), n)
    d_in = int(np.prod(ds.input_shape))
    if m.kind == "mlp":
        units = [d_in, *m.hidden_widths(), k]
        params = sum((a + 1) * b for a, b in zip(units, units[1:], strict=False))
        hidden = sum(units[1:])
    else:  # stem + blocks of `width` channels at full resolution (an upper bound: no pooling assumed)
        spatial = int(np.prod(ds.input_shape[1:]))
        kernel = 3 ** (len(ds.input_shape) - 1)
        params = kernel * (ds.input_shape[0] * m.width + m.depth * m.width ** 2) + (m.depth + 1) * 3 * m.width
        params += (m.width + 1) * k
        hidden = (m.depth + 1) * m.width * spatial * (2 if m.norm != "none" else 1)
    states = {"sgd": 1 if t.momentum > 0 else 0, "adam": 2, "adamw": 2}[t.optimizer]
    f32 = 4
    parts = {
        "parameters, gradients, optimizer state": f32 * r * params * (2 + states),
        "minibatch activations": f32 * r * batch * (d_in + 3 * hidden),  # inputs; z, φ(z) and a gradient per unit
        "shuffled data": 8 * r * n + f32 * r * batch * d_in,
        "evaluation": 2 * f32 * probes.CHUNK_FLOATS,
        "history": 8 * r * (t.epochs + 1) * 12,
        "the process itself (Python, torch)": 512 * 2**20,
    }
    d = cfg.diagnostics
    if d.decision_surface and ds.input_shape == (2,):
        gx, gy = probes.grid(torch.cat([ds.x_train, ds.x_test]), d.surface_step, d.surface_margin)
        g = len(gx) * len(gy)
        # evaluated a chunk of grid points at a time (about four activation tensors of CHUNK_FLOATS alive, and
        # the chunk's outputs in float64), keeping per cell the mean, the agreement and surface_seeds surfaces
        parts["decision surface"] = (f32 * 6 * probes.CHUNK_FLOATS + f32 * g * 2
                                     + f32 * g * len(cells) * (2 + min(d.surface_seeds, len(cfg.seed_list()))))
    return MemoryEstimate(r, parts)


def memory_limit() -> tuple[int, str]:
    """(bytes, where from): ACTLAB_MEMORY_LIMIT (bytes, or with a K/M/G/T suffix) if set, else this machine's
    physical memory."""
    raw = os.environ.get("ACTLAB_MEMORY_LIMIT", "").strip()
    if raw:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", raw.lower())
        if m is None:
            raise ActlabError(f"ACTLAB_MEMORY_LIMIT={raw!r} is not a size; allowed: bytes, or a number with K, M, G "
                              "or T, e.g. 8G")
        return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")), "ACTLAB_MEMORY_LIMIT"
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "this machine's memory"


def check_memory(groups: list[list[Cell]], datasets: DataCache) -> None:
    """Refuse, before anything trains, a run with a population whose estimated peak memory exceeds the limit
    (`memory_limit`): one error naming the cells, the estimate and the limit."""
    limit, where = memory_limit()
    over = []
    for cells in groups:
        if cells[0].config.simulation is None:
            try:
                ds = datasets.load(cells[0].config)
            except Exception:  # noqa: BLE001 - data that fails to load fails its own cells when they run
                continue
            est = memory_estimate(cells, ds)
            if est.total > limit:
                over.append(f"[{' | '.join(c.label for c in cells)[:120]}] needs about {est.describe()}")
    if over:
        more = f" (and {len(over) - 3} more)" if len(over) > 3 else ""
        raise ActlabError(f"{len(over)} population(s) would not fit in {gib(limit)} ({where}): {'; '.join(over[:3])}"
                          f"{more}. Use fewer seeds or fewer epochs (the history holds every epoch of every "
                          "replica), or set ACTLAB_MEMORY_LIMIT if more memory is really there")


def solve_transforms(cells: list[Cell], note: Callable[[str], None] | None = None) -> None:
    """Solve, before anything trains, the DKS/TAT constants of every cell whose model transforms its
    activation (seconds each the first time on a machine, then read from the cache: actlab.nn.transforms);
    `note` is told beforehand how many need solving, and afterwards how long it took. A target that the
    cell's depth cannot reach refuses the run, as a bad field does, naming the cells."""
    cells = [c for c in cells if c.config.simulation is None and c.config.model.transform != "none"]
    todo = set()
    for cell in cells:
        m = cell.config.model
        try:
            act, params = m.checked_activation()
            todo.add(transforms.pending(act.name, params, m.transform, m.transform_params, len(m.hidden_widths())))
        except ActlabError:
            pass  # reported below, with its cell
    todo.discard(None)  # already kept
    t0 = time.perf_counter()
    if todo and note is not None:
        note(f"solving {len(todo)} DKS/TAT transform(s) with the dks package before training, seconds each the first "
             f"time on this machine (kept in {runtime.cache_dir() / 'transforms'} for later runs)")
    errors = []
    for cell in cells:
        try:
            cell.config.model.resolved_activation()
        except ActlabError as e:
            errors.append(f"{e} [cell {cell.label}]")
    if errors:
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ActlabError(f"{len(errors)} cell(s) ask for a transform that cannot be solved:\n  - "
                          + "\n  - ".join(errors[:10]) + more)
    if todo and note is not None:
        note(f"solved in {time.perf_counter() - t0:.1f} s")


def run_population(cells: list[Cell], datasets: DataCache | None = None, on_epoch: EpochCallback | None = None
                   ) -> list[CellResult]:
    """Train the cells of one population together (or run a simulation cell): one result per cell, in
    order. Wall time is shared equally among the cells."""
    cfg = cells[0].config
    seeds = cfg.seed_list()
    t0 = time.perf_counter()
    if cfg.simulation is not None:
        res = simulations.run(cfg.simulation.name, cfg.simulation.params, seeds)
        return [CellResult(wall_s=time.perf_counter() - t0, device="cpu", rows=res["rows"])]
    ds = (datasets or DataCache()).load(cfg)
    model = build([c.config.model for c in cells], ds.input_shape, ds.task, ds.n_classes, seeds)
    hist = train(model, ds, cfg.train, on_epoch=None if on_epoch is None else lambda e, h: on_epoch(e, cfg.train.epochs))
    # a population the fused kernel trained draws its decision surface with the kernel's forward pass too
    surface = cfg.diagnostics.decision_surface and ds.input_shape == (2,) and ds.task == "binary"
    fast = (fused.surface_forward(model, cfg.train, ds.task, ds.n_classes) if surface and hist.engine == "fused"
            else None)
    shared, per_replica, per_cell = _diagnostics(model, ds, cfg.diagnostics, len(cells), fast)
    wall = (time.perf_counter() - t0) / len(cells)
    out = []
    for i in range(len(cells)):
        lo, hi = i * len(seeds), (i + 1) * len(seeds)
        arts = {name: {**shared.get(name, {}), **{k: v[lo:hi] for k, v in per_replica.get(name, {}).items()},
                       **{k: v[i] for k, v in per_cell.get(name, {}).items()}}
                for name in {**shared, **per_replica, **per_cell}}
        out.append(CellResult(wall_s=wall, device=hist.device if hist.engine == "torch" else f"{hist.device} ({hist.engine} kernel)",
                              history=hist.take(lo, hi, copy=False),
                              artifacts=arts, population=len(cells), engine_note=hist.engine_note,
                              data_provenance=ds.provenance | {"n_classes": ds.n_classes}))
    return out


def _diagnostics(model: Population, ds: Dataset, d: Diagnostics, cells: int,
                 forward: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> tuple[dict[str, dict], dict[str, dict], dict[str, dict]]:
    """2-D extras as artifacts: (arrays shared by all replicas, arrays with a leading replica dimension, arrays
    with a leading cell dimension). `forward` replaces the model's forward pass for the decision surface."""
    shared: dict[str, dict] = {}
    per: dict[str, dict] = {}
    per_cell: dict[str, dict] = {}
    if ds.input_shape != (2,) or ds.task != "binary":
        return shared, per, per_cell
    dev = next(model.parameters()).device
    shared["dataset"] = {"x_train": ds.x_train.numpy(), "y_train": ds.y_train.numpy(), "x_test": ds.x_test.numpy(),
                         "y_test": ds.y_test.numpy()}  # the points the report draws (a few KB)
    if d.decision_surface:
        s = probes.decision_surface(model, torch.cat([ds.x_train, ds.x_test]).to(dev), d.surface_step,
                                    d.surface_margin, groups=cells, keep=d.surface_seeds, forward=forward)
        shared["decision_surface"] = {"gx": s.gx, "gy": s.gy, "n": np.array(s.n)}
        per_cell["decision_surface"] = {"mean": s.mean, "agreement": s.agreement, "p": s.kept}
    if d.signal_trace:
        pts = far_points(ds)
        shared["signal_trace"], per["signal_trace"] = {"points": pts.numpy()}, probes.signal_trace(model, pts.to(dev))
    if d.hidden_snapshot:
        snap = probes.hidden_snapshot(model, ds.x_test.to(dev))
        shared["hidden_snapshot"] = {"y": ds.y_test.numpy()}
        per["hidden_snapshot"] = {**{f"{k}_points": v["points"] for k, v in snap.items()},
                                  **{f"{k}_std": v["std"] for k, v in snap.items()}}
    return shared, per, per_cell
