"""Properties of an activation, measured from its function, never typed by hand.

`properties(spec, **params)` evaluates φ and its first three derivatives (autograd, float64) on a dense
grid over the window [-12, 12] (step 1e-4) and at the tails x = ±10^2 ... ±10^12, and derives:

- output and derivative range, each end open or closed (an end is closed when the window attains it),
  ±∞ when a tail grows without converging; a derivative taking at most 4 values is given as a set;
- monotonicity, and for a non-monotonic φ the location and value of its interior minimum (and maximum);
- Gaussian moments E[φ(z)], E[φ(z)²] and E[φ'(z)²] for z ~ N(0, 1) (Simpson's rule on the window);
  zero-centred means |E[φ]| <= 0.1·sqrt(E[φ²]); the variance-preserving gain is 1 / sqrt(E[φ²]);
- which side saturates (φ' -> 0 at that infinity) and which side has an exactly zero gradient over a
  half-line (the dying-unit risk);
- smoothness: the first k whose k-th derivative jumps, found by refining the grid where it changes most
  (a jump stays when the step shrinks 100×, a smooth change shrinks with it);
- cost: forward + backward nanoseconds per float32 element on this machine, and the ratio to ReLU
  measured in the same call. Cost is the one timing-dependent field; `cost=False` skips it.

Measuring the whole catalog takes tens of seconds (autograd on 240,001 points, jump searches, mean-field
integrals), so the record of a catalog entry (everything but cost, which is timed afresh) is kept once per
machine in the cache (`actlab.runtime.cache_dir()`, catalog/), keyed by what it depends on: the catalog's
own source code (every module of this package, hashed), the torch, NumPy and SciPy versions, the name and
its parameter values. A user's activation (an import path or a callable) is measured every time: its code
is not part of the key. A file that does not hold a valid record for exactly these inputs is measured afresh.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from scipy.optimize import minimize_scalar
from torch import Tensor

from actlab import runtime
from actlab.catalog.activations import Activation, get, is_builtin
from actlab.catalog.moments import WINDOW, normal_moments
from actlab.catalog.theory import meanfield
from actlab.errors import ActlabError

# Extrema are searched for, and attained ends detected, on [-WINDOW, WINDOW] (the quadrature's window).
STEP = 1e-4  # grid step on the window
TAIL_EXPONENTS = range(2, 13)  # limits at ±inf are read off x = ±10^k, k = 2..12
ATTAIN_RTOL = 1e-12  # an end is attained when the window comes this close to it, relative to the end
# A zero gradient on |x| >= OUTER (and at the tails) counts as zero on that half-line. Not larger: the tanh
# inside gelu_tanh rounds to -1 in float64 below x ≈ -7, a rounding artefact, not a dead half-line.
OUTER = 6.5
MAX_SET_SIZE = 4  # a derivative with at most this many distinct values is reported as a set

Side = Literal["none", "negative", "positive", "both"]
Smoothness = Literal["linear", "piecewise linear", "discontinuous", "C0", "C1", "C2", "C-infinity"]


class Interval(BaseModel):
    """A range of values: an interval with open or closed ends, or a finite set (`values`)."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")
    low: float
    high: float
    low_closed: bool
    high_closed: bool
    values: list[float] | None = None

    def __str__(self) -> str:
        if self.values is not None:
            return "{" + ", ".join(_fmt(v) for v in self.values) + "}"
        left = "[" if self.low_closed else "("
        right = "]" if self.high_closed else ")"
        return f"{left}{_fmt(self.low)}, {_fmt(self.high)}{right}"


class Extremum(BaseModel):
    """Where an interior extremum lies and its value."""

    model_config = ConfigDict(frozen=True)
    x: float
    value: float


