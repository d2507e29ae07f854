"""The activation catalog: a plain dict of named entries behind small lookup functions.

Each entry (`Activation`) holds its torch function `fn(x, **params)`, a factory for an `nn.Module` (torch's
own module where torch has one), its parameters with defaults and valid ranges, its formula (LaTeX and
plain text), the weight initialisation it is normally paired with and that scheme's gain, and a one-line
description citing its paper. Nothing here states a property of the function (range, monotonicity, ...):
those are measured from `fn` itself by `actlab.catalog.properties`, so a user's activation gets the same record.

Key choices:
- Lookup is case- and separator-insensitive (`LeakyReLU`, `leaky-relu` and `leaky_relu` are one name).
- A user's activation enters as a Python callable (the API) or as an import path `package.module:function`
  (the CLI, later study files). Extra keyword arguments with numeric defaults become its parameters.
- `softmax` is the one vector-valued entry; it is marked output-only and has no element-wise properties.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import inspect
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from torch import Tensor, nn

from actlab.catalog.moments import gaussian_moments
from actlab.errors import ActlabError, closest, excerpt

INIT_SCHEMES = ("kaiming", "lecun", "xavier")  # He (fan_in), LeCun (fan_in), Glorot (fan_in + fan_out)


@dataclass(frozen=True)
class Param:
    """One numeric parameter of an activation, with its default and the interval of allowed values."""

    name: str
    default: float
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False  # True: `low` itself is not allowed
    high_open: bool = False
    doc: str = ""

    def allowed(self) -> str:
        """The allowed values in words, e.g. '0 <= alpha < 1' or 'any finite number'."""
        lo = None if self.low == -math.inf else f"{self.low:g} {'<' if self.low_open else '<='} "
        hi = None if self.high == math.inf else f" {'<' if self.high_open else '<='} {self.high:g}"
        if lo is None and hi is None:
            return f"{self.name}: any finite number"
        return f"{lo or ''}{self.name}{hi or ''}"

    def check(self, value: Any, owner: str) -> float:
        """`value` as a float, or ActlabError naming the activation, the parameter and what is allowed."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ActlabError(
                f"{owner}: parameter {self.name}={value!r} is not a number; allowed: {self.allowed()}"
            ) from None
        ok = math.isfinite(v)
        ok = ok and (v > self.low if self.low_open else v >= self.low)
        ok = ok and (v < self.high if self.high_open else v <= self.high)
        if not ok:
            raise ActlabError(f"{owner}: parameter {self.name}={value!r} is out of range; allowed: {self.allowed()}")
        return v


