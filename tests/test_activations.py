"""The catalog against independent references: NumPy float64 formulas, torch's own functions, finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import erf, expit
from torch import nn

import actlab
from actlab.catalog.activations import get, names, register

# SELU's constants as published (Klambauer et al. 2017), not read from torch.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


def _softplus(x, b):
    return np.logaddexp(0.0, b * x) / b


# name -> (params, float64 NumPy formula). Parameters are set off their defaults where an entry has any.
NUMPY_FORMULAS = {
    "sigmoid": ({}, lambda x: expit(x)),
    "tanh": ({}, np.tanh),
    "hard_tanh": ({}, lambda x: np.clip(x, -1, 1)),
    "softsign": ({}, lambda x: x / (1 + np.abs(x))),
    "relu": ({}, lambda x: np.maximum(x, 0)),
    "relu6": ({}, lambda x: np.minimum(np.maximum(x, 0), 6)),
    "leaky_relu": ({"alpha": 0.2}, lambda x: np.where(x >= 0, x, 0.2 * x)),
    "prelu": ({"alpha": 0.1}, lambda x: np.where(x >= 0, x, 0.1 * x)),
    "elu": ({"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    "celu": ({"alpha": 2.0}, lambda x: np.maximum(x, 0) + np.minimum(0, 2.0 * np.expm1(x / 2.0))),
    "selu": ({}, lambda x: SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))),
    "softplus": ({"beta": 3.0}, lambda x: _softplus(x, 3.0)),
    "swish": ({"beta": 2.0}, lambda x: x * expit(2.0 * x)),
    "mish": ({}, lambda x: x * np.tanh(_softplus(x, 1.0))),
    "gelu": ({}, lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2)))),
    "gelu_tanh": ({}, lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
    "gelu_sigmoid": ({}, lambda x: x * expit(1.702 * x)),
    "hard_sigmoid": ({}, lambda x: np.clip((x + 3) / 6, 0, 1)),
    "hard_swish": ({}, lambda x: x * np.clip((x + 3) / 6, 0, 1)),
    "identity": ({}, lambda x: x),
    "relu2": ({}, lambda x: np.maximum(x, 0) ** 2),  # squared ReLU (So et al. 2021)
}

# name -> torch's functional equivalent with the same parameters as NUMPY_FORMULAS.
TORCH_FUNCTIONS = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "hard_tanh": F.hardtanh, "softsign": F.softsign,
    "relu": F.relu, "relu6": F.relu6, "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "prelu": lambda x: F.prelu(x, torch.tensor([0.1], dtype=x.dtype)), "elu": lambda x: F.elu(x, 0.5),
    "celu": lambda x: F.celu(x, 2.0), "selu": F.selu, "softplus": lambda x: F.softplus(x, 3.0, threshold=40.0),
    "mish": F.mish, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "hard_sigmoid": F.hardsigmoid, "hard_swish": F.hardswish,
}

# Points where a derivative jumps: finite differences are not compared within 1e-3 of them.
KINKS = (-3.0, -1.0, 0.0, 1.0, 3.0, 6.0)

X64 = torch.cat([torch.linspace(-8, 8, 1601, dtype=torch.float64),
                 torch.tensor([-30.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0, 30.0], dtype=torch.float64)])


def test_catalog_has_every_required_entry():
    required = set(NUMPY_FORMULAS) | {"softmax"}
    assert required <= set(names())
    assert get("softmax").vector and get("softmax").output_only
    assert not any(get(n).vector for n in NUMPY_FORMULAS)


@pytest.mark.parametrize("name", sorted(NUMPY_FORMULAS))
def test_function_matches_float64_formula(name):
    params, ref = NUMPY_FORMULAS[name]
    got = get(name)(X64, **params).numpy()
    np.testing.assert_allclose(got, ref(X64.numpy()), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(TORCH_FUNCTIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_function_matches_torch_functional(name, dtype):
    params, _ = NUMPY_FORMULAS[name]
    x = X64.to(dtype)
    torch.testing.assert_close(get(name)(x, **params), TORCH_FUNCTIONS[name](x))


@pytest.mark.parametrize("name", sorted(NUMPY_FORMULAS))
def test_module_matches_function(name):
    params, ref = NUMPY_FORMULAS[name]
    module = actlab.activation(name, **params).double()  # PReLU holds a float32 weight until converted
    assert isinstance(module, nn.Module)
    with torch.no_grad():
        got = module(X64.clone()).numpy()
    rtol = 1e-7 if list(module.parameters()) else 1e-12  # a learnable alpha is stored in float32
    np.testing.assert_allclose(got, ref(X64.numpy()), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize(("name", "params", "cls"), [
    ("relu", {}, nn.ReLU), ("leaky_relu", {"alpha": 0.2}, nn.LeakyReLU), ("elu", {"alpha": 0.5}, nn.ELU),
    ("gelu", {}, nn.GELU), ("gelu_tanh", {}, nn.GELU), ("swish", {}, nn.SiLU), ("mish", {}, nn.Mish),
    ("selu", {}, nn.SELU), ("softplus", {"beta": 2.0}, nn.Softplus), ("hard_swish", {}, nn.Hardswish),
    ("prelu", {"alpha": 0.1}, nn.PReLU), ("softmax", {}, nn.Softmax),
])
def test_module_is_torchs_own_where_torch_has_one(name, params, cls):
    assert type(actlab.activation(name, **params)) is cls


def test_module_parameters_reach_torch_modules():
    assert actlab.activation("leaky_relu", alpha=0.2).negative_slope == 0.2
    assert actlab.activation("softplus", beta=2.0).beta == 2.0
    prelu = actlab.activation("prelu", alpha=0.1)
    assert prelu.weight.requires_grad and prelu.weight.item() == pytest.approx(0.1)
    swish2 = actlab.activation("swish", beta=2.0)
    assert "swish(beta=2)" in repr(swish2)


def test_softmax_is_a_distribution_over_the_last_dimension():
    x = torch.randn(5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = get("softmax")(x)
    ref = np.exp(x.numpy()) / np.exp(x.numpy()).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(NUMPY_FORMULAS))
def test_autograd_derivative_matches_finite_differences(name):
    params, ref = NUMPY_FORMULAS[name]
    x = torch.linspace(-6, 6, 2401, dtype=torch.float64)
    away = torch.stack([(x - k).abs() for k in KINKS]).min(0).values > 1e-3
    x = x[away]
    y, dy = actlab.evaluate(name, x, **params)
    h = 1e-6
    fd = (ref(x.numpy() + h) - ref(x.numpy() - h)) / (2 * h)  # central differences of the NumPy formula
    np.testing.assert_allclose(dy, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spelling", ["leaky_relu", "LeakyReLU", "leaky-relu", "Leaky ReLU", "LEAKY_RELU"])
def test_lookup_ignores_case_and_separators(spelling):
    assert get(spelling).name == "leaky_relu"


def test_aliases():
    assert get("SiLU").name == "swish" and get("swish").params[0].default == 1.0
    assert get("HardSwish").name == "hard_swish"
    assert get("linear").name == "identity"


def test_unknown_name_lists_the_closest():
    with pytest.raises(actlab.ActlabError, match=r"'rleu' is unknown; did you mean .*relu"):
        get("rleu")


@pytest.mark.parametrize(("name", "params", "match"), [
    ("leaky_relu", {"alpha": -0.1}, r"alpha=-0.1 is out of range; allowed: 0 <= alpha < 1"),
    ("elu", {"alpha": -1.0}, r"alpha=-1.0 is out of range; allowed: 0 <= alpha"),
    ("softplus", {"beta": 0.0}, r"beta=0.0 is out of range; allowed: 0 < beta"),
    ("celu", {"alpha": "big"}, r"alpha='big' is not a number"),
    ("elu", {"beta": 1.0}, r"elu: unknown parameter 'beta'; it has alpha"),
    ("relu", {"alpha": 1.0}, r"relu: unknown parameter 'alpha'; it has no parameters"),
    ("swish", {"beta": math.inf}, r"beta=inf is out of range"),
])
def test_bad_parameters_are_named(name, params, match):
    with pytest.raises(actlab.ActlabError, match=match):
        actlab.activation(name, **params)


def test_init_pairing_and_gain():
    assert get("relu").init == "kaiming" and get("relu").init_gain() == pytest.approx(math.sqrt(2))
    assert get("leaky_relu").init_gain(alpha=0.2) == pytest.approx(nn.init.calculate_gain("leaky_relu", 0.2))
    assert get("tanh").init == "xavier" and get("tanh").init_gain() == pytest.approx(nn.init.calculate_gain("tanh"))
    assert get("selu").init == "lecun" and get("selu").init_gain() == 1.0
    assert all(get(n).init in actlab.catalog.activations.INIT_SCHEMES for n in names())
    assert all(get(n).description and get(n).latex and get(n).text for n in names())


def scaled_tanh(x, a=1.7159, b=2 / 3):
    """LeCun's scaled tanh (LeCun et al. 1998)."""
    return a * torch.tanh(b * x)


