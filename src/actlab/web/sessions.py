"""Live trainings for the explorer: a small population trained in a worker thread, streamed as events.

A session is created by a typed request (`LiveRequest`, every size bounded) and belongs to the client that
created it: only a request carrying its secret token can stream, pause, step or stop it, or see it listed.

A training has one to four *arms*, trained side by side as one population: the arms differ only in their
activation (and its parameters) and init; every arm gets the same data, the same seeds and the same data
order (the paired design of actlab's studies). It runs when its event stream is opened, and streams:

- `start`: the data, the arms (label, colour, replica slice) and the two trace points;
- `epoch`: training and test loss and test accuracy, per replica (the client groups them by arm);
- `surface`: per arm, the decision surface (mean over seeds and the first seed), the first seed's hidden
  space per layer (first two units, with the std of all hidden values), its per-neuron outputs over a coarse
  grid (first two hidden layers, up to 8 units each), its weights for the network diagram, and the signal
  trace (mean |z| and |a| per layer of the two far points, mean over seeds);
- `probe`: per arm, per-layer gradient norm and dead fraction (mean over seeds);
- then `done` (per arm: final test accuracy, mean and 95 % CI over seeds) or `stopped`.

Pause blocks the worker between epochs; a step (while paused) trains one more epoch and sends its state;
stop (a reset, or the client going away) makes the worker raise at its next epoch. At most `max_trainings`
sessions exist at once; more are refused (429).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from actlab import data
from actlab.analysis.stats import mean_ci
from actlab.catalog import activations, palette
from actlab.catalog.activations import Activation
from actlab.errors import ActlabError
from actlab.jsonsafe import clean
from actlab.nn.models import ModelConfig, build
from actlab.training import adversarial, probes
from actlab.training.loop import TrainConfig, train
from actlab.training.probes import far_points

# The explorer's datasets (Playground's five) and the actlab source behind each.
DATASETS = {"moons": "moons", "circles": "circles", "xor": "xor_noisy", "spirals": "spirals", "blobs": "gaussian"}
GAN_DATASETS = ("ring", "grid")  # the GAN's mixtures (actlab.data.mixtures)
GAN_POINTS, GAN_SHOWN = 4000, 500  # a live GAN's training points; samples of each arm's first seed drawn per update
MAX_DEPTH, MAX_WIDTH, MAX_EPOCHS, MAX_POINTS, MAX_SEEDS, MAX_ARMS = 6, 64, 2000, 1000, 16, 4
SURFACE_CELLS = 48  # the decision surface is a SURFACE_CELLS² grid over the data range ± 0.5
NEURON_CELLS = 24  # the per-neuron heat maps are a coarser NEURON_CELLS² grid over the same range
NEURON_LAYERS, NEURON_UNITS = 2, 8  # heat maps of the first two hidden layers, up to 8 units each
DIAGRAM_UNITS = 8  # the network diagram draws up to 8 units per layer
INITS = Literal["default", "kaiming_normal", "lecun_normal", "xavier_normal", "orthogonal"]
# Playground's input features of a 2-D point (x₁, x₂ standardised): the network sees the chosen ones, in this order
FEATURES: dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = {
    "x1": ("X₁", lambda x: x[:, 0]), "x2": ("X₂", lambda x: x[:, 1]),
    "x1^2": ("X₁²", lambda x: x[:, 0] ** 2), "x2^2": ("X₂²", lambda x: x[:, 1] ** 2),
    "x1x2": ("X₁X₂", lambda x: x[:, 0] * x[:, 1]),
    "sin_x1": ("sin(X₁)", lambda x: torch.sin(x[:, 0])), "sin_x2": ("sin(X₂)", lambda x: torch.sin(x[:, 1]))}
Feature = Literal["x1", "x2", "x1^2", "x2^2", "x1x2", "sin_x1", "sin_x2"]
# Each dataset's settings that show its point (a form's defaults when the dataset is picked): its own noise, and
# Adam for the spirals (SGD at lr 0.05 stays far below it there in 300 epochs: tested); the GAN's, gan-modes' made
# smaller
PRESETS: dict[str, dict[str, Any]] = {
    "moons": {"noise": 0.2, "optimizer": "sgd", "lr": 0.05}, "circles": {"noise": 0.1, "optimizer": "sgd", "lr": 0.05},
    "xor": {"noise": 0.1, "optimizer": "sgd", "lr": 0.05}, "blobs": {"noise": 1.0, "optimizer": "sgd", "lr": 0.05},
    "spirals": {"noise": 0.05, "optimizer": "adam", "lr": 0.01},
    "ring": {"optimizer": "adam", "lr": 0.001}, "grid": {"optimizer": "adam", "lr": 0.001}}
UPDATES = 100  # about this many epoch events per training, whatever its length
SEND_EVERY_S = 1.0  # and one at least this often (seconds) when epochs are long
PENDING_TTL_S = 30.0  # a session whose stream is never opened is dropped after this long


_NAME = re.compile(r"^[A-Za-z0-9_\- ]{1,40}$")


def _catalog_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("must be a catalog activation name (letters, digits, '_', '-'); the explorer takes no "
                         "import paths")
    return v


CatalogName = Annotated[str, AfterValidator(_catalog_name)]


def lookup(name: str) -> Activation:
    """The catalog entry for `name`; an unknown name's message lists the catalog (no import-path hint)."""
    try:
        return activations.get(_catalog_name(name))
    except ActlabError as e:
        raise ActlabError(str(e).split("; or give an import path")[0]) from None


