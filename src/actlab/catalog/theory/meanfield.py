"""Mean-field signal propagation through wide random networks: what theory predicts before any training.

For an element-wise activation φ, weights N(0, σ_w²/fan_in) and biases N(0, σ_b²), a layer of an infinitely
wide network maps the pre-activation variance q and the correlation c of two inputs as (Poole et al. 2016,
"Exponential expressivity in deep neural networks through transient chaos"; Schoenholz et al. 2017, "Deep
information propagation"):

    q_{l+1} = V(q_l) = σ_w² E[φ(√q z)²] + σ_b²                                    (z ~ N(0, 1))
    c_{l+1} = C(c_l) = (σ_w² E[φ(u₁) φ(u₂)] + σ_b²) / q*     (u₁, u₂ ~ N(0, q*), correlation c)
    χ₁ = σ_w² E[φ′(√q* z)²]       the slope of C at c = 1; the mean squared backward gain per layer
    ξ_q = −1 / log V′(q*)         ξ_c = −1 / log C′(c*)        (depth scales of the approach to q*, c*)

χ₁ < 1 is the ordered phase (every pair of inputs becomes one: c* = 1, gradients vanish as χ₁^(L/2)),
χ₁ > 1 the chaotic one (c* < 1, gradients explode); χ₁ = 1 is the edge of chaos, where ξ_c diverges.
Schoenholz et al. found networks trainable to depth ≈ 6 ξ_c.

Numerics, float64 throughout: one-dimensional expectations by Simpson's rule on [−12, 12] at step 1e-3
(the grid has a node at 0, where the catalog's kinks sit); the two-dimensional one (the C map) as the
expectation over z₁ of φ times a Gaussian blur of φ (one FFT convolution), so it costs a 1-D rule. Each is
computed at two resolutions and the difference reported as the numerical error estimate (`err` fields): an
estimate, not a bound, and first-order where φ′ jumps away from 0 (SELU's and ReLU6's χ_c are good to about
1e-4 relative; smooth φ to 1e-10). Closed forms replace quadrature where
they exist: ReLU (the arc-cosine kernel of Cho and Saul), leaky ReLU and the identity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field
from scipy.integrate import simpson
from scipy.optimize import brentq
from torch import Tensor

from actlab.catalog.activations import Activation, get
from actlab.errors import ActlabError, excerpt

Phase = Literal["ordered", "critical", "chaotic"]
WINDOW_1D = 12.0
POINTS_1D = 24001  # step 1e-3 on [−12, 12]; the error estimates take every other point
COARSE_POINTS = 6001  # step 4e-3: for many evaluations (phase diagrams, the catalog table)
Q_MAX = 1e12  # a variance beyond this has no finite fixed point in any practical sense
CRITICAL_TOL = 1e-6  # |χ₁ − 1| below this is called critical


@dataclass(frozen=True)
class Quadrature:
    """A number from quadrature and its numerical error (the change from the coarse to the fine rule)."""

    value: float
    err: float

    def __iter__(self):
        return iter((self.value, self.err))


class Kernel:
    """An element-wise φ with its derivative, evaluated in float64: the expectations the maps need."""

    def __init__(self, act: Activation, params: dict[str, float], points: int = POINTS_1D):
        if act.vector:
            raise ActlabError(f"activation {act.name!r} is vector-valued (output only); mean-field theory is for "
                              "element-wise activations")
        self.act, self.params = act, act.resolve(**params)
        self.closed = _closed_form(act.name, self.params)
        if points % 4 != 1 or points < 401:
            raise ActlabError(f"points={points} is not allowed; the quadrature needs 4k + 1 points, at least 401")
        self._x1 = torch.linspace(-WINDOW_1D, WINDOW_1D, points, dtype=torch.float64)
        self._w1 = _pdf(self._x1)

    def phi(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.act.fn(x, **self.params).to(torch.float64)

    def dphi(self, x: Tensor) -> Tensor:
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            y = self.act.fn(x, **self.params)
            if not y.requires_grad:  # a step function: φ′ = 0 wherever it is defined
                return torch.zeros_like(x.detach())
            (g,) = torch.autograd.grad(y.sum(), x)
        return g.detach().to(torch.float64)

    def mean(self, f: Callable[[Tensor], Tensor], err: bool = True) -> Quadrature:
        """E[f(z)], z ~ N(0, 1): Simpson at step 1e-3 and (for the error) at 2e-3."""
        w = self._w1.numpy()
        fine = coarse = edge = size = 0.0
        for i, ((x, y), part) in enumerate(zip(_halves(f, self._x1), _cut(w), strict=True)):
            fine += float(simpson(y * part, x=x))
            coarse += float(simpson((y * part)[::2], x=x[::2])) if err else 0.0
            size += float(simpson(np.abs(y * part), x=x))
            edge = max(edge, abs(float((y * part)[-1 if i else 0])))  # the integrand at −12 and at +12
        if not math.isfinite(fine) or edge > 1e-9 * max(size, 1e-300):  # the integrand has not died out at ±12
            raise ActlabError(f"activation {self.act.name!r}: a Gaussian expectation is not finite (φ grows too fast)")
        return Quadrature(fine, abs(fine - coarse) if err else 0.0)

    def second_moment(self, q: float, err: bool = True) -> Quadrature:
        """E[φ(√q z)²]."""
        if self.closed is not None:
            return Quadrature(self.closed.second_moment(q), 0.0)
        if q == 0:
            return Quadrature(float(self.phi(torch.zeros(1, dtype=torch.float64))[0] ** 2), 0.0)
        s = math.sqrt(q)
        return self.mean(lambda z: self.phi(s * z) ** 2, err)

    def slope_moment(self, q: float, err: bool = True) -> Quadrature:
        """E[φ′(√q z)²]."""
        if self.closed is not None:
            return Quadrature(self.closed.slope_moment(q), 0.0)
        if q == 0:  # the limit q → 0: half the mass on each side of a kink at 0
            return Quadrature(float((self.dphi(torch.tensor([-1e-300, 1e-300], dtype=torch.float64)) ** 2).mean()), 0.0)
        s = math.sqrt(q)
        return self.mean(lambda z: self.dphi(s * z) ** 2, err)

    def cross_moment(self, q: float, c: float, derivative: bool = False, err: bool = True) -> Quadrature:
        """E[f(u₁) f(u₂)] for u₁, u₂ ~ N(0, q) with correlation c, f = φ (or φ′).

        Written as E_{z₁}[f(√q z₁) · g(√q c z₁)], g the Gaussian blur of f of standard deviation √(q(1 − c²)):
        g is one FFT convolution on a fine grid, the outer expectation Simpson's rule, so a kink of f costs
        no accuracy and c near 1 (a narrow blur) is as cheap as any other c."""
        c = min(1.0, max(-1.0, c))
        if self.closed is not None:
            return Quadrature(self.closed.cross_moment(q, c, derivative), 0.0)
        f = self.dphi if derivative else self.phi
        if c == 1.0:
            return self.mean(lambda z: f(math.sqrt(q) * z) ** 2, err)
        fine = self._cross(f, q, c, 1)
        return Quadrature(fine, abs(fine - self._cross(f, q, c, 2)) if err else 0.0)

    def variance(self, q: float, sw2: float, sb2: float) -> float:
        """V(q) = σ_w² E[φ(√q z)²] + σ_b²: the next layer's pre-activation variance."""
        return sw2 * self.second_moment(q, err=False).value + sb2

    def correlation(self, q: float, c: float, sw2: float, sb2: float) -> float:
        """C(c): the next layer's correlation of two inputs of variance q and correlation c (at q*, the
        correlation map; the next layer's variance is V(q) = q* there)."""
        return (sw2 * self.cross_moment(q, c, err=False).value + sb2) / self.variance(q, sw2, sb2)

    def _cross(self, f: Callable[[Tensor], Tensor], q: float, c: float, coarsen: int) -> float:
        s, sig = math.sqrt(q), math.sqrt(q * (1.0 - c * c))
        z = self._x1[::coarsen]
        dz = float(z[1] - z[0])
        w = _pdf(z).numpy()
        # the blur is sampled where the outer rule needs it: at u = s·c·z, so on a grid of step s·|c|·dz
        # (no interpolation); for |c| small it varies slowly and is interpolated from a grid of step s·dz
        exact = abs(c) >= 0.05
        du = s * (abs(c) if exact else 1.0) * dz
        half = int(math.ceil((s * abs(c) * WINDOW_1D + 10 * sig) / du)) + 2
        u = torch.arange(-half, half + 1, dtype=torch.float64) * du
        fu = f(u).numpy()
        if sig < du / 2:  # narrower than the grid: the blur is f itself
            blurred = fu
        else:
            k = np.arange(-int(math.ceil(10 * sig / du)), int(math.ceil(10 * sig / du)) + 1) * du
            kernel = np.exp(-0.5 * (k / sig) ** 2)
            from scipy.signal import fftconvolve  # start-up: scipy.signal takes a second, for this alone

            blurred = fftconvolve(fu, kernel / kernel.sum(), mode="same")
        if exact:
            idx = half + np.arange(-(len(z) // 2), len(z) // 2 + 1) * (1 if c > 0 else -1)
            g = blurred[idx]
        else:
            g = np.interp((s * c) * z.numpy(), u.numpy(), blurred)
        return sum(float(simpson(y * wp * gp, x=x)) for (x, y), wp, gp
                   in zip(_halves(lambda v: f(s * v), z), _cut(w), _cut(g), strict=True))


def _halves(f: Callable[[Tensor], Tensor], x: Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(x, f(x)) on [x₀, 0], (x, f(x)) on [0, x_end]] for a symmetric grid with node 0 in the middle, f at 0
    taken as its left limit in the first half and its right limit in the second (f at ∓1e-300). The
    catalog's kinks and jumps (ReLU's φ′, ELU's φ″) sit at 0, so Simpson on each half keeps its order there."""
    xl, xr = _cut(x)
    left, right = xl.clone(), xr.clone()
    left[-1], right[0] = -1e-300, 1e-300
    return [(xl.numpy(), f(left).numpy()), (xr.numpy(), f(right).numpy())]


def _cut(a):
    """The two halves of a symmetric grid's array, both holding the middle node."""
    mid = len(a) // 2
    return a[:mid + 1], a[mid:]


def _pdf(x: Tensor) -> Tensor:
    return torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


# ------------------------------------------------------------------------------------------- closed forms


@dataclass(frozen=True)
class _Closed:
    """Leaky ReLU with negative slope a (ReLU: a = 0; the identity: a = 1), scaled by `scale`."""

    a: float
    scale: float = 1.0

    def second_moment(self, q: float) -> float:
        return self.scale ** 2 * q * (1.0 + self.a ** 2) / 2.0

    def slope_moment(self, q: float) -> float:
        return self.scale ** 2 * (1.0 + self.a ** 2) / 2.0

    def cross_moment(self, q: float, c: float, derivative: bool) -> float:
        theta = math.acos(c)
        if derivative:  # E[φ′φ′]: 1 where both positive, a² where both negative, a where they differ
            both = (math.pi - theta) / (2 * math.pi)
            return self.scale ** 2 * ((1 + self.a ** 2) * both + self.a * theta / math.pi)
        relu = q / (2 * math.pi) * (math.sqrt(max(0.0, 1 - c * c)) + (math.pi - theta) * c)  # Cho & Saul 2009
        # leaky: φ(u) = relu(u) − a·relu(−u), so E = (1 + a²)·k(c) − 2a·k(−c), with k the ReLU kernel
        relu_neg = q / (2 * math.pi) * (math.sqrt(max(0.0, 1 - c * c)) + (math.pi - math.acos(-c)) * -c)
        return self.scale ** 2 * ((1 + self.a ** 2) * relu - 2 * self.a * relu_neg)


def _closed_form(name: str, params: dict[str, float]) -> _Closed | None:
    if name == "relu":
        return _Closed(0.0)
    if name == "leaky_relu":
        return _Closed(float(params.get("alpha", params.get("negative_slope", 0.01))))
    if name == "identity":
        return _Closed(1.0)
    return None


# ------------------------------------------------------------------------------------------------ results


class SignalPropagation(BaseModel):
    """What mean-field theory predicts for one activation at one (σ_w², σ_b²)."""

    activation: str
    params: dict[str, float] = {}
    sw2: float = Field(description="weight variance σ_w² (weights N(0, σ_w²/fan_in))")
    sb2: float = Field(description="bias variance σ_b²")
    method: str = Field(description="'closed form' or 'quadrature'")
    q_star: float | None = Field(description="fixed point of the variance map; None: q grows without bound")
    q_star_err: float = 0.0
    q_stable: bool | None = Field(description="|V′(q*)| < 1: layers approach q* from any nearby q (False for a "
                                              "neutral fixed point, V′(q*) = 1, such as ReLU's at σ_w² = 2)")
    q_slope: float | None = Field(description="V′(q*), the variance map's slope at its fixed point")
    chi1: float | None = Field(description="σ_w² E[φ′(√q* z)²]: the slope of the C map at c = 1")
    chi1_err: float = 0.0
    phase: Phase | None = None
    c_star: float | None = Field(description="the stable fixed point of the correlation map (1 when ordered)")
    c_star_err: float = 0.0
    chi_c: float | None = Field(description="the C map's slope at c*")
    xi_q: float | None = Field(description="depth scale of the approach to q* (layers); inf at a neutral q*")
    xi_c: float | None = Field(description="depth scale of the approach to c* (layers); inf at the edge of chaos")
    trainable_depth: float | None = Field(description="6 ξ_c, the depth Schoenholz et al. found trainable")
    backward_gain: float | None = Field(description="√χ₁: the factor by which a gradient's norm grows per layer "
                                                    "going back")
    note: str = ""

    def gradient_ratio(self, depth: int) -> float | None:
        """Predicted ‖δ₁‖ / ‖δ_L‖: the first hidden layer's backward signal over the last's, χ₁^((L−1)/2)."""
        if self.chi1 is None:
            return None
        try:
            return self.chi1 ** ((depth - 1) / 2)
        except OverflowError:  # beyond float range: the ratio is effectively infinite
            return math.inf


def _resolve(activation: str | Activation | Callable[..., Any], params: dict[str, float] | None,
             points: int = POINTS_1D) -> Kernel:
    return Kernel(get(activation), params or {}, points)


def _check(sw2: float, sb2: float) -> None:
    if not (math.isfinite(sw2) and sw2 > 0):
        raise ActlabError(f"sw2={sw2!r} is not allowed; the weight variance σ_w² must be a finite number > 0")
    if not (math.isfinite(sb2) and sb2 >= 0):
        raise ActlabError(f"sb2={sb2!r} is not allowed; the bias variance σ_b² must be a finite number >= 0")


def variance_map(activation: str | Activation | Callable[..., Any], q: float, sw2: float, sb2: float = 0.0,
                 params: dict[str, float] | None = None) -> Quadrature:
    """V(q) = σ_w² E[φ(√q z)²] + σ_b²: the next layer's pre-activation variance."""
    _check(sw2, sb2)
    m = _resolve(activation, params).second_moment(q)
    return Quadrature(sw2 * m.value + sb2, sw2 * m.err)


def q_iterates(activation: str | Activation | Callable[..., Any], q0: float, depth: int, sw2: float,
               sb2: float = 0.0, params: dict[str, float] | None = None) -> np.ndarray:
    """q_1 = q0, q_{l+1} = V(q_l): the predicted pre-activation variance of hidden layers 1..depth."""
    _check(sw2, sb2)
    k = _resolve(activation, params)
    out = [float(q0)]
    for _ in range(depth - 1):
        q = out[-1]
        out.append(math.inf if not math.isfinite(q) or q > Q_MAX * (1.0 + sw2 + sb2) else k.variance(q, sw2, sb2))
    return np.array(out)


def c_iterates(activation: str | Activation | Callable[..., Any], q0: float, c0: float, depth: int, sw2: float,
               sb2: float = 0.0, params: dict[str, float] | None = None) -> np.ndarray:
    """c_1 = c0 and c_{l+1} from two inputs of variance q_l each: the predicted correlation of layers 1..depth
    (the q_l follow `q_iterates`, so this holds before q reaches q* too)."""
    _check(sw2, sb2)
    k = _resolve(activation, params)
    qs = q_iterates(k.act, q0, depth, sw2, sb2, k.params)
    out = [float(c0)]
    for q, q_next in zip(qs[:-1], qs[1:], strict=True):
        if not math.isfinite(q_next):
            out.append(math.nan)
            continue
        out.append(k.correlation(q, out[-1], sw2, sb2))
    return np.array(out)


def weight_gradient_ratio(activation: str | Activation | Callable[..., Any], depth: int, sw2: float, batch: int,
                          q0: float = 1.0, sb2: float = 0.0, params: dict[str, float] | None = None) -> float:
    """Predicted ‖∂L/∂W₁‖ / ‖∂L/∂W_L‖ at initialisation: a depth-L network of equal widths N (h_l = φ(h_{l−1}W_l),
    no skips), a batch of `batch` inputs of variance q0 and uncorrelated with each other, and a scalar loss
    read from the last layer by a fixed random vector (as an output layer would; mean over the batch).

    With G_l = Σ_b h_{l−1}^b ⊗ δ_l^b, theory gives ‖G_l‖² ≈ N² Σ_{b,b′} K_{l−1}(b, b′) D_l(b, b′): K the forward
    second moments from the q and c iterates, D the backward ones, which grow going back by
    χ(q_l) = σ_w² E[φ′(√q_l z)²] on the diagonal (the gradient-independence assumption). The first layer
    sees uncorrelated inputs (only the diagonal counts); the last sees the correlation c_{L−1} that depth has
    built between inputs, so its `batch − 1` off-diagonal pairs count too. Hence

        ratio² = Π_{l<L} χ(q_l) · E[φ′(u_L)²] q0 / (K_d E[φ′(u_L)²] + (batch − 1) K_o E[φ′(u_L) φ′(u′_L)])

    with K_d = E[φ(u_{L−1})²], K_o = E[φ(u_{L−1}) φ(u′_{L−1})] (biases enter through the q and c iterates:
    q₁ = σ_w² q0 + σ_b², c₁ = σ_b² / q₁). Widths cancel. This is the infinite-width limit: at width N the
    measured ratio departs from it by corrections that grow with depth/N (≈ 0.05 decades for ReLU and sigmoid
    at depth 50, width 256) and faster where the variance iterates are unstable (GELU + He: its finite-width
    q drifts from the iterates, several-fold by depth 30 at width 256); the batch's off-diagonal input
    correlations, of order 1/√N, are taken as 0. A readout that is not independent of the weights (e.g. the
    plain sum of the outputs) adds a term this ignores (Stein's lemma: E[W g(z)] ≠ 0). NaN when the iterates
    leave the range the maps are computed in (q beyond Q_MAX, or q = 0); 0 when φ′ vanishes."""
    _check(sw2, sb2)
    for name, v in (("depth", depth), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ActlabError(f"{name} must be a whole number ≥ 1 (got {excerpt(v)})")
    if isinstance(q0, bool) or not isinstance(q0, int | float | np.floating | np.integer) or not 0 < q0 < math.inf:
        raise ActlabError(f"q0 (the inputs' variance) must be a finite number > 0 (got {excerpt(q0)})")
    if depth == 1:
        return 1.0
    k = _resolve(activation, params)
    qs = q_iterates(k.act, sw2 * q0 + sb2, depth, sw2, sb2, k.params)
    if not np.all(np.isfinite(qs)) or not np.all(qs > 0):
        return math.nan  # the iterates leave the range the maps are computed in (beyond Q_MAX, or q = 0)
    cs = c_iterates(k.act, sw2 * q0 + sb2, sb2 / (sw2 * q0 + sb2), depth, sw2, sb2, k.params)
    if not np.all(np.isfinite(cs)):
        return math.nan
    chis = [sw2 * k.slope_moment(q, err=False).value for q in qs[:-1]]
    if min(chis) <= 0:
        return 0.0  # φ′ vanishes almost everywhere at some layer: nothing reaches the first layer
    log_num = sum(math.log(x) for x in chis)
    d_diag = k.slope_moment(qs[-1], err=False).value
    d_off = k.cross_moment(qs[-1], cs[-1], derivative=True, err=False).value
    k_diag = k.second_moment(qs[-2], err=False).value
    k_off = k.cross_moment(qs[-2], cs[-2], err=False).value
    den = k_diag * d_diag + (batch - 1) * k_off * d_off
    if den <= 0 or d_diag <= 0:
        return math.nan
    try:
        return math.exp(0.5 * (log_num + math.log(d_diag * q0 / den)))
    except OverflowError:
        return math.inf


def _fixed_q(k: Kernel, sw2: float, sb2: float, q0: float = 1.0) -> tuple[float | None, float]:
    """The fixed point of V that the layers approach from q0, and its numerical error; None if q grows
    without bound. The map itself is iterated first (it follows the layers, so it cannot step over a nearby
    root); where it converges slowly, a geometric search by factors of 2 in its direction of travel brackets
    the root and Brent's method finds it."""
    def f(x: float) -> float:
        return k.variance(x, sw2, sb2) - x

    limit = Q_MAX * (1.0 + sw2 + sb2)  # beyond this the variance has run away
    q = q0
    for _ in range(60):
        step = f(q)
        if not math.isfinite(step) or q + step > limit:
            return None, 0.0
        if abs(step) <= 1e-13 * (1 + q):
            return _with_err(k, q + step, sw2)
        q += step
        if q <= 1e-12 * q0 and sb2 == 0:
            return 0.0, 0.0
    if f(q) < 0:  # still falling: the largest root below q
        hi, lo = q, q / 2
        while f(lo) < 0:
            if lo < 1e-12 * q0:
                return 0.0, 0.0  # no root above 0 (to 1e-12 of q0): the signal fades (σ_b² = 0)
            hi, lo = lo, lo / 2
    else:  # still rising: the smallest root above q
        lo, hi = q, q * 2
        while f(hi) > 0:
            if hi > limit:
                return None, 0.0
            lo, hi = hi, hi * 2
    root = brentq(f, lo, hi, xtol=1e-300, rtol=1e-15)
    return _with_err(k, root, sw2) if root > 1e-12 * q0 or sb2 > 0 else (0.0, 0.0)


def _with_err(k: Kernel, q: float, sw2: float) -> tuple[float, float]:
    """q* and how far it moves when V carries its own quadrature error."""
    if q <= 0:
        return 0.0, 0.0
    err_v = sw2 * k.second_moment(q).err
    return q, err_v / max(1e-12, abs(1 - _q_slope(k, q, sw2)))


def _q_slope(k: Kernel, q: float, sw2: float) -> float:
    if q <= 0:
        return sw2 * k.slope_moment(0.0, err=False).value  # V′(0) = σ_w² φ′(0)² for a smooth φ
    h = 1e-4 * q
    return sw2 * (k.second_moment(q + h, err=False).value - k.second_moment(q - h, err=False).value) / (2 * h)


def propagation(activation: str | Activation | Callable[..., Any], sw2: float, sb2: float = 0.0,
                params: dict[str, float] | None = None, q0: float = 1.0, points: int = POINTS_1D) -> SignalPropagation:
    """The mean-field picture of `activation` at (σ_w², σ_b²): q*, χ₁, c*, ξ_q, ξ_c, the phase and the
    backward gain. "No finite fixed point" is an answer (q_star None, with a note), not an error. `points`:
    the quadrature grid (fewer is faster and coarser; the error fields say how much)."""
    _check(sw2, sb2)
    k = _resolve(activation, params, points)
    base = {"activation": k.act.name, "params": k.params, "sw2": sw2, "sb2": sb2,
            "method": "closed form" if k.closed is not None else "quadrature"}
    q, q_err = _fixed_q(k, sw2, sb2, q0)
    if q is None:
        chi1 = sw2 * k.slope_moment(1.0).value if k.closed is not None else None
        return SignalPropagation(**base, q_star=None, q_stable=None, q_slope=None, chi1=chi1, c_star=None,
                                 chi_c=None, xi_q=None, xi_c=None, trainable_depth=None,
                                 backward_gain=None if chi1 is None else math.sqrt(chi1),
                                 phase=None if chi1 is None else _phase(chi1),
                                 note="the variance grows without bound: no finite fixed point q*")
    slope = _q_slope(k, q, sw2)
    chi = k.slope_moment(q)
    chi1, chi1_err = sw2 * chi.value, sw2 * chi.err
    phase = _phase(chi1)
    if q == 0.0:  # σ_b² = 0 and the signal dies: every input ends at 0, correlation is undefined
        c_star, c_err, chi_c = 1.0, 0.0, chi1
        note = "q* = 0: the signal fades to zero with depth"
    elif phase == "chaotic":
        c_star, c_err, chi_c = _fixed_c(k, q, sw2, sb2)
        note = ""
    else:
        c_star, c_err, chi_c = 1.0, 0.0, chi1
        note = ""
    return SignalPropagation(
        **base, q_star=q, q_star_err=q_err, q_stable=abs(slope) < 1 - CRITICAL_TOL, q_slope=slope, chi1=chi1,
        chi1_err=chi1_err,
        phase=phase, c_star=c_star, c_star_err=c_err, chi_c=chi_c, xi_q=_depth_scale(slope),
        xi_c=_depth_scale(chi_c), trainable_depth=6 * _depth_scale(chi_c), backward_gain=math.sqrt(chi1),
        note=note)


def chi1(activation: str | Activation | Callable[..., Any], sw2: float, sb2: float = 0.0,
         params: dict[str, float] | None = None, q0: float = 1.0, points: int = POINTS_1D) -> float | None:
    """χ₁ at the fixed point reached from q0 (None: q grows without bound): `propagation` without the
    correlation fixed point, for curves over many σ_w²."""
    _check(sw2, sb2)
    k = _resolve(activation, params, points)
    q, _ = _fixed_q(k, sw2, sb2, q0)
    return None if q is None else sw2 * k.slope_moment(q, err=False).value


def _phase(chi1: float) -> Phase:
    return "critical" if abs(chi1 - 1) < CRITICAL_TOL else "ordered" if chi1 < 1 else "chaotic"


def _depth_scale(slope: float) -> float:
    """−1 / log|slope|: inf where the slope is 1 (no approach), 0 where it is 0 (reached in one layer)."""
    s = abs(slope)
    if s == 0:
        return 0.0
    if abs(s - 1) < CRITICAL_TOL:
        return math.inf
    return -1.0 / math.log(s) if s < 1 else 1.0 / math.log(s)


def _fixed_c(k: Kernel, q: float, sw2: float, sb2: float) -> tuple[float, float, float]:
    """The chaotic phase's stable c* < 1 (root of C(c) − c below 1), its error, and C′(c*)."""
    def f(c: float) -> float:
        return k.correlation(q, c, sw2, sb2) - c

    grid = np.concatenate([np.linspace(-1.0, 0.9, 20), 1.0 - np.logspace(-1.5, -6, 10)])
    vals = [f(float(c)) for c in grid]
    crossings = [i for i in range(len(grid) - 1) if vals[i] > 0 >= vals[i + 1]]  # C − c from + to −: stable
    if not crossings:  # C(c) ≥ c up to 1 − 1e-6: c* is 1 to this resolution
        return 1.0, 1e-6, sw2 * k.slope_moment(q).value
    lo, hi = float(grid[crossings[-1]]), float(grid[crossings[-1] + 1])
    c = brentq(f, lo, hi, xtol=1e-12)
    cm = k.cross_moment(q, c)
    slope_c = sw2 * k.cross_moment(q, c, derivative=True).value
    err = (sw2 * cm.err / q) / max(1e-12, abs(1 - slope_c))
    return float(c), float(err), float(slope_c)


def critical_sw2(activation: str | Activation | Callable[..., Any], sb2: float = 0.0,
                 params: dict[str, float] | None = None, points: int = POINTS_1D) -> float | None:
    """σ_w² on the edge of chaos (χ₁ = 1) at this σ_b², or None where there is none.

    Parametrised by the fixed point (Poole et al. 2016): at a variance q on the critical line,
    σ_w² = 1 / E[φ′(√q z)²] and σ_b² = q − σ_w² E[φ(√q z)²]. So the σ_b² of the line is h(q) = q − E[φ²]/E[φ′²],
    the points at a given σ_b² are the roots of h(q) = σ_b² (and q → 0 for σ_b² = 0 and φ(0) = 0), and the
    critical σ_w² is the smallest one whose q is the fixed point that unit-variance inputs reach (q → 0: the
    layers do not rise from 1); where h stays below σ_b², the line's q → ∞ limit (ReLU: σ_w² = 2 at every
    σ_b²). None: no point of the line is reached, e.g. GELU at σ_b² = 0, whose variance either fades to 0
    (χ₁ = σ_w²/4 < 1) or grows without bound."""
    if not (math.isfinite(sb2) and sb2 >= 0):
        raise ActlabError(f"sb2={sb2!r} is not allowed; the bias variance σ_b² must be a finite number >= 0")
    k = _resolve(activation, params, points)
    if k.closed is not None:
        return 1.0 / k.closed.slope_moment(1.0)

    def sw2_at(q: float) -> float:
        d = k.slope_moment(q, err=False).value
        return math.inf if d <= 0 else 1.0 / d

    def h0(q: float) -> float:  # σ_b² of the line at q
        w = sw2_at(q)
        return -math.inf if math.isinf(w) else q - w * k.second_moment(q, err=False).value

    def h(q: float) -> float:
        return h0(q) - sb2

    dz = float(k._x1[1] - k._x1[0])
    top = min(6.0, math.log10(0.01 / dz**2))  # beyond, φ′'s change near 0 (width 1/√q in z) is under 10 grid steps
    qs = np.logspace(-8, top, int(round((top + 8) * 4)) + 1)
    line = [h0(float(q)) for q in qs]
    hs = [v - sb2 for v in line]
    if all(math.isfinite(v) and abs(v) <= 1e-9 * q for v, q in zip(line, qs, strict=True)):
        # E[φ²]/E[φ′²] = q at every q: φ is positively homogeneous (ReLU-like), the line is one σ_w²
        return sw2_at(1.0)
    cands: list[tuple[float, float]] = []  # (q*, σ_w²) on the line at this σ_b²
    if sb2 == 0 and k.second_moment(0.0).value == 0 and math.isfinite(sw2_at(0.0)):
        cands.append((0.0, sw2_at(0.0)))  # the line may start at q → 0: σ_w² = 1/φ′(0)² (a kink: both sides)
    for i in range(len(qs) - 1):
        if math.isfinite(hs[i]) and math.isfinite(hs[i + 1]) and (hs[i] < 0) != (hs[i + 1] < 0):
            q = brentq(h, float(qs[i]), float(qs[i + 1]), xtol=1e-300, rtol=1e-14)
            cands.append((q, sw2_at(q)))
    for q, w in sorted(cands, key=lambda qw: qw[1]):  # the one whose fixed point unit-variance inputs reach
        reached, _ = _fixed_q(k, w, sb2, 1.0)
        if reached is None:
            continue
        if (reached <= 1.0) if q == 0 else abs(reached - q) <= 1e-3 * q:  # q → 0: the layers do not rise
            return w
    if hs[-1] < 0:  # h below σ_b² at the top: the line's q → ∞ limit, if σ_w²(q) = w∞ + a/√q fits the tail
        (q1, q2, q3) = (float(q) for q in qs[-9::4])
        w1, w2, w3 = (sw2_at(q) for q in (q1, q2, q3))
        if all(math.isfinite(w) for w in (w1, w2, w3)):
            a = (w1 - w3) / (q1 ** -0.5 - q3 ** -0.5)
            w_inf = w3 - a * q3 ** -0.5
            if abs(w_inf + a * q2 ** -0.5 - w2) <= 1e-3 * abs(w2):
                return w_inf
    return None
