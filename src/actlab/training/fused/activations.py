"""The fused kernel's activations, keyed by catalog name: one entry per activation holding every form it needs.

Each form is a small numba function `(z, p) -> (φ(z), φ′(z))` in float32 with torch's conventions at kinks,
`p` the activation's one parameter (`param`, e.g. α of Leaky ReLU; 0 where it has none):
- the **exact** form (`@form(name)`): branches and libm calls allowed; the generic kernel inlines it into its
  row loops;
- the **branch-free** form (`@form(name, branch_free=True)`, optional): no branches and no libm calls (the
  kernel's `_vexp`, `_vsig`), so a generated kernel's lane loop vectorises; an activation without one trains
  on the generic kernel only.

Adding an element-wise activation to the kernel is one entry here: its exact form (and, for speed, its
branch-free form), decorated with its catalog name. An element-wise catalog entry without a form must be
listed in `TORCH_ONLY` with the reason (a test walks the catalog), so nothing falls back to torch silently;
where a population does fall back, the reason is recorded with its cells.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from actlab.training.fused.kernel import SELU_ALPHA, SELU_SCALE, _sig, _vexp, _vsig, njit, one32, zero32


@dataclass(frozen=True)
class KernelForm:
    """One activation's kernel forms: `exact` (generic kernel) and `branch_free` (generated kernels, or None),
    each a numba dispatcher defined at a module's top level (codegen imports it by module and name)."""

    name: str  # the catalog name
    exact: Callable | None = None
    branch_free: Callable | None = None
    param: str | None = None  # the catalog parameter handed to the forms as p

    def source_key(self) -> str:
        """The forms' source text: part of every generated module's name, so an edited form is recompiled."""
        return "\n".join(inspect.getsource(f.py_func) for f in (self.exact, self.branch_free) if f is not None)


FORMS: dict[str, KernelForm] = {}  # catalog name -> its forms, in the kernel's code order
TORCH_ONLY = {  # element-wise catalog entries the kernel does not train, and why
    "prelu": "its slope α is learnable, and the kernel's parameters are weights and biases only",
}


def form(name: str, *, param: str | None = None, branch_free: bool = False) -> Callable[[Callable], Callable]:
    """Decorator: compile `fn(z, p) -> (φ, φ′)` (inlined where called; a function compiled already is kept as
    it is) and enter it as `name`'s exact form, or with branch_free=True its branch-free form. Returns the
    compiled function, which must stay at its module's top level under its own name."""
    def deco(fn: Callable) -> Callable:
        jitted = fn if hasattr(fn, "py_func") else njit(inline="always")(fn)
        old = FORMS.get(name, KernelForm(name))
        FORMS[name] = replace(old, param=param or old.param,
                              **({"branch_free": jitted} if branch_free else {"exact": jitted}))
        return jitted
    return deco


def check() -> None:
    """Every entry has an exact form (a branch-free form alone cannot train mixed blocks)."""
    missing = [n for n, f in FORMS.items() if f.exact is None]
    if missing:
        raise ValueError(f"kernel forms without an exact form: {', '.join(missing)}")


# ---------------------------------------------------------------------------------------- the forms

@form("identity")
def identity(z, p):
    return z, one32


@form("identity", branch_free=True)
def identity_bf(z, p):
    return z, np.float32(1.0)


@form("relu")
def relu(z, p):
    return (z, one32) if z > zero32 else (zero32, zero32)


@form("relu", branch_free=True)
def relu_bf(z, p):
    return max(z, np.float32(0.0)), np.float32(z > np.float32(0.0))


@form("relu2")
def relu2(z, p):
    return (z * z, np.float32(2.0) * z) if z > zero32 else (zero32, zero32)


@form("relu2", branch_free=True)
def relu2_bf(z, p):
    r = max(z, np.float32(0.0))
    return r * r, np.float32(2.0) * r


@form("leaky_relu", param="alpha")
def leaky_relu(z, p):
    return (z, one32) if z > zero32 else (p * z, p)


@form("leaky_relu", branch_free=True)
def leaky_relu_bf(z, p):
    pos = np.float32(z > np.float32(0.0))
    return pos * z + (np.float32(1.0) - pos) * p * z, pos + (np.float32(1.0) - pos) * p


@form("relu6")
def relu6(z, p):  # hardtanh(0, 6): derivative 0 at both ends
    if z <= zero32:
        return zero32, zero32
    if z >= np.float32(6.0):
        return np.float32(6.0), zero32
    return z, one32


@form("relu6", branch_free=True)
def relu6_bf(z, p):
    return (min(max(z, np.float32(0.0)), np.float32(6.0)),
            np.float32(z > np.float32(0.0)) * np.float32(z < np.float32(6.0)))


@form("hard_tanh")
def hard_tanh(z, p):
    if z <= -one32:
        return -one32, zero32
    if z >= one32:
        return one32, zero32
    return z, one32


@form("hard_tanh", branch_free=True)
def hard_tanh_bf(z, p):
    return (min(max(z, np.float32(-1.0)), np.float32(1.0)),
            np.float32(z > np.float32(-1.0)) * np.float32(z < np.float32(1.0)))


@form("elu", param="alpha")
def elu(z, p):
    if z > zero32:
        return z, one32
    e = math.exp(z)
    return p * (e - one32), p * e


@form("elu", branch_free=True)
def elu_bf(z, p):
    pos = np.float32(z > np.float32(0.0))
    e = _vexp(min(z, np.float32(0.0)))
    return pos * z + (np.float32(1.0) - pos) * p * (e - np.float32(1.0)), pos + (np.float32(1.0) - pos) * p * e