def _few(v: dict[str, float]) -> dict[str, float]:
    if len(v) > 4:
        raise ValueError("at most 4 activation parameters")
    return v


Params = Annotated[dict[str, float], AfterValidator(_few)]


def _distinct(v: list[str]) -> list[str]:
    if len(set(v)) < len(v):
        raise ValueError("each feature at most once")
    return v


def featurize(x: torch.Tensor, names: list[str]) -> torch.Tensor:
    """The chosen input features of 2-D points x (N, 2), as columns in the order given: (N, len(names))."""
    return torch.stack([FEATURES[n][1](x) for n in names], 1)


class Arm(BaseModel):
    """One arm of a side-by-side training: an activation (with its parameters) and an init."""

    model_config = ConfigDict(extra="forbid")
    activation: CatalogName
    activation_params: Params = {}
    init: INITS | None = None  # None: the request's init


class LiveRequest(BaseModel):
    """A live training: Playground-sized, every size bounded."""

    model_config = ConfigDict(extra="forbid")
    model: Literal["classifier", "gan"] = "classifier"  # gan: the arms are the discriminator's activations
    dataset: Literal["moons", "circles", "xor", "spirals", "blobs", "ring", "grid"] = "moons"
    gan_output: Literal["tanh", "identity"] = "tanh"  # a GAN generator's output activation
    noise: Annotated[float | None, Field(ge=0, le=2)] = None  # None: the dataset's own (PRESETS)
    points: Annotated[int, Field(ge=20, le=MAX_POINTS)] = 400  # train + test
    train_fraction: Annotated[float, Field(ge=0.1, le=0.9)] = 0.75  # Playground's ratio of training to test data
    activation: CatalogName = "relu"  # the single arm, when `arms` is empty
    activation_params: Params = {}
    arms: Annotated[list[Arm], Field(max_length=MAX_ARMS)] = []  # 1-4 arms side by side; empty: `activation` alone
    depth: Annotated[int, Field(ge=1, le=MAX_DEPTH)] = 2  # hidden layers (when `widths` is not given)
    width: Annotated[int, Field(ge=1, le=MAX_WIDTH)] = 8  # units per hidden layer (when `widths` is not given)
    widths: Annotated[list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]] | None,
                      Field(min_length=1, max_length=MAX_DEPTH)] = None  # units per hidden layer, one by one
    features: Annotated[list[Feature], Field(min_length=1, max_length=len(FEATURES)),
                        AfterValidator(_distinct)] = ["x1", "x2"]  # the network's inputs (a classifier's)
    init: INITS = "default"
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: Annotated[float, Field(gt=0, le=10)] = 0.05
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 0.0  # L2 regularisation
    batch_size: Annotated[int, Field(ge=1, le=MAX_POINTS)] = 32
    epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 300
    seeds: Annotated[int, Field(ge=1, le=MAX_SEEDS)] = 4  # replicas per arm, seeds 0..n-1, trained as one population

    def hidden(self) -> list[int]:
        """The hidden layers' widths: `widths`, or `depth` layers of `width` units."""
        return list(self.widths) if self.widths is not None else [self.width] * self.depth

    def noise_level(self) -> float:
        """The noise asked for, or the dataset's own."""
        return self.noise if self.noise is not None else PRESETS[self.dataset]["noise"]

    def arm_list(self) -> list[Arm]:
        """The arms, each with its init filled in."""
        arms = self.arms or [Arm(activation=self.activation, activation_params=self.activation_params)]
        return [a.model_copy(update={"init": a.init or self.init}) for a in arms]