@dataclass(frozen=True, eq=False)
class Activation:
    """A catalog entry. Call it like its function: `act(x, alpha=0.2)`; build a layer with `act.module()`.

    An entry equals itself, an entry with every field equal, and its canonical name (`entry == "relu"`), so a
    configuration that holds the entry still compares with the name it was given; it hashes as its name."""

    name: str
    fn: Callable[..., Tensor]  # fn(x, **params) -> Tensor of x's shape
    module_factory: Callable[..., nn.Module]  # module_factory(**params) -> nn.Module
    params: tuple[Param, ...] = ()
    latex: str = ""
    text: str = ""
    init: str = "kaiming"  # the scheme normally paired with it, one of INIT_SCHEMES
    gain: Callable[[Mapping[str, float]], float] = field(default=lambda p: 1.0, repr=False)
    description: str = ""  # one line, citing the paper
    vector: bool = False  # vector-valued (softmax): output layer only, no element-wise properties
    source: str = "builtin"  # 'builtin', or where a user's activation came from
    aliases: tuple[str, ...] = ()
    # a gated entry y = φ(a)·b of two projections a = xW + b, b = xV + c: φ here (its parameters are the
    # entry's); `fn` is then the self-gated diagonal x·φ(x), what the entry computes when both inputs are equal
    gate: Activation | None = field(default=None, repr=False)

    @property
    def output_only(self) -> bool:
        return self.vector

    @property
    def gated(self) -> bool:
        return self.gate is not None

    @property
    def kind(self) -> str:
        """'element-wise', 'vector' (softmax: output only) or 'gated' (two inputs: a transformer's FFN)."""
        return "gated" if self.gated else "vector" if self.vector else "element-wise"

    def gated_fn(self, a: Tensor, b: Tensor, **params: Any) -> Tensor:
        """A gated entry's two-input function φ(a)·b."""
        if self.gate is None:
            raise ActlabError(f"activation {self.name!r} is element-wise; only gated entries take two inputs")
        return self.gate.fn(a, **self.resolve(**params)) * b

    def resolve(self, **overrides: Any) -> dict[str, float]:
        """Defaults with `overrides` applied, every value checked against its range."""
        known = {p.name: p for p in self.params}
        for key in overrides:
            if key not in known:
                have = ", ".join(known) or "no parameters"
                raise ActlabError(f"{self.name}: unknown parameter {key!r}; it has {have}")
        return {p.name: p.check(overrides.get(p.name, p.default), self.name) for p in self.params}

    def __call__(self, x: Tensor, **params: Any) -> Tensor:
        return self.fn(x, **self.resolve(**params))

    def module(self, **params: Any) -> nn.Module:
        """A fresh `nn.Module` computing this activation with the given parameters."""
        return self.module_factory(**self.resolve(**params))

    def init_gain(self, **params: Any) -> float:
        """Gain of the paired init scheme: weight std = gain / sqrt(fan) (fan_in; Glorot: mean of fans)."""
        return float(self.gain(self.resolve(**params)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):  # any spelling of its name or an alias ('LeakyReLU' == the leaky_relu entry)
            return other == self.name or (_KEYS.get(_key(other)) == self.name and _REGISTRY.get(self.name) is self)
        if not isinstance(other, Activation):
            return NotImplemented
        return self is other or all(getattr(self, f) == getattr(other, f) for f in self.__dataclass_fields__)

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    def __reduce__(self) -> str | tuple:
        """The catalog's own entry (or an import path's) is pickled by its name and looked up again where it is
        unpickled, so a configuration holding it crosses to a worker process as its name did; any other entry
        (a copy with another function, a user's callable) pickles its fields, or fails to, but is never
        silently replaced by the catalog's entry of the same name."""
        if registered(self):
            return (get, (self.name,))
        return (_rebuild, (tuple(getattr(self, f) for f in self.__dataclass_fields__),))

    def label(self, **params: Any) -> str:
        """Name with any non-default parameters, e.g. 'leaky_relu(alpha=0.2)'."""
        values = self.resolve(**params)
        shown = [f"{p.name}={values[p.name]:g}" for p in self.params if values[p.name] != p.default]
        return f"{self.name}({', '.join(shown)})" if shown else self.name


class ActivationModule(nn.Module):
    """`fn(x, **params)` as a module, for entries torch has no module for and for users' functions."""

    def __init__(self, fn: Callable[..., Tensor], name: str, **params: float):
        super().__init__()
        self.fn, self.act_name, self.params = fn, name, dict(params)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, **self.params)

    def _get_name(self) -> str:  # what nn.Module's repr prints
        return self.act_name

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.params.items())


# ----------------------------------------------------------------------------------------------------------
# Functions torch does not provide under these signatures (each also wrapped by ActivationModule).


def swish(x: Tensor, beta: float = 1.0) -> Tensor:
    """x·σ(βx). Swish (Ramachandran et al. 2017); β = 1 is SiLU (Elfwing et al. 2018)."""
    return x * torch.sigmoid(beta * x)


def gelu_sigmoid(x: Tensor) -> Tensor:
    """x·σ(1.702x), the sigmoid approximation of GELU (Hendrycks & Gimpel 2016)."""
    return x * torch.sigmoid(1.702 * x)


def relu2(x: Tensor) -> Tensor:
    """max(0, x)² (So et al. 2021, Primer: Searching for Efficient Transformers for Language Modeling)."""
    return torch.relu(x).square()


