"""Study files: TOML validated by pydantic, `--set` overrides, and the grid's expansion into cells.

A study file has a base configuration (`data`, `model`, `train`, or a `simulation`), `seeds`, and a
`grid`: each key is a path into the configuration and each value a list of values. A key is a dotted
path (`model.activation`, `train.lr`, `data.options.noise`) or a bare field name that only one section
has (`activation`, `epochs`, `depth`; `dataset` is `data.name`). A value may be a table that sets several
fields at once, so linked choices stay together:

    [grid]
    model = [{activation = "sigmoid", init = "lecun_normal"}, {activation = "relu", init = "kaiming_normal"}]
    widths = [[16], [16, 32]]

The cells are the Cartesian product of the grid's lists, in file order. Every error is reported at once,
each with its dotted path, the value given and what is allowed; unknown keys are rejected.
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import itertools
import json
import re
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from actlab import data
from actlab.analysis.published import parse_key
from actlab.catalog.activations import Activation
from actlab.catalog.guide import ARCHITECTURES
from actlab.errors import ActlabError, closest, excerpt
from actlab.nn.models import ModelConfig
from actlab.store.results import cell_label, depth_of
from actlab.studies import simulations
from actlab.studies.library import shipped_path
from actlab.training.loop import TrainConfig

SECTIONS = ("data", "model", "train", "simulation")
ALIASES = {"dataset": "data.name"}


class DataSpec(BaseModel):
    """A data source and its options (see `actlab data list`)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(description="data source (actlab data list)")] = "moons"
    options: Annotated[dict[str, Any], Field(description="the source's options, e.g. {noise = 0.3}")] = {}


