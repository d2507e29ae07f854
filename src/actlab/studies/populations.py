"""One population at a time: cells grouped by tensor shapes, trained together, and their 2-D diagnostics.
(What a run prepares before training lives beside it: `datacache`, `memory`, `solve`.)

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

from actlab.data.record import Dataset
from actlab.nn.models import PopGAN, PopTransformer, Population, PopVAE, build
from actlab.store.writer import CellResult
from actlab.studies import simulations
from actlab.studies.config import Cell, Diagnostics
from actlab.studies.datacache import DataCache
from actlab.training import adversarial, fused, probes
from actlab.training.loop import evaluate_terms, train

EpochCallback = Callable[[int, int], None]  # (epoch, total epochs)
SAMPLES_KEPT = 1000  # of each GAN replica's evaluation samples, stored for figures


def populations(cells: list[Cell], enabled: bool = True) -> list[list[Cell]]:
    """Cells grouped into populations: MLP cells whose configurations differ only in the model's MIXABLE
    fields (activation, init) share every tensor shape (`ModelConfig.shape_key`), data and training, and
    train as one population; so do transformer cells (their FFN's gated-ness and width are part of the shape
    key: the element-wise arms form one population, the gated ones another), and recurrent cells of one kind and
shape whose slots differ. ConvNet cells stay apart:
    splitting conv maps between activations made them slower (benchmarks/RESULTS.md)."""
    if not enabled:
        return [[c] for c in cells]
    groups: dict[str, list[Cell]] = {}
    for c in cells:
        if c.config.simulation is not None or c.config.model.kind == "convnet":
            key = c.key
        else:
            rest = c.config.model_dump(mode="json", exclude={"name", "description", "note", "grid", "include",
                                                              "overrides", "published", "source", "claims",
                                                              "model"})
            key = json.dumps([rest, c.config.model.shape_key()], sort_keys=True)
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def run_population(cells: list[Cell], datasets: DataCache | None = None, on_epoch: EpochCallback | None = None,
                   note: Callable[[str], None] | None = None) -> list[CellResult]:
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
    epochs = None if on_epoch is None else (lambda e, h: on_epoch(e, cfg.train.epochs))
    if isinstance(model, PopGAN):
        hist = adversarial.train_gan(model, ds, cfg.train, on_epoch=epochs)
    else:
        hist = train(model, ds, cfg.train, on_epoch=epochs, note=note)
    # a population the fused kernel trained draws its decision surface with the kernel's forward pass too
    surface = cfg.diagnostics.decision_surface and ds.input_shape == (2,) and ds.task == "binary"
    fast = (fused.surface_forward(model, cfg.train, ds.task, ds.n_classes) if surface and hist.engine == "fused"
            else None)
    shared, per_replica, per_cell = _diagnostics(model, ds, cfg.diagnostics, len(cells), fast)
    if isinstance(model, PopTransformer):  # its own parameter count and the ungated FFN's it is matched with
        shared["parameter_counts"] = {k: np.array(v) for k, v in model.counts.items()}
    wall = (time.perf_counter() - t0) / len(cells)
    out = []
    for i in range(len(cells)):
        lo, hi = i * len(seeds), (i + 1) * len(seeds)
        arts = {name: {**shared.get(name, {}), **{k: v[lo:hi] for k, v in per_replica.get(name, {}).items()},
                       **{k: v[i] for k, v in per_cell.get(name, {}).items()}}
                for name in {**shared, **per_replica, **per_cell}}
        out.append(CellResult(wall_s=wall, device=hist.device if hist.engine == "torch" else f"{hist.device} "
                                                                                             f"({hist.engine} kernel)",
                              history=hist.take(lo, hi, copy=False),
                              artifacts=arts, population=len(cells), engine_note=hist.engine_note,
                              data_provenance={"task": ds.task} | ds.provenance | {"n_classes": ds.n_classes}
                              | ({"likelihood": model.likelihood} if isinstance(model, PopVAE) else {})))
    return out


def _diagnostics(model: Population, ds: Dataset, d: Diagnostics, cells: int,
                 forward: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> tuple[dict[str, dict], dict[str, dict], dict[str, dict]]:
    """2-D extras as artifacts: (arrays shared by all replicas, arrays with a leading replica dimension, arrays
    with a leading cell dimension). `forward` replaces the model's forward pass for the decision surface."""
    shared: dict[str, dict] = {}
    per: dict[str, dict] = {}
    per_cell: dict[str, dict] = {}
    if isinstance(model, PopGAN):  # the generators' final samples over the mixture's modes
        shared["gan_samples"] = {"modes": np.asarray(ds.provenance["modes"]), "sigma": np.array(ds.provenance["sigma"]),
                                 "x_test": ds.x_test.numpy()}
        per["gan_samples"] = {"samples": adversarial.samples(model, SAMPLES_KEPT)}
        return shared, per, per_cell
    if isinstance(model, PopVAE):  # the negative ELBO's two terms on the test set, per replica (nats per example)
        dev = next(model.parameters()).device
        per["elbo_terms"] = {"test": evaluate_terms(model, ds.x_test.to(dev))}
        return shared, per, per_cell
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
        pts = probes.far_points(ds)
        shared["signal_trace"], per["signal_trace"] = {"points": pts.numpy()}, probes.signal_trace(model, pts.to(dev))
    if d.hidden_snapshot:
        snap = probes.hidden_snapshot(model, ds.x_test.to(dev))
        shared["hidden_snapshot"] = {"y": ds.y_test.numpy()}
        per["hidden_snapshot"] = {**{f"{k}_points": v["points"] for k, v in snap.items()},
                                  **{f"{k}_std": v["std"] for k, v in snap.items()}}
    return shared, per, per_cell