class Properties(BaseModel):
    """The measured record of one activation at one parameter setting."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")
    name: str
    params: dict[str, float]
    range: Interval
    derivative_range: Interval
    monotonic: bool
    direction: Literal["increasing", "decreasing", "none"]
    minimum: Extremum | None  # interior global minimum of a non-monotonic function
    maximum: Extremum | None  # interior global maximum of a non-monotonic function
    value_at_zero: float
    derivative_at_zero: float
    mean: float  # E[φ(z)], z ~ N(0, 1)
    second_moment: float  # E[φ(z)²]
    derivative_second_moment: float  # E[φ'(z)²]: the backward-pass gain per layer at unit pre-activations
    zero_centred: bool
    variance_gain: float  # 1 / sqrt(E[φ(z)²])
    saturates: Side  # φ'(x) -> 0 as x -> that infinity
    zero_gradient: Side  # φ' exactly 0 on a half-line (dying-unit risk)
    smoothness: Smoothness
    kinks: list[float]  # where φ' jumps, up to 8
    critical_sw2: float | None = None  # mean-field edge of chaos (χ₁ = 1) at σ_b² = 0; None: not in (0, 100]
    chi1_at_init: float | None = None  # mean-field χ₁ at the paired init (σ_w² = gain², σ_b² = 0); None: no finite q*
    cost_ns: float | None = None  # forward + backward ns per float32 element
    cost_vs_relu: float | None = None  # median over rounds of (cost / ReLU's cost in the same round)
    cost_spread: tuple[float, float] | None = None  # the per-round ratio's quartiles: how steady the timing was

    @property
    def dying_risk(self) -> bool:
        return self.zero_gradient != "none"


def properties(spec: str | Activation | Callable[..., Any], *, cost: bool = True, **params: Any) -> Properties:
    """Measure the properties of an element-wise activation (a name, import path, entry or callable).

    `params` set the activation's parameters; `cost=False` skips the timing (the one field that varies).
    """
    act = get(spec)
    if act.vector:
        raise ActlabError(f"activation {act.name!r} is vector-valued (output only); element-wise properties do not "
                          "apply")
    values = act.resolve(**params)
    f: Callable[[Tensor], Tensor] = lambda x: act.fn(x, **values)  # noqa: E731
    inputs = _inputs(act, values)
    rec = None if inputs is None else _kept(inputs)
    if rec is None:
        rec = _measure(act, values, f)
        if inputs is not None:
            runtime.keep("catalog", inputs, json.loads(rec.model_dump_json()))
    if cost:
        ns, _, ratios = cost_rounds(f)
        q1, med, q3 = (float(v) for v in np.percentile(ratios, [25, 50, 75]))
        rec = rec.model_copy(update={"cost_ns": ns, "cost_vs_relu": med, "cost_spread": (q1, q3)})
    return rec


def _measure(act: Activation, values: dict[str, float], f: Callable[[Tensor], Tensor]) -> Properties:
    """Every property but cost, measured."""
    half = int(round(WINDOW / STEP))  # integer multiples of the step: x = 0 exactly, so a minimum at 0 is attained
    x = torch.arange(-half, half + 1, dtype=torch.float64) * STEP
    y, d1, d2, d3 = _derivatives(f, x, 3, act.name)
    tails = torch.tensor([10.0**k for k in TAIL_EXPONENTS], dtype=torch.float64)
    yl, d1l = _derivatives(f, -tails, 1, act.name)  # left tail, going outward
    yr, d1r = _derivatives(f, tails, 1, act.name)
    xs, ys = x.numpy(), y.numpy()
    seq = np.concatenate([yl.numpy()[::-1], ys, yr.numpy()])  # φ along the whole line, left to right
    direction = _direction(seq)
    mean, second = normal_moments(xs, ys)
    _, dsecond = normal_moments(xs, d1.numpy())
    jumps = {k: _jumps(f, x, g, k, act.name) for k, g in ((0, y), (1, d1), (2, d2), (3, d3))}
    rec = Properties(
        name=act.label(**values),
        params=values,
        range=_interval(ys, yl.numpy(), yr.numpy(), discrete=False),
        derivative_range=_interval(d1.numpy(), d1l.numpy(), d1r.numpy(), discrete=True),
        monotonic=direction != "none",
        direction=direction,
        minimum=None if direction != "none" else _interior_extremum(f, xs, ys, seq, lowest=True),
        maximum=None if direction != "none" else _interior_extremum(f, xs, ys, seq, lowest=False),
        value_at_zero=float(f(torch.zeros(1, dtype=torch.float64))[0]),
        derivative_at_zero=float(_derivatives(f, torch.zeros(1, dtype=torch.float64), 1, act.name)[1][0]),
        mean=mean,
        second_moment=second,
        derivative_second_moment=dsecond,
        zero_centred=abs(mean) <= 0.1 * math.sqrt(second),
        variance_gain=1.0 / math.sqrt(second) if second > 0 else math.inf,
        saturates=_side(_saturates(d1.numpy(), d1l.numpy()), _saturates(d1.numpy(), d1r.numpy())),
        zero_gradient=_side(_zero_half_line(d1.numpy()[xs <= -OUTER], d1l.numpy()),
                            _zero_half_line(d1.numpy()[xs >= OUTER], d1r.numpy())),
        smoothness=_smoothness(jumps, d2.numpy()),
        kinks=[round(v, 5) + 0.0 for v in sorted(jumps[1])][:8],
    )
    return rec.model_copy(update=_mean_field(act, values))


@functools.lru_cache(maxsize=1)
def _code() -> str:
    """A hash of the catalog package's source: a changed formula or measurement makes a new key."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:24]


