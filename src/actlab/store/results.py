"""Reading a run back from its store: the cells with what varies between them, metrics, probes, artifacts.

Everything the report, the explorer and the run summary show comes through here, from the SQLite store
and its artifact files alone (DESIGN §6, STYLE 9), never from in-memory training state. Readers open the
store read-only; the runner hands its own open store in (`Run(run_dir, store)`) to summarise what it wrote.

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
from actlab.store.writer import DB_NAME, METRIC_COLUMNS, Store

# what a population may mix (nn.models.MIXABLE, tested equal) and the output it ends in: the store reads names only
SERIES_FIELDS = ("activation", "activation_params", "init", "init_gain", "weight_variance", "bias_init", "bias_std",
                 "gate_activation", "cell_activation", "recurrent_init", "forget_bias", "discriminator_activation",
                 "discriminator_activation_params", "output_activation", "kind")
RECURRENT_KINDS = ("rnn", "gru", "lstm")  # nn.recurrent.KINDS (the store reads names only)
# an LSTM's slots in Greff et al. 2017's words, for a series label: (field, default, short name, variant name)
_SLOTS = (("gate_activation", "sigmoid", "gate", ""), ("activation", "tanh", "candidate", "NIAF"),
          ("cell_activation", "tanh", "cell", "NOAF"))
DEPTH_FIELDS = ("depth", "widths")
PROBE_SCORES = ("modes_covered", "high_quality")  # a GAN's, recorded every epoch as probes of layer "samples"


@dataclass(frozen=True)
class Score:
    """What ranks a cell's replicas: the column read per replica (`Run.replicas`), its name in prose, whether lower
    is better, and the range its values cannot leave."""

    column: str
    name: str
    lower: bool
    bounds: tuple[float, float] | None
    spec: str = ".3f"  # how its numbers are written


def likelihood(cell: CellData) -> str:
    """A VAE cell's likelihood as trained (its 'auto' resolved from the data, recorded in the provenance)."""
    return (cell.data_provenance or {}).get("likelihood") or cell.model.get("likelihood", "auto")


def score_of(cell: CellData) -> Score:
    """A classifier's final test accuracy; a regression's final test MSE; a VAE's negative ELBO on the test set
    (nats per example; with a Gaussian likelihood a density, so of either sign); a GAN's modes covered at the end."""
    kind, task = cell.model.get("kind"), (cell.data_provenance or {}).get("task")
    if kind == "vae":
        bern = likelihood(cell) == "bernoulli"
        return Score("final_test_loss", "test negative ELBO (nats)", True, (0.0, float("inf")) if bern else None,
                     ".4g")
    if kind == "gan":
        modes = len((cell.data_provenance or {}).get("modes") or []) or float("inf")
        return Score("modes_covered", "modes covered", False, (0.0, modes), ".3g")
    if task == "regression":
        return Score("final_test_loss", "test MSE", True, (0.0, float("inf")), ".3g")
    return Score("final_test_acc", "test accuracy", False, (0.0, 1.0))
METRICS = METRIC_COLUMNS  # the per-epoch metrics of every replica


def depth_of(model: dict[str, Any]) -> int:
    """Hidden layers of an MLP (len(widths) when given), or blocks after the stem of a ConvNet."""
    return len(model["widths"]) if model.get("kind", "mlp") == "mlp" and model.get("widths") else int(model["depth"])


def activation_label(model: dict[str, Any]) -> str:
    """'relu', or 'elu(alpha=0.5)' when parameters are set. A recurrent net: its kind and each slot that differs
    from the usual one, e.g. 'lstm', 'lstm (candidate identity: NIAF)', 'gru (gate hard_sigmoid)', 'rnn relu
    (identity init)'."""
    params = model.get("activation_params") or {}
    inner = ", ".join(f"{k}={v:g}" for k, v in sorted(params.items()))
    act = f"{model['activation']}({inner})" if inner else str(model["activation"])
    kind = model.get("kind")
    if kind == "gan":  # 'G relu → tanh, D leaky_relu(alpha=0.2)'
        d_params = model.get("discriminator_activation_params") or {}
        d_inner = ", ".join(f"{k}={v:g}" for k, v in sorted(d_params.items()))
        d = (f"{model['discriminator_activation']}" + (f"({d_inner})" if d_inner else "")
             if model.get("discriminator_activation") else "leaky_relu(alpha=0.2)")  # the usual one, not written
        return f"G {act} → {model.get('output_activation') or 'identity'}, D {d}"
    if kind not in RECURRENT_KINDS:
        return act
    if kind == "rnn":
        head, parts = f"rnn {act}", []
    else:
        head = kind
        parts = [f"{short} {model['activation'] if field == 'activation' else model.get(field)}"
                 + (f": {variant}" if variant and (model.get(field) if field != "activation" else act) == "identity"
                    else "")
                 for field, default, short, variant in _SLOTS
                 if field in model and (act if field == "activation" else model[field]) not in (default, None)]
    if model.get("recurrent_init", "default") != "default":
        parts.append(f"{model['recurrent_init']} init")
    if kind == "lstm" and model.get("forget_bias", 1.0) != 1.0:
        parts.append(f"forget bias {model['forget_bias']}")
    return head + (f" ({', '.join(parts)})" if parts else "")


