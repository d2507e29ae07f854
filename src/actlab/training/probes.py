"""Per-layer diagnostics (DESIGN §4), for populations and, through hooks, for any `nn.Module`.

Definitions, per replica and layer, on a probe batch:
- grad_norm: Frobenius norm of the layer's weight gradient; grad_mean_abs: mean |∂L/∂W|;
- z_* and a_*: mean, std and mean |·| of the pre-activations z and activations a = φ(z), over examples,
  units and positions;
- dead_fraction: fraction of units whose φ'(z) is exactly 0 for every example and position of the batch
  (a ReLU unit that is never active);
- saturated_fraction: fraction of (example, unit, position) values with |φ'(z)| below a threshold (0.01).
A population is probed in training mode (BatchNorm uses batch statistics) with BatchNorm's running
statistics left untouched and no optimizer step, so probing never changes the trajectory.

For 2-D inputs: `decision_surface` (the output on a grid, as mean, agreement and a few seeds),
`signal_trace` (mean |z| and |a| per layer for
chosen points) and `hidden_snapshot` (hidden activations of a set of points, with the std of all values).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actlab.catalog.activations import ActivationModule
from actlab.nn.layers import replica_view
from actlab.nn.models import Population, Trace

CHUNK_FLOATS = 1 << 22  # per activation tensor in evaluation and probes (16 MB of float32)
SURFACE_CHUNK = 65536  # at most this many grid points per forward pass of the decision surface
SURFACE_SEEDS = 10  # individual decision surfaces stored per cell by default (the mean and agreement use all)
ACTIVATION_STATS = ("z_mean", "z_std", "z_mean_abs", "a_mean", "a_std", "a_mean_abs", "dead_fraction",
                    "saturated_fraction")
WEIGHT_STATS = ("grad_norm", "grad_mean_abs")


@dataclass
class ProbeRecord:
    """Diagnostics at one epoch: each stat is an (M, layers) array."""

    epoch: int
    activation_layers: list[str]
    activation_stats: dict[str, np.ndarray]
    weight_layers: list[str]
    weight_stats: dict[str, np.ndarray] = field(default_factory=dict)
    # statistics with their own layers (a transformer's residual_rms per block, attention_entropy per head):
    # name -> (layer names, (M, layers) array)
    extra_stats: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)

    def take(self, start: int, stop: int) -> ProbeRecord:
        """The rows of replicas start..stop-1 (one member of a mixed population), copied."""
        return ProbeRecord(self.epoch, self.activation_layers,
                           {k: v[start:stop].copy() for k, v in self.activation_stats.items()},
                           self.weight_layers, {k: v[start:stop].copy() for k, v in self.weight_stats.items()},
                           {k: (names, v[start:stop].copy()) for k, (names, v) in self.extra_stats.items()})

    def groups(self) -> list[tuple[dict[str, np.ndarray], list[str]]]:
        """(stats, their layer names) for every statistic: what the store writes."""
        out = [(self.activation_stats, self.activation_layers), (self.weight_stats, self.weight_layers)]
        return out + [({k: v}, names) for k, (names, v) in self.extra_stats.items()]

    def mask(self, keep: np.ndarray) -> None:
        """Set the rows of replicas not in `keep` (diverged ones) to NaN."""
        for stats in (self.activation_stats, self.weight_stats):
            for v in stats.values():
                v[~keep] = np.nan
        for _, v in self.extra_stats.values():
            v[~keep] = np.nan


def example_chunk(model: Population, limit: int) -> int:
    """Examples per evaluation chunk: at most `limit`, and replicas × chunk × widest layer <= CHUNK_FLOATS."""
    return max(1, min(limit, CHUNK_FLOATS // max(1, model.m * model.floats_per_example())))


class _StatSums:
    """Running per-replica sums over example chunks, so statistics of a large batch are exact in bounded memory."""

    def __init__(self, saturation_threshold: float):
        self.thr = saturation_threshold
        self.layers: list[dict[str, Tensor]] = []
        self.count = 0  # values per replica per layer seen so far (examples × units × positions)

    def add(self, trace: Trace) -> None:
        for i, (_, z, a, d) in enumerate(trace):  # each (M, B, U, S)
            zf, af = z.double().flatten(1), a.double().flatten(1)
            part = {"z": zf.sum(1), "z2": (zf * zf).sum(1), "z_abs": zf.abs().sum(1),
                    "a": af.sum(1), "a2": (af * af).sum(1), "a_abs": af.abs().sum(1),
                    "sat": (d.abs() < self.thr).flatten(1).sum(1).double(),
                    "never": (d == 0).all(dim=3).all(dim=1),  # (M, U): φ' = 0 on every example and position
                    "n": torch.tensor(zf.shape[1], dtype=torch.float64)}
            if i == len(self.layers):
                self.layers.append(part)
            else:
                acc = self.layers[i]
                for k, v in part.items():
                    acc[k] = acc[k] & v if k == "never" else acc[k] + v

    def result(self) -> dict[str, Tensor]:
        cols: dict[str, list[Tensor]] = {k: [] for k in ACTIVATION_STATS}
        for acc in self.layers:
            n = acc["n"]
            for var in ("z", "a"):
                mean = acc[var] / n
                cols[f"{var}_mean"].append(mean)
                cols[f"{var}_std"].append(torch.sqrt((acc[f"{var}2"] / n - mean * mean).clamp(min=0)))
                cols[f"{var}_mean_abs"].append(acc[f"{var}_abs"] / n)
            cols["dead_fraction"].append(acc["never"].double().mean(1))
            cols["saturated_fraction"].append(acc["sat"] / n)
        return {k: torch.stack(v, dim=1).float() for k, v in cols.items()}


def trace_stats(trace: Trace, saturation_threshold: float = 0.01) -> dict[str, Tensor]:
    """Activation statistics of one trace: each (M, layers)."""
    sums = _StatSums(saturation_threshold)
    sums.add(trace)
    return sums.result()


def weight_grad_stats(grads: list[Tensor] | list[list[Tensor]], m: int) -> dict[str, Tensor]:
    """Gradient norm and mean |grad| per replica of each weight (or of each group of tensors, taken together):
    each (M, layers)."""
    groups = [g if isinstance(g, list) else [g] for g in grads]
    views = [torch.cat([replica_view(t.float(), m) for t in group], 1) for group in groups]
    return {"grad_norm": torch.stack([v.norm(dim=1) for v in views], 1),
            "grad_mean_abs": torch.stack([v.abs().mean(1) for v in views], 1)}


def probe_population(model: Population, x: Tensor, y: Tensor, objective: Any, epoch: int,
                     saturation_threshold: float = 0.01) -> ProbeRecord:
    """Diagnostics of every replica on the shared batch (x, y), without changing the model's state.

    The batch is processed in example chunks (bounded memory, exact sums), except for models with
    BatchNorm, whose batch statistics depend on the whole batch.
    """
    bns = [mod for mod in model.modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
    saved = [(bn.momentum, bn.num_batches_tracked.clone()) for bn in bns]
    for bn in bns:
        bn.momentum = 0.0  # running = (1 - 0)·running + 0·batch: unchanged
    was_training = model.training
    model.train()
    # A probe chunk holds z, a, φ' and float64 sums for every layer plus a graph: a quarter of an eval chunk.
    chunk = len(x) if bns else max(1, example_chunk(model, len(x)) // 4)
    groups = model.probe_groups()
    weights = [w for group in groups for w in group]
    sums = _StatSums(saturation_threshold)
    grads = [torch.zeros_like(w) for w in weights]
    names: list[str] = []
    extra_names = model.probe_extras()
    extra_sums: dict[str, Tensor] = {}
    grad_sq: dict[str, Tensor] = {}
    try:
        for i in range(0, len(x), chunk):
            xc, yc = x[i: i + chunk], y[i: i + chunk]
            model.at_examples(i)
            trace: Trace = []
            extras: dict[str, list[Tensor]] | None = {} if extra_names else None
            with torch.enable_grad():
                out = model(xc, trace=trace) if extras is None else model(xc, trace=trace, extras=extras)
                loss = objective.losses(out, yc).sum() * (len(xc) / len(x))  # the full batch's mean, in parts
                wrt = {k[5:]: v for k, v in (extras or {}).items() if k.startswith("_wrt:")}
                flat = [t for groups_ in wrt.values() for group in groups_ for t in group]
                parts = torch.autograd.grad(loss, weights + flat, allow_unused=True)
                for g, part in zip(grads, parts[:len(weights)], strict=True):
                    if part is not None:
                        g += part
            it_parts = iter(parts[len(weights):])
            for k, groups_ in wrt.items():  # Σ over chunks of the squared per-replica norms (M, layers)
                sq = torch.stack([sum(_sq_norm(next(it_parts), model.m) for _ in group) for group in groups_], 1)
                grad_sq[k] = grad_sq[k] + sq if k in grad_sq else sq
                del extras[f"_wrt:{k}"]
            sums.add(trace)
            names = [name for name, *_ in trace]
            for k, parts in (extras or {}).items():  # per-chunk means, weighted by the chunk's share
                v = torch.cat([p.double() for p in parts], 1) * (len(xc) / len(x))
                extra_sums[k] = extra_sums[k] + v if k in extra_sums else v
    finally:
        for bn, (mom, nbt) in zip(bns, saved, strict=True):
            bn.momentum = mom
            bn.num_batches_tracked.copy_(nbt)
        model.train(was_training)
    act = {k: v.cpu().numpy() for k, v in sums.result().items()}
    it = iter(grads)
    grouped = [[next(it) for _ in group] for group in groups]
    wgt = {k: v.cpu().numpy() for k, v in weight_grad_stats(grouped, model.m).items()}
    for k, sq in grad_sq.items():  # per example: the loss is the batch's mean, so ×√N gives the RMS of ∂ℓ_i/∂h
        extra_sums[k] = sq.sqrt() * math.sqrt(len(x))
    extra = {k: (extra_names[k], v.float().cpu().numpy()) for k, v in extra_sums.items()} if extra_names else {}
    return ProbeRecord(epoch, names, act, model.probe_weight_names() or names, wgt, extra)


def _sq_norm(g: Tensor | None, m: int) -> Tensor:
    """(M,) squared norm of each replica's slice of a gradient (M, ...) (zeros where it is unused)."""
    if g is None:
        return torch.zeros(m, dtype=torch.float64)
    return (g.double() ** 2).reshape(m, -1).sum(1)


