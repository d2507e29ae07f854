"""Mean-field theory (#14) against independent references: closed forms computed here in float64 (ReLU's
arc-cosine kernel, erf's arcsine kernel, a linear φ), the critical points the papers give, and Monte Carlo:
wide random networks drawn by actlab's own population engine, whose measured q_l and c_l over 20 layers
must match the iterated maps within their sampling error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from actlab.catalog.theory import meanfield as mf
from actlab.errors import ActlabError
from actlab.nn.models import ModelConfig, build


def user_relu(x):
    return torch.relu(x)


def user_identity(x):
    return x * 1.0


def user_erf(x):
    return torch.erf(x)


def relu_kernel(q: float, c: float) -> float:
    """E[relu(u₁) relu(u₂)], u ~ N(0, q) with correlation c (Cho & Saul 2009), written out here."""
    return q / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)


def erf_kernel(q: float, c: float) -> float:
    """E[erf(u₁) erf(u₂)] (Williams 1997): 2/π · arcsin(2qc / (1 + 2q))."""
    return 2 / math.pi * math.asin(2 * q * c / (1 + 2 * q))


@pytest.mark.parametrize("q", [0.1, 1.0, 7.5])
@pytest.mark.parametrize("c", [-0.9, -0.3, 0.0, 0.5, 0.95, 0.9999])
def test_the_c_map_quadrature_matches_relus_arc_cosine_kernel(q, c):
    k = mf.Kernel(mf.get(user_relu), {})
    assert k.closed is None  # a user's function: quadrature, not the closed form
    got = k.cross_moment(q, c)
    assert got.value == pytest.approx(relu_kernel(q, c), rel=2e-6, abs=1e-9)
    assert abs(got.value - relu_kernel(q, c)) <= 10 * got.err + 1e-9  # the reported error is honest
    closed = mf.Kernel(mf.get("relu"), {}).cross_moment(q, c)
    assert closed.value == pytest.approx(relu_kernel(q, c), rel=1e-12)


@pytest.mark.parametrize("q", [0.2, 1.0, 4.0])
@pytest.mark.parametrize("c", [-0.7, 0.0, 0.6, 0.99])
def test_the_c_map_quadrature_matches_erfs_arcsine_kernel(q, c):
    got = mf.Kernel(mf.get(user_erf), {}).cross_moment(q, c)
    assert got.value == pytest.approx(erf_kernel(q, c), rel=1e-7, abs=1e-10)


@pytest.mark.parametrize("a", [0.01, 0.2])
@pytest.mark.parametrize("c", [-0.5, 0.3, 0.9])
def test_leaky_relus_closed_form_matches_quadrature(a, c):
    def leaky(x, a=a):
        return torch.where(x > 0, x, a * x)

    closed = mf.Kernel(mf.get("leaky_relu"), {"alpha": a})
    quad = mf.Kernel(mf.get(leaky), {})
    assert closed.cross_moment(1.3, c).value == pytest.approx(quad.cross_moment(1.3, c).value, rel=1e-6)
    # φ′ jumps at 0: quadrature is O(h) there, and the reported error says so
    got = quad.cross_moment(1.3, c, derivative=True)
    assert abs(closed.cross_moment(1.3, c, derivative=True).value - got.value) <= 2 * got.err + 1e-12


@pytest.mark.parametrize(("sw2", "sb2"), [(0.5, 0.0), (1.5, 0.1), (1.9, 0.3)])
def test_relu_chi1_is_half_sw2_and_q_star_is_the_linear_maps_fixed_point(sw2, sb2):
    for act in ("relu", user_relu):
        r = mf.propagation(act, sw2, sb2)
        assert r.chi1 == pytest.approx(sw2 / 2, rel=1e-9)
        expected_q = sb2 / (1 - sw2 / 2)  # q = sw2·q/2 + sb2
        assert r.q_star == pytest.approx(expected_q, rel=1e-7, abs=1e-12)
        assert r.phase == "ordered" and r.c_star == 1.0
        assert r.xi_c == pytest.approx(-1 / math.log(sw2 / 2), rel=1e-7)


def test_relu_is_critical_at_sw2_2_and_past_it_has_no_finite_fixed_point():
    assert mf.critical_sw2("relu", 0.0) == pytest.approx(2.0, abs=1e-8)
    assert mf.critical_sw2(user_relu, 0.0) == pytest.approx(2.0, abs=1e-6)
    r = mf.propagation("relu", 2.5, 0.1)
    assert r.q_star is None and "no finite fixed point" in r.note and r.chi1 == pytest.approx(1.25)


def test_a_linear_activations_maps_are_linear():
    sw2, sb2 = 0.8, 0.2
    r = mf.propagation(user_identity, sw2, sb2)
    assert r.q_star == pytest.approx(sb2 / (1 - sw2), rel=1e-8)
    assert r.chi1 == pytest.approx(sw2, rel=1e-10) and r.q_slope == pytest.approx(sw2, rel=1e-6)
    qs = mf.q_iterates(user_identity, 2.0, 5, sw2, sb2)
    expect = [2.0]
    for _ in range(4):
        expect.append(sw2 * expect[-1] + sb2)
    np.testing.assert_allclose(qs, expect, rtol=1e-9)
    cs = mf.c_iterates(user_identity, 2.0, 0.3, 3, sw2, sb2)
    assert cs[1] == pytest.approx((sw2 * 2.0 * 0.3 + sb2) / (sw2 * 2.0 + sb2), rel=1e-8)


def test_tanh_is_critical_at_sw2_1_without_bias_and_the_phases_lie_either_side():
    assert mf.critical_sw2("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    crit = mf.critical_sw2("tanh", 0.05)
    assert 1.70 < crit < 1.82  # Schoenholz et al. 2017, Fig. 1: the critical line passes σ_w² ≈ 1.76 at σ_b² = 0.05
    assert mf.propagation("tanh", crit * 0.9, 0.05).phase == "ordered"
    chaos = mf.propagation("tanh", crit * 1.3, 0.05)
    assert chaos.phase == "chaotic" and 0 < chaos.c_star < 1 and chaos.chi_c < 1
    near = mf.propagation("tanh", crit * 1.01, 0.05)
    assert near.xi_c > 5 * mf.propagation("tanh", crit * 1.3, 0.05).xi_c  # ξ_c grows towards the edge


def test_the_erf_chaotic_fixed_point_solves_the_arcsine_map():
    sw2, sb2 = 2.0, 0.1
    r = mf.propagation(user_erf, sw2, sb2)
    q = r.q_star
    assert q == pytest.approx(sw2 * erf_kernel(q, 1.0) + sb2, rel=1e-9)  # V(q*) = q*
    c = r.c_star
    assert 0 < c < 1 and (sw2 * erf_kernel(q, c) + sb2) / q == pytest.approx(c, abs=1e-7)


@pytest.mark.parametrize(("bad", "says"), [
    (dict(activation="softmax", sw2=1.0), "vector-valued"),
    (dict(activation="tanh", sw2=0.0), "sw2=0.0 is not allowed"),
    (dict(activation="tanh", sw2=-1.0), "sw2=-1.0 is not allowed"),
    (dict(activation="tanh", sw2=1.0, sb2=-0.1), "sb2=-0.1 is not allowed"),
    (dict(activation="tanh", sw2=float("nan")), "must be a finite number"),
    (dict(activation="nope", sw2=1.0), "activation 'nope' is unknown"),
])
def test_bad_input_is_one_clear_error(bad, says):
    with pytest.raises(ActlabError, match=says):
        mf.propagation(**bad)


def test_a_function_that_grows_too_fast_is_an_error_not_a_nan():
    def explode(x):
        return torch.exp(x * x)

    with pytest.raises(ActlabError, match="not finite"):
        mf.propagation(explode, 1.0, 0.0)


@pytest.mark.parametrize(("act", "sw2", "sb2"), [("tanh", 1.5, 0.05), ("tanh", 3.0, 0.05), ("relu", 1.8, 0.05)])
def test_wide_random_networks_follow_the_iterated_maps(act, sw2, sb2):
    """Width 1,000, depth 20, 6 seeds as one population: per layer, the mean over seeds of the measured q_l
    and c_l (two inputs) lies within its 99.9 % interval (plus the maps' 1/width finite-width bias) of theory."""
    width, depth, seeds = 1000, 20, list(range(6))
    cfg = ModelConfig(widths=[width] * depth, activation=act, init="lecun_normal", init_gain=math.sqrt(sw2),
                      bias_std=math.sqrt(sb2))
    d_in = 50
    model = build(cfg, (d_in,), "binary", 2, seeds)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, d_in, generator=gen, dtype=torch.float64)
    x[1] = 0.6 * x[0] + 0.8 * x[1]  # two inputs with some correlation,
    x = (x * math.sqrt(d_in) / x.norm(dim=1, keepdim=True)).float()  # of equal norm (one q for both)
    trace: list = []
    with torch.no_grad():
        model(x, trace=trace)
    zs = [z for name, z, _, _ in trace if name.startswith("hidden")]
    assert len(zs) == depth
    q_meas = np.array([[float((z[m, 0, :, 0].double() ** 2).mean()) for m in range(len(seeds))] for z in zs])
    c_meas = np.array([[float(torch.nn.functional.cosine_similarity(z[m, 0, :, 0].double(), z[m, 1, :, 0].double(),
                                                                    dim=0)) for m in range(len(seeds))] for z in zs])
    # layer 1 from the inputs themselves: q₁ = σ_w² |x|²/d + σ_b², c₁ from the inputs' inner product
    xx = x.double()
    qa, qb = (sw2 * (xx ** 2).mean(1) + sb2).tolist()
    q1 = (qa + qb) / 2
    c1 = (sw2 * float((xx[0] * xx[1]).mean()) + sb2) / math.sqrt(qa * qb)
    q_pred = mf.q_iterates(act, q1, depth, sw2, sb2)
    c_pred = mf.c_iterates(act, q1, c1, depth, sw2, sb2)
    t = sps.t.ppf(0.9995, len(seeds) - 1)
    for layer in range(depth):
        for meas, pred, what in ((q_meas[layer], q_pred[layer], "q"), (c_meas[layer], c_pred[layer], "c")):
            half = t * meas.std(ddof=1) / math.sqrt(len(seeds))
            slack = 3.0 / width * max(1.0, abs(pred))  # the maps are exact only as width → ∞
            assert abs(meas.mean() - pred) <= half + slack, (what, layer + 1, meas.mean(), pred, half)