def grid_pairs(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """Grid values as (field, value) pairs; a table value (`model = {activation = ...}`) gives one pair per key,
    a dotted key its last part."""
    out = []
    for key, v in values.items():
        if isinstance(v, dict) and key.split(".")[-1] == "data":  # a dataset with its options: data=adding, T=50
            out += [("data", v.get("name"))] * ("name" in v) + [(k, x) for k, x in (v.get("options") or {}).items()]
            out += [(k, x) for k, x in v.items() if k not in ("name", "options")]
        elif isinstance(v, dict):
            out += [(k, x) for k, x in v.items()]
        else:
            out.append((key.split(".")[-1], v))
    return out


def show_value(v: Any) -> str:
    """A grid value as text: lists joined by '-' ([16, 32] -> '16-32')."""
    return "-".join(map(str, v)) if isinstance(v, list) else str(v)


def cell_label(values: dict[str, Any]) -> str:
    """A cell's name from its grid values, e.g. 'activation=relu, widths=16-32'; 'base' without a grid."""
    return ", ".join(f"{k}={show_value(v)}" for k, v in grid_pairs(values)) or "base"


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
    data_provenance: dict[str, Any] | None = None  # the dataset's generator and parameters, or file and MD5
    engine_note: str | None = None  # trained on torch under engine "auto": why the fused kernel did not

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
        """A reader of `run_dir`'s store, opened read-only."""
        return cls(Path(run_dir), Store(run_dir, read_only=True))

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
                            c["device"], c["error"], c["started"], c["finished"], data_provenance=c["data_provenance"],
                            engine_note=c["engine_note"])
            if self.kind == "train":
                pairs = grid_pairs(cell.values)
                cell.series = activation_label(cell.model)
                cell.depth = depth_of(cell.model)
                cell.context = ", ".join(f"{k}={show_value(v)}" for k, v in pairs
                                         if k not in SERIES_FIELDS and k not in DEPTH_FIELDS)
            cells.append(cell)
        return cells

    def datasets(self) -> list[dict[str, Any]]:
        """The distinct dataset provenances of the run's finished cells (most studies have one)."""
        seen: dict[str, dict[str, Any]] = {}
        for c in self.cells:
            if c.data_provenance is not None:
                seen.setdefault(json.dumps(c.data_provenance, sort_keys=True), c.data_provenance)
        return list(seen.values())

    @property
    def generative(self) -> str | None:
        """'vae' or 'gan' when the run's cells train that generative kind (their score is not an accuracy)."""
        kinds = {c.model.get("kind") for c in self.cells} if self.kind == "train" else set()
        return next((k for k in ("vae", "gan") if k in kinds), None)

    @property
    def regression(self) -> bool:
        """Whether the run's cells trained on a regression task (the adding problem): its score is the test
        MSE, lower better, and it has no accuracy."""
        return self.kind == "train" and any((c.data_provenance or {}).get("task") == "regression" for c in self.cells)

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
        """seed -> the replica's value (NaN for a diverged replica's missing value). A fresh dict each call. A GAN's
        PROBE_SCORES are read at the last epoch that recorded them."""
        key = ("replicas", cell.key, column)
        if key not in self._memo:
            if column in PROBE_SCORES:
                rows = self.store.query("SELECT seed, value FROM probes WHERE cell = ? AND stat = ? AND epoch = "
                                        "(SELECT MAX(epoch) FROM probes WHERE cell = ? AND stat = ?) ORDER BY seed",
                                        (cell.key, column, cell.key, column))
            else:
                rows = self.store.query(f"SELECT seed, {column} FROM replicas WHERE cell = ? ORDER BY seed",
                                        (cell.key,))
            try:
                self._memo[key] = {int(s): np.nan if v is None else float(v) for s, v in rows}
            except (TypeError, ValueError):
                raise ActlabError(f"{self.store.path}: cell {cell.label!r} holds a non-numeric {column} or seed: "
                                  "the store is damaged or not actlab's") from None
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
        """One metric read from the store (uncached): NaN where not recorded."""
        seeds, hist = self.store.history(cell.key, (name,))
        if not seeds:
            return [], np.zeros((0, 0))
        values = hist[name]
        if values is None:  # a metric this cell did not record (e.g. per-batch gradients)
            e = max((a.shape[1] for a in self.store.history(cell.key, ("test_loss",))[1].values() if a is not None),
                    default=0)
            values = np.full((len(seeds), e), np.nan)
        return seeds, values

    def final(self, cell: CellData, name: str) -> tuple[list[int], np.ndarray]:
        """(seeds, values (seeds,)): one metric at the cell's last epoch, NaN where not recorded
        (`metric(cell, name)[1][:, -1]`)."""
        seeds, values = self.metric(cell, name)
        return seeds, values[:, -1] if values.size else np.full(len(seeds), np.nan)

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
        """Every simulation row, cell by cell in row order (read once)."""
        if "sim_rows" not in self._memo:
            self._memo["sim_rows"] = [json.loads(r[0]) for r in
                                      self.store.query("SELECT row FROM sim_rows ORDER BY cell, idx")]
        return [dict(r) for r in self._memo["sim_rows"]]

    def grid_columns(self, cell: CellData) -> dict[str, Any]:
        """A cell's grid values as columns: a table value's fields as KEY.FIELD, at any depth
        (data.options.normalize); lists as text ("[16, 32]")."""
        grid: dict[str, Any] = {}

        def put(key: str, v: Any) -> None:
            if isinstance(v, dict) and v:
                for f, val in v.items():
                    put(f"{key}.{f}", val)
            else:
                grid[key] = json.dumps(v) if isinstance(v, list | dict) else v

        for k, v in cell.values.items():
            put(k, v)
        return grid

    def cell_head(self, cell: CellData) -> dict[str, Any]:
        """The columns that name a cell in every exported table: `cell` (its label), `cell_index`, `cell_key` (the
        store's hash), then its grid values."""
        return {"cell": cell.label, "cell_index": cell.index, "cell_key": cell.key, **self.grid_columns(cell)}

    def tidy(self) -> list[dict[str, Any]]:
        """The run as a tidy table: for a training study one row per replica (the cell's columns, `cell_head`:
        label, index, key and every grid value, then its status, device, the seed and the replica's final
        metrics; `diverged_epoch` missing for a replica that never diverged); for a simulation one row per result
        row with its cell's columns."""
        out = []
        sims: dict[str, list[dict[str, Any]]] = {}
        if self.kind != "train":
            for key, row in self.store.query("SELECT cell, row FROM sim_rows ORDER BY cell, idx"):
                sims.setdefault(key, []).append(json.loads(row))
        for c in self.cells:
            head = {**self.cell_head(c), "status": c.status, "device": c.device}
            if self.kind == "train":
                rows = self.store.query("SELECT seed, diverged_epoch, best_test_acc, final_test_acc, final_test_loss, "
                                        "final_train_loss FROM replicas WHERE cell = ? ORDER BY seed", (c.key,))
                for seed, div, best, final, loss, tr in rows:
                    out.append({**head, "seed": seed, "diverged_epoch": div or None, "best_test_acc": best,
                                "final_test_acc": final, "final_test_loss": loss, "final_train_loss": tr})
            else:
                out += [{**head, **{k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()}}
                        for r in sims.get(c.key, [])]
        return out

    def tidy_epochs(self) -> list[dict[str, Any]]:
        """The long tidy table of a training study: one row per replica and epoch (the cell's columns,
        `cell_head`, then seed, epoch and every per-epoch metric; missing where not recorded)."""
        out = []
        for c in self.cells if self.kind == "train" else []:
            head = self.cell_head(c)
            for _, seed, epoch, *values in self.store.metric_rows(c.key):
                out.append({**head, "seed": seed, "epoch": epoch, **dict(zip(METRIC_COLUMNS, values, strict=True))})
        return out

    def to_pandas(self, per: str = "replica"):  # noqa: ANN201 - a pandas.DataFrame; pandas is optional
        """`tidy()` (per="replica") or `tidy_epochs()` (per="epoch") as a pandas DataFrame, missing values as
        NaN / <NA> (pandas is optional: `pip install pandas`)."""
        try:
            import pandas as pd  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise ActlabError("Run.to_pandas() needs pandas (pip install pandas); Run.tidy() gives the same rows "
                              "as a list of dicts, and `actlab export` writes them as tidy.csv and "
                              "tidy.parquet") from None
        return pd.DataFrame(self._rows(per))

    to_frame = to_pandas  # the earlier name

    def to_polars(self, per: str = "replica"):  # noqa: ANN201 - a polars.DataFrame; polars is optional
        """`tidy()` (per="replica") or `tidy_epochs()` (per="epoch") as a polars DataFrame (polars is optional:
        `pip install polars`)."""
        try:
            import polars as pl  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise ActlabError("Run.to_polars() needs polars (pip install polars); Run.to_pandas() and Run.tidy() "
                              "give the same rows") from None
        rows = self._rows(per)
        return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()

    def _rows(self, per: str) -> list[dict[str, Any]]:
        if per not in ("replica", "epoch"):
            raise ActlabError(f"per={per!r}: one row per 'replica' (the final metrics) or per 'epoch' (every epoch "
                              "of every replica)")
        return self.tidy() if per == "replica" else self.tidy_epochs()


def run_dirs(root: str | Path, max_depth: int = 1) -> list[Path]:
    """Run directories (holding the store) under `root`, 1 to `max_depth` levels down, sorted; links that
    lead outside `root` are left out."""
    root = Path(root).resolve()
    if not root.is_dir():
        return []
    out = []
    for depth in range(1, max_depth + 1):
        out += [p.parent for p in root.glob("/".join(["*"] * depth) + f"/{DB_NAME}")
                if p.resolve().is_relative_to(root)]
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
