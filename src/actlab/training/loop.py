"""One training loop for every population (DESIGN §3).

Key choices:
- The loss minimised is the *sum* over replicas of each replica's own mean loss, so gradients, and every
  element-wise optimizer (SGD, momentum, Nesterov, Adam, AdamW), stay independent per replica. Nothing
  couples replicas (no global gradient clipping).
- Replica m shuffles its training set each epoch with `rng.permutations(seed_m, ("order", epoch))`, so its
  data order depends on its seed only: the same as when trained alone (the equivalence contract), and the
  same for replica m of every other cell (the paired design). Full batch needs no order.
- A replica whose loss becomes NaN or inf is marked diverged at that epoch; its parameters and optimizer
  state are zeroed and its gradients masked from then on, its metrics are NaN, and the others go on.
- Metrics per epoch and replica: the mean minibatch loss and accuracy seen during the epoch, and the loss
  and accuracy of the full train (optional) and test sets evaluated after the epoch, in eval mode.
- Probes (per-layer diagnostics, `actlab.training.probes`) run at chosen epochs; epoch 0 is before training.
- Evaluation and probes run in chunks of examples sized so that replicas × chunk × widest layer stays
  under probes.CHUNK_FLOATS: a 10,000-replica population evaluates in bounded memory.
- Nothing here changes process-wide state: the allocator tuning that speeds populations up
  (`actlab.runtime.tune_malloc`) is applied by the entry points (CLI, explorer, benchmarks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, Strict, model_serializer, model_validator
from torch import Tensor

from actlab import rng
from actlab.data.record import Dataset
from actlab.errors import ActlabError
from actlab.nn.layers import replica_view, replica_zero_
from actlab.nn.models import Population
from actlab.training import fused
from actlab.training.probes import ProbeRecord, example_chunk, probe_population

Loss = Literal["auto", "bce", "ce", "mse"]


class TrainConfig(BaseModel):
    """How to train. Learning rates are per step; epochs count passes over the training set."""

    model_config = ConfigDict(extra="forbid")
    epochs: Annotated[int, Strict(), Field(
        ge=1, le=1_000_000, description="passes over the training set (at least one; probe_epochs = [0] records the "
                                        "network at initialisation)")] = 100
    batch_size: Annotated[Annotated[int, Strict(), Field(ge=1)] | Literal["full"] | None, Field(
        description="examples per optimizer step; \"full\" (or none) is full-batch gradient descent")] = 64
    optimizer: Annotated[Literal["sgd", "adam", "adamw"], Field(description="element-wise, so replicas stay "
                                                                "independent")] = "sgd"
    lr: Annotated[float, Field(gt=0, le=100, description="learning rate per step (before the schedule)")] = 0.05
    momentum: Annotated[float, Field(ge=0, lt=1, description="SGD momentum (SGD only)")] = 0.0
    nesterov: Annotated[bool, Field(description="Nesterov momentum (SGD with momentum > 0)")] = False
    weight_decay: Annotated[float, Field(ge=0, le=10, description="L2 penalty (SGD, Adam) or decoupled decay "
                                                                  "(AdamW), per step")] = 0.0
    betas: Annotated[tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]], Field(
        description="Adam's decay rates of the first and second moment estimates")] = (0.9, 0.999)
    schedule: Annotated[Literal["constant", "step", "cosine", "warmup_cosine"], Field(
        description="learning-rate schedule over all steps")] = "constant"
    step_every: Annotated[int, Strict(), Field(ge=1, description="epochs between lr drops (schedule 'step')")] = 30
    gamma: Annotated[float, Field(gt=0, le=1, description="lr factor per drop (schedule 'step')")] = 0.1
    warmup_epochs: Annotated[float, Field(ge=0, description="linear warm-up length in epochs (schedule "
                                                            "'warmup_cosine')")] = 5
    loss: Annotated[Loss, Field(description="auto: bce (binary), ce (multiclass; next_token: token-level, the "
                                            "mean over every token), mse (regression, or with an explicit output "
                                            "activation); each replica's loss is its batch mean")] = "auto"
    grad_clip: Annotated[float | None, Field(gt=0, le=1e6, description=(
        "clip each replica's gradient to this global L2 norm (over all its parameters, as "
        "torch.nn.utils.clip_grad_norm_ does for one model); per replica, so replicas stay independent; "
        "none: no clipping"))] = None
    epoch_examples: Annotated[int | None, Strict(), Field(ge=1, description=(
        "examples per epoch: the first n of each epoch's permutation (a large corpus: an epoch is then a sample "
        "of it, evaluated after); none: the whole training set"))] = None
    threshold: Annotated[float, Field(description="binary prediction: output > threshold (with an explicit output "
                                                  "activation; logits use 0)")] = 0.5
    device: Annotated[Literal["auto", "cpu", "cuda"], Field(description="auto: CUDA when available")] = "auto"
    amp: Annotated[bool, Field(description="bfloat16 autocast (CUDA only)")] = False
    eval_train: Annotated[bool, Field(description="evaluate the full training set after each epoch")] = True
    eval_batch_size: Annotated[int, Strict(), Field(ge=1, description="examples per evaluation chunk (also bounded by "
                                                            "memory)")] = 2048
    grad_stats: Annotated[bool, Field(description="record the cnn-depth source's gradient average: per batch, "
                                                  "the mean over parameter tensors of each tensor's mean |grad|, "
                                                  "averaged over the epoch")] = False
    probe_epochs: Annotated[list[Annotated[int, Strict(), Field(ge=0)] | Literal["last"]], Field(
        description="epochs at which per-layer diagnostics are recorded; 0 is before training, \"last\" the "
                    "final epoch")] = []
    probe_size: Annotated[int, Strict(), Field(
        ge=1, le=100_000, description="examples in the probe batch (the first n of the training set)")] = 512
    saturation_threshold: Annotated[float, Field(gt=0, description="a unit value counts as saturated where "
                                                                   "|φ'(z)| is below this")] = 0.01
    engine: Annotated[Literal["auto", "torch", "fused"], Field(
        description="auto: the fused CPU kernel (actlab.training.fused) where it can train the population, else "
                    "torch; fused: the kernel or an error saying why not; torch: always torch")] = "auto"

    @model_serializer(mode="wrap")
    def _leave_out_unset_extensions(self, handler: Any) -> dict[str, Any]:
        """Fields added since the first stored runs are written only when set, so an earlier configuration, and
        so its cell key, is what it was: old run directories resume."""
        out = handler(self)
        for name in ("grad_clip", "epoch_examples"):
            if out.get(name) is None:
                out.pop(name, None)
        return out

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.epoch_examples is not None and self.batch_size in (None, "full"):
            raise ValueError(f"epoch_examples={self.epoch_examples} samples minibatches from each epoch's "
                             f"permutation; it needs a batch_size, not full-batch training (batch_size="
                             f"{self.batch_size!r})")
        late = [e for e in self.probe_epochs if e != "last" and e > self.epochs]
        if late:
            raise ValueError(f"probe_epochs {late} lie after the last epoch ({self.epochs}); use \"last\" for the "
                             "final one")
        return self

    def probe_set(self) -> set[int]:
        """The probed epochs as numbers ("last" is `epochs`)."""
        return {self.epochs if e == "last" else e for e in self.probe_epochs}

    def resolved_loss(self, task: str, explicit_output: bool) -> str:
        if self.loss != "auto":
            return self.loss
        if task == "next_token":
            return "ce"
        if explicit_output or task == "regression":
            return "mse"
        return "bce" if task == "binary" else "ce"


@dataclass
class History:
    """What training produced, per replica (rows) and epoch (columns)."""

    seeds: list[int]
    batch_loss: np.ndarray  # (M, E) mean minibatch loss during the epoch
    batch_acc: np.ndarray  # (M, E)
    train_loss: np.ndarray | None  # (M, E) after the epoch, full training set, eval mode
    train_acc: np.ndarray | None
    test_loss: np.ndarray  # (M, E)
    test_acc: np.ndarray
    grad_mean: np.ndarray | None  # (M, E) per batch, the mean over tensors of each tensor's mean |grad|; epoch mean
    diverged_epoch: np.ndarray  # (M,) first epoch (1-based) with a non-finite loss; 0 = never
    probes: list[ProbeRecord] = field(default_factory=list)  # one per probed epoch
    wall_time_s: float = 0.0
    device: str = "cpu"
    engine: str = "torch"  # which path trained it: torch, or fused (the numba kernel)
    engine_note: str | None = None  # engine "auto" on torch: why the fused kernel did not train it

    def take(self, start: int, stop: int, copy: bool = True) -> History:
        """The replicas start..stop-1 (one member of a mixed population) as a History of their own; with
        copy=False its arrays are views of this one's (no second copy of a large population's history)."""
        def rows(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[start:stop].copy() if copy else a[start:stop]

        return History(self.seeds[start:stop], rows(self.batch_loss), rows(self.batch_acc), rows(self.train_loss),
                       rows(self.train_acc), rows(self.test_loss), rows(self.test_acc), rows(self.grad_mean),
                       rows(self.diverged_epoch), [p.take(start, stop) for p in self.probes], self.wall_time_s,
                       self.device, self.engine, self.engine_note)

    @property
    def best_test_acc(self) -> np.ndarray:
        """Per replica the best test accuracy over epochs; NaN for one that diverged before its first epoch ended
        (all NaN: no warning, the divergence is recorded)."""
        if not self.test_acc.shape[1]:
            return np.full(len(self.seeds), np.nan)
        finite = np.isfinite(self.test_acc).any(axis=1)
        return np.where(finite, np.nanmax(np.where(finite[:, None], self.test_acc, 0.0), axis=1), np.nan)

    @property
    def final_test_acc(self) -> np.ndarray:
        return self.test_acc[:, -1] if self.test_acc.shape[1] else np.full(len(self.seeds), np.nan)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ActlabError("device='cuda' was asked for but no CUDA device is available; allowed here: cpu, auto")
    return torch.device(name)


# Adam and AdamW by their single-kernel ("fused") implementation: one pass over each parameter tensor
# instead of one per arithmetic step: several times faster on deep populations (benchmarks/RESULTS.md); the
# weights agree to float32 rounding (tests/test_engine.py). Only for parameters in the standard layout: the
# fused kernels walk memory linearly, and torch's fused step (in the pinned version, constraints.txt) updates a
# channels-last parameter wrongly when its gradient is laid out otherwise, so a population with channels-last
# convolutions stays on foreach. SGD stays foreach: plain SGD is one foreach op already, and torch's fused CPU
# SGD with Nesterov momentum does not give foreach's numbers.


def make_optimizer(params: list[Tensor], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay, foreach=True)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    how = {"fused": True} if all(p.is_contiguous() for p in params) else {"foreach": True}
    return cls(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **how)


def lr_factor(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Multiplier of the base lr at optimizer step `step` (0-based)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = cfg.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if cfg.schedule == "step":
            return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_every)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * step / total))
        if cfg.schedule == "warmup_cosine":
            if step < warm:  # a linear ramp that reaches 1 at the last warm-up step (a fractional one too)
                return min(1.0, (step + 1) / warm)
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
        return 1.0

    return factor


def replica_losses(out: Tensor, y: Tensor, loss: str) -> Tensor:
    """(M,) mean loss of each replica. out: (M, B, K); y: (M, B) per-replica or (B,) shared labels."""
    m, b = out.shape[:2]
    if out.dim() == 4:  # next-token logits (M, B, T, V), targets (M, B, T) or shared (B, T): mean over tokens
        y = y.expand(m, *y.shape) if y.dim() == 2 else y
        return F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), y.reshape(-1), reduction="none"
                               ).view(m, -1).mean(1)
    y = y.expand(m, b) if y.dim() == 1 else y
    if loss == "ce":
        return F.cross_entropy(out.reshape(m * b, -1).float(), y.reshape(-1), reduction="none").view(m, b).mean(1)
    o = out[..., 0].float() if out.shape[-1] == 1 else out.float()
    t = y.float() if out.shape[-1] == 1 else F.one_hot(y, out.shape[-1]).float()
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(o, t, reduction="none").view(m, b, -1).mean((1, 2))
    return ((o - t) ** 2).view(m, b, -1).mean((1, 2))


def bce_on_probabilities(out: Tensor, y: Tensor) -> Tensor:
    """BCE when the output already is a probability (explicit sigmoid output)."""
    m, b = out.shape[:2]
    y = y.expand(m, b) if y.dim() == 1 else y
    return F.binary_cross_entropy(out[..., 0].float().clamp(1e-7, 1 - 1e-7), y.float(), reduction="none").mean(1)


def correct(out: Tensor, y: Tensor, task: str, logits: bool, threshold: float) -> Tensor:
    """(M,) number of correct predictions of each replica (next-token: each sequence counts its share of
    correctly predicted tokens, so the count over n sequences divided by n is the token accuracy)."""
    m, b = out.shape[:2]
    if task == "next_token":
        y = y.expand(m, *y.shape) if y.dim() == 2 else y
        return (out.argmax(-1) == y).float().mean(-1).sum(1)
    y = y.expand(m, b) if y.dim() == 1 else y
    if task == "multiclass":
        pred = out.argmax(-1)
    elif task == "binary":
        pred = (out[..., 0] > (0.0 if logits else threshold)).long()
    else:
        return torch.zeros(m, device=out.device)
    return (pred == y).sum(1).float()


class _Objective:
    """The loss and prediction rule of one model on one task."""

    def __init__(self, model: Population, ds: Dataset, cfg: TrainConfig):
        self.task, self.threshold = ds.task, cfg.threshold
        self.explicit = model.out_act is not None
        if getattr(model, "objective", None) == "elbo":
            self._elbo(ds, cfg, model)
            return
        self.loss = cfg.resolved_loss(ds.task, self.explicit)
        if self.loss == "ce" and ds.task not in ("multiclass", "next_token"):
            raise ActlabError(f"loss='ce' needs a multiclass task; dataset {ds.name} is {ds.task}")
        if ds.task == "next_token" and self.loss != "ce":
            raise ActlabError(f"dataset {ds.name} is a next-token task, trained with loss='ce' (or 'auto'), not "
                              f"{self.loss!r}")
        if self.loss == "ce" and self.explicit:
            raise ActlabError("loss='ce' takes logits; drop output_activation or use loss='mse'")
        if self.loss == "bce" and ds.task == "multiclass":
            raise ActlabError(f"loss='bce' needs a binary task; dataset {ds.name} is multiclass (use 'ce')")

    def _elbo(self, ds: Dataset, cfg: TrainConfig, model: Population) -> None:
        """A VAE: the loss is the negative ELBO, each replica's mean over examples of the two terms the model
        returns (nats per example); nothing is predicted, so there is no accuracy (NaN)."""
        if cfg.loss != "auto":
            raise ActlabError(f"train.loss={cfg.loss!r}: a vae is trained on its negative ELBO; allowed: 'auto'")
        if ds.task == "next_token":
            raise ActlabError(f"dataset {ds.name} holds token ids; a vae models images, signals or points")
        model.fit_likelihood(ds.x_train, ds.name)
        self.loss = "elbo"

    def losses(self, out: Tensor, y: Tensor) -> Tensor:
        if self.loss == "elbo":
            return out.float().sum(-1).mean(1)
        if self.loss == "bce" and self.explicit:
            return bce_on_probabilities(out, y)
        return replica_losses(out, y, self.loss)

    def correct(self, out: Tensor, y: Tensor) -> Tensor:
        if self.loss == "elbo":
            return torch.full((out.shape[0],), math.nan, device=out.device)
        return correct(out, y, self.task, logits=not self.explicit, threshold=self.threshold)


def evaluate_model(model: Population, x: Tensor, y: Tensor, objective: _Objective, batch: int,
             amp: bool = False) -> tuple[Tensor, Tensor]:
    """(M,) mean loss and accuracy of every replica on the shared set (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros(model.m, device=x.device)
    hits = torch.zeros(model.m, device=x.device)
    batch = example_chunk(model, batch)
    with torch.no_grad(), _autocast(x.device, amp):
        for i in range(0, len(x), batch):
            xb, yb = x[i: i + batch], y[i: i + batch]
            model.at_examples(i)
            out = model(xb)
            loss_sum += objective.losses(out, yb) * len(xb)
            hits += objective.correct(out, yb)
    model.train(was_training)
    return loss_sum / len(x), hits / len(x)


def evaluate_terms(model: Population, x: Tensor, batch: int = 2048) -> np.ndarray:
    """(M, terms) float64: a model's per-example loss terms (a VAE's reconstruction and KL, nats) averaged over the
    set x, in eval mode, in the chunks evaluation uses."""
    was_training = model.training
    model.eval()
    total = None
    batch = example_chunk(model, batch)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model.at_examples(i)
            part = model(x[i: i + batch]).double().sum(1)
            total = part if total is None else total + part
    model.train(was_training)
    return (total / len(x)).cpu().numpy()


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def train(model: Population, ds: Dataset, cfg: TrainConfig | None = None,
          on_epoch: Callable[[int, History], None] | None = None, note: Callable[[str], None] | None = None
          ) -> History:
    """Train every replica of `model` on `ds`; returns per-epoch, per-replica metrics and probe records.

    `on_epoch(epoch, history_so_far)` is called after each epoch (progress bars, live views, stopping by
    raising); the history's arrays then hold NaN for epochs not yet run.
    """
    cfg = cfg or TrainConfig()
    if cfg.optimizer == "sgd" and cfg.nesterov and cfg.momentum == 0:
        raise ActlabError("nesterov=True needs momentum > 0")
    if cfg.epoch_examples is not None and cfg.epoch_examples > len(ds.x_train):
        raise ActlabError(f"train.epoch_examples={cfg.epoch_examples} is more than the {len(ds.x_train)} training "
                          f"examples of {ds.name}; allowed: 1 to {len(ds.x_train)}, or none (every example)")
    device = resolve_device(cfg.device)
    model.to(device).train()
    objective = _Objective(model, ds, cfg)
    why = None
    if cfg.engine != "torch":
        why = fused.unsupported(model, ds, cfg, device)
        if why is None and cfg.engine == "auto":
            why = fused.slower(model, len(ds.x_train), cfg.epochs)
        if why is None:
            fp = fused.FusedPopulation(model, cfg, ds.task, ds.n_classes, note)
            why = fused.slower_population(fp) if cfg.engine == "auto" else None
        if why is None:
            return _train_fused(model, ds, cfg, objective, on_epoch, fp)
        if cfg.engine == "fused":
            raise ActlabError(f"train.engine='fused' cannot train this population: {why}; allowed: 'auto' (the "
                              "kernel where it can, else torch) or 'torch'")
    xtr, ytr = ds.x_train.to(device), ds.y_train.to(device)
    xte, yte = ds.x_test.to(device), ds.y_test.to(device)
    n_all, m, e = len(xtr), model.m, cfg.epochs
    n = n_all if cfg.epoch_examples is None else cfg.epoch_examples  # examples seen per epoch
    bs = n if cfg.batch_size in (None, "full") else min(cfg.batch_size, n)
    steps = math.ceil(n / bs)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg, steps))
    seeds = torch.tensor(model.seeds, device=device)

    def nan(rows: int = m) -> np.ndarray:
        return np.full((rows, e), np.nan)

    hist = History(model.seeds, nan(), nan(), nan() if cfg.eval_train else None, nan() if cfg.eval_train else None,
                   nan(), nan(), nan() if cfg.grad_stats else None, np.zeros(m, dtype=np.int64), device=str(device),
                   engine_note=why)
    alive = torch.ones(m, dtype=torch.bool, device=device)
    probe_x, probe_y = xtr[: cfg.probe_size], ytr[: cfg.probe_size]
    t0 = time.perf_counter()
    probe_at = cfg.probe_set()
    if 0 in probe_at:
        hist.probes.append(probe_population(model, probe_x, probe_y, objective, 0, cfg.saturation_threshold))
    for epoch in range(1, e + 1):
        order = None if bs == n_all else rng.permutations(seeds, rng.stream_id("order", epoch), n_all, device)
        loss_acc = torch.zeros(m, device=device)
        hit_acc = torch.zeros(m, device=device)
        grad_acc = torch.zeros(m, device=device)
        bad = torch.zeros(m, dtype=torch.bool, device=device)
        for s in range(steps):
            if order is None:  # full batch: one shared input for every replica
                xb, yb, nb = xtr, ytr, n
            else:
                idx = order[:, s * bs: min((s + 1) * bs, n)]  # (M, b)
                xb, yb, nb = xtr[idx], ytr[idx], idx.shape[1]
            model.at_step(epoch, s)
            with _autocast(device, cfg.amp):
                out = model(xb)
                lv = objective.losses(out, yb)  # (M,)
            opt.zero_grad(set_to_none=True)
            lv.sum().backward()
            if not bool(alive.all()):
                _mask_grads(params, alive, m)
            if cfg.grad_clip is not None:
                clip_per_replica(params, m, cfg.grad_clip)
            opt.step()
            sched.step()
            with torch.no_grad():
                bad |= ~torch.isfinite(lv)
                loss_acc += torch.nan_to_num(lv.detach(), nan=0.0, posinf=0.0, neginf=0.0) * nb
                hit_acc += objective.correct(out.detach(), yb)
                if cfg.grad_stats:
                    grad_acc += _mean_abs_grad(params, m)
        newly = bad & alive
        if bool(newly.any()):
            hist.diverged_epoch[newly.cpu().numpy()] = epoch
            alive &= ~bad
            _zero_replicas(model, opt, ~alive, m)
        keep = alive.cpu().numpy()
        _record(hist, epoch, keep, batch_loss=loss_acc / n, batch_acc=hit_acc / n,
                grad_mean=grad_acc / steps if cfg.grad_stats else None)
        te_loss, te_acc = evaluate_model(model, xte, yte, objective, cfg.eval_batch_size, cfg.amp)
        _record(hist, epoch, keep, test_loss=te_loss, test_acc=te_acc)
        if cfg.eval_train:
            tr_loss, tr_acc = evaluate_model(model, xtr, ytr, objective, cfg.eval_batch_size, cfg.amp)
            _record(hist, epoch, keep, train_loss=tr_loss, train_acc=tr_acc)
        if epoch in probe_at:
            rec = probe_population(model, probe_x, probe_y, objective, epoch, cfg.saturation_threshold)
            rec.mask(keep)
            hist.probes.append(rec)
        end_epoch(hist, epoch, t0, on_epoch)
    return hist


