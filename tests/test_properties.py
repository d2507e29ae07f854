"""Measured properties against known values: closed forms, scipy quadrature, published minima."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import erf

import actlab
from actlab.catalog.properties import cost_ns

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


@pytest.fixture(scope="module")
def props():
    """Every element-wise built-in at its defaults, measured once (no timing)."""
    return {n: actlab.properties(n, cost=False) for n in actlab.names(include_vector=False)}


def _gauss(f, k=1):
    """E[f(z)^k], z ~ N(0, 1), by adaptive quadrature split at 0 (independent of the Simpson grid)."""
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return sum(quad(lambda z: f(z) ** k * pdf(z), a, b, limit=200)[0] for a, b in ((-40, 0), (0, 40)))


# ---------------------------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(("name", "expected"), [
    ("sigmoid", "(0, 1)"), ("tanh", "(-1, 1)"), ("hard_tanh", "[-1, 1]"), ("softsign", "(-1, 1)"),
    ("relu", "[0, ∞)"), ("relu6", "[0, 6]"), ("leaky_relu", "(-∞, ∞)"), ("elu", "(-1, ∞)"),
    ("selu", "(-1.758, ∞)"), ("softplus", "(0, ∞)"), ("hard_sigmoid", "[0, 1]"), ("hard_swish", "[-0.375, ∞)"),
    ("identity", "(-∞, ∞)"), ("swish", "[-0.2785, ∞)"), ("gelu", "[-0.17, ∞)"),
])
def test_output_range(props, name, expected):
    assert str(props[name].range) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("sigmoid", "(0, 0.25]"), ("tanh", "(0, 1]"), ("relu", "{0, 1}"), ("leaky_relu", "{0.01, 1}"),
    ("hard_tanh", "{0, 1}"), ("hard_sigmoid", "{0, 0.1667}"), ("identity", "{1}"), ("elu", "(0, 1]"),
    ("softplus", "(0, 1)"), ("softsign", "(0, 1]"), ("hard_swish", "[-0.5, 1.5]"), ("selu", "(0, 1.758]"),
])
def test_derivative_range(props, name, expected):
    assert str(props[name].derivative_range) == expected


def test_range_ends_are_exact(props):
    s = props["sigmoid"].derivative_range
    assert s.high == pytest.approx(0.25, abs=1e-12) and s.high_closed and s.low == 0 and not s.low_closed
    assert props["selu"].range.low == pytest.approx(-SELU_LAMBDA * SELU_ALPHA, rel=1e-9)
    assert props["relu"].derivative_range.values == [0.0, 1.0]
    assert props["elu"].range.low == -1.0 and not props["elu"].range.low_closed


def test_parameters_move_the_range():
    assert str(actlab.properties("elu", cost=False, alpha=0.5).range) == "(-0.5, ∞)"
    assert actlab.properties("leaky_relu", cost=False, alpha=0.2).derivative_range.values == [0.2, 1.0]
    assert actlab.properties("leaky_relu", cost=False, alpha=0.2).name == "leaky_relu(alpha=0.2)"


# ------------------------------------------------------------------------------------ shape: minima


def _root_min(f, df, lo, hi):
    """(x, f(x)) where the analytic derivative df vanishes in [lo, hi], by Brent's method."""
    x = brentq(df, lo, hi, xtol=1e-15)
    return x, f(x)


_PDF = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
_SIG = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
_SP = lambda z: math.log1p(math.exp(z))  # noqa: E731
MINIMA = {
    # Published: Swish-1's minimum solves 1 + x(1 - σ(x)) = 0, x = -1.27846454..., value x + 1.
    "swish": (-1.2784645427610738, -0.2784645427610738),
    "gelu": _root_min(lambda z: z * 0.5 * (1 + erf(z / math.sqrt(2))),
                      lambda z: 0.5 * (1 + erf(z / math.sqrt(2))) + z * _PDF(z), -2, -0.1),
    "mish": _root_min(lambda z: z * math.tanh(_SP(z)),
                      lambda z: math.tanh(_SP(z)) + z * (1 - math.tanh(_SP(z)) ** 2) * _SIG(z), -3, -0.5),
    "hard_swish": (-1.5, -0.375),  # x(x + 3)/6 has its vertex at -3/2
}


@pytest.mark.parametrize("name", sorted(MINIMA))
def test_minimum_of_non_monotonic(props, name):
    x, value = MINIMA[name]
    p = props[name]
    assert not p.monotonic and p.direction == "none"
    assert p.minimum.x == pytest.approx(x, abs=1e-6)
    assert p.minimum.value == pytest.approx(value, abs=1e-10)
    assert p.maximum is None  # no interior maximum: they grow without bound