def prelu(x: Tensor, alpha: float = 0.25) -> Tensor:
    """max(0, x) + α·min(0, x) with α learnable in the module (He et al. 2015)."""
    return F.prelu(x, torch.tensor([alpha], dtype=x.dtype, device=x.device))


def softmax(x: Tensor) -> Tensor:
    """exp(x_i) / Σ_j exp(x_j) over the last dimension (Bridle 1990)."""
    return torch.softmax(x, dim=-1)


def _module(fn: Callable[..., Tensor], name: str) -> Callable[..., nn.Module]:
    return lambda **params: ActivationModule(fn, name, **params)


def _rectifier_gain(p: Mapping[str, float]) -> float:
    """He et al. 2015: sqrt(2 / (1 + α²)) for a rectifier with negative slope α."""
    return math.sqrt(2.0 / (1.0 + p.get("alpha", 0.0) ** 2))


_ALPHA_SLOPE = Param("alpha", 0.01, 0.0, 1.0, high_open=True, doc="slope for x < 0")
_SQRT2 = lambda p: math.sqrt(2.0)  # noqa: E731  He/Kaiming gain for ReLU-like units

_BUILTINS: tuple[Activation, ...] = (
    Activation("sigmoid", lambda x: torch.sigmoid(x), lambda: nn.Sigmoid(),
               latex=r"\sigma(x) = \frac{1}{1 + e^{-x}}", text="1 / (1 + exp(-x))", init="xavier",
               description="Logistic sigmoid, the classic squashing unit (Rumelhart, Hinton & Williams 1986).",
               aliases=("logistic",)),
    Activation("tanh", lambda x: torch.tanh(x), lambda: nn.Tanh(),
               latex=r"\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}", text="tanh(x)", init="xavier",
               gain=lambda p: 5.0 / 3.0,
               description="Hyperbolic tangent, the zero-centred sigmoid (LeCun et al. 1998, Efficient BackProp)."),
    Activation("hard_tanh", lambda x: F.hardtanh(x), lambda: nn.Hardtanh(),
               latex=r"\max(-1, \min(1, x))", text="clamp(x, -1, 1)", init="xavier",
               description="Piecewise-linear tanh (Collobert 2004, PhD thesis)."),
    Activation("softsign", lambda x: F.softsign(x), lambda: nn.Softsign(),
               latex=r"\frac{x}{1 + |x|}", text="x / (1 + |x|)", init="xavier",
               description="Polynomially saturating tanh alternative (Turian, Bergstra & Bengio 2009)."),
    Activation("relu", lambda x: torch.relu(x), lambda: nn.ReLU(),
               latex=r"\max(0, x)", text="max(0, x)", gain=_SQRT2,
               description="Rectified linear unit (Nair & Hinton 2010; Glorot, Bordes & Bengio 2011).",
               aliases=("rectifier",)),
    Activation("relu6", lambda x: F.relu6(x), lambda: nn.ReLU6(),
               latex=r"\min(\max(0, x), 6)", text="min(max(0, x), 6)", gain=_SQRT2,
               description="ReLU capped at 6 (Krizhevsky 2010, Convolutional Deep Belief Networks on CIFAR-10)."),
    Activation("leaky_relu", lambda x, alpha: F.leaky_relu(x, alpha),
               lambda alpha: nn.LeakyReLU(negative_slope=alpha), params=(_ALPHA_SLOPE,),
               latex=r"\max(0, x) + \alpha \min(0, x)", text="x if x >= 0 else alpha * x", gain=_rectifier_gain,
               description="ReLU with a small slope for x < 0 (Maas, Hannun & Ng 2013).", aliases=("lrelu",)),
    Activation("prelu", prelu, lambda alpha: nn.PReLU(init=alpha),
               params=(Param("alpha", 0.25, doc="initial slope for x < 0 (learned)"),),
               latex=r"\max(0, x) + a \min(0, x),\ a\ \mathrm{learned}", text="x if x >= 0 else a * x (a learned)",
               gain=_rectifier_gain,
               description="Parametric ReLU, the negative slope is learned (He et al. 2015, Delving Deep into "
                           "Rectifiers)."),
    Activation("elu", lambda x, alpha: F.elu(x, alpha), lambda alpha: nn.ELU(alpha=alpha),
               params=(Param("alpha", 1.0, 0.0, doc="saturation value -alpha for x -> -inf"),),
               latex=r"x\ (x > 0);\ \alpha (e^{x} - 1)\ (x \le 0)", text="x if x > 0 else alpha * (exp(x) - 1)",
               gain=_SQRT2, description="Exponential linear unit (Clevert, Unterthiner & Hochreiter 2016)."),
    Activation("celu", lambda x, alpha: F.celu(x, alpha), lambda alpha: nn.CELU(alpha=alpha),
               params=(Param("alpha", 1.0, 0.0, low_open=True, doc="saturation value -alpha for x -> -inf"),),
               latex=r"\max(0, x) + \min(0, \alpha (e^{x/\alpha} - 1))",
               text="max(0, x) + min(0, alpha * (exp(x / alpha) - 1))", gain=_SQRT2,
               description="Continuously differentiable ELU for every alpha (Barron 2017)."),
    Activation("selu", lambda x: F.selu(x), lambda: nn.SELU(),
               latex=(r"\lambda\,[x\ (x > 0);\ \alpha (e^{x} - 1)\ (x \le 0)],"
                      r"\ \lambda \approx 1.0507,\ \alpha \approx 1.6733"),
               text="1.0507 * (x if x > 0 else 1.6733 * (exp(x) - 1))", init="lecun",
               description="Scaled ELU, self-normalising with LeCun init (Klambauer et al. 2017)."),
    # torch switches softplus to the identity above beta*x > 20, exact only to float32 rounding; 40 is exact
    # in float64 too, and exp(40) ≈ 2.4e17 is still far from float32's overflow.
    Activation("softplus", lambda x, beta: F.softplus(x, beta, threshold=40.0),
               lambda beta: nn.Softplus(beta=beta, threshold=40.0),
               params=(Param("beta", 1.0, 0.0, low_open=True, doc="sharpness; beta -> inf gives ReLU"),),
               latex=r"\frac{1}{\beta} \log(1 + e^{\beta x})", text="log(1 + exp(beta * x)) / beta", gain=_SQRT2,
               description="Smooth ReLU (Dugas et al. 2001)."),
    Activation("swish", swish,
               lambda beta: nn.SiLU() if beta == 1.0 else ActivationModule(swish, "swish", beta=beta),
               params=(Param("beta", 1.0, 0.0, doc="beta = 1 is SiLU; beta -> inf gives ReLU"),),
               latex=r"x \, \sigma(\beta x)", text="x * sigmoid(beta * x)", gain=_SQRT2,
               description="Swish (Ramachandran, Zoph & Le 2017); beta = 1 is SiLU (Elfwing et al. 2018).",
               aliases=("silu",)),
    Activation("mish", lambda x: F.mish(x), lambda: nn.Mish(),
               latex=r"x \tanh(\log(1 + e^{x}))", text="x * tanh(softplus(x))", gain=_SQRT2,
               description="Self-regularised non-monotonic activation (Misra 2019)."),
    Activation("gelu", lambda x: F.gelu(x), lambda: nn.GELU(),
               latex=r"x \, \Phi(x) = \frac{x}{2} \left(1 + \mathrm{erf}(x / \sqrt{2})\right)",
               text="x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))", gain=_SQRT2,
               description="Gaussian error linear unit, exact erf form (Hendrycks & Gimpel 2016).",
               aliases=("gelu_erf", "gelu_exact")),
    Activation("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), lambda: nn.GELU(approximate="tanh"),
               latex=r"\frac{x}{2} \left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715 x^{3})\right)\right)",
               text="0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))", gain=_SQRT2,
               description="GELU, tanh approximation (Hendrycks & Gimpel 2016; used by BERT and GPT-2)."),
    Activation("gelu_sigmoid", lambda x: gelu_sigmoid(x), _module(lambda x: gelu_sigmoid(x), "gelu_sigmoid"),
               latex=r"x \, \sigma(1.702 x)", text="x * sigmoid(1.702 * x)", gain=_SQRT2,
               description="GELU, sigmoid approximation (Hendrycks & Gimpel 2016)."),
    Activation("hard_sigmoid", lambda x: F.hardsigmoid(x), lambda: nn.Hardsigmoid(),
               latex=r"\max(0, \min(1, (x + 3) / 6))", text="clamp((x + 3) / 6, 0, 1)", init="xavier",
               description="Piecewise-linear sigmoid (Courbariaux et al. 2015; MobileNetV3 form, Howard et al. 2019)."),
    Activation("hard_swish", lambda x: F.hardswish(x), lambda: nn.Hardswish(),
               latex=r"x \, \max(0, \min(1, (x + 3) / 6))", text="x * clamp((x + 3) / 6, 0, 1)", gain=_SQRT2,
               description="Piecewise swish for cheap inference (Howard et al. 2019, Searching for MobileNetV3)."),
    Activation("identity", lambda x: x, lambda: nn.Identity(),
               latex=r"x", text="x", init="lecun",
               description="No nonlinearity: the network stays a linear map.", aliases=("linear", "none")),
    Activation("softmax", lambda x: softmax(x), lambda: nn.Softmax(dim=-1),
               latex=r"\frac{e^{x_i}}{\sum_j e^{x_j}}", text="exp(x_i) / sum_j exp(x_j)", init="xavier",
               description="Normalised exponential over the last dimension, for class probabilities (Bridle 1990).",
               vector=True),
    # appended: a new entry goes last, so catalog order (and every colour, actlab.catalog.palette) never moves
    Activation("relu2", lambda x: relu2(x), _module(lambda x: relu2(x), "relu2"),
               latex=r"\max(0, x)^{2}", text="max(0, x)**2", init="lecun", gain=lambda p: math.sqrt(2.0 / 3.0),
               description="Squared ReLU, found by search for transformer FFNs (So et al. 2021, Primer); the "
                           "modded-nanogpt speedrun's FFN activation.", aliases=("squared_relu", "relu_squared")),
)


