"""What a population needs in memory, estimated before anything trains, and the run refused (one error naming the
populations, the estimate and the limit) when it would not fit."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
import torch

from actlab.data.record import Dataset
from actlab.errors import ActlabError
from actlab.nn.models import out_features
from actlab.studies.config import Cell
from actlab.studies.datacache import DataCache
from actlab.training import probes


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