def _inputs(act: Activation, values: dict[str, float]) -> dict[str, Any] | None:
    """What a catalog entry's record depends on (the cache's key); None for a user's activation."""
    if not is_builtin(act):
        return None
    return {"code": _code(), "torch": torch.__version__, "numpy": np.__version__, "scipy": version("scipy"),
            "name": act.name, "params": values}


def _kept(inputs: dict[str, Any]) -> Properties | None:
    """The record kept for exactly these inputs, or None (none kept, or not a record this code writes)."""
    try:
        rec = Properties.model_validate(runtime.kept("catalog", inputs))
    except ValidationError:
        return None
    return rec if rec.cost_ns is None and rec.params == inputs["params"] else None


def _mean_field(act: Activation, values: dict[str, float]) -> dict[str, float | None]:
    """The edge of chaos at σ_b² = 0 and χ₁ at the paired init (`actlab.catalog.theory.meanfield`, its coarser
    quadrature: errors below 1e-6 here); None where theory has no finite answer."""
    try:
        crit = meanfield.critical_sw2(act, 0.0, values)
        r = meanfield.propagation(act, act.init_gain(**values) ** 2, 0.0, values, points=meanfield.COARSE_POINTS)
    except ActlabError:  # e.g. φ grows too fast for a Gaussian expectation
        return {"critical_sw2": None, "chi1_at_init": None}
    return {"critical_sw2": crit, "chi1_at_init": r.chi1 if r.q_star is not None else None}


def evaluate(spec: str | Activation | Callable[..., Any], x: Tensor | np.ndarray, **params: Any
             ) -> tuple[np.ndarray, np.ndarray]:
    """(φ(x), φ'(x)) as float64 arrays, the derivative by autograd."""
    act = get(spec)
    values = act.resolve(**params)
    y, dy = _derivatives(lambda t: act.fn(t, **values), torch.as_tensor(x, dtype=torch.float64), 1, act.name)
    return y.numpy(), dy.numpy()


def cost_ns(f: Callable[[Tensor], Tensor], n: int = 1 << 20, repeats: int = 9) -> tuple[float, float]:
    """Median forward + backward ns per element of `f` and of ReLU, timed interleaved on n float32 values."""
    ns, base, _ = cost_rounds(f, n, repeats)
    return ns, base


def cost_rounds(f: Callable[[Tensor], Tensor], n: int = 1 << 20, repeats: int = 9
                ) -> tuple[float, float, np.ndarray]:
    """(median ns per element of `f`, of ReLU, and the per-round ratios f / ReLU), timed interleaved.

    Interleaving puts the baseline in the same round under the same conditions (cache, clock, other load),
    so a round's ratio is steadier than either time, and their median is robust to a few disturbed rounds;
    their spread says how steady the machine was.
    """
    times = _cost_times(f, n, repeats)
    return (float(np.median(times[0]) / n * 1e9), float(np.median(times[1]) / n * 1e9),
            np.asarray(times[0]) / np.asarray(times[1]))