def _key(name: str) -> str:
    """Lookup key: lower case with spaces, '_' and '-' removed."""
    return re.sub(r"[\s_\-]", "", name.lower())


_REGISTRY: dict[str, Activation] = {}  # canonical name -> entry, in catalog order
_KEYS: dict[str, str] = {}  # lookup key of every name and alias -> canonical name


def register(act: Activation, *, replace_existing: bool = False) -> Activation:
    """Add `act` to the catalog under its name and aliases; an existing name needs `replace_existing`."""
    keys = [_key(act.name), *map(_key, act.aliases)]
    for k in keys:
        owner = _KEYS.get(k)
        if owner is not None and not (replace_existing and owner == act.name):
            raise ActlabError(f"activation name {act.name!r}: {k!r} is already taken by {owner!r}")
    _REGISTRY[act.name] = act
    _KEYS.update(dict.fromkeys(keys, act.name))
    return act


for _act in _BUILTINS:
    register(_act)


# ---------------------------------------------------------------------------------------------- gated entries
# y = φ(xW + b) ⊙ (xV + c) (Dauphin et al. 2017; Shazeer 2020, GLU Variants Improve Transformer): two
# projections, so only a model that builds the second one takes them (the transformer's FFN slot). `gated:NAME`
# makes one for any element-wise entry, a user's included.
GATED_MODELS = ("transformer",)