def test_published_gelu_minimum(props):
    assert props["gelu"].minimum.x == pytest.approx(-0.7518, abs=1e-4)  # the figures
    assert props["gelu"].minimum.value == pytest.approx(-0.1700, abs=1e-4)


def test_swish_minimum_scales_with_beta():
    # swish_b(x) = swish_1(b x) / b, so the minimum moves to x/b with value/b: an identity, not a table.
    one, two = actlab.properties("swish", cost=False), actlab.properties("swish", cost=False, beta=2.0)
    assert two.minimum.x == pytest.approx(one.minimum.x / 2, abs=1e-7)
    assert two.minimum.value == pytest.approx(one.minimum.value / 2, abs=1e-9)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus", "softsign"])
def test_monotonic(props, name):
    assert props[name].monotonic and props[name].direction == "increasing" and props[name].minimum is None


def test_decreasing_user_function():
    p = actlab.properties(lambda x: -torch.tanh(x), cost=False)
    assert p.direction == "decreasing" and str(p.derivative_range) == "[-1, 0)"


def test_interior_maximum_of_a_bump():
    p = actlab.properties(lambda x: torch.exp(-((x - 0.5) ** 2)), cost=False)
    assert p.maximum.x == pytest.approx(0.5, abs=1e-6) and p.maximum.value == pytest.approx(1.0, abs=1e-12)
    assert str(p.range) == "(0, 1]"


# ------------------------------------------------------------------------------- Gaussian moments


def test_selu_fixed_point(props):
    assert props["selu"].mean == pytest.approx(0.0, abs=1e-6)
    assert props["selu"].second_moment == pytest.approx(1.0, abs=1e-6)
    assert props["selu"].zero_centred
    assert props["selu"].variance_gain == pytest.approx(1.0, abs=1e-6)


def test_relu_moments_closed_form(props):
    assert props["relu"].mean == pytest.approx(1 / math.sqrt(2 * math.pi), abs=1e-9)
    assert props["relu"].second_moment == pytest.approx(0.5, abs=1e-9)
    assert props["relu"].variance_gain == pytest.approx(math.sqrt(2), abs=1e-8)  # He et al. 2015
    assert props["relu"].derivative_second_moment == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize(("name", "f"), [
    ("tanh", math.tanh),
    ("sigmoid", lambda z: 1 / (1 + math.exp(-z))),
    ("gelu", lambda z: 0.5 * z * (1 + erf(z / math.sqrt(2)))),
    ("elu", lambda z: z if z > 0 else math.expm1(z)),
    ("softsign", lambda z: z / (1 + abs(z))),
])
def test_moments_against_quadrature(props, name, f):
    assert props[name].mean == pytest.approx(_gauss(f), abs=1e-8)
    assert props[name].second_moment == pytest.approx(_gauss(f, 2), abs=1e-8)


@pytest.mark.parametrize(("name", "centred"), [
    ("tanh", True), ("softsign", True), ("selu", True), ("identity", True), ("hard_tanh", True),
    ("sigmoid", False), ("relu", False), ("gelu", False), ("swish", False), ("elu", False),
])
def test_zero_centred(props, name, centred):
    assert props[name].zero_centred is centred


# ----------------------------------------------------------------------- saturation and dead units


@pytest.mark.parametrize(("name", "saturates", "zero_gradient"), [
    ("sigmoid", "both", "none"), ("tanh", "both", "none"), ("relu", "negative", "negative"),
    ("leaky_relu", "none", "none"), ("elu", "negative", "none"), ("relu6", "both", "both"),
    ("hard_tanh", "both", "both"), ("gelu", "negative", "none"), ("gelu_tanh", "negative", "none"),
    ("hard_swish", "negative", "negative"), ("softplus", "negative", "none"), ("identity", "none", "none"),
])
def test_saturation_and_dying_risk(props, name, saturates, zero_gradient):
    assert props[name].saturates == saturates
    assert props[name].zero_gradient == zero_gradient
    assert props[name].dying_risk is (zero_gradient != "none")


# ------------------------------------------------------------------------------------- smoothness