def _train_fused(model: Population, ds: Dataset, cfg: TrainConfig, objective: _Objective,
                 on_epoch: Callable[[int, History], None] | None, fp: fused.FusedPopulation) -> History:
    """`train` on the fused CPU kernel: the same protocol (data order, loss, optimizer, divergence, metrics,
    probes); evaluation runs in the kernel, probes and `on_epoch` see the torch parameters, copied back."""
    n, m, e = len(ds.x_train), model.m, cfg.epochs

    def flat(x: Tensor) -> np.ndarray:
        return np.ascontiguousarray(x.reshape(len(x), -1).numpy(), dtype=np.float32)

    xtr, ytr = flat(ds.x_train), ds.y_train.numpy().astype(np.int64)
    xte, yte = flat(ds.x_test), ds.y_test.numpy().astype(np.int64)
    bs = n if cfg.batch_size in (None, "full") else min(cfg.batch_size, n)
    steps = math.ceil(n / bs)
    factor = lr_factor(cfg, steps)

    def nan(rows: int = m) -> np.ndarray:
        return np.full((rows, e), np.nan)

    hist = History(model.seeds, nan(), nan(), nan() if cfg.eval_train else None, nan() if cfg.eval_train else None,
                   nan(), nan(), None, np.zeros(m, dtype=np.int64), device="cpu", engine="fused")
    alive = np.ones(m, dtype=bool)
    probe_x, probe_y = ds.x_train[: cfg.probe_size], ds.y_train[: cfg.probe_size]
    t0 = time.perf_counter()
    probe_at = cfg.probe_set()
    if 0 in probe_at:
        hist.probes.append(probe_population(model, probe_x, probe_y, objective, 0, cfg.saturation_threshold))
    for epoch in range(1, e + 1):
        lrs = np.array([cfg.lr * factor((epoch - 1) * steps + s) for s in range(steps)])
        loss_sum, hits, bad = fp.epoch(xtr, ytr, epoch, bs, lrs, (epoch - 1) * steps)
        newly = bad & alive
        if newly.any():
            hist.diverged_epoch[newly] = epoch
            alive &= ~bad
            fp.kill(~alive)
        _record(hist, epoch, alive, batch_loss=loss_sum / n, batch_acc=hits / n)
        te_loss, te_acc = fp.evaluate(xte, yte)
        _record(hist, epoch, alive, test_loss=te_loss, test_acc=te_acc)
        if cfg.eval_train:
            tr_loss, tr_acc = fp.evaluate(xtr, ytr)
            _record(hist, epoch, alive, train_loss=tr_loss, train_acc=tr_acc)
        if epoch in probe_at or on_epoch is not None or epoch == e:
            fp.store()  # the torch parameters are what probes, callbacks and the caller read
        if epoch in probe_at:
            rec = probe_population(model, probe_x, probe_y, objective, epoch, cfg.saturation_threshold)
            rec.mask(alive.copy())
            hist.probes.append(rec)
        end_epoch(hist, epoch, t0, on_epoch)
    return hist