def _gated(phi: Activation, name: str, latex: str, description: str, aliases: tuple[str, ...] = ()) -> Activation:
    def diagonal(x: Tensor, **p: float) -> Tensor:  # both inputs equal: x·φ(x)
        return x * phi.fn(x, **p)

    return Activation(name, diagonal, _module(diagonal, name), params=phi.params,
                      latex=latex + r",\ a = xW + b_W,\ b = xV + b_V",
                      text=f"{phi.name}(a) * b, a = xW + b_W, b = xV + b_V", init="lecun", description=description,
                      source=phi.source, aliases=aliases, gate=phi)


_GATED_BUILTINS = (
    _gated(_REGISTRY["sigmoid"], "glu", r"\sigma(a) \odot b",
           "Gated linear unit, σ(a)·b (Dauphin et al. 2017, Language Modeling with Gated Convolutional Networks)."),
    _gated(_REGISTRY["identity"], "bilinear", r"a \odot b",
           "Bilinear layer, a·b: a gate with no nonlinearity (Mnih & Hinton 2007; Shazeer 2020)."),
    _gated(_REGISTRY["relu"], "reglu", r"\max(0, a) \odot b",
           "ReLU-gated linear unit, max(0, a)·b (Shazeer 2020, GLU Variants Improve Transformer)."),
    _gated(_REGISTRY["gelu"], "geglu", r"a\,\Phi(a) \odot b", "GELU-gated linear unit, GELU(a)·b (Shazeer 2020)."),
    _gated(_REGISTRY["swish"], "swiglu", r"a\,\sigma(\beta a) \odot b",
           "Swish-gated linear unit, Swish_β(a)·b (Shazeer 2020); the FFN of PaLM and LLaMA.", aliases=("silu_glu",)),
)
for _act in _GATED_BUILTINS:
    register(_act)