def _cost_times(f: Callable[[Tensor], Tensor], n: int, repeats: int) -> dict[int, list[float]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=gen).requires_grad_()
    grad = torch.ones(n)
    times: dict[int, list[float]] = {0: [], 1: []}
    for i in range(repeats + 2):  # the first two rounds warm up
        for j, g in enumerate((f, torch.relu)):
            t0 = time.perf_counter()
            g(x).backward(grad)
            if i >= 2:
                times[j].append(time.perf_counter() - t0)
            x.grad = None
    return times


# ----------------------------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:.4g}"


def _derivatives(f: Callable[[Tensor], Tensor], x: Tensor, order: int, name: str) -> list[Tensor]:
    """[φ(x), φ'(x), ..., φ^(order)(x)] by repeated autograd, detached; zeros where the graph ends."""
    x = x.detach().clone().requires_grad_()
    try:
        out = [f(x)]
    except Exception as e:  # a user's function may raise anything: report it as bad input
        raise ActlabError(f"activation {name!r} failed on float64 input: {type(e).__name__}: {e}") from None
    if torch.isnan(out[0]).any():
        at = x[torch.isnan(out[0])][0].item()
        raise ActlabError(f"activation {name!r} returned NaN at x = {at:g}; allowed: finite or ±inf values")
    for k in range(1, order + 1):
        prev, g = out[-1], None
        if prev.requires_grad:
            try:
                (g,) = torch.autograd.grad(prev.sum(), x, create_graph=True, allow_unused=True)
            except RuntimeError:  # no higher-order backward (e.g. hardsigmoid): central differences,
                h = 1e-6 * x.detach().abs().clamp(min=1.0)  # each order of the one below
                for j in range(k, order + 1):
                    up = _derivatives(f, x.detach() + h, j - 1, name)[j - 1]
                    down = _derivatives(f, x.detach() - h, j - 1, name)[j - 1]
                    out.append((up - down) / (2 * h))
                break
        out.append(torch.zeros_like(x) if g is None else g)
    return [t.detach() for t in out]


def _limit(t: np.ndarray) -> float:
    """Limit of the tail sequence t (at x = 10^2 ... 10^12): ±inf if it keeps growing, NaN if it has none."""
    if np.isinf(t[-1]):
        return float(t[-1])
    d = np.diff(t)
    if abs(d[-1]) <= 1e-9 * (1 + abs(t[-1])):
        return float(t[-1])
    monotone = np.all(d[-4:] > 0) or np.all(d[-4:] < 0)
    if monotone and abs(d[-1]) >= 0.5 * abs(d[-2]):  # increments not shrinking: diverges
        return math.copysign(math.inf, d[-1])
    if monotone:  # converging: Aitken's delta-squared extrapolation
        denom = d[-1] - d[-2]
        return float(t[-1] - d[-1] ** 2 / denom) if denom != 0 else float(t[-1])
    return math.nan


def _interval(window: np.ndarray, left: np.ndarray, right: np.ndarray, discrete: bool) -> Interval:
    """Range of a function from its window values and its left and right tail sequences."""
    allv = np.concatenate([window, left, right])
    finite = allv[np.isfinite(allv)]
    if discrete:
        distinct = np.unique(np.round(finite, 9))
        if len(distinct) <= MAX_SET_SIZE and np.all(np.isfinite(allv)):
            vals = [float(v) + 0.0 for v in distinct]  # + 0.0 turns -0.0 into 0.0
            return Interval(low=vals[0], high=vals[-1], low_closed=True, high_closed=True, values=vals)
    scale = max(1.0, float(np.max(np.abs(window))))
    limits = [0.0 if abs(v) <= 1e-12 * scale else v for v in (_limit(left), _limit(right)) if not math.isnan(v)]
    lo = min([float(finite.min()), *limits])
    hi = max([float(finite.max()), *limits])

    def attained(end: float, best: float) -> bool:  # relative: an end of 0 must be hit exactly, not by 1e-68
        return math.isfinite(end) and abs(best - end) <= ATTAIN_RTOL * abs(end)

    return Interval(low=lo + 0.0, high=hi + 0.0, low_closed=attained(lo, float(window.min())),
                    high_closed=attained(hi, float(window.max())))