# ------------------------------------------------------------------------ any nn.Module, by hooks


def _is_activation(module: nn.Module) -> bool:
    return isinstance(module, ActivationModule) or type(module).__module__ == "torch.nn.modules.activation"


def _canon_user(t: Tensor, channels_last: bool) -> Tensor:
    """A user tensor as (1, B, units, positions): (B, F); (B, C, *spatial); or (B, ..., F) if channels_last."""
    if t.dim() == 1:
        return t.reshape(1, -1, 1, 1)
    if t.dim() == 2:
        return t.reshape(1, t.shape[0], t.shape[1], 1)
    if channels_last:
        return t.reshape(1, -1, t.shape[-1], 1)
    return t.reshape(1, t.shape[0], t.shape[1], -1)


def probe(module: nn.Module, x: Tensor, y: Tensor | None = None, loss_fn: Any = None,
          saturation_threshold: float = 0.01, channels_last: bool = False) -> ProbeRecord:
    """Diagnose any `nn.Module` on one batch: activation statistics at every activation module (found by
    hooks) and, when `y` or `loss_fn` is given, weight-gradient statistics of every Linear and Conv layer.

    The loss is `loss_fn(output, y)`, or by default cross-entropy for integer labels with one output per
    class and mean squared error otherwise. `channels_last=True` reads (B, ..., F) activations (sequence
    models) with features last; otherwise dimension 1 holds the units. Parameters' `.grad` are untouched.
    """
    acts: list[tuple[str, Tensor, Tensor, Tensor]] = []
    handles = []
    for name, mod in module.named_modules():
        if _is_activation(mod):
            def hook(mod: nn.Module, inputs: tuple, output: Tensor, name: str = name) -> None:
                z = inputs[0].detach()
                with torch.enable_grad():
                    zz = z.clone().requires_grad_()
                    (d,) = torch.autograd.grad(mod.forward(zz).sum(), zz)  # .forward: no hooks, no recursion
                acts.append((name, _canon_user(z, channels_last), _canon_user(output.detach(), channels_last),
                             _canon_user(d, channels_last)))

            handles.append(mod.register_forward_hook(hook))
    weights = [(n, mod.weight) for n, mod in module.named_modules()
               if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and mod.weight.requires_grad]
    try:
        with torch.enable_grad():
            out = module(x)
            w_stats: dict[str, np.ndarray] = {}
            if y is not None or loss_fn is not None:
                if loss_fn is not None:
                    loss = loss_fn(out, y)
                elif out.dim() == 2 and out.shape[1] > 1 and not torch.is_floating_point(y):
                    loss = F.cross_entropy(out, y)
                else:
                    loss = F.mse_loss(out.reshape(y.shape).float(), y.float())
                grads = torch.autograd.grad(loss, [w for _, w in weights], allow_unused=True)
                grads = [torch.zeros_like(w) if g is None else g for (_, w), g in zip(weights, grads, strict=True)]
                w_stats = {k: v.cpu().numpy() for k, v in weight_grad_stats([g.unsqueeze(0) for g in grads], 1).items()}
    finally:
        for h in handles:
            h.remove()
    a_stats = {k: v.cpu().numpy() for k, v in trace_stats(acts, saturation_threshold).items()} if acts else {}
    return ProbeRecord(0, [n for n, *_ in acts], a_stats, [n for n, _ in weights] if w_stats else [], w_stats)