@form("celu", param="alpha")
def celu(z, p):
    if z > zero32:
        return z, one32
    e = math.exp(z / p)
    return p * (e - one32), e


@form("celu", branch_free=True)
def celu_bf(z, p):
    pos = np.float32(z > np.float32(0.0))
    e = _vexp(min(z, np.float32(0.0)) / p)
    return pos * z + (np.float32(1.0) - pos) * p * (e - np.float32(1.0)), pos + (np.float32(1.0) - pos) * e


@form("selu")
def selu(z, p):
    if z > zero32:
        return np.float32(SELU_SCALE) * z, np.float32(SELU_SCALE)
    e = math.exp(z)
    return np.float32(SELU_SCALE * SELU_ALPHA) * (e - one32), np.float32(SELU_SCALE * SELU_ALPHA) * e


@form("selu", branch_free=True)
def selu_bf(z, p):
    pos = np.float32(z > np.float32(0.0))
    e = _vexp(min(z, np.float32(0.0)))
    sa = np.float32(SELU_SCALE * SELU_ALPHA)
    return (pos * np.float32(SELU_SCALE) * z + (np.float32(1.0) - pos) * sa * (e - np.float32(1.0)),
            pos * np.float32(SELU_SCALE) + (np.float32(1.0) - pos) * sa * e)


@form("sigmoid")
def sigmoid(z, p):
    s = _sig(z)
    return s, s * (one32 - s)


@form("sigmoid", branch_free=True)
def sigmoid_bf(z, p):
    s = _vsig(z)
    return s, s * (np.float32(1.0) - s)


@form("tanh")
def tanh(z, p):
    t = math.tanh(z)
    return t, one32 - t * t


@form("tanh", branch_free=True)
def tanh_bf(z, p):
    e = _vexp(np.float32(-2.0) * abs(z))
    t = (np.float32(1.0) - e) / (np.float32(1.0) + e)
    t = t * (np.float32(2.0) * np.float32(z >= np.float32(0.0)) - np.float32(1.0))
    return t, np.float32(1.0) - t * t


@form("softsign")
def softsign(z, p):
    d = one32 + abs(z)
    return z / d, one32 / (d * d)


@form("softsign", branch_free=True)
def softsign_bf(z, p):
    d = np.float32(1.0) + abs(z)
    return z / d, np.float32(1.0) / (d * d)


@form("softplus", param="beta")
def softplus(z, p):  # identity above beta·z > 40 (the catalog's threshold)
    bz = p * z
    if bz > np.float32(40.0):
        return z, one32
    e = math.exp(bz)
    return math.log1p(e) / p, e / (e + one32)


@form("swish", param="beta")
def swish(z, p):
    s = _sig(p * z)
    return z * s, s + p * z * s * (one32 - s)


@form("swish", branch_free=True)
def swish_bf(z, p):
    s = _vsig(p * z)
    return z * s, s + p * z * s * (np.float32(1.0) - s)


@form("gelu")
def gelu(z, p):
    c = np.float32(0.5) * (one32 + math.erf(z * np.float32(0.7071067811865476)))
    return z * c, c + z * np.float32(0.3989422804014327) * math.exp(np.float32(-0.5) * z * z)


@form("gelu_tanh")
def gelu_tanh(z, p):
    k = np.float32(0.7978845608028654)
    t = math.tanh(k * (z + np.float32(0.044715) * z * z * z))
    return (np.float32(0.5) * z * (one32 + t),
            np.float32(0.5) * (one32 + t) + np.float32(0.5) * z * (one32 - t * t) * k
            * (one32 + np.float32(3 * 0.044715) * z * z))


@form("gelu_sigmoid")
def gelu_sigmoid(z, p):
    s = _sig(np.float32(1.702) * z)
    return z * s, s + np.float32(1.702) * z * s * (one32 - s)


@form("gelu_sigmoid", branch_free=True)
def gelu_sigmoid_bf(z, p):
    s = _vsig(np.float32(1.702) * z)
    return z * s, s + np.float32(1.702) * z * s * (np.float32(1.0) - s)


@form("mish")
def mish(z, p):
    ts = math.tanh(math.log1p(math.exp(z)))
    s = _sig(z)
    return z * ts, ts + z * s * (one32 - ts * ts)


@form("hard_sigmoid")
def hard_sigmoid(z, p):
    if z <= np.float32(-3.0):
        return zero32, zero32
    if z >= np.float32(3.0):
        return one32, zero32
    return z / np.float32(6.0) + np.float32(0.5), one32 / np.float32(6.0)


@form("hard_sigmoid", branch_free=True)
def hard_sigmoid_bf(z, p):
    return (min(max(z / np.float32(6.0) + np.float32(0.5), np.float32(0.0)), np.float32(1.0)),
            np.float32(z > np.float32(-3.0)) * np.float32(z < np.float32(3.0)) / np.float32(6.0))


@form("hard_swish")
def hard_swish(z, p):
    if z < np.float32(-3.0):
        return zero32, zero32
    if z > np.float32(3.0):
        return z, one32
    return z * (z + np.float32(3.0)) / np.float32(6.0), z / np.float32(3.0) + np.float32(0.5)


@form("hard_swish", branch_free=True)
def hard_swish_bf(z, p):
    lo, hi = np.float32(z < np.float32(-3.0)), np.float32(z > np.float32(3.0))
    a = z * min(max(z + np.float32(3.0), np.float32(0.0)), np.float32(6.0)) / np.float32(6.0)
    return a, (np.float32(1.0) - lo - hi) * (z / np.float32(3.0) + np.float32(0.5)) + hi