def end_epoch(hist: History, epoch: int, t0: float, on_epoch: Callable[[int, History], None] | None) -> None:
    """Every training loop's epoch end: the wall time so far, then the caller's callback (progress, live views,
    stopping by raising)."""
    hist.wall_time_s = time.perf_counter() - t0
    if on_epoch is not None:
        on_epoch(epoch, hist)


def _record(hist: History, epoch: int, keep: np.ndarray, **values: Tensor | np.ndarray | None) -> None:
    """Write (M,) per-replica values into the history's columns for `epoch` (1-based); NaN where not `keep`."""
    for name, v in values.items():
        if v is not None:
            arr = v.cpu().numpy() if isinstance(v, Tensor) else v
            getattr(hist, name)[:, epoch - 1] = np.where(keep, arr, np.nan)


def _mean_abs_grad(params: list[Tensor], m: int) -> Tensor:
    """(M,) the cnn-depth source's gradient average for one batch: the mean over parameter tensors of each
    tensor's mean |grad| (weights, biases and BatchNorm's affine parameters each count once)."""
    total = torch.zeros(m, device=params[0].device)
    count = 0
    for p in params:
        if p.grad is not None:
            total += replica_view(p.grad, m).abs().mean(1)
            count += 1
    return total / max(count, 1)