# ------------------------------------------------------------------------------- 2-D diagnostics


def grid(x: Tensor, step: float = 0.025, margin: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Grid axes over the range of 2-D points x, widened by `margin` on every side (moons protocol)."""
    xd = x.detach().double().cpu()
    lo, hi = xd.min(0).values.numpy() - margin, xd.max(0).values.numpy() + margin
    return np.arange(lo[0], hi[0] + step / 2, step), np.arange(lo[1], hi[1] + step / 2, step)


@dataclass
class Surface:
    """A population's output on a 2-D grid, summarised per group of replicas (a group: one cell's seeds).

    What a reader uses, in memory that does not grow with the grid times the replicas: the mean output, the
    agreement (the fraction of replicas on the majority side of 0.5, so 0.5 to 1), and the surfaces of the
    first `keep` replicas of each group. Replicas whose output is not finite (diverged) are left out of the
    mean and the agreement; `n` counts the replicas of each group."""

    gx: np.ndarray
    gy: np.ndarray
    mean: np.ndarray  # (groups, len(gy), len(gx))
    agreement: np.ndarray  # (groups, len(gy), len(gx))
    kept: np.ndarray  # (groups, keep, len(gy), len(gx))
    n: int  # replicas per group


def decision_surface(model: Population, x: Tensor, step: float = 0.025, margin: float = 0.5, groups: int = 1,
                     keep: int | None = None, max_points: int = 1_000_000, chunk: int | None = None,
                     forward: Callable[[Tensor], Tensor] | None = None) -> Surface:
    """The model's output probability (binary) or value on the grid over x, summarised per group of
    consecutive replicas (`Surface`). The grid is evaluated a chunk of points at a time, the chunk sized so
    that replicas × chunk × widest layer stays within CHUNK_FLOATS (or `chunk` points, for tests): peak
    memory is bounded whatever the population, and only the summaries and `keep` surfaces per group (all
    when None) are kept. `forward` (points -> outputs (M, P)) replaces the model's own forward pass: the
    fused kernel's, for a population it trained."""
    gx, gy = grid(x, step, margin)
    g = len(gx) * len(gy)
    if g > max_points:
        raise ValueError(f"decision surface grid of {len(gx)}×{len(gy)} points exceeds {max_points}")
    if groups < 1 or model.m % groups:
        raise ValueError(f"{model.m} replicas do not split into {groups} equal groups")
    per = model.m // groups
    keep = per if keep is None else max(0, min(int(keep), per))
    xx, yy = np.meshgrid(gx, gy)
    pts = torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float32, device=x.device)
    mean = np.empty((groups, g), np.float32)
    agreement = np.empty((groups, g), np.float32)
    kept = np.empty((groups, keep, g), np.float32)
    step_pts = chunk or example_chunk(model, SURFACE_CHUNK)
    was = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, g, step_pts):
            out = model(pts[i: i + step_pts])[..., 0] if forward is None else forward(pts[i: i + step_pts])  # (M, P)
            p = (torch.sigmoid(out) if model.out_act is None else out).reshape(groups, per, -1)
            finite = torch.isfinite(p)
            count = finite.sum(1).double()
            pd = torch.where(finite, p.double(), 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean[:, i: i + step_pts] = (pd.sum(1) / count).cpu().numpy()
                above = (((p > 0.5) & finite).sum(1) / count).cpu().numpy()
                agreement[:, i: i + step_pts] = np.maximum(above, 1.0 - above)
            kept[:, :, i: i + step_pts] = p[:, :keep].cpu().numpy()
    model.train(was)
    shape = (len(gy), len(gx))
    return Surface(gx, gy, mean.reshape(groups, *shape), agreement.reshape(groups, *shape),
                   kept.reshape(groups, keep, *shape), per)


def _eval_trace(model: Population, x: Tensor) -> Trace:
    """The trace of a forward pass in eval mode (running BatchNorm statistics), the mode restored after."""
    was = model.training
    model.eval()
    trace: Trace = []
    with torch.no_grad():
        model(x, trace=trace)
    model.train(was)
    return trace


def signal_trace(model: Population, points: Tensor) -> dict[str, np.ndarray]:
    """Mean |z| and |a| over the units of each layer for each point: {'z1': (M, P), 'a1': ..., 'z_out': ...}."""
    out: dict[str, np.ndarray] = {}
    for i, (name, z, a, _) in enumerate(_eval_trace(model, points)):
        zm, am = z.abs().mean((2, 3)).cpu().numpy(), a.abs().mean((2, 3)).cpu().numpy()
        if name == "output":
            out["z_out"] = zm
        else:
            out[f"z{i + 1}"], out[f"a{i + 1}"] = zm, am
    return out


def hidden_snapshot(model: Population, x: Tensor, layers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """Hidden activations of points x at `layers` (1-based): first two units (M, N, 2) and the std of all values
    (M,)."""
    trace = _eval_trace(model, x)
    snap: dict[str, Any] = {}
    for layer in layers:
        if layer > len(trace) - 1:
            continue
        a = trace[layer - 1][2][..., 0]  # (M, N, U)
        snap[f"layer{layer}"] = {"points": a[..., :2].cpu().numpy(), "std": a.flatten(1).std(1).cpu().numpy()}
    return snap


def far_points(ds) -> torch.Tensor:
    """The moons protocol's trace points: the class-0 training point farthest from (−1.2, −0.3) and the
    class-1 point farthest from (1.2, 0.3)."""
    x, y = ds.x_train, ds.y_train
    out = []
    for cls, centre in ((0, (-1.2, -0.3)), (1, (1.2, 0.3))):
        pts = x[y == cls]
        out.append(pts[(pts - torch.tensor(centre)).norm(dim=1).argmax()])
    return torch.stack(out)