@pytest.mark.parametrize(("name", "params", "smoothness"), [
    ("relu", {}, "piecewise linear"), ("leaky_relu", {}, "piecewise linear"), ("hard_sigmoid", {}, "piecewise linear"),
    ("identity", {}, "linear"), ("elu", {}, "C1"), ("elu", {"alpha": 0.5}, "C0"), ("celu", {"alpha": 0.5}, "C1"),
    ("selu", {}, "C0"), ("softsign", {}, "C1"), ("hard_swish", {}, "C0"), ("sigmoid", {}, "C-infinity"),
    ("gelu", {}, "C-infinity"), ("mish", {}, "C-infinity"), ("swish", {"beta": 3.0}, "C-infinity"),
])
def test_smoothness(name, params, smoothness):
    assert actlab.properties(name, cost=False, **params).smoothness == smoothness


def test_smoothness_of_user_functions():
    step = actlab.properties(lambda x: (x > 0.5).to(x.dtype), cost=False)
    assert step.smoothness == "discontinuous"
    cubic_kink = actlab.properties(lambda x: torch.relu(x) ** 3, cost=False)  # phi''' jumps at 0
    assert cubic_kink.smoothness == "C2"


def test_kinks_are_located(props):
    assert props["relu6"].kinks == [0.0, 6.0]
    assert props["hard_sigmoid"].kinks == [-3.0, 3.0]
    assert props["selu"].kinks == [0.0]
    assert props["gelu"].kinks == []


# ---------------------------------------------------------------------------------- users and cost


USER_MODULE = textwrap.dedent('''
    import torch

    def scaled_tanh(x, a=1.7159, b=0.6666666666666666):
        """LeCun's scaled tanh (LeCun et al. 1998)."""
        return a * torch.tanh(b * x)

    NOT_CALLABLE = 3
''')


def test_user_activation_from_import_path_gets_a_full_record(tmp_path, monkeypatch):
    (tmp_path / "my_acts.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    p = actlab.properties("my_acts:scaled_tanh", a=2.0)
    assert p.name == "my_acts:scaled_tanh(a=2)"
    assert p.range.low == pytest.approx(-2.0) and not p.range.low_closed and str(p.range) == "(-2, 2)"
    assert p.derivative_range.high == pytest.approx(2.0 * 2 / 3, abs=1e-12)  # a·b at 0
    assert p.zero_centred and p.saturates == "both" and p.smoothness == "C-infinity"
    assert p.cost_ns > 0 and p.cost_vs_relu > 0
    lo, hi = p.cost_spread
    assert 0 < lo <= p.cost_vs_relu <= hi  # the median per-round ratio lies between its quartiles
    with pytest.raises(actlab.ActlabError, match="names a int, which is not callable"):
        actlab.properties("my_acts:NOT_CALLABLE")
    with pytest.raises(actlab.ActlabError, match="has no attribute 'missing'"):
        actlab.properties("my_acts:missing")
    with pytest.raises(actlab.ActlabError, match="cannot import module 'no_such_mod'"):
        actlab.properties("no_such_mod:f")
    sys.modules.pop("my_acts", None)


def test_nan_is_reported():
    with pytest.raises(actlab.ActlabError, match="returned NaN at x ="):
        actlab.properties(lambda x: torch.sqrt(x), cost=False)


def test_vector_activation_has_no_elementwise_properties():
    with pytest.raises(actlab.ActlabError, match="vector-valued"):
        actlab.properties("softmax")


def test_cost_returns_both_timings():
    ns, relu = cost_ns(torch.tanh, n=1 << 14, repeats=3)
    assert ns > 0 and relu > 0 and math.isfinite(ns / relu)


def test_properties_are_deterministic():
    a = actlab.properties("mish", cost=False).model_dump()
    b = actlab.properties("mish", cost=False).model_dump()
    assert a == b


# ------------------------------------------------------------------------------ GELU approximations


def test_gelu_approximation_errors():
    tanh_form, sigmoid_form = actlab.gelu_approximation_error()
    # Independent check: NumPy/SciPy float64 on a grid, and the write-up's "about 4.7e-4 near |x| ≈ 2.7".
    x = np.linspace(-10, 10, 2_000_001)
    exact = 0.5 * x * (1 + erf(x / math.sqrt(2)))
    e_tanh = np.abs(exact - 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))))
    e_sig = np.abs(exact - x / (1 + np.exp(-1.702 * x)))
    assert tanh_form.max_abs_error == pytest.approx(e_tanh.max(), rel=1e-6)
    assert sigmoid_form.max_abs_error == pytest.approx(e_sig.max(), rel=1e-6)
    assert tanh_form.max_abs_error == pytest.approx(4.7e-4, abs=0.05e-4)
    assert tanh_form.at_x == pytest.approx(abs(x[e_tanh.argmax()]), abs=1e-4)
    assert tanh_form.at_x == pytest.approx(2.7, abs=0.05)
    assert sigmoid_form.at_x == pytest.approx(abs(x[e_sig.argmax()]), abs=1e-4)