def test_user_callable_gets_parameters_module_and_gain():
    act = get(scaled_tanh)
    assert [p.name for p in act.params] == ["a", "b"] and act.params[0].default == 1.7159
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    torch.testing.assert_close(act.module(a=2.0)(x), 2.0 * torch.tanh(2 / 3 * x))
    assert act.description.startswith("LeCun's scaled tanh")
    # The paired gain keeps E[phi(z)^2] at 1: check against an independent Monte-Carlo estimate.
    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert act.init_gain() == pytest.approx(1 / math.sqrt(float((scaled_tanh(z) ** 2).mean())), rel=2e-3)


class Square(nn.Module):
    """x^p for a test."""

    def __init__(self, p: float = 2.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x.abs() ** self.p


def test_user_module_class_and_instance():
    act = get(Square)
    assert act.params[0].name == "p"
    assert isinstance(act.module(p=3.0), Square) and act.module(p=3.0).p == 3.0
    inst = Square(1.0)
    assert get(inst).module() is inst


@pytest.mark.parametrize(("fn", "match"), [
    (lambda x: x.sum(), r"returned \(\) for input of shape \(7,\)"),
    (lambda x: 3.0, r"returned float"),
    (lambda x, k: x * k, r"argument 'k' needs a numeric default"),
    (lambda x: torch.matmul(x, x[:2]), r"failed on a float64 tensor"),
])
def test_user_callable_checked(fn, match):
    with pytest.raises(actlab.ActlabError, match=match):
        get(fn)


def test_register_refuses_taken_names():
    with pytest.raises(actlab.ActlabError, match="already taken by 'relu'"):
        register(get(scaled_tanh).__class__(**{**get(scaled_tanh).__dict__, "name": "ReLU"}))