class SimulationSpec(BaseModel):
    """A simulation (see `actlab.studies.simulations`) and its parameters."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(description="one of the classic simulations")]
    params: Annotated[dict[str, Any], Field(description="the simulation's parameters (its function's "
                                                        "arguments)")] = {}


class Diagnostics(BaseModel):
    """What to record beyond the metrics. 2-D extras apply to 2-D inputs only."""

    model_config = ConfigDict(extra="forbid")
    decision_surface: Annotated[bool, Field(description="the output on a grid over the data: per cell the mean over "
                                                        "seeds, the seeds' agreement, and a few seeds' own")] = True
    surface_seeds: Annotated[int, Strict(), Field(
        ge=0, le=1000, description="individual decision surfaces stored per cell (its first seeds; the mean and the "
                                   "agreement use every seed)")] = 10
    surface_step: Annotated[float, Field(gt=0, description="grid step of the decision surface, in input "
                                                           "units")] = 0.025
    surface_margin: Annotated[float, Field(ge=0, description="the grid spans the data range ± this")] = 0.5
    signal_trace: Annotated[bool, Field(description="mean |z| and |a| per layer of the moons protocol's two far "
                                                    "points")] = True
    hidden_snapshot: Annotated[bool, Field(description="the test set in hidden layers 1 and 2")] = True


class Published(BaseModel):
    """A number the study's source published, to be shown beside actlab's estimate with a verdict."""

    model_config = ConfigDict(extra="forbid")
    key: Annotated[str, Field(description="which reproduced estimate it compares with, e.g. 'ratio@depth=5' (the "
                                          "study's findings name them)")]
    quantity: Annotated[str, Field(description="what was published, in words")]
    value: Annotated[float, Field(description="the published value")]
    unit: Annotated[str, Field(description="its unit, e.g. 'epochs', '×', ''")] = ""
    source: Annotated[str, Field(description="which seed document, and which table or printout")]
    single_run: Annotated[bool, Field(description="one run (compared with the 95 % prediction interval of one more "
                                                  "run from actlab's seeds) or a mean (compared with actlab's "
                                                  "interval)")]
    runs: Annotated[int | None, Strict(), Field(ge=1, description="a published mean: how many runs it averages "
                                                                  "(widens the comparison by its own sampling "
                                                                  "error)")] = None
    spread: Annotated[float | None, Field(ge=0, description="the standard deviation over runs the source gives beside "
                                                            "a mean, where it gives one (an ordering's judge reads "
                                                            "which published differences its own noise resolves)"
                                           )] = None
    resolution: Annotated[float | None, Field(gt=0, description="the rounding of the published value (0.01 for a "
                                                                "printed '0.46'): the verdict allows half of "
                                                                "it")] = None
    comparable: Annotated[bool, Field(description="false where actlab's run differs from the source's (other "
                                                  "data, say); `why` says how")] = True
    why: Annotated[str, Field(description="why it is not comparable")] = ""
    exact: Annotated[bool, Field(description="actlab reruns the source's own run (its initial weights), so its "
                                             "number must match the published one within `resolution`")] = False


CLAIM_METRICS = ("final_test_acc", "best_test_acc", "final_test_loss", "solved", "diverged", "modes_covered",
                 "high_quality")


class Claim(BaseModel):
    """One claim of the sources' selection guide that this study decides, written before the run: which arm the
    claim favours, over which arm, by which metric, in which cells. The verdict (actlab.analysis.guide) comes from
    the store: supported, contradicted or not decided."""

    model_config = ConfigDict(extra="forbid")
    guide: Annotated[str, Field(description="the guide's row it tests: an architecture of `actlab activations "
                                            "guide` (e.g. 'RNN/LSTM') or 'rule of thumb'")]
    claim: Annotated[str, Field(min_length=1, description="the guide's words")]
    metric: Annotated[Literal[CLAIM_METRICS], Field(  # type: ignore[valid-type]
        description="final_test_acc, best_test_acc (higher is better), final_test_loss (lower; a vae's test "
                    "negative ELBO), solved (the adding problem: MSE below a tenth of guessing's; higher), diverged "
                    "(lower), modes_covered and high_quality (a gan's, at the last epoch; higher)")]
    better: Annotated[str, Field(min_length=1, description="the arm the claim favours: model fields, e.g. "
                                                           "'gate_activation=sigmoid' or 'activation=selu'")]
    than: Annotated[str, Field(min_length=1, description="the arm it is claimed better than, e.g. "
                                                         "'gate_activation=relu'")]
    where: Annotated[str, Field(description="which cells: 'depth=16', 'data=adding', ... (empty: every group of "
                                            "cells where both arms ran)")] = ""

    @field_validator("better", "than", "where")
    @classmethod
    def _selector(cls, v: str) -> str:
        parts = [p.strip() for p in v.split(",") if p.strip()]
        bad = [p for p in parts if "=" not in p or not p.split("=", 1)[0].strip()]
        if bad:
            raise ValueError(f"{v!r}: each part must be field=value, comma-separated (e.g. 'activation=relu, "
                             f"depth=16'); got {bad}")
        return ", ".join(parts)

    @model_validator(mode="after")
    def _known_row(self) -> Claim:
        rows = [r[0] for r in ARCHITECTURES] + ["rule of thumb"]
        if self.guide not in rows:
            raise ValueError(f"guide={self.guide!r} is not a row of the selection guide; allowed: {', '.join(rows)}")
        if self.better == self.than:
            raise ValueError(f"better and than are the same arm ({self.better!r})")
        return self


class StudyConfig(BaseModel):
    """One study: a base configuration, a grid, and seeds. Every field documents itself (`actlab studies
    show NAME`)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, pattern=r"\S", description="the study's name; its default run "
                                                                         "directory is runs/NAME (made safe)")]
    description: Annotated[str, Field(description="one line on what the study shows")] = ""
    note: Annotated[str, Field(description="said in the output and the report, e.g. what a CPU profile "
                                           "changed")] = ""
    seeds: Annotated[Annotated[int, Strict(), Field(ge=1, le=100_000)] | list[Annotated[int, Strict(), Field(ge=0)]],
                     Field(description="replicas per cell: a count n (seeds 0..n-1) or a list of seeds")] = 10
    data: Annotated[DataSpec, Field(description="the data source")] = DataSpec()
    model: Annotated[ModelConfig, Field(description="the network")] = ModelConfig()
    train: Annotated[TrainConfig, Field(description="how to train")] = TrainConfig()
    simulation: Annotated[SimulationSpec | None, Field(description="a simulation instead of training")] = None
    diagnostics: Annotated[Diagnostics, Field(description="what to record beyond the metrics")] = Diagnostics()
    grid: Annotated[dict[str, list[Any]], Field(description="field path -> list of values; the cells are their "
                                                            "Cartesian product")] = {}
    group_cells: Annotated[bool, Field(description="cells differing only in activation/init train as one "
                                                   "population")] = True
    source: Annotated[str, Field(description="the seed document the study reproduces, e.g. 'seed 003'; empty: "
                                             "actlab's own study or variant")] = ""
    published: Annotated[list[Published], Field(description="the source's published numbers, shown beside "
                                                             "actlab's with a verdict")] = []
    claims: Annotated[list[Claim], Field(description="the selection guide's claims this study decides, each with "
                                                     "its arms, metric and cells, fixed before the run")] = []
    include: Annotated[list[str], Field(description="a suite: shipped studies run one after another")] = []
    overrides: Annotated[dict[str, list[str]], Field(description="a suite: study name -> [\"path=value\", ...] "
                                                                 "applied to that member")] = {}

    # The grid's expansion, keyed by the configuration it was made from: `load_study` validates by expanding,
    # and the runner reuses that expansion instead of making it again.
    _cells: tuple[str, list[Cell]] | None = PrivateAttr(default=None)
    # what `--set` changed in the source's protocol (`protocol_changes`), kept with the run's provenance
    _protocol_changes: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the cache (it holds functions, and is rebuilt on first use): configs cross to Ray
        workers and other processes."""
        state = super().__getstate__()
        state["__pydantic_private__"] = {**(state.get("__pydantic_private__") or {}), "_cells": None}
        return state

    def __eq__(self, other: object) -> bool:
        """Equal configurations are equal studies, whatever either has cached."""
        return isinstance(other, StudyConfig) and self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]  mutable, like every pydantic model

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int]) -> int | list[int]:
        if isinstance(v, list):
            if not v:
                raise ValueError("an empty list of seeds gives no replicas; allowed: a count n >= 1 or a non-empty "
                                 "list of distinct seeds")
            repeated = sorted({x for x in v if v.count(x) > 1})
            if repeated:
                raise ValueError(f"seeds {repeated} are repeated; allowed: distinct seeds (a repeated seed is the "
                                 "same replica twice)")
        return v

    @model_validator(mode="after")
    def _gan_data(self) -> StudyConfig:
        """A GAN's scores are defined by its mixture's modes: refused at load on any other data, not when its cell
        runs."""
        if self.simulation is None and not self.include and self.model.kind == "gan":
            try:
                name = data.get_source(self.data.name).name
            except ActlabError:
                return self  # an unknown name gets its own message when the data is loaded
            if name not in ("ring", "grid"):
                raise ValueError(f"model.kind='gan' learns the 2-D mixtures 'ring' and 'grid' (their modes define its "
                                 f"scores); data.name={self.data.name!r}")
        return self

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def kind(self) -> Literal["train", "simulation", "suite"]:
        return "suite" if self.include else "simulation" if self.simulation else "train"


class Cell(BaseModel):
    """One fully specified configuration except its seed, with the grid values that made it."""

    index: int
    label: str
    values: dict[str, Any]  # grid path -> value
    config: StudyConfig  # the base with this cell's values applied (grid emptied)

    @property
    def key(self) -> str:
        """Hash of the canonical configuration, seeds included: the cell's identity in the store."""
        doc = self.config.model_dump(mode="json", exclude={"name", "description", "note", "grid", "include",
                                                           "overrides", "group_cells", "published", "source",
                                                           "claims"})
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def documented(study: StudyConfig) -> list[tuple[str, Any, str]]:
    """(dotted path, value, description) of every field of the resolved study, sections expanded: the config
    is its own help (`actlab studies show NAME`). A suite lists its own fields; a simulation study leaves out
    the model, train and diagnostics sections it does not use."""
    skip = {"model", "train", "diagnostics", "data"} if study.kind == "simulation" else set()
    if study.kind == "suite":
        skip |= {"model", "train", "diagnostics", "data", "simulation", "seeds", "grid", "group_cells"}
    out: list[tuple[str, Any, str]] = []

    def walk(model: BaseModel, prefix: str) -> None:
        for name, info in type(model).model_fields.items():
            if not prefix and name in skip:
                continue
            value = getattr(model, name)
            if isinstance(value, Activation):  # an entry is shown as the configuration writes it: its name (a slot
                value = model.model_dump(mode="json").get(name, value.name)  # left at its usual choice: that one)
            if isinstance(value, BaseModel):
                walk(value, f"{prefix}{name}.")
            else:
                out.append((prefix + name, value, info.description or ""))

    walk(study, "")
    return out