def gated_entry(gate: Activation) -> Activation:
    """The gated entry `gated:NAME` of an element-wise entry, made once and registered (so it pickles by name)."""
    if gate.gated or gate.vector:
        raise ActlabError(f"gated:{gate.name}: the gate must be an element-wise activation, not a {gate.kind} one; "
                          f"allowed: gated:NAME for any element-wise entry ({', '.join(names(include_vector=False))}) "
                          "or import path")
    name = f"gated:{gate.name}"
    have = _REGISTRY.get(name)
    if have is not None and have.gate is gate:
        return have
    latex = rf"\phi(a) \odot b,\ \phi = \mathrm{{{gate.name}}}"
    about = f"{gate.name}-gated linear unit, {gate.name}(a)·b (Shazeer 2020's family)."
    return register(_gated(gate, name, latex, about), replace_existing=True)


def canonical(name: str) -> str:
    """The catalog's own name for `name` as a user may spell it ('Leaky-ReLU' → 'leaky_relu', an alias → its
    entry); anything else (an import path, an unknown name) as given."""
    return _KEYS.get(_key(name), name)


def registered(act: Activation) -> bool:
    """Whether `act` is the entry the catalog holds under its name (a shipped or registered one), or the entry
    of its import path: what looking its name up again gives."""
    if _REGISTRY.get(act.name) is act:
        return True
    return ":" in act.name and act.source == act.name and _cached_import(act.name) is act


def _cached_import(path: str) -> Activation | None:
    try:
        return from_import_path(path)
    except ActlabError:
        return None


def _rebuild(values: tuple) -> Activation:
    return Activation(*values)


def is_builtin(act: Activation) -> bool:
    """Whether `act` is one of the entries actlab ships, still registered under its name: not a user's
    function, an `Activation` a user built (its `source` defaults to 'builtin' too), a copy of a shipped entry
    with another function, nor one registered over a shipped name."""
    return any(act is b for b in (*_BUILTINS, *_GATED_BUILTINS)) and _REGISTRY.get(act.name) is act


def names(*, include_vector: bool = True, include_gated: bool = False) -> list[str]:
    """Canonical names of the catalog, in catalog order: the element-wise entries, softmax unless
    include_vector=False, the gated (two-input) entries only with include_gated=True."""
    return [n for n, a in _REGISTRY.items() if (include_vector or not a.vector) and (include_gated or not a.gated)]


def gated_names() -> list[str]:
    """The gated entries (y = φ(a)·b), shipped ones first, then any `gated:NAME` made in this process."""
    return [n for n, a in _REGISTRY.items() if a.gated]


_CATALOG_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("actlab_catalog_only", default=False)


@contextlib.contextmanager
def catalog_only() -> Iterator[None]:
    """Within this block (this thread or task), `get` resolves catalog names only and refuses import paths:
    what reads names from stored data on someone else's behalf (the explorer) never imports code."""
    token = _CATALOG_ONLY.set(True)
    try:
        yield
    finally:
        _CATALOG_ONLY.reset(token)


