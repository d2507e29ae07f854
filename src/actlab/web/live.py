"""Live trainings for the explorer: a small population trained in a worker thread, streamed as events.

A session is created by a typed request (`LiveRequest`, every size bounded) and belongs to the client that
created it: only a request carrying its secret token can stream, pause or stop it, or see it listed. It runs
when its event stream is opened, and streams `epoch` (losses and accuracies per seed), `surface` (the decision surface: mean over
seeds and the first seed) and `probe` (per-layer gradient norm and dead fraction, mean over seeds) events,
then `done`. Pause blocks the worker between epochs; stop (a reset, or the client going away) makes the
worker raise at its next epoch. At most `max_trainings` sessions exist at once; more are refused (429).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from actlab import data
from actlab.catalog.activations import Activation, get
from actlab.errors import ActlabError
from actlab.jsonsafe import clean
from actlab.nn.models import ModelConfig, build
from actlab.stats import mean_ci
from actlab.training import probes
from actlab.training.loop import TrainConfig, train

# The explorer's datasets (Playground's five) and the actlab source behind each.
DATASETS = {"moons": "moons", "circles": "circles", "xor": "xor_noisy", "spirals": "spirals", "blobs": "gaussian"}
MAX_DEPTH, MAX_WIDTH, MAX_EPOCHS, MAX_POINTS, MAX_SEEDS = 6, 64, 2000, 1000, 16
SURFACE_CELLS = 48  # the decision surface is a SURFACE_CELLS² grid over the data range ± 0.5
UPDATES = 100  # about this many epoch events per training, whatever its length
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
        return get(_catalog_name(name))
    except ActlabError as e:
        raise ActlabError(str(e).split("; or give an import path")[0]) from None


class LiveRequest(BaseModel):
    """A live training: Playground-sized, every size bounded."""

    model_config = ConfigDict(extra="forbid")
    dataset: Literal["moons", "circles", "xor", "spirals", "blobs"] = "moons"
    noise: Annotated[float, Field(ge=0, le=2)] = 0.2
    points: Annotated[int, Field(ge=20, le=MAX_POINTS)] = 400  # train + test (test is 25 %)
    activation: CatalogName = "relu"
    activation_params: dict[str, float] = {}
    depth: Annotated[int, Field(ge=1, le=MAX_DEPTH)] = 2  # hidden layers
    width: Annotated[int, Field(ge=1, le=MAX_WIDTH)] = 8  # units per hidden layer
    init: Literal["default", "kaiming_normal", "lecun_normal", "xavier_normal", "orthogonal"] = "default"
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: Annotated[float, Field(gt=0, le=10)] = 0.05
    batch_size: Annotated[int, Field(ge=1, le=MAX_POINTS)] = 32
    epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 300
    seeds: Annotated[int, Field(ge=1, le=MAX_SEEDS)] = 4  # replicas, seeds 0..n-1, trained as one population

    @field_validator("activation_params")
    @classmethod
    def _few(cls, v: dict[str, float]) -> dict[str, float]:
        if len(v) > 4:
            raise ValueError("at most 4 activation parameters")
        return v


def _clean(a: Any) -> Any:
    """Arrays and floats as JSON-safe lists (NaN and inf become None), rounded to 5 significant digits."""
    return clean(a, sig=5)


class _Stopped(Exception):
    """Raised inside the training loop to end a stopped session."""


def train_live(req: LiveRequest, emit: Callable[[str, dict], None], stop: threading.Event,
               running: threading.Event) -> None:
    """Run one live training, calling emit(event, data) as it goes; returns when done or stopped."""
    ds = data.load(DATASETS[req.dataset], n=req.points, noise=req.noise)
    cfg = ModelConfig(widths=[req.width] * req.depth, activation=req.activation,
                      activation_params=req.activation_params, init=req.init)
    seeds = list(range(req.seeds))
    model = build(cfg, ds.input_shape, ds.task, ds.n_classes, seeds)
    every = max(1, req.epochs // UPDATES)
    probe_every = max(every, req.epochs // 20)
    tcfg = TrainConfig(epochs=req.epochs, batch_size=req.batch_size, optimizer=req.optimizer, lr=req.lr,
                       eval_train=False, device="cpu", probe_size=256,
                       probe_epochs=sorted({0, *range(probe_every, req.epochs + 1, probe_every), req.epochs}))
    pts = ds.x_train
    step = float((pts.max(0).values - pts.min(0).values).max() + 1.0) / SURFACE_CELLS
    emit("start", {"seeds": seeds, "epochs": req.epochs, "train": _clean(ds.x_train.numpy()),
                   "train_y": ds.y_train.tolist(), "test": _clean(ds.x_test.numpy()), "test_y": ds.y_test.tolist()})
    sent = {"epoch": 0, "probes": 0}

    def surface(epoch: int) -> None:
        s = probes.decision_surface(model, pts, step=step, margin=0.5, keep=1)
        emit("surface", {"epoch": epoch, "gx": _clean(s.gx), "gy": _clean(s.gy), "mean": _clean(s.mean[0]),
                         "first": _clean(s.kept[0, 0])})

    def send_probes(h: Any) -> None:
        for rec in h.probes[sent["probes"]:]:
            emit("probe", {"epoch": rec.epoch, "layers": rec.weight_layers,
                           "grad_norm": _clean(np.nanmean(rec.weight_stats["grad_norm"], 0)),
                           "dead_fraction": _clean(np.nanmean(rec.activation_stats["dead_fraction"], 0)),
                           "hidden": rec.activation_layers})
        sent["probes"] = len(h.probes)

    def on_epoch(epoch: int, h: Any) -> None:
        while not running.is_set() and not stop.is_set():  # paused: wait between epochs
            running.wait(0.1)
        if stop.is_set():
            raise _Stopped
        if epoch % every and epoch != req.epochs:
            return
        lo = sent["epoch"]
        emit("epoch", {"epochs": list(range(lo + 1, epoch + 1)), "loss": _clean(h.batch_loss[:, lo:epoch]),
                       "test_loss": _clean(h.test_loss[:, lo:epoch]), "test_acc": _clean(h.test_acc[:, lo:epoch])})
        sent["epoch"] = epoch
        send_probes(h)
        if epoch % (every * 5) == 0 or epoch == req.epochs:
            surface(epoch)

    surface(0)
    try:
        h = train(model, ds, tcfg, on_epoch=on_epoch)
    except _Stopped:
        emit("stopped", {"epoch": sent["epoch"]})
        return
    acc = mean_ci(h.final_test_acc)
    emit("done", {"epoch": req.epochs, "test_acc": _clean(acc.mean), "lo": _clean(acc.lo), "hi": _clean(acc.hi),
                  "n": acc.n, "diverged": int((h.diverged_epoch > 0).sum()), "wall_s": round(h.wall_time_s, 2)})


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


class LiveManager:
    """The live sessions of one server: at most `max_trainings` at once."""

    def __init__(self, max_trainings: int = 2):
        self.max = max_trainings
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()

    def _expire(self) -> None:
        now = time.monotonic()
        for s in list(self.sessions.values()):
            if s.state == "pending" and now - s.created > PENDING_TTL_S:
                self.sessions.pop(s.id, None)

    def create(self, req: LiveRequest) -> Session:
        act = lookup(req.activation)  # a catalog name only: the request model admits no import path
        if act.vector:
            raise ActlabError(f"activation {act.name!r} is vector-valued (output only); choose an element-wise one")
        act.resolve(**req.activation_params)  # unknown or out-of-range parameters: one clear message
        with self.lock:
            self._expire()
            if len(self.sessions) >= self.max:
                raise Busy(f"{len(self.sessions)} live trainings are running, the most this server allows "
                           f"(--max-trainings {self.max}); stop one or wait")
            s = Session(uuid.uuid4().hex[:12], req.model_copy(update={"activation": act.name}))
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
                train_live(s.request, emit, s.stop, s.running)
                s.state = "stopped" if s.stop.is_set() else "done"
            except Exception as e:  # noqa: BLE001 - a failed training is reported to its client, not raised
                s.state = "failed"
                emit("error", {"detail": str(e)})
            finally:
                with self.lock:
                    self.sessions.pop(s.id, None)

        s.thread = threading.Thread(target=work, name=f"live-{s.id}", daemon=True)
        s.thread.start()

    def stop_all(self) -> None:
        for s in list(self.sessions.values()):
            s.stop.set()
            s.running.set()


class Busy(Exception):
    """Too many live trainings at once."""
