"""One population at a time: cells grouped by tensor shapes, trained together, and their 2-D diagnostics.

A cell's replicas are its seeds, trained together as one population (`actlab.nn`); cells that differ
only in their activation or init share every tensor shape and, for MLPs, train together in one
population too (`group_cells = false` in a study turns that off). Each cell's results come back as a
`CellResult` for the single writer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np
import torch

from actlab import data
from actlab.data.record import Dataset
from actlab.nn.models import Population, build
from actlab.store.writer import CellResult
from actlab.studies import simulations
from actlab.studies.config import Cell, Diagnostics, StudyConfig
from actlab.training import probes
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
    shared, per_replica = _diagnostics(model, ds, cfg.diagnostics)
    wall = (time.perf_counter() - t0) / len(cells)
    out = []
    for i in range(len(cells)):
        lo, hi = i * len(seeds), (i + 1) * len(seeds)
        arts = {name: {**shared.get(name, {}), **{k: v[lo:hi] for k, v in per_replica.get(name, {}).items()}}
                for name in {**shared, **per_replica}}
        out.append(CellResult(wall_s=wall, device=hist.device, history=hist.take(lo, hi), artifacts=arts,
                              population=len(cells), data_provenance=ds.provenance))
    return out


def _diagnostics(model: Population, ds: Dataset, d: Diagnostics) -> tuple[dict[str, dict], dict[str, dict]]:
    """2-D extras as artifacts: (arrays shared by all replicas, arrays with a leading replica dimension)."""
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