def arm_label(arm: Arm, arms: list[Arm]) -> str:
    """A short label: the activation, its parameters if the arms differ in them, the init if the arms differ in it."""
    label = arm.activation
    if arm.activation_params:
        label += " (" + ", ".join(f"{k}={v:g}" for k, v in sorted(arm.activation_params.items())) + ")"
    if len({a.init for a in arms}) > 1:
        label += f" + {arm.init}"
    return label


def _clean(a: Any) -> Any:
    """Arrays and floats as JSON-safe lists (NaN and inf become None), rounded to 5 significant digits."""
    return clean(a, sig=5)


class _Stopped(Exception):
    """Raised inside the training loop to end a stopped session."""


def _grid(lo: np.ndarray, hi: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """A cells × cells grid over the box [lo, hi] (x then y)."""
    return np.linspace(lo[0], hi[0], cells), np.linspace(lo[1], hi[1], cells)


def _diagram(model: Any, rows: list[int]) -> list[list[Any]]:
    """Per arm (its first replica, row index), each weight layer's matrix restricted to the first DIAGRAM_UNITS
    units on either side, (in, out)."""
    out = []
    for r in rows:
        out.append([_clean(layer.weight[r, :DIAGRAM_UNITS, :DIAGRAM_UNITS].detach().numpy())
                    for layer in model.weight_layers()])
    return out


def _wait(running: threading.Event, stop: threading.Event, take_step: Callable[[], bool]) -> bool:
    """Paused: wait between epochs until resumed or stopped; True when the step button let one more epoch run."""
    while not running.is_set() and not stop.is_set():
        if take_step():
            return True
        running.wait(0.05)
    return False


def live_data(req: LiveRequest) -> tuple[data.Dataset, data.Dataset]:
    """A classifier's data: the 2-D points (what the views draw) and the same points as the network's input
    features (what it trains on)."""
    ds = data.load(DATASETS[req.dataset], n=req.points, noise=req.noise_level(),
                   test_size=round(1 - req.train_fraction, 6))
    return ds, replace(ds, x_train=featurize(ds.x_train, req.features), x_test=featurize(ds.x_test, req.features))


def _points(ds: data.Dataset) -> dict[str, Any]:
    return {"train": _clean(ds.x_train.numpy()), "train_y": ds.y_train.tolist(), "test": _clean(ds.x_test.numpy()),
            "test_y": ds.y_test.tolist()}


def _gan_data(req: LiveRequest) -> data.Dataset:
    return data.load(req.dataset, n=GAN_POINTS, seed=0)


def _gan_params(arm: Arm) -> dict[str, float]:
    """A discriminator arm's activation parameters: Leaky ReLU's slope 0.2 unless set (the GAN model's default)."""
    return arm.activation_params or ({"alpha": 0.2} if arm.activation == "leaky_relu" else {})


def _gan_labels(arms: list[Arm]) -> list[str]:
    return [f"D {a.activation}" + (f" ({', '.join(f'{k}={v:g}' for k, v in sorted(p.items()))})" if p else "")
            for a in arms for p in [_gan_params(a)]]


def _network(req: LiveRequest, ds: data.Dataset) -> dict[str, Any]:
    """A classifier's layer widths (inputs = its features, hidden, outputs) and its inputs' names."""
    return {"widths": [len(req.features), *req.hidden(), 1 if ds.task == "binary" else ds.n_classes],
            "features": [FEATURES[f][0] for f in req.features]}


def _gan_start(req: LiveRequest, ds: data.Dataset) -> dict[str, Any]:
    """What a live GAN draws from the start: its training points (the first 1,000) and the mixture's modes."""
    return {"kind": "gan", "train": _clean(ds.x_train[:1000].numpy()), "modes": ds.provenance["modes"],
            "sigma": ds.provenance["sigma"]}


def preview(req: LiveRequest) -> dict[str, Any]:
    """What the live view draws before Start: the data as the training will see it, the arms' labels and colours
    and the network's layer widths (a request `check` has passed). The training's own start event carries the same."""
    arms = req.arm_list()
    gan = req.model == "gan"
    ds = _gan_data(req) if gan else live_data(req)[0]
    labels = _gan_labels(arms) if gan else [arm_label(a, arms) for a in arms]
    colors = palette.series_colors(labels)
    shown = [{"label": lab, "color": colors[lab]} for lab in labels]
    if gan:
        return {**_gan_start(req, ds), "arms": shown}
    return {"kind": "classifier", **_points(ds), "arms": shown, **_network(req, ds), "noise": req.noise_level()}


def train_gan_live(req: LiveRequest, emit: Callable[[str, dict], None], stop: threading.Event,
                   running: threading.Event, take_step: Callable[[], bool] = lambda: False) -> None:
    """A live GAN (model='gan'): one generator per seed and arm against a discriminator whose activation is the
    arm's, on the ring or the grid; after every update the first seed's samples over the modes and, per replica,
    the modes covered and the high-quality share (actlab.training.adversarial). Pause and step as `train_live`."""
    ds = _gan_data(req)
    arms = req.arm_list()
    members = [ModelConfig(kind="gan", widths=req.hidden(), latent=8,
                           output_activation=None if req.gan_output == "identity" else req.gan_output,
                           discriminator_activation=a.activation, discriminator_activation_params=_gan_params(a))
               for a in arms]
    seeds = list(range(req.seeds))
    model = build(members, ds.input_shape, ds.task, ds.n_classes, seeds)
    groups = [(start, stop_) for _, start, stop_ in model.groups]
    every = max(1, req.epochs // UPDATES)
    tcfg = TrainConfig(epochs=req.epochs, batch_size=req.batch_size, optimizer=req.optimizer, lr=req.lr,
                       betas=(0.5, 0.999), weight_decay=req.weight_decay, eval_train=False, device="cpu")
    labels = _gan_labels(arms)
    colors = palette.series_colors(labels)
    emit("start", {**_gan_start(req, ds), "seeds": seeds, "epochs": req.epochs, "output": req.gan_output,
                   "arms": [{"label": lab, "color": colors[lab], "activation": a.activation,
                             "params": a.activation_params, "start": g[0], "stop": g[1]}
                            for lab, a, g in zip(labels, arms, groups, strict=True)]})
    state = {"sent": 0, "stepped": False}

    def send(epoch: int, h: Any) -> None:
        recs = [r for r in h.probes if "modes_covered" in r.extra_stats and r.epoch > state["sent"]]
        if not recs:
            return
        pts = adversarial.samples(model, GAN_SHOWN)
        emit("gan", {"epochs": [r.epoch for r in recs],
                     "modes": [_clean(r.extra_stats["modes_covered"][1][:, 0]) for r in recs],
                     "high_quality": [_clean(r.extra_stats["high_quality"][1][:, 0]) for r in recs],
                     "d_loss": _clean(h.batch_loss[:, state["sent"]:epoch].T),
                     "samples": [_clean(pts[s]) for s, _ in groups]})
        state["sent"] = epoch

    def on_epoch(epoch: int, h: Any) -> None:
        if stop.is_set():
            raise _Stopped
        if epoch % every == 0 or epoch == req.epochs or state["stepped"] or not running.is_set():
            send(epoch, h)
        state["stepped"] = False
        if not running.is_set() and epoch < req.epochs:
            state["stepped"] = _wait(running, stop, take_step)
        if stop.is_set():
            raise _Stopped

    try:
        h = adversarial.train_gan(model, ds, tcfg, on_epoch=on_epoch)
    except _Stopped:
        emit("stopped", {"epoch": state["sent"]})
        return
    final = h.probes[-1].extra_stats
    results = []
    for lab, (s, e) in zip(labels, groups, strict=True):
        k = len(ds.provenance["modes"])
        modes = mean_ci(final["modes_covered"][1][s:e, 0], bounds=(0.0, k))
        hq = mean_ci(final["high_quality"][1][s:e, 0], bounds=(0.0, 1.0))
        results.append({"label": lab, "modes": _clean(modes.mean), "lo": _clean(modes.lo), "hi": _clean(modes.hi),
                        "n": modes.n, "high_quality": _clean(hq.mean),
                        "diverged": int((h.diverged_epoch[s:e] > 0).sum())})
    emit("done", {"epoch": req.epochs, "arms": results, "wall_s": round(h.wall_time_s, 2),
                  "modes_total": len(ds.provenance["modes"]), "diverged": sum(r["diverged"] for r in results)})


def train_live(req: LiveRequest, emit: Callable[[str, dict], None], stop: threading.Event,
               running: threading.Event, take_step: Callable[[], bool] = lambda: False) -> None:
    """Run one live training, calling emit(event, data) as it goes; returns when done or stopped.

    While `running` is clear the worker waits between epochs; `take_step()` returning True lets exactly one
    more epoch run, whose state is then sent in full. A GAN (model='gan') runs `train_gan_live`.
    """
    if req.model == "gan":
        train_gan_live(req, emit, stop, running, take_step)
        return
    ds, dsf = live_data(req)
    arms = req.arm_list()
    hidden, feats = req.hidden(), req.features
    members = [ModelConfig(widths=hidden, activation=a.activation, activation_params=a.activation_params,
                           init=a.init) for a in arms]
    seeds = list(range(req.seeds))
    model = build(members, dsf.input_shape, dsf.task, dsf.n_classes, seeds)
    groups = [(start, stop_) for _, start, stop_ in model.groups]
    firsts = [start for start, _ in groups]  # each arm's first seed: the replica its single-seed views show
    every = max(1, req.epochs // UPDATES)
    probe_every = max(every, req.epochs // 20)
    tcfg = TrainConfig(epochs=req.epochs, batch_size=req.batch_size, optimizer=req.optimizer, lr=req.lr,
                       weight_decay=req.weight_decay, eval_train=True, device="cpu", probe_size=256,
                       probe_epochs=sorted({0, *range(probe_every, req.epochs + 1, probe_every), req.epochs}))
    pts = ds.x_train  # the surfaces and heat maps are drawn over the plane of the 2-D points, whatever the features
    step = float((pts.max(0).values - pts.min(0).values).max() + 1.0) / SURFACE_CELLS
    box_lo, box_hi = pts.min(0).values.numpy() - 0.5, pts.max(0).values.numpy() + 0.5
    ngx, ngy = _grid(box_lo, box_hi, NEURON_CELLS)
    neuron_pts = featurize(torch.tensor(np.stack(np.meshgrid(ngx, ngy), -1).reshape(-1, 2), dtype=pts.dtype), feats)
    trace_pts = far_points(ds)
    labels = [arm_label(a, arms) for a in arms]
    colors = palette.series_colors(labels)
    emit("start", {**_points(ds), "seeds": seeds, "epochs": req.epochs,
                   "arms": [{"label": lab, "color": colors[lab], "activation": a.activation, "init": a.init,
                             "params": a.activation_params, "start": g[0], "stop": g[1]}
                            for lab, a, g in zip(labels, arms, groups, strict=True)],
                   **_network(req, ds), "trace_points": _clean(trace_pts.numpy())})
    sent = {"epoch": 0, "probes": 0}

    def per_arm(a: np.ndarray) -> list[Any]:
        """Rows of a (M, ...) array averaged over each arm's seeds (non-finite values left out)."""
        with np.errstate(all="ignore"):
            return [_clean(np.nanmean(a[s:e], 0)) for s, e in groups]

    def surface(epoch: int) -> None:
        s = probes.decision_surface(model, pts, step=step, margin=0.5, groups=len(arms), keep=1,
                                    forward=lambda p: model(featurize(p, feats))[..., 0])
        snap = probes.hidden_snapshot(model, dsf.x_test, layers=tuple(range(1, len(hidden) + 1)))
        trace = probes.signal_trace(model, featurize(trace_pts, feats))
        was, tr = model.training, []
        model.eval()
        with torch.no_grad():
            model(neuron_pts, trace=tr)
        model.train(was)
        neurons = [[_clean(np.moveaxis(tr[k][2][r, :, :NEURON_UNITS, 0].numpy().reshape(NEURON_CELLS, NEURON_CELLS, -1),
                                       -1, 0)) for k in range(min(NEURON_LAYERS, len(hidden)))] for r in firsts]
        emit("surface", {
            "epoch": epoch, "gx": _clean(s.gx), "gy": _clean(s.gy),
            "mean": [_clean(m) for m in s.mean], "first": [_clean(k[0]) for k in s.kept],
            "agreement": [_clean(a) for a in s.agreement],
            "hidden": [[{"points": _clean(v["points"][r]), "std": _clean(v["std"][r])} for v in snap.values()]
                       for r in firsts],
            "hidden_y": ds.y_test.tolist(),
            "neurons": {"gx": _clean(ngx), "gy": _clean(ngy), "maps": neurons},
            "weights": _diagram(model, firsts),
            "trace": {k: per_arm(v) for k, v in trace.items()}})

    def send_probes(h: Any) -> None:
        for rec in h.probes[sent["probes"]:]:
            emit("probe", {"epoch": rec.epoch, "layers": rec.weight_layers,
                           "grad_norm": per_arm(rec.weight_stats["grad_norm"]),
                           "dead_fraction": per_arm(rec.activation_stats["dead_fraction"]),
                           "hidden": rec.activation_layers})
        sent["probes"] = len(h.probes)

    def send(epoch: int, h: Any, with_surface: bool) -> None:
        lo = sent["epoch"]
        if epoch > lo:
            emit("epoch", {"epochs": list(range(lo + 1, epoch + 1)), "loss": _clean(h.train_loss[:, lo:epoch]),
                           "test_loss": _clean(h.test_loss[:, lo:epoch]), "test_acc": _clean(h.test_acc[:, lo:epoch])})
            sent["epoch"] = epoch
        send_probes(h)
        if with_surface:
            surface(epoch)

    state = {"stepped": False, "surfaced": 0, "sent_at": time.monotonic(), "surfaced_at": time.monotonic()}

    def on_epoch(epoch: int, h: Any) -> None:
        if stop.is_set():
            raise _Stopped
        now = time.monotonic()  # long epochs (a big population, a busy machine): an update at least every second
        regular = epoch % every == 0 or epoch == req.epochs or now - state["sent_at"] >= SEND_EVERY_S
        if regular or state["stepped"]:
            full = (state["stepped"] or epoch % (every * 5) == 0 or epoch == req.epochs
                    or now - state["surfaced_at"] >= 5 * SEND_EVERY_S)
            send(epoch, h, full)
            state["sent_at"] = time.monotonic()
            if full:
                state["surfaced"], state["surfaced_at"] = epoch, state["sent_at"]
        state["stepped"] = False
        if not running.is_set() and epoch < req.epochs:
            if sent["epoch"] < epoch or state["surfaced"] < epoch:  # paused mid-interval: show where it stands
                send(epoch, h, True)
                state["surfaced"] = epoch
            state["stepped"] = _wait(running, stop, take_step)
        if stop.is_set():
            raise _Stopped

    surface(0)
    try:
        h = train(model, dsf, tcfg, on_epoch=on_epoch)
    except _Stopped:
        emit("stopped", {"epoch": sent["epoch"]})
        return
    results = []
    for lab, (s, e) in zip(labels, groups, strict=True):
        acc = mean_ci(h.final_test_acc[s:e], bounds=(0.0, 1.0))
        results.append({"label": lab, "test_acc": _clean(acc.mean), "lo": _clean(acc.lo), "hi": _clean(acc.hi),
                        "n": acc.n, "diverged": int((h.diverged_epoch[s:e] > 0).sum())})
    emit("done", {"epoch": req.epochs, "arms": results, "wall_s": round(h.wall_time_s, 2),
                  **{k: results[0][k] for k in ("test_acc", "lo", "hi", "n")},
                  "diverged": sum(r["diverged"] for r in results)})


def warm_up() -> None:
    """Train two tiny live populations (SGD and Adam, a few epochs) so that the first Start a user clicks does not
    pay for the process's cold start (scikit-learn's import, PyTorch's first kernels: about 2 s here)."""
    never, go = threading.Event(), threading.Event()
    go.set()
    for optimizer in ("sgd", "adam"):
        train_live(LiveRequest(points=40, epochs=2, seeds=1, optimizer=optimizer), lambda *_: None, never, go)


def check(req: LiveRequest) -> LiveRequest:
    """The request with its arms' names resolved in the catalog, or one ActlabError naming what is wrong."""
    if (req.model == "gan") != (req.dataset in GAN_DATASETS):
        raise ActlabError(f"dataset={req.dataset!r} with model={req.model!r}: a gan learns the mixtures "
                          f"{', '.join(GAN_DATASETS)}; a classifier the others ({', '.join(DATASETS)})")
    if req.model == "gan" and req.features != ["x1", "x2"]:
        raise ActlabError(f"features={req.features}: a GAN's discriminator sees the 2-D samples themselves; "
                          "features are for a classifier (leave them at x1, x2)")
    arms = []
    for i, arm in enumerate(req.arm_list()):
        act = lookup(arm.activation)  # a catalog name only: the request model admits no import path
        where = f"arms[{i}]: " if req.arms else ""
        if act.vector:
            raise ActlabError(f"{where}activation {act.name!r} is vector-valued (output only); choose an "
                              "element-wise one")
        if act.gated and req.model == "gan":
            raise ActlabError(f"{where}activation {act.name!r} is gated; a GAN's discriminator takes an "
                              "element-wise one (relu, leaky_relu, ...)")
        if act.gated:
            raise ActlabError(f"{where}activation {act.name!r} is gated (φ(xW)·xV needs a second projection): the "
                              f"live view trains MLPs; models that take gated entries: "
                              f"{', '.join(activations.GATED_MODELS)}. Choose an element-wise one")
        try:
            act.resolve(**arm.activation_params)  # unknown or out-of-range parameters: one clear message
        except ActlabError as e:
            raise ActlabError(f"{where}{e}") from None
        arms.append(arm.model_copy(update={"activation": act.name}))
    seen: dict[tuple, int] = {}
    for i, a in enumerate(arms):
        key = (a.activation, tuple(sorted(a.activation_params.items())), a.init)
        if key in seen:
            raise ActlabError(f"arms[{seen[key]}] and arms[{i}] are the same ({arm_label(a, [a])}, init "
                              f"{a.init}); the arms of a comparison must differ in activation, its parameters "
                              "or init")
        seen[key] = i
    update = {"arms": arms} if req.arms else {"activation": arms[0].activation}
    return req.model_copy(update=update)


@dataclass
class Session:
    id: str
    request: LiveRequest
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))  # the creating client's secret
    created: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)
    running: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    queue: asyncio.Queue | None = None
    state: str = "pending"  # pending, running, paused, done, stopped, failed
    epoch: int = 0
    steps: int = 0  # epochs asked for by the step button while paused, not yet run

    def take_step(self) -> bool:
        """Consume one asked-for step (the worker's side of the step button)."""
        if self.steps > 0:
            self.steps -= 1
            return True
        return False


class LiveManager:
    """The live sessions of one server: at most `max_trainings` at once."""

    def __init__(self, max_trainings: int = 2):
        self.max = max_trainings
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()  # the server is shutting down: event streams end

    def _expire(self) -> None:
        now = time.monotonic()
        for s in list(self.sessions.values()):
            if s.state == "pending" and now - s.created > PENDING_TTL_S:
                self.sessions.pop(s.id, None)

    def create(self, req: LiveRequest) -> Session:
        req = check(req)
        with self.lock:
            self._expire()
            if len(self.sessions) >= self.max:
                raise Busy(f"{len(self.sessions)} live trainings are running, the most this server allows "
                           f"(--max-trainings {self.max}); stop one or wait")
            s = Session(uuid.uuid4().hex[:12], req)
            self.sessions[s.id] = s
        return s

    def get(self, sid: str, token: str) -> Session:
        """The session `sid` if `token` is its secret; KeyError otherwise (another client's session looks
        exactly like a missing one)."""
        s = self.sessions.get(sid)
        if s is None or not secrets.compare_digest(s.token.encode(), token.encode()):
            raise KeyError(sid)
        return s

    def owned(self, token: str) -> list[Session]:
        """The sessions whose secret is `token` (what one client may see)."""
        return [s for s in self.sessions.values() if token and secrets.compare_digest(s.token.encode(), token.encode())]

    def start(self, s: Session, loop: asyncio.AbstractEventLoop) -> None:
        """Start the worker; its events go to the session's queue on `loop`."""
        s.queue = asyncio.Queue()
        s.running.set()
        s.state = "running"

        def emit(event: str, data: dict) -> None:
            if event == "epoch":
                s.epoch = data["epochs"][-1]
            loop.call_soon_threadsafe(s.queue.put_nowait, (event, data))

        def work() -> None:
            try:
                train_live(s.request, emit, s.stop, s.running, s.take_step)
                s.state = "stopped" if s.stop.is_set() else "done"
            except Exception as e:  # noqa: BLE001 - a failed training is reported to its client, not raised
                s.state = "failed"
                emit("error", {"detail": str(e)})
            finally:
                with self.lock:
                    self.sessions.pop(s.id, None)

        s.thread = threading.Thread(target=work, name=f"live-{s.id}", daemon=True)
        s.thread.start()

    def stop_all(self, wait_s: float = 30.0) -> None:
        """Stop every training and wait (up to `wait_s`) for its worker to end at its epoch's end: a worker killed
        inside a PyTorch call as the process exits aborts it ("terminate called without an active exception")."""
        live = list(self.sessions.values())
        for s in live:
            s.stop.set()
            s.running.set()
        end = time.monotonic() + wait_s
        for s in live:
            if s.thread is not None:
                s.thread.join(max(0.0, end - time.monotonic()))


class Busy(Exception):
    """Too many live trainings at once."""