def get(spec: str | Activation | Callable[..., Any]) -> Activation:
    """The catalog entry for a name, an import path `pkg.module:function`, an `Activation` or a callable.

    Names are case- and separator-insensitive. An unknown name raises ActlabError listing the closest.
    Inside `catalog_only()` an import path raises ActlabError instead of being imported.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        if spec.lower().startswith("gated:"):
            return gated_entry(get(spec[6:]))
        if ":" in spec:
            if _CATALOG_ONLY.get():
                raise ActlabError(f"activation {spec!r} is not a catalog entry, and code named in stored data is "
                                  "not imported here; `actlab report RUN_DIR` draws it in your own shell")
            return from_import_path(spec)
        canonical = _KEYS.get(_key(spec))
        if canonical is None:
            near = closest(_key(spec), _KEYS)
            hint = f"; did you mean {', '.join(sorted({_KEYS[k] for k in near}))}?" if near else ""
            raise ActlabError(
                f"activation {excerpt(spec)} is unknown{hint} Known: {', '.join(_REGISTRY)}; "
                "or give an import path 'package.module:function'"
            )
        return _REGISTRY[canonical]
    if callable(spec):
        return from_callable(spec)
    raise ActlabError(f"activation {spec!r} must be a name, an import path or a callable")


def activation(spec: str | Activation | Callable[..., Any] = "relu", **params: Any) -> nn.Module:
    """An `nn.Module` for `spec` with `params`, e.g. `activation("leaky_relu", alpha=0.2)`."""
    return get(spec).module(**params)


@functools.lru_cache(maxsize=128)
def from_import_path(path: str) -> Activation:
    """The activation at `package.module:attribute` (a function, an nn.Module class or instance).

    Resolved once per path and process (cached, like the module import itself): a study's cells all hand
    the same entry on, checked once, its gain measured once per parameter setting."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ActlabError(f"activation import path {path!r} must look like 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ActlabError(f"activation import path {path!r}: cannot import module {module_name!r} ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ActlabError(f"activation import path {path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ActlabError(
            f"activation import path {path!r} names a {type(obj).__name__}, which is not callable; "
            "allowed: a function of one tensor, or an nn.Module class or instance"
        )
    return from_callable(obj, name=path, source=path)


def from_callable(obj: Callable[..., Any], name: str | None = None, source: str | None = None) -> Activation:
    """An `Activation` for a user's function `f(x, p=default, ...)`, nn.Module class, or nn.Module instance.

    Extra arguments with numeric defaults become parameters (any finite value allowed). The paired init is
    LeCun with the variance-preserving gain 1 / sqrt(E[phi(z)^2]), z ~ N(0, 1), measured from the function.
    """
    label = name or getattr(obj, "__qualname__", None) or type(obj).__name__
    if isinstance(obj, nn.Module):
        params: tuple[Param, ...] = ()
        fn: Callable[..., Tensor] = lambda x: obj(x)  # noqa: E731
        factory: Callable[..., nn.Module] = lambda: obj  # noqa: E731  a module instance is used as it is
        doc_src: Any = type(obj)
    elif isinstance(obj, type) and issubclass(obj, nn.Module):
        params = _numeric_params(obj.__init__, label)
        fn = lambda x, **p: obj(**p)(x)  # noqa: E731
        factory, doc_src = obj, obj
    else:
        params = _numeric_params(obj, label)
        fn, factory, doc_src = obj, _module(obj, label), obj
    @functools.lru_cache(maxsize=64)
    def gain(items: tuple[tuple[str, float], ...]) -> float:  # one quadrature per parameter setting
        return _variance_gain(fn, dict(items))

    act = Activation(
        name=label, fn=fn, module_factory=factory, params=params, latex=r"\mathrm{user}",
        text=f"user-defined ({source or label})", init="lecun", gain=lambda p: gain(tuple(sorted(p.items()))),
        description=(inspect.getdoc(doc_src) or "User-defined activation.").splitlines()[0],
        source=source or "callable",
    )
    _check_elementwise(act)
    return act


def _numeric_params(fn: Callable[..., Any], label: str) -> tuple[Param, ...]:
    """Parameters of `fn` after its input: each needs a numeric default."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return ()
    args = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not args:
        raise ActlabError(f"activation {label!r} takes no argument; allowed: a function of one tensor")
    out = []
    for p in args[1:]:  # the input tensor (or `self` of a module's __init__) comes first
        d = p.default
        if d is p.empty or isinstance(d, bool) or not isinstance(d, (int, float)):
            raise ActlabError(
                f"activation {label!r}: argument {p.name!r} needs a numeric default; allowed: "
                "f(x) or f(x, name=number, ...)"
            )
        out.append(Param(p.name, float(d)))
    return tuple(out)


def _check_elementwise(act: Activation) -> None:
    """A user's activation must map a float tensor to a tensor of the same shape."""
    x = torch.linspace(-3.0, 3.0, 7, dtype=torch.float64)
    try:
        y = act(x)
    except Exception as e:  # the user's code may raise anything; report it as bad input
        raise ActlabError(f"activation {act.name!r} failed on a float64 tensor: {type(e).__name__}: {e}") from None
    if not isinstance(y, Tensor) or y.shape != x.shape:
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ActlabError(f"activation {act.name!r} returned {got} for input of shape (7,); allowed: a tensor of the "
                          "input's shape")
    try:  # element-wise: each value alone gives what it gives among the others (a softmax does not)
        alone = torch.cat([act(x[i: i + 1]).reshape(1) for i in range(len(x))])
    except Exception as e:  # noqa: BLE001 - the user's code, reported as bad input
        raise ActlabError(f"activation {act.name!r} failed on a one-element tensor: {type(e).__name__}: {e}") from None
    if not torch.allclose(alone.to(y.dtype), y, rtol=1e-6, atol=1e-9, equal_nan=True):
        raise ActlabError(f"activation {act.name!r} is not element-wise: each value's output depends on the other "
                          "values of the tensor (a softmax or a normalisation); allowed: a function applied to each "
                          "value alone (a vector-valued output goes in output_activation as softmax)")


def _variance_gain(fn: Callable[..., Tensor], params: Mapping[str, float]) -> float:
    """1 / sqrt(E[phi(z)^2]) for z ~ N(0, 1): the gain that keeps the forward second moment at 1."""
    second = gaussian_moments(lambda x: fn(x, **params))[1]
    return 1.0 / math.sqrt(second) if second > 0 else 1.0



# ---------------------------------------------------------------------------------- in a configuration

def _entry(spec: Any) -> Activation:
    """A configuration's activation: a name, an import path or an entry (a bare function has no name to write
    back: register it, `actlab.register(actlab.from_callable(f, name=...))`, and give its name)."""
    if not isinstance(spec, (str, Activation)):
        raise ActlabError(f"activation {excerpt(spec)} must be a catalog name, an import path 'package.module:"
                          "function' or a catalog entry; register a function first (actlab.register) and give its name")
    return get(spec)


def _optional(spec: Any) -> Activation | None:
    return None if spec is None else _entry(spec)


def _spec(act: Activation | None) -> str | None:
    return None if act is None else act.name


# A configuration's activation field: a name, an import path or an entry, resolved into the catalog entry once,
# where the configuration is built (a study file, a --set, a request, a Python call), and written back as its
# name or import path. Everything that receives the configuration receives the entry.
ActivationField = Annotated[Activation, PlainValidator(_entry), PlainSerializer(_spec, return_type=str),
                            WithJsonSchema({"type": "string", "description": "a catalog name or "
                                                                             "'package.module:function'"})]
OptionalActivationField = Annotated[Activation | None, PlainValidator(_optional),
                                    PlainSerializer(_spec, return_type=str | None),
                                    WithJsonSchema({"type": ["string", "null"],
                                                    "description": "a catalog name, an import path, or none"})]