def test_the_theory_command_prints_the_prediction_and_writes_its_figures(tmp_path):
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "actlab", "theory", "tanh", "--sw2", "1.5", "--sb2", "0.05", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    ref = mf.propagation("tanh", 1.5, 0.05)
    assert doc["q_star"] == pytest.approx(ref.q_star) and doc["phase"] == "ordered"
    assert doc["critical_sw2"] == pytest.approx(mf.critical_sw2("tanh", 0.05))
    assert doc["gradient_ratio"] == pytest.approx(ref.chi1 ** 9.5)  # default depth 20
    r = subprocess.run([sys.executable, "-m", "actlab", "theory", "relu", "--sw2", "2.5", "--sb2", "0.1", "--figures",
                        str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "no finite fixed point" in r.stdout and "σ_w² = 2" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theory_chi.png", "theory_maps.png", "theory_phase.png"]
    r = subprocess.run([sys.executable, "-m", "actlab", "theory", "softmax"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "vector-valued" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "actlab", "theory", "elu", "-p", "alpha=0.5", "--sw2", "1", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert json.loads(r.stdout)["params"] == {"alpha": 0.5}


def test_the_properties_table_carries_the_edge_of_chaos_and_chi1_at_init():
    from actlab.catalog.properties import properties
    from actlab.catalog.table import COLUMNS, measure, row

    tanh = properties("tanh", cost=False)
    assert tanh.critical_sw2 == pytest.approx(1.0, abs=1e-6)
    gain = mf.get("tanh").init_gain()
    assert tanh.chi1_at_init == pytest.approx(mf.propagation("tanh", gain ** 2, 0.0).chi1, rel=1e-5)
    relu = properties("relu", cost=False)
    assert relu.critical_sw2 == pytest.approx(2.0) and relu.chi1_at_init == pytest.approx(1.0)
    gelu = properties("gelu", cost=False)  # σ_b² = 0: the variance fades (χ₁ = σ_w²/4) or grows; no edge reached
    assert gelu.critical_sw2 is None and gelu.chi1_at_init == pytest.approx(0.5, rel=1e-6)
    assert properties("elu", cost=False).chi1_at_init is None  # He init: q grows without bound
    assert {"edge of chaos σ_w²", "χ₁ at init"} <= set(COLUMNS)
    r = row(measure(["gelu"], cost=False)[0])
    assert r["edge of chaos σ_w²"] == "none" and r["χ₁ at init"] == "0.5"


def test_the_critical_line_agrees_with_solving_chi1_directly():
    """The parametrised line (σ_w² from q*) against brute force: χ₁ − 1 at the fixed point reached from 1,
    found by bisection in σ_w² (tanh, σ_b² = 0.05 and 0.2)."""
    for sb2 in (0.05, 0.2):
        def g(sw2):
            return mf.propagation("tanh", sw2, sb2).chi1 - 1

        lo, hi = 1.0, 4.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if g(mid) < 0 else (lo, mid)
        assert mf.critical_sw2("tanh", sb2) == pytest.approx(lo, abs=1e-6)


def test_the_edge_of_chaos_finding_scores_theory_against_the_best_depth_limit(smoke_runs):
    """Recomputed here from the store's replicas and the theory module: the grid, 6 ξ_c, the agreement count
    and the McNemar comparison the finding states."""
    from scipy import stats as sps

    from actlab.analysis.findings import findings
    from actlab.analysis.predictions import trainability
    from actlab.store.results import Run

    with Run.open(smoke_runs["edge-of-chaos"].run_dir) as run:
        (t,) = trainability(run)
        assert t.sw2 == [1.0, 2.0, 4.0] and t.depths == [2, 6] and t.sb2 == pytest.approx(0.05)
        accs = {}
        for c in run.done:
            accs[(c.depth, float(c.model["weight_variance"]))] = float(np.mean(list(run.replicas(c).values())))
        text = " ".join(f.text for f in findings(run))
    six = [6 * mf.propagation("tanh", w, 0.05, points=mf.COARSE_POINTS).xi_c for w in t.sw2]
    np.testing.assert_allclose(t.six_xi, six, rtol=1e-9)
    best = max(accs.values())
    threshold = 0.1 + 0.25 * (best - 0.1)  # MNIST-1D: 10 classes
    assert t.threshold == pytest.approx(threshold)
    trained = {k: v > threshold for k, v in accs.items()}
    theory = {k: trained[k] == (k[0] <= six[t.sw2.index(k[1])]) for k in trained}
    agree = sum(theory.values())
    assert f"In {agree} of {len(trained)} cells" in text
    limits = {lim: {k: trained[k] == (k[0] <= lim) for k in trained} for lim in (0, 2, 6)}
    best_lim = max(limits, key=lambda lim: (sum(limits[lim].values()), -[0, 2, 6].index(lim)))
    assert f"agrees in {sum(limits[best_lim].values())} cells" in text
    b = sum(theory[k] and not limits[best_lim][k] for k in trained)
    c = sum(limits[best_lim][k] and not theory[k] for k in trained)
    if b + c:
        assert f"McNemar p = {format(sps.binomtest(b, b + c).pvalue, '.2g')}" in text
    else:
        assert "never disagree" in text


def test_the_forward_variance_prediction_iterates_the_map_from_layer_one(smoke_runs):
    """moons (sigmoid + LeCun, ReLU + He; 2-8-8-1): theory's layer 2 from the measured layer 1, by hand."""
    from actlab.analysis.predictions import forward_prediction
    from actlab.store.results import Run

    with Run.open(smoke_runs["moons"].run_dir) as run:
        for c in run.done:
            act = c.model["activation"]
            pred = forward_prediction(run, c, 1.7)
            sw2 = mf.get(act).init_gain() ** 2 if act == "relu" else 1.0  # He for ReLU, LeCun (gain 1) for sigmoid
            expect = sw2 * mf.Kernel(mf.get(act), {}).second_moment(1.7).value
            assert pred[0] == 1.7 and pred[1] == pytest.approx(expect, rel=1e-6)
    with Run.open(smoke_runs["blobs-depth"].run_dir) as run:  # weights with a mean: theory does not apply
        assert all(forward_prediction(run, c, 1.0) is None for c in run.done)


def test_review_cases_the_fixed_point_is_the_one_the_layers_reach():
    """Two roots of V(q) − q close together (swish at σ_b² = 0.2): iterating 200 layers from q = 1 settles at
    q* = 1.00816; the search must not step over it. Also: a gradient ratio beyond float range is inf, not an
    error; a bounded φ at σ_w² = 1e13 has a finite q*."""
    q = 1.0
    k = mf.Kernel(mf.get("swish"), {})
    for _ in range(200):
        q = 2.25 * k.second_moment(q, err=False).value + 0.2
    r = mf.propagation("swish", 2.25, 0.2)
    assert r.q_star == pytest.approx(q, rel=1e-6) and r.phase == "ordered"  # 200 layers: not quite there
    assert mf.propagation("relu", 10.0, 0.0).gradient_ratio(1000) == math.inf
    big = mf.propagation("tanh", 1e13, 0.0).q_star  # |tanh| ≤ 1: q* ≤ σ_w², and E[tanh²] → 1 as q grows
    assert big is not None and 0.99e13 < big <= 1e13
    assert mf.critical_sw2("softplus", 0.0) == pytest.approx(2.0, abs=5e-3)  # the q → ∞ limit, like ReLU's 2
    assert mf.critical_sw2("gelu", 0.0) is None


@pytest.mark.parametrize("scheme", ["kaiming_normal", "lecun_normal", "kaiming_uniform", "xavier_normal",
                                    "xavier_uniform", "orthogonal", "suo", "normal", "torch_default"])
@pytest.mark.parametrize(("fan_in", "fan_out"), [(64, 64), (40, 100), (100, 40)])
def test_each_init_schemes_weight_variance_is_what_it_draws(scheme, fan_in, fan_out):
    """The σ_w² theory uses for a layer (`init.weight_variance`) against the weights `init.draw` draws:
    E[(x W)²] per output unit over E[x²], measured on 8 seeds."""
    from actlab.nn import init as inits

    gain = 1.3 if scheme != "normal" else 0.1
    w = inits.draw(scheme, gain, list(range(8)), 0, (fan_in, fan_out), fan_in, fan_out).double()
    x = torch.randn(4096, fan_in, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    measured = float(((x @ w) ** 2).mean() / (x ** 2).mean())  # E[z²] = σ_w² E[x²]
    sw2, _ = inits.weight_variance(scheme, gain, fan_in, fan_out)
    assert measured == pytest.approx(sw2, rel=0.05)


def test_the_weight_gradient_ratio_has_closed_forms_for_linear_and_two_layer_relu():
    """Identity: every layer's ‖∂L/∂W‖ is the same in expectation, ratio 1 at any σ_w², depth and batch.
    ReLU, depth 2, σ_w² = 2: q₁ = 2, c₁ = 0, then the arc-cosine kernel gives K_d = 1, K_o = 1/π, c₂ = 1/π and
    E[1(u>0) 1(u′>0)] = 1/4 + arcsin(c₂)/(2π), so ratio² = (1/2) / (1/2 + (B − 1)(1/π)(1/4 + arcsin(1/π)/(2π)))."""
    for sw2, depth, batch in ((0.5, 7, 1), (3.0, 4, 64)):
        assert mf.weight_gradient_ratio("identity", depth, sw2, batch) == pytest.approx(1.0, rel=1e-12)
    b = 64
    off = (1 / math.pi) * (0.25 + math.asin(1 / math.pi) / (2 * math.pi))
    assert mf.weight_gradient_ratio("relu", 2, 2.0, b) == pytest.approx(math.sqrt(0.5 / (0.5 + (b - 1) * off)),
                                                                         rel=1e-12)
    assert mf.weight_gradient_ratio("relu", 1, 2.0, b) == 1.0
    for bad, says in (({"depth": 0}, "depth must be a whole number ≥ 1"), ({"depth": 5.0}, "depth must be"),
                      ({"batch": 2.5}, "batch must be"), ({"q0": 0.0}, "q0 .* must be a finite number > 0"),
                      ({"q0": -1}, "q0"), ({"q0": math.inf}, "q0"), ({"sw2": -1.0}, "σ_w²")):
        with pytest.raises(ActlabError, match=says):
            mf.weight_gradient_ratio(**{"activation": "relu", "depth": 5, "sw2": 2.0, "batch": b, **bad})
    assert math.isnan(mf.weight_gradient_ratio("tanh", 2000, 0.5, 8))  # q underflows to 0: no prediction
    assert mf.weight_gradient_ratio(lambda x: 0 * x + 1.0, 5, 1.0, 8) == 0.0  # φ′ ≡ 0: nothing flows back


@pytest.mark.parametrize("pair", [("relu", "kaiming_normal"), ("sigmoid", "lecun_normal"), ("tanh", "lecun_normal")])
def test_real_backprop_in_gradient_flow_matches_the_predicted_weight_gradient_ratio(pair):
    """gradient-flow's real rows (width 256, batch 64, 40 seeds as one population, a random readout): the
    geometric-mean ratio of the first to the last layer's gradient norm agrees with theory within its 99.9 %
    interval plus the finite-width allowance of order depth/width, at depths 5 and 10; the ordered sigmoid
    falls by more than 3 decades in 5 layers, so the agreement is not a flat line matching a flat line."""
    from actlab.catalog.activations import get
    from actlab.nn.init import scheme_gain
    from actlab.studies.simulations import gradient_flow

    act, scheme = pair
    rows = gradient_flow(list(range(40)), depths=(5, 10), width=256, batch=64, pairs=(pair,))["rows"]
    for depth in (5, 10):
        logs = np.log10([r["ratio"] for r in rows if r["method"] == "real" and r["depth"] == depth])
        pred = math.log10(mf.weight_gradient_ratio(act, depth, scheme_gain(scheme, get(act)) ** 2, 64))
        half = sps.t.ppf(0.9995, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs))
        slack = math.log10(1 + depth / 256)
        assert abs(logs.mean() - pred) <= half + slack, (depth, logs.mean(), pred, half)
        if act == "sigmoid":
            assert pred < -3 * depth / 5
