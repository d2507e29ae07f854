"""DKS and TAT (#14): the transformed activations meet each method's kernel conditions, measured with actlab's
own theory module (`meanfield`) and autograd, independently of the `dks` package that solved them; the model
applies the methods' other requirements (SUO weights, zero biases, unit-mean-square inputs)."""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pytest
import torch

from actlab.catalog.activations import get
from actlab.catalog.theory import meanfield as mf
from actlab.errors import ActlabError
from actlab.nn import transforms
from actlab.nn.models import ModelConfig, build
from actlab.studies.config import expand, load_study


def transformed(name: str, *args):
    """The transform of the catalog entry `name` (the library takes the entry, resolved where it was named)."""
    return transforms.transformed(get(name), *args)


def moments(act, order: int) -> float:
    """E[φ^(order)(z)²], z ~ N(0, 1), the derivative by autograd, by the theory module's quadrature."""
    k = mf.Kernel(act, {})

    def deriv(x):
        x = x.detach().clone().requires_grad_(True)
        y = act.fn(x)
        for _ in range(order):
            (y,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        return y.detach()

    return k.mean(lambda z: deriv(z) ** 2, err=False).value


@pytest.mark.parametrize("name", ["tanh", "softplus", "sigmoid", "leaky_relu"])
@pytest.mark.parametrize("depth", [10, 50])
def test_dks_meets_its_conditions(name, depth):
    act = transformed(name, {}, "dks", {}, depth)
    k = mf.Kernel(act, {})
    q1 = k.second_moment(1.0).value
    assert q1 == pytest.approx(1.0, abs=1e-4)  # Q(1) = 1
    h = 1e-4
    assert (k.second_moment(1 + h).value - k.second_moment(1 - h).value) / (2 * h) == pytest.approx(1.0, abs=1e-3)
    assert k.mean(lambda z: k.phi(z)).value ** 2 == pytest.approx(0.0, abs=1e-6)  # C(0) = E[φ̂]² = 0
    local = k.slope_moment(1.0)
    slope = local.value / q1  # C′(1) of one layer; the network's is its L-th power
    # φ̂′ jumps where a shifted leaky ReLU kinks (off the grid's node): the quadrature's own error, ×L
    tol = 2e-3 + 2 * depth * local.err / local.value
    assert slope ** depth == pytest.approx(1.5, rel=tol)  # ζ = 1.5, the default


@pytest.mark.parametrize("name", ["tanh", "softplus"])
def test_tat_meets_its_conditions_for_smooth_activations(name):
    depth = 30
    act = transformed(name, {}, "tat", {"c_curve_target": 0.3}, depth)
    k = mf.Kernel(act, {})
    q1 = k.second_moment(1.0).value
    assert q1 == pytest.approx(1.0, abs=1e-4)
    assert k.slope_moment(1.0).value / q1 == pytest.approx(1.0, abs=1e-4)  # C′(1) = 1
    assert depth * moments(act, 2) / q1 == pytest.approx(0.3, rel=5e-3)  # the network's C″(1) = L·C″_local = τ


def test_tat_tailors_the_leaky_relu_so_the_networks_c0_is_eta():
    depth, eta = 20, 0.9
    act = transformed("leaky_relu", {}, "tat", {"c_val_0_target": eta}, depth)
    k = mf.Kernel(act, {})
    assert k.second_moment(1.0).value == pytest.approx(1.0, abs=1e-6)
    c = 0.0
    for _ in range(depth):  # the network's C map at 0: L compositions of the local map, by theory's quadrature
        c = k.cross_moment(1.0, c, err=False).value / k.second_moment(1.0).value
    assert c == pytest.approx(eta, abs=1e-4)


@pytest.mark.parametrize(("args", "says"), [
    (("relu", {}, "tat", {}, 10), "does not support relu"),
    (("mish", {}, "dks", {}, 10), "'mish' is not among them"),
    (("elu", {"alpha": 0.5}, "dks", {}, 10), "default parameters only"),
    (("tanh", {}, "dks", {"zeta": 2.0}, 10), "transform_params ['zeta'] are unknown"),
    (("tanh", {}, "magic", {}, 10), "transform 'magic' is unknown"),
])
def test_bad_transform_requests_are_one_clear_error(args, says):
    with pytest.raises(ActlabError, match=re_escape(says)):
        transformed(*args)


def re_escape(s: str) -> str:
    import re

    return re.escape(s)


def test_the_model_applies_the_methods_requirements():
    cfg = ModelConfig(widths=[64] * 12, activation="tanh", transform="dks")
    assert cfg.init_scheme() == ("suo", 1.0)
    model = build(cfg, (40,), "multiclass", 10, [0, 1])
    for layer in model.hidden:
        assert float(layer.bias.detach().abs().max()) == 0.0
    w = model.hidden[0].weight[0].detach().double()  # (40, 64): SUO scales orthonormal rows by √(64/40)
    np.testing.assert_allclose((w @ w.T).numpy(), np.eye(40) * 64 / 40, atol=1e-5)
    w = model.hidden[3].weight[1].detach().double()  # square: orthogonal
    np.testing.assert_allclose((w.T @ w).numpy(), np.eye(64), atol=1e-5)
    x = torch.randn(256, 40) * 7.0 + 3.0  # inputs of any scale enter at unit mean square
    trace: list = []
    with torch.no_grad():
        model(x, trace=trace)
    q1 = float((trace[0][1] ** 2).mean())
    assert q1 == pytest.approx(1.0, rel=0.1)  # q₁ = ‖x̂‖²/d = 1 under SUO
    qs = [float((z ** 2).mean()) for name, z, _, _ in trace if name.startswith("hidden")]
    assert max(abs(q - 1.0) for q in qs) < 0.2  # DKS keeps q near 1 through the depth (Q(1) = 1, stable)


@pytest.mark.parametrize(("cfg", "says"), [
    (dict(transform="dks", norm="batch"), "norm='none'"),
    (dict(transform="dks", residual=True), "residual"),
    (dict(transform="dks", init="kaiming_normal"), "init"),
    (dict(transform="dks", kind="convnet"), "MLP"),
    (dict(transform="tat", bias_std=0.1), "zero biases"),
])
def test_a_transform_with_incompatible_settings_is_refused(cfg, says):
    with pytest.raises(ValueError, match=re_escape(says)):
        ModelConfig(activation="tanh", **cfg)


def test_transformed_activation_shapes_are_finite_and_monotone_where_the_base_is():
    act = transformed("tanh", {}, "dks", {}, 50)
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    y = act.fn(x)
    assert torch.isfinite(y).all() and bool((y[1:] >= y[:-1]).all())
    assert transformed("tanh", {}, "dks", {}, 50) is act  # solved once per (activation, method, depth)
    assert not math.isclose(float(transformed("tanh", {}, "dks", {}, 10).fn(torch.tensor([1.0]))),
                            float(act.fn(torch.tensor([1.0]))))  # the depth changes the transform


def test_solved_constants_are_kept_once_per_machine_and_read_back_bit_for_bit(tmp_path, monkeypatch):
    """The cache holds what the package solved: the same φ̂ as its own get_transformed_activations, read back
    without solving again; a file that is not a whole, finite solve for these inputs is solved afresh and replaced."""
    from dks.base import activation_transform as at

    monkeypatch.setenv("ACTLAB_CACHE", str(tmp_path))
    transforms._transformed.cache_clear()
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    act = transformed("tanh", {}, "dks", {"c_slope_1_target": 2.0}, 9)
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # the solver's trial points overflow, harmlessly
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = at.get_transformed_activations(["tanh"], method="DKS", dks_params={"c_slope_1_target": 2.0},
                                             max_slope_func=lambda c: c ** 9, activation_getter=lambda n: torch.tanh)
    assert torch.equal(act.fn(x), ref["tanh"](x))
    files = list((tmp_path / "transforms").glob("*.json"))
    assert len(files) == 1 and '"depth": 9' in files[0].read_text()

    solve = at._get_activations_params

    def refuse(*args, **kwargs):
        raise AssertionError("solved again")

    monkeypatch.setattr(at, "_get_activations_params", refuse)
    transforms._transformed.cache_clear()
    assert torch.equal(transformed("tanh", {}, "dks", {"c_slope_1_target": 2.0}, 9).fn(x), act.fn(x))
    with pytest.raises(AssertionError, match="solved again"):  # another depth is not in the cache
        transformed("tanh", {}, "dks", {"c_slope_1_target": 2.0}, 10)

    monkeypatch.setattr(at, "_get_activations_params", solve)
    kept = json.loads(files[0].read_text())
    for bad in ('{"inputs": "not ours"', json.dumps({**kept, "value": {}}),  # truncated, or not a whole solve
                json.dumps({**kept, "value": {k: float("nan") for k in kept["value"]}}),
                json.dumps({**kept, "value": {**kept["value"], "extra": 1.0}})):
        files[0].write_text(bad)
        transforms._transformed.cache_clear()
        assert torch.equal(transformed("tanh", {}, "dks", {"c_slope_1_target": 2.0}, 9).fn(x), act.fn(x)), bad
        assert json.loads(files[0].read_text()) == kept  # solved afresh and kept again
    transforms._transformed.cache_clear()  # nothing built from this test's cache outlives it


def test_a_study_is_validated_without_solving_its_transforms(monkeypatch):
    """deep-rescue's 24 transformed cells are checked at load (names, options and their ranges) without a
    solve, which takes seconds each; a cell's constants are solved when it is built."""
    from dks.base import activation_transform as at

    def refuse(*args, **kwargs):
        raise AssertionError("solved while validating")

    monkeypatch.setattr(at, "_get_activations_params", refuse)
    transforms._transformed.cache_clear()
    assert len(expand(load_study("deep-rescue"))) == 36
    with pytest.raises(ActlabError, match=re_escape("transform_params.c_slope_1_target=0.5 is out of range for "
                                                    "'dks'; allowed: ζ > 1")):
        expand(load_study("deep-rescue", ["grid.transform=[dks]", "model.transform=dks",
                                          "model.transform_params={c_slope_1_target=0.5}"]))
    with pytest.raises(ActlabError, match=re_escape("0 ≤ η ≤ 1")):
        transforms.check(get("leaky_relu"), {}, "tat", {"c_val_0_target": 1.5}, 10)


def test_a_target_the_depth_cannot_reach_refuses_the_run_before_anything_trains(tmp_path):
    """TAT's η = 0.9 needs more than 10 leaky-ReLU layers: the run is refused with the package's reason,
    naming the cell, and no study is written."""
    from actlab.store.writer import Store
    from actlab.studies.runner import run_study

    study = load_study("deep-rescue", ["grid.activation=[leaky_relu]", "grid.transform=[tat]", "grid.depth=[10,20]",
                                       "train.epochs=1"])
    with pytest.raises(ActlabError, match=r"1 cell\(s\) ask for a transform that cannot be solved:\n  - transform "
                                          r"'tat' of 'leaky_relu' at depth 10 has no solution .*\[cell .*depth=10\]"):
        run_study(study, tmp_path / "run")
    assert not (tmp_path / "run" / "actlab.sqlite").exists() or Store(tmp_path / "run", read_only=True).study() is None


def test_a_run_says_before_training_how_many_transforms_it_must_solve(tmp_path, monkeypatch):
    """Solving is seconds per transform the first time on a machine, so the run says so before it starts
    (the CLI prints the note), and then how long it took; with the constants cached it says nothing."""
    from actlab.studies.solve import solve_transforms

    monkeypatch.setenv("ACTLAB_CACHE", str(tmp_path))
    transforms._transformed.cache_clear()
    cells = expand(load_study("deep-rescue", ["grid.activation=[tanh]", "grid.transform=[dks]", "grid.depth=[9]",
                                              "model.transform=dks", "model.transform_params={c_slope_1_target=2.0}"]))
    assert len(cells) == 1 and transforms.pending(get("tanh"), {}, "dks", {"c_slope_1_target": 2.0}, 9)
    notes: list[str] = []
    solve_transforms(cells, notes.append)
    assert len(notes) == 2 and notes[0].startswith("solving 1 DKS/TAT transform(s)") and str(tmp_path) in notes[0]
    assert re.fullmatch(r"solved in \d+\.\d s", notes[1])
    assert not transforms.pending(get("tanh"), {}, "dks", {"c_slope_1_target": 2.0}, 9)
    transforms._transformed.cache_clear()
    notes.clear()
    solve_transforms(cells, notes.append)
    assert notes == []
    unreachable = expand(load_study("deep-rescue", ["grid.activation=[leaky_relu]", "grid.transform=[tat]",
                                                    "grid.depth=[10]"]))
    with pytest.raises(ActlabError, match="cannot be solved"):  # the error follows "solving", never "solved"
        solve_transforms(unreachable, notes.append)
    assert len(notes) == 1 and notes[0].startswith("solving 1 DKS/TAT transform(s)")
    transforms._transformed.cache_clear()