def test_the_cost_column_gives_the_median_ratio_with_its_quartiles_and_says_noisy():
    from actlab.catalog.table import _cost

    assert _cost(1.3, (1.28, 1.37)) == "1.30× (1.28–1.37)"
    assert _cost(1.0, (0.6, 9.9)) == "1.00× (0.60–9.90) noisy"  # a loaded machine: no claim either way
    assert _cost(2.0, None) == "2.00×"


def test_catalog_records_are_kept_once_per_machine_and_read_back_exactly(tmp_path, monkeypatch):
    """A built-in's record (all but cost) is measured once per machine and read back equal; a user's function,
    a changed catalog source and a file that is not a valid record for these inputs are measured afresh."""
    import importlib

    mod = importlib.import_module("actlab.catalog.properties")
    monkeypatch.setenv("ACTLAB_CACHE", str(tmp_path))
    names = ["relu", "swish", "hard_tanh", "elu"]
    measured = {n: actlab.properties(n, cost=False) for n in names}
    measured["elu2"] = actlab.properties("elu", cost=False, alpha=2.0)
    files = sorted((tmp_path / "catalog").glob("*.json"))
    assert len(files) == 5 and all('"cost_ns": null' in f.read_text() for f in files)
    measure = mod._measure

    def refuse(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(mod, "_measure", refuse)
    for n in names:
        assert actlab.properties(n, cost=False) == measured[n]
    assert actlab.properties("elu", cost=False, alpha=2.0) == measured["elu2"]
    timed = actlab.properties("relu")  # cost is timed afresh, never kept
    assert timed.cost_ns > 0 and timed.model_copy(update={"cost_ns": None, "cost_vs_relu": None,
                                                          "cost_spread": None}) == measured["relu"]
    with pytest.raises(AssertionError, match="measured again"):  # another parameter value is not kept
        actlab.properties("elu", cost=False, alpha=3.0)
    with pytest.raises(AssertionError, match="measured again"):  # a user's function never is
        actlab.properties(actlab.catalog.from_callable(lambda x: torch.tanh(x), name="relu"), cost=False)
    user = actlab.catalog.Activation("kept_test_act", lambda x: 5.0 * torch.tanh(x), lambda: torch.nn.Tanh())
    relu = actlab.get("relu")
    try:  # an entry a user built or registered over a shipped name is measured, never read from or kept in the cache
        actlab.register(user)
        actlab.register(dataclasses.replace(relu, fn=lambda x: torch.tanh(x)), replace_existing=True)
        for name in ("kept_test_act", "relu"):
            with pytest.raises(AssertionError, match="measured again"):
                actlab.properties(name, cost=False)
        monkeypatch.setattr(mod, "_measure", measure)
        assert actlab.properties("relu", cost=False).range.low == -1.0  # the tanh registered as relu, measured
        assert len(list((tmp_path / "catalog").glob("*.json"))) == 5  # and not kept
        monkeypatch.setattr(mod, "_measure", refuse)
    finally:
        actlab.register(relu, replace_existing=True)
        catalog_registry = importlib.import_module("actlab.catalog.activations")
        catalog_registry._REGISTRY.pop("kept_test_act", None)
        catalog_registry._KEYS.pop("kepttestact", None)
    assert actlab.properties("relu", cost=False) == measured["relu"]
    monkeypatch.setattr(mod, "_code", lambda: "another catalog")
    with pytest.raises(AssertionError, match="measured again"):  # nor a record of other catalog code
        actlab.properties("relu", cost=False)
    monkeypatch.undo()
    monkeypatch.setenv("ACTLAB_CACHE", str(tmp_path))
    relu = next(f for f in files if '"name": "relu"' in f.read_text())
    kept = relu.read_text()
    doc = json.loads(kept)
    for bad in (kept[:100], "[]", kept.replace('"monotonic": true', '"monotonic": "sometimes"'),
                json.dumps({**doc, "value": {**doc["value"], "cost_ns": 1.0}})):
        assert bad != kept
        relu.write_text(bad)
        assert actlab.properties("relu", cost=False) == measured["relu"], bad[:40]
        assert relu.read_text() == kept  # measured afresh and kept again