def _direction(seq: np.ndarray) -> Literal["increasing", "decreasing", "none"]:
    """Direction of a sequence of values along the line, allowing rounding noise."""
    finite = seq[np.isfinite(seq)]
    d = np.diff(finite)
    tol = 1e-12 * (1 + np.abs(finite[1:]))
    if np.all(d >= -tol):
        return "increasing"
    if np.all(d <= tol):
        return "decreasing"
    return "none"


def _interior_extremum(f: Callable[[Tensor], Tensor], xs: np.ndarray, ys: np.ndarray, seq: np.ndarray,
                       lowest: bool) -> Extremum | None:
    """The global min (or max) of φ when it lies inside the window, refined to 1e-10 in x."""
    sign = 1.0 if lowest else -1.0
    i = int(np.argmin(sign * ys))
    if i in (0, len(ys) - 1) or sign * ys[i] > np.nanmin(sign * seq):
        return None  # the extremum is at infinity or outside the window

    def g(v: float) -> float:
        with torch.no_grad():
            return sign * float(f(torch.tensor([v], dtype=torch.float64))[0])

    r = minimize_scalar(g, bounds=(xs[i - 1], xs[i + 1]), method="bounded", options={"xatol": 1e-10})
    return Extremum(x=float(r.x), value=sign * float(r.fun))


def _jumps(f: Callable[[Tensor], Tensor], x: Tensor, g: Tensor, order: int, name: str) -> list[float]:
    """Points where the `order`-th derivative jumps: its largest grid changes that survive a 100× finer grid."""
    diff = (g[1:] - g[:-1]).abs()
    found: list[float] = []
    for i in torch.argsort(diff, descending=True)[:16].tolist():
        if diff[i] <= 1e-7 * max(1.0, float(g.abs().max())):
            break
        fine_x = torch.linspace(float(x[i]), float(x[i + 1]), 101, dtype=torch.float64)
        fine = _derivatives(f, fine_x, order, name)[order]
        step = float((fine[1:] - fine[:-1]).abs().max())
        if step > 0.5 * float(diff[i]):  # did not shrink with the step: a jump
            at = float(fine_x[int((fine[1:] - fine[:-1]).abs().argmax())])
            if all(abs(at - p) > 1e-3 for p in found):
                found.append(at)
    return found


def _smoothness(jumps: dict[int, list[float]], d2: np.ndarray) -> Smoothness:
    """Class from the lowest derivative order that jumps; piecewise linear when φ'' is 0 off its kinks."""
    flat = bool(np.mean(np.abs(d2) < 1e-9) > 0.999)
    if jumps[0]:
        return "discontinuous"
    if jumps[1]:
        return "piecewise linear" if flat else "C0"
    if flat:
        return "linear"
    if jumps[2]:
        return "C1"
    if jumps[3]:
        return "C2"
    return "C-infinity"


def _saturates(window_d: np.ndarray, tail_d: np.ndarray) -> bool:
    """φ' goes to 0 towards this tail (relative to the largest |φ'| on the window)."""
    scale = float(np.max(np.abs(window_d))) or 1.0
    return bool(np.all(np.isfinite(tail_d))) and abs(float(tail_d[-1])) <= 1e-8 * scale


def _zero_half_line(outer_d: np.ndarray, tail_d: np.ndarray) -> bool:
    """φ' is exactly 0 beyond ±OUTER on the window and at every tail point of that side."""
    return bool(np.all(outer_d == 0) and np.all(tail_d == 0))


def _side(negative: bool, positive: bool) -> Side:
    return {(False, False): "none", (True, False): "negative", (False, True): "positive"}.get(
        (negative, positive), "both")