# ---------------------------------------------------------------------------------- loading


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ActlabError(f"study file {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise ActlabError(f"study file {path} is not UTF-8 text (byte {e.object[e.start:e.start + 1]!r} at offset "
                          f"{e.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ActlabError(f"study file {path} is not valid TOML: {e}") from None


_TYPE_TAG = re.compile(r"^(constrained-|function-|json-or-python|list\[|dict\[|tuple\[|literal\[|nullable|"
                       r"(int|float|str|bool|none|dict|list|tuple)$)")


def _keys_at(path: list[str]) -> list[str]:
    """The field names a study allows at a dotted path ([] for the top level, ["train"] for train.*); [] where
    the path leads to no section."""
    model: Any = StudyConfig
    for part in path:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        kinds = [a for a in (field.annotation, *typing.get_args(field.annotation))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if not kinds:
            return []
        model = kinds[0]
    return list(getattr(model, "model_fields", {}))


def format_errors(err: ValidationError, prefix: str = "") -> list[str]:
    """One line per field: dotted path, the value given, and what is allowed. pydantic's union-member tags
    are dropped from paths, and a field that failed every member of a union keeps the first member's message."""
    lines: dict[str, str] = {}
    for e in err.errors():
        parts = [str(p) for p in (prefix, *e["loc"]) if p != "" and not _TYPE_TAG.match(str(p))]
        loc = ".".join(parts)
        given = excerpt(e.get("input"))  # a long value is shown as an excerpt
        if e["type"] == "extra_forbidden":
            near = closest(parts[-1], _keys_at([p for p in parts[:-1] if not p.isdigit()])) if parts else []
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            lines.setdefault(loc, f"{loc}: unknown key (given {given}){hint}")
        else:
            msg = e["msg"].replace("Value error, ", "")  # a message that quotes the value already says it once
            whole = isinstance(e.get("input"), dict)  # a check of the whole table names its fields itself
            lines.setdefault(loc, (f"{loc}: " if loc else "") + msg + ("" if whole or given in msg else
                                                                       f" (given {given})"))
    return list(lines.values())


def parse_value(text: str) -> Any:
    """A `--set` value: TOML (numbers, booleans, "strings", [lists], {tables}); a bare word is a string;
    a bracketed list of bare words is a list of strings ([relu,gelu])."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    t = text.strip()
    if t.startswith("[") and t.endswith("]"):
        return [parse_value(item) for item in _split_top(t[1:-1])] if t[1:-1].strip() else []
    return t


def _split_top(s: str) -> list[str]:
    """Split on commas outside brackets and braces."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def grid_writes(key: str, values: list[Any]) -> set[tuple[str, ...]]:
    """The study paths a grid key sets: its own, or, when its values are tables, its path plus each table field."""
    path = tuple(resolve_path(key))
    fields = {f for v in values if isinstance(v, dict) for f in v}
    return {path + (f,) for f in fields} if fields else {path}


def grid_collisions(grid: dict[str, list[Any]]) -> list[tuple[str, str, str]]:
    """Pairs of grid keys that set the same field (key, other key, the field's dotted path): a cell's label
    would show one value while the config holds the other."""
    writes = {}
    for k, v in grid.items():
        try:
            writes[k] = grid_writes(k, v)
        except ActlabError:  # an unknown key: reported by the expansion
            continue
    out = []
    keys = list(writes)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            for pa in writes[a]:
                for pb in writes[b]:
                    n = min(len(pa), len(pb))
                    if pa[:n] == pb[:n]:
                        out.append((a, b, ".".join(pa if len(pa) >= len(pb) else pb)))
    return out


def apply_sets(doc: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """`path=value` overrides into a raw study dict (a copy); `grid.x` sets the grid's list for x, and replaces
    a grid key of the study that sets the same field (e.g. `grid.activation` replaces moons' `grid.model`
    tables, which pair each activation with its init): the override gives exactly the cells it names, and the
    study's note says what it replaced."""
    doc = copy.deepcopy(doc)
    for item in sets:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise ActlabError(f"--set {item!r} must look like path=value, e.g. train.epochs=20 or "
                              "grid.activation=[relu,gelu]")
        parts = path.strip().split(".")
        if parts[0] == "grid":
            grid = doc.setdefault("grid", {})
            key = ".".join(parts[1:])
            grid[key] = _as_list(parse_value(value))
            for a, b, field in grid_collisions(grid):
                if key in (a, b):
                    other = b if a == key else a
                    del grid[other]
                    doc["note"] = (doc.get("note", "") + f" --set grid.{key} replaced the study's grid.{other} "
                                   f"(it also set {field}).").strip()
            continue
        node = doc
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ActlabError(f"--set {item!r}: {p!r} is not a section")
        node[parts[-1]] = parse_value(value)
    return doc


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def load_study(source: str | Path | dict[str, Any], sets: list[str] | None = None) -> StudyConfig:
    """A validated StudyConfig from a TOML file, a shipped study's name, or a dict, with `--set` overrides."""
    if isinstance(source, dict):
        doc = source
        original: str | Path | dict[str, Any] = doc
    else:
        path = Path(source)
        if not path.exists() and not str(source).endswith(".toml"):
            path = shipped_path(str(source))
        doc = read_toml(path)
        original = path
    if doc.get("include") and sets:  # a suite: --set reaches its members, after each member's own overrides
        doc = _suite_sets(doc, sets)
    else:
        doc = apply_sets(doc, sets or [])
    try:
        study = StudyConfig(**doc)
    except ValidationError as e:
        raise ActlabError(_error_block(doc.get("name", "?"), format_errors(e))) from None
    expand(study)  # validates the grid too: every error at once
    if study.include:
        _check_members(study)
    if sets and not study.include:
        study._protocol_changes = protocol_changes(load_study(original), study)
    return study


def run_dir_name(name: str) -> str:
    """A study name as one safe folder name under runs/: characters other than letters, digits, '.', '_'
    and '-' become '-', and leading or trailing dots and dashes go ('../../etc' -> 'etc')."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-")
    if not safe:
        raise ActlabError(f"study name {name!r} gives no usable run directory name; allowed: letters, digits, "
                          "'.', '_' and '-' (or give --out)")
    return safe


RESERVED = ("actlab.sqlite", "actlab.lock", "artifacts", "figures", "export", "report.html")  # in a run folder
_LOADING: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("actlab_suites_loading", default=())


def _check_members(suite: StudyConfig) -> None:
    """A suite's members each get a folder of their own inside the suite's (`run_dir_name` of their name): a
    member whose name is a path or one of actlab's own file names, two members that would share a folder, and
    a suite that includes itself are refused here, at load."""
    if suite.name in _LOADING.get():
        raise ActlabError(f"suite {suite.name!r} includes itself (through {' -> '.join(_LOADING.get())}); a suite's "
                          "members must be studies or other suites")
    token = _LOADING.set((*_LOADING.get(), suite.name))
    try:
        _check_member_names(suite)
    finally:
        _LOADING.reset(token)


def _check_member_names(suite: StudyConfig) -> None:
    seen: dict[str, str] = {}
    for entry in suite.include:
        member = load_study(entry, suite.overrides.get(entry, []))
        if "/" in member.name or "\\" in member.name or member.name.strip() in (".", ".."):
            raise ActlabError(f"suite {suite.name!r}: member {entry!r} is named {member.name!r}, a path; its run "
                              "would be written outside the suite's folder. Allowed: a name of letters, digits, "
                              "'.', '_', '-' and spaces")
        folder = run_dir_name(member.name)
        if folder in RESERVED:
            raise ActlabError(f"suite {suite.name!r}: member {entry!r} is named {member.name!r}, a name actlab uses "
                              f"for its own files in a run folder ({', '.join(RESERVED)}); give it another name")
        if folder in seen:
            raise ActlabError(f"suite {suite.name!r}: members {seen[folder]!r} and {entry!r} would share the folder "
                              f"{folder!r}; give them different names")
        seen[folder] = entry


# Fields that are actlab's own choices, not the source's protocol: changing them leaves the published numbers
# comparable (the number of seeds is actlab's sample size; the engine, device and probes do not change training).
NOT_PROTOCOL = ("name", "description", "note", "seeds", "group_cells", "source", "published", "claims", "include",
                "overrides",
                "grid", "diagnostics", "train.device", "train.engine", "train.eval_train", "train.eval_batch_size",
                "train.grad_stats", "train.probe_epochs", "train.probe_size", "train.saturation_threshold",
                "simulation.params.activations")


def _flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):  # an empty table holds no field: it is the same as leaving it out
            out.update(_flat(v, path + "."))
        else:
            out[path] = v
    return out


def _protocol(cell: Cell, selectors: set[str]) -> dict[str, Any]:
    """A cell's protocol fields, flattened: everything but actlab's own choices and the published key's
    selectors (the fields that pick the cell, e.g. its activation)."""
    return _protocol_fields(cell.config, selectors)


def _protocol_fields(cfg: StudyConfig, selectors: set[str] = frozenset()) -> dict[str, Any]:
    """A configuration's protocol fields, flattened; the init as resolved (scheme and gain), so the default
    and the scheme it stands for are one protocol."""
    flat = _flat(cfg.model_dump(mode="json"))
    if cfg.simulation is not None:  # a simulation uses its parameters and seeds only, not model/train/data
        flat = {k: v for k, v in flat.items() if not k.startswith(("model.", "train.", "data."))}
    else:
        try:
            scheme, gain = cfg.model.init_scheme()
            flat.update({"model.init": scheme, "model.init_gain": gain})
        except ActlabError:
            pass
    return {k: v for k, v in flat.items()
            if not any(k == x or k.startswith(x + ".") for x in NOT_PROTOCOL) and k not in selectors}


def _matching(cells: list[Cell], where: dict[str, str]) -> list[Cell]:
    """The cells a published key selects, as `actlab.analysis.published` reads them (a model field, or depth)."""
    def value(c: Cell, k: str) -> Any:
        model = c.config.model.model_dump(mode="json")
        return depth_of(model) if k == "depth" else model.get(k)

    return [c for c in cells if all(str(value(c, k)) == v for k, v in where.items())]


def protocol_changes(protocol: StudyConfig, run: StudyConfig) -> dict[str, Any]:
    """What a run's `--set` overrides changed in the source's protocol: {"study": {path: [the study's, this
    run's]}, "published": {entry index: {path: [...]}}} for the fields of the published entries' cells (a
    simulation's cells are paired in order). Empty where nothing of the protocol changed."""
    base, mine = expand(protocol), expand(run)
    out: dict[str, Any] = {"study": {}, "published": {}}

    def diff(pa: dict[str, Any], pb: dict[str, Any]) -> dict[str, list]:
        return {k: [pa.get(k), pb.get(k)] for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)}

    out["study"].update(diff(_protocol_fields(protocol), _protocol_fields(run)))  # the base, outside the grid
    for i, p in enumerate(run.published):
        _, where = parse_key(p.key)
        selectors = {f"model.{k}" for k in where}
        ours = base if run.simulation is not None else _matching(base, where)
        theirs = mine if run.simulation is not None else _matching(mine, where)
        shipped = [_protocol(c, selectors) for c in ours]
        changed: dict[str, list] = {}
        # every cell of this run that the entry pools must be one of the shipped protocol's cells: an added grid
        # value (grid.lr=[0.05, 3.0]) or a changed one is a change, whatever its place in the grid
        for c in theirs:
            pc = _protocol(c, selectors)
            if shipped and pc not in shipped:
                nearest = min(shipped, key=lambda s: len(diff(s, pc)))
                changed.update(diff(nearest, pc))
        if changed:
            out["published"][str(i)] = changed
            out["study"].update(changed)
    return out if out["study"] or out["published"] else {}


def _suite_sets(doc: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """A suite's `--set` overrides appended to every member that has the field (after the member's own); a
    field that no member has is an error."""
    doc = copy.deepcopy(doc)
    overrides = doc.setdefault("overrides", {})
    used: set[str] = set()
    for name in doc.get("include", []):
        member = load_study(name, overrides.get(name, []))
        dumped = member.model_dump(mode="json")
        mine = [item for item in sets if _has_path(dumped, item.partition("=")[0].strip(), member)]
        used |= set(mine)
        if mine:
            overrides[name] = [*overrides.get(name, []), *mine]
    unused = [item for item in sets if item not in used]
    if unused:
        raise ActlabError(f"--set {unused[0]!r}: no member of suite {doc.get('name', '?')!r} has that field; members: "
                          f"{', '.join(doc.get('include', []))}")
    return doc


def _has_path(dumped: dict[str, Any], path: str, member: StudyConfig) -> bool:
    """Whether a `--set` path names a field of this member (grid.* applies to members that train)."""
    parts = path.split(".")
    if parts[0] == "grid":
        return member.kind == "train"
    node: Any = dumped
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _error_block(name: str, lines: list[str]) -> str:
    return f"study {name!r} has {len(lines)} error{'s' * (len(lines) != 1)}:\n" + "\n".join(f"  - {x}" for x in lines)


# ---------------------------------------------------------------------------------- the grid


def resolve_path(key: str) -> list[str]:
    """A grid key as a path into the study dict: dotted, a section, or a bare field unique to one section."""
    key = ALIASES.get(key, key)
    parts = key.split(".")
    if parts[0] in SECTIONS or parts[0] == "seeds":
        return parts
    owners = [s for s, cls in (("data", DataSpec), ("model", ModelConfig), ("train", TrainConfig))
              if parts[0] in cls.model_fields]
    if len(owners) == 1:
        return [owners[0], *parts]
    if not owners:
        known = sorted({*DataSpec.model_fields, *ModelConfig.model_fields, *TrainConfig.model_fields, *ALIASES})
        raise ActlabError(f"grid key {key!r} is not a field of data, model or train; known fields: {', '.join(known)}")
    raise ActlabError(f"grid key {key!r} is ambiguous ({', '.join(owners)}); write it as a dotted path")


def _set_path(doc: dict[str, Any], path: list[str], value: Any) -> None:
    node = doc
    for p in path[:-1]:
        node = node.setdefault(p, {})
    current = node.get(path[-1], {})
    if isinstance(value, dict) and isinstance(current, dict):
        node[path[-1]] = {**current, **value}  # a table value sets several fields of a section
    else:
        node[path[-1]] = value


def _check_names(cfg: StudyConfig) -> list[str]:
    """Names that only a lookup can check: the activation, the data source, the simulation."""
    out = []
    if cfg.simulation is not None:
        if cfg.simulation.name not in simulations.SIMULATIONS:
            out.append(f"simulation.name: {cfg.simulation.name!r} is unknown; allowed: "
                       f"{', '.join(simulations.SIMULATIONS)}")
        return out
    for path, check in (("model.activation", cfg.model.checked_activation),  # vector-valued, parameters, transform
                        ("data.name", lambda: data.get_source(cfg.data.name))):
        try:
            check()
        except ActlabError as e:
            out.append(f"{path}: {e}")
    return out


def expand(study: StudyConfig) -> list[Cell]:
    """The study's cells: the Cartesian product of its grid, each validated (all errors reported at once).
    Expanded once per configuration: a second call returns the same cells."""
    if study.kind == "suite":
        return []
    key = study.model_dump_json()
    if study._cells is None or study._cells[0] != key:
        study._cells = (key, _expand(study))
    return list(study._cells[1])


def _expand(study: StudyConfig) -> list[Cell]:
    base = study.model_dump(exclude={"grid"})
    keys = list(study.grid)
    errors: list[str] = []
    paths = {}
    for k in keys:
        try:
            paths[k] = resolve_path(k)
        except ActlabError as e:
            errors.append(f"grid.{k}: {e}")
        if not study.grid[k]:
            errors.append(f"grid.{k}: an empty list gives no cells; allowed: at least one value")
        shown = [json.dumps(v, sort_keys=True) for v in study.grid[k]]
        repeated = sorted({s for s in shown if shown.count(s) > 1})
        if repeated:
            errors.append(f"grid.{k}: {', '.join(repeated)} repeated; allowed: distinct values (a repeated value "
                          "is the same cell twice)")
    errors += [f"grid.{a} and grid.{b} both set {field}: a cell's label would show one value while it trains "
               "with the other; keep one of them" for a, b, field in grid_collisions(study.grid)]
    if errors:
        raise ActlabError(_error_block(study.name, errors))
    cells = []
    for i, combo in enumerate(itertools.product(*(study.grid[k] for k in keys))):
        doc = copy.deepcopy(base)
        values = dict(zip(keys, combo, strict=True))
        for k, v in values.items():
            _set_path(doc, paths[k], v)
        try:
            cfg = StudyConfig(**doc)
        except ValidationError as e:
            where = ", ".join(f"grid.{k}={excerpt(v)}" for k, v in values.items())
            errors += [f"{line} [cell {where}]" for line in format_errors(e)]
            continue
        where = "" if not values else " [cell " + ", ".join(f"grid.{k}={excerpt(v)}" for k, v in values.items()) + "]"
        errors += [f"{line}{where}" for line in _check_names(cfg)]
        cells.append(Cell(index=i, label=cell_label(values), values=values, config=cfg))
    if errors:
        raise ActlabError(_error_block(study.name, list(dict.fromkeys(errors))))
    return cells