def clip_per_replica(params: list[Tensor], m: int, max_norm: float) -> Tensor:
    """Scale each replica's gradient so that its global L2 norm (over all its parameters) is at most
    `max_norm`, as torch.nn.utils.clip_grad_norm_ does for one model (coefficient max_norm / (norm + 1e-6),
    capped at 1). Returns the (M,) norms before clipping. A global clip over the population would couple
    the replicas: one replica's large gradient would shrink every other's step."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.sqrt(sum(replica_view(g, m).float().pow(2).sum(1) for g in grads))
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.to(g.dtype).repeat_interleave(g.shape[0] // m).view(-1, *([1] * (g.dim() - 1))))
    return norms


def _mask_grads(params: list[Tensor], alive: Tensor, m: int) -> None:
    """Zero the gradients of replicas that are no longer alive."""
    for p in params:
        if p.grad is not None:
            replica_zero_(p.grad, m, ~alive)


def _zero_replicas(model: Population, opt: torch.optim.Optimizer, dead: Tensor, m: int) -> None:
    """Zero the parameters, buffers and optimizer state of `dead` replicas, so nothing non-finite remains."""
    with torch.no_grad():
        tensors = [*model.parameters(), *(b for b in model.buffers() if b.dim() > 0)]
        tensors += [t for st in opt.state.values() for t in st.values() if torch.is_tensor(t) and t.dim() > 0]
        for t in tensors:
            if t.shape[0] % m == 0:
                replica_zero_(t, m, dead)
