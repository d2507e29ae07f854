"""Reading a run back from its store: the cells with what varies between them, metrics, probes, artifacts.

Everything the report and the explorer show comes through here, from the SQLite store and its artifact
files alone (DESIGN §6, STYLE 9), never from in-memory training state.

Each cell's grid values are split into three roles, by the field they set:
- **series**: the activation and what goes with it (activation_params, init, init_gain, bias_init,
  output_activation): what the study compares, one line per series in a figure;
- **depth**: `depth` or `widths` (depth = the number of hidden layers, or blocks after a ConvNet's stem);
- **context**: everything else (lr, width, dataset, ...). Comparisons between series are made within a
  context at a fixed depth, over the seeds both cells have (the paired design).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from actlab.errors import ActlabError
from actlab.store import DB_NAME, Store

SERIES_FIELDS = ("activation", "activation_params", "init", "init_gain", "bias_init", "output_activation")
DEPTH_FIELDS = ("depth", "widths")
METRICS = ("batch_loss", "batch_acc", "train_loss", "train_acc", "test_loss", "test_acc", "grad_mean")


def depth_of(model: dict[str, Any]) -> int:
    """Hidden layers of an MLP (len(widths) when given), or blocks after the stem of a ConvNet."""
    return len(model["widths"]) if model.get("kind", "mlp") == "mlp" and model.get("widths") else int(model["depth"])


def activation_label(model: dict[str, Any]) -> str:
    """'relu', or 'elu(alpha=0.5)' when parameters are set."""
    params = model.get("activation_params") or {}
    inner = ", ".join(f"{k}={v:g}" for k, v in sorted(params.items()))
    return f"{model['activation']}({inner})" if inner else str(model["activation"])


def _flatten(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """Grid values as (field, value) pairs; a table value (`model = {activation = ...}`) gives one pair per key."""
    out = []
    for key, v in values.items():
        if isinstance(v, dict):
            out += [(k, x) for k, x in v.items()]
        else:
            out.append((key.split(".")[-1], v))
    return out


def _show(v: Any) -> str:
    return "-".join(map(str, v)) if isinstance(v, list) else str(v)


@dataclass
class CellData:
    """One cell as stored, with its series, depth and context (see the module doc)."""

    key: str
    index: int
    label: str
    values: dict[str, Any]
    config: dict[str, Any]
    status: str
    wall_s: float | None
    device: str | None
    error: str | None
    started: float | None
    finished: float | None
    series: str = ""
    depth: int | None = None
    context: str = ""

    @property
    def model(self) -> dict[str, Any]:
        return self.config["model"]


@dataclass
class Run:
    """A run directory's store, read lazily; `close()` (or a with-block) releases the database."""

    dir: Path
    store: Store = field(repr=False)
    # A report reads each cell's replicas and metrics for several figures, tables and findings: read once.
    _memo: dict[tuple, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, run_dir: str | Path) -> Run:
        run_dir = Path(run_dir)
        if not (run_dir / DB_NAME).exists():
            raise ActlabError(f"{run_dir} is not a run directory (no {DB_NAME}); run a study into it first")
        return cls(run_dir, Store(run_dir))

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    @cached_property
    def study(self) -> dict[str, Any]:
        held = self.store.study()
        if held is None:
            raise ActlabError(f"{self.dir} holds no study yet")
        return held

    @property
    def name(self) -> str:
        return self.study["name"]

    @property
    def kind(self) -> str:
        return "simulation" if self.study["config"].get("simulation") else "train"

    @cached_property
    def cells(self) -> list[CellData]:
        cells = []
        for c in self.store.cells():
            cell = CellData(c["key"], c["idx"], c["label"], c["grid_values"], c["config"], c["status"], c["wall_s"],
                            c["device"], c["error"], c["started"], c["finished"])
            if self.kind == "train":
                pairs = _flatten(cell.values)
                cell.series = activation_label(cell.model)
                cell.depth = depth_of(cell.model)
                cell.context = ", ".join(f"{k}={_show(v)}" for k, v in pairs
                                         if k not in SERIES_FIELDS and k not in DEPTH_FIELDS)
            cells.append(cell)
        return cells

    @property
    def done(self) -> list[CellData]:
        return [c for c in self.cells if c.status == "done"]

    @property
    def seeds(self) -> list[int]:
        s = self.study["config"]["seeds"]
        return list(range(s)) if isinstance(s, int) else list(s)

    def series(self) -> list[str]:
        """Series in grid order."""
        return list(dict.fromkeys(c.series for c in self.cells))

    def contexts(self) -> list[str]:
        return list(dict.fromkeys(c.context for c in self.cells))

    def depths(self) -> list[int]:
        return sorted({c.depth for c in self.cells if c.depth is not None})

    # ------------------------------------------------------------------------------- numbers

    def replicas(self, cell: CellData, column: str = "final_test_acc") -> dict[int, float]:
        """seed -> the replica's value (NaN for a diverged replica's missing value). A fresh dict each call."""
        key = ("replicas", cell.key, column)
        if key not in self._memo:
            rows = self.store.query(f"SELECT seed, {column} FROM replicas WHERE cell = ? ORDER BY seed", (cell.key,))
            self._memo[key] = {int(s): np.nan if v is None else float(v) for s, v in rows}
        return dict(self._memo[key])

    def diverged(self, cell: CellData) -> int:
        return self.store.query("SELECT COUNT(*) FROM replicas WHERE cell = ? AND diverged_epoch > 0",
                                (cell.key,))[0][0]

    def metric(self, cell: CellData, name: str) -> tuple[list[int], np.ndarray]:
        """(seeds, values (seeds, epochs)): one metric per replica and epoch, NaN where not recorded."""
        if name not in METRICS:
            raise ActlabError(f"metric {name!r} is unknown; allowed: {', '.join(METRICS)}")
        key = ("metric", cell.key, name)
        if key not in self._memo:
            self._memo[key] = self._metric(cell, name)
        seeds, values = self._memo[key]
        return list(seeds), values.copy()

    def _metric(self, cell: CellData, name: str) -> tuple[list[int], np.ndarray]:
        """One metric read from the store (uncached)."""
        rows = self.store.query(f"SELECT seed, epoch, {name} FROM metrics WHERE cell = ? ORDER BY seed, epoch",
                                (cell.key,))
        if not rows:
            return [], np.zeros((0, 0))
        seeds = sorted({r[0] for r in rows})
        epochs = max(r[1] for r in rows)
        out = np.full((len(seeds), epochs), np.nan)
        pos = {s: i for i, s in enumerate(seeds)}
        for s, e, v in rows:
            if v is not None:
                out[pos[s], e - 1] = v
        return seeds, out

    def probe_epochs(self, cell: CellData) -> list[int]:
        return [r[0] for r in self.store.query("SELECT DISTINCT epoch FROM probes WHERE cell = ? ORDER BY epoch",
                                               (cell.key,))]

    def probe(self, cell: CellData, stat: str, epoch: int) -> tuple[list[str], np.ndarray]:
        """(layer names, values (seeds, layers)) of one probe statistic at one probe epoch."""
        rows = self.store.query("SELECT seed, layer_idx, layer, value FROM probes WHERE cell = ? AND stat = ? "
                                "AND epoch = ? ORDER BY seed, layer_idx", (cell.key, stat, epoch))
        if not rows:
            return [], np.zeros((0, 0))
        seeds = sorted({r[0] for r in rows})
        layers = {r[1]: r[2] for r in rows}
        out = np.full((len(seeds), len(layers)), np.nan)
        pos = {s: i for i, s in enumerate(seeds)}
        for s, li, _, v in rows:
            if v is not None:
                out[pos[s], li] = v
        return [layers[i] for i in sorted(layers)], out

    def artifact(self, cell: CellData, name: str) -> dict[str, np.ndarray] | None:
        return self.store.artifact(cell.key, name)

    def sim_rows(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.store.query("SELECT row FROM sim_rows ORDER BY cell, idx")]


def run_dirs(root: str | Path, max_depth: int = 1) -> list[Path]:
    """Run directories (holding the store) under `root`, 1 to `max_depth` levels down, sorted; links that
    lead outside `root` are left out."""
    root = Path(root).resolve()
    if not root.is_dir():
        return []
    out = []
    for depth in range(1, max_depth + 1):
        out += [p.parent for p in root.glob("/".join(["*"] * depth) + f"/{DB_NAME}") if p.resolve().is_relative_to(root)]
    return sorted(out)


def suite_members(run_dir: str | Path) -> list[Path]:
    """The run directories directly under a suite's directory, in the order their studies were created."""
    created = {}
    for p in run_dirs(run_dir):
        with Run.open(p) as run:
            held = run.store.study()
        if held is not None:  # a store that holds no study yet is no member
            created[p] = held["created"]
    return sorted(created, key=created.__getitem__)
