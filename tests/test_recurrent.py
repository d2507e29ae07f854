"""Recurrent nets: the population's RNN, GRU and LSTM against torch's own modules (default slots) and a float64
reference cell (every slot), the equivalence contract over mixed slots, the adding problem's generator, the
gradient-through-time probe against a linear RNN's closed form, and bad slot choices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from actlab import data
from actlab.catalog import activations
from actlab.data.sequences import GUESS_MSE, adding_arrays
from actlab.errors import ActlabError
from actlab.nn.models import ModelConfig, build
from actlab.nn.recurrent import parameter_count, torch_order
from actlab.store.results import activation_label
from actlab.training import probes
from actlab.training.loop import TrainConfig, _Objective, train

F64 = torch.float64
TORCH = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}


def _torch_twin(pop, r: int, kind: str, features: int, hidden: int, layers: int, bi: bool):
    """torch's module holding replica r's weights (actlab's gate order mapped to torch's)."""
    mod = TORCH[kind](features, hidden, num_layers=layers, batch_first=True, bidirectional=bi)
    inv = torch.argsort(torch_order(kind, hidden))
    with torch.no_grad():
        for li, dirs in enumerate(pop.core.layers):
            for di, lay in enumerate(dirs):
                sfx = f"_l{li}" + ("_reverse" if di else "")
                getattr(mod, "weight_ih" + sfx).copy_(lay.ih.weight[r].T[inv])
                getattr(mod, "weight_hh" + sfx).copy_(lay.weight_hh[r].T[inv])
                getattr(mod, "bias_ih" + sfx).copy_(lay.ih.bias[r, 0][inv])
                getattr(mod, "bias_hh" + sfx).copy_(lay.bias_hh[r, 0][inv])
    return mod


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bi", [False, True])
def test_default_slots_compute_what_torch_modules_compute_forward_and_backward(kind, bi):
    cfg = ModelConfig(kind=kind, width=6, depth=2, bidirectional=bi)
    pop = build(cfg, (3, 9), "multiclass", 4, [3, 5, 8])
    x = torch.randn(7, 3, 9, generator=torch.Generator().manual_seed(1))
    out = pop(x)
    assert out.shape == (3, 7, 4)
    out[1].square().sum().backward()
    r = 1
    mod = _torch_twin(pop, r, kind, 3, 6, 2, bi)
    y, _ = mod(x.transpose(1, 2))
    last = torch.cat([y[:, -1, :6], y[:, 0, 6:]], -1) if bi else y[:, -1]
    ref = last @ pop.core.head.weight[r] + pop.core.head.bias[r]
    torch.testing.assert_close(out[r], ref, atol=2e-6, rtol=1e-5)
    ref.square().sum().backward()
    inv = torch.argsort(torch_order(kind, 6))
    ours = pop.core.layers[0][0].weight_hh.grad[r].T[inv]
    torch.testing.assert_close(ours, mod.weight_hh_l0.grad, atol=2e-6, rtol=1e-4)
    # torch's parameter count per replica, plus the head
    n_torch = sum(p.numel() for p in mod.parameters())
    assert sum(p[0].numel() for p in pop.parameters()) == n_torch + pop.core.head.weight[0].numel() + 4
    assert parameter_count(kind, 3, 6, 2, 2 if bi else 1, 12 if bi else 6, 4) == n_torch + (12 if bi else 6) * 4 + 4


def _reference(kind: str, x: np.ndarray, w_ih, w_hh, b_ih, b_hh, gate, cand, cell, hidden: int) -> np.ndarray:
    """The cell's equations in float64 NumPy (module docstring of actlab.nn.recurrent), one layer, last state."""
    h = np.zeros((x.shape[0], hidden))
    c = np.zeros_like(h)
    for t in range(x.shape[2]):
        zx = x[:, :, t] @ w_ih + b_ih
        zh = h @ w_hh + b_hh
        if kind == "rnn":
            h = cand(zx + zh)
        elif kind == "gru":
            r = gate(zx[:, :hidden] + zh[:, :hidden])
            u = gate(zx[:, hidden:2 * hidden] + zh[:, hidden:2 * hidden])
            n = cand(zx[:, 2 * hidden:] + r * zh[:, 2 * hidden:])
            h = (1 - u) * n + u * h
        else:
            z = zx + zh
            i, f, o = gate(z[:, :hidden]), gate(z[:, hidden:2 * hidden]), gate(z[:, 2 * hidden:3 * hidden])
            c = f * c + i * cand(z[:, 3 * hidden:])
            h = o * cell(c)
    return h


NP = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
      "identity": lambda z: z, "hard_sigmoid": lambda z: np.clip(z / 6 + 0.5, 0, 1),
      "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))}


@pytest.mark.parametrize("kind,gate,cand,cell", [
    ("lstm", "sigmoid", "tanh", "tanh"), ("lstm", "sigmoid", "identity", "tanh"),  # standard, NIAF
    ("lstm", "sigmoid", "tanh", "identity"), ("lstm", "relu", "tanh", "tanh"),  # NOAF, unbounded gate
    ("lstm", "hard_sigmoid", "elu", "relu"), ("gru", "hard_sigmoid", "relu", None), ("gru", "sigmoid", "tanh", None),
    ("rnn", None, "relu", None), ("rnn", None, "tanh", None)])
def test_every_slot_matches_a_float64_reference_cell(kind, gate, cand, cell):
    slots = {"activation": cand} | ({"gate_activation": gate} if gate else {}) | ({"cell_activation": cell} if cell
                                                                                     else {})
    pop = build(ModelConfig(kind=kind, width=5, depth=1, **slots), (2, 11), "regression", 0, [0, 4])
    x = torch.rand(6, 2, 11, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        out = pop(x)
    lay, r = pop.core.layers[0][0], 1

    def n(t):
        return t.detach().double().numpy()

    h = _reference(kind, n(x), n(lay.ih.weight[r]), n(lay.weight_hh[r]), n(lay.ih.bias[r, 0]), n(lay.bias_hh[r, 0]),
                   NP.get(gate), NP[cand], NP.get(cell), 5)
    ref = h @ n(pop.core.head.weight[r]) + n(pop.core.head.bias[r])
    np.testing.assert_allclose(out[r].double().numpy(), ref, atol=1e-5, rtol=1e-5)


def test_replica_of_a_mixed_population_equals_its_seed_alone_and_slots_share_their_draws():
    members = [ModelConfig(kind="lstm", width=4, depth=1),
               ModelConfig(kind="lstm", width=4, depth=1, activation="identity"),
               ModelConfig(kind="lstm", width=4, depth=1, gate_activation="hard_sigmoid", cell_activation="identity")]
    seeds = [11, 12]
    pop = build(members, (1, 8), "multiclass", 3, seeds)
    x = torch.randn(5, 1, 8, generator=torch.Generator().manual_seed(0))
    out = pop(x)
    for i, mc in enumerate(members):
        alone = build(mc, (1, 8), "multiclass", 3, [12])
        torch.testing.assert_close(out[2 * i + 1], alone(x)[0], atol=1e-6, rtol=1e-5)  # float32 bmm blocking
        for (name, p), (_, q) in zip(pop.named_parameters(), alone.named_parameters(), strict=True):
            torch.testing.assert_close(p[2 * i + 1], q[0], atol=0, rtol=0, msg=name)  # the paired design
    # the forget gate's bias starts at forget_bias (1.0: Gers et al. 2000), b_hh's block at 0
    lay = pop.core.layers[0][0]
    assert torch.all(lay.ih.bias[:, :, 4:8] == 1.0) and torch.all(lay.bias_hh[:, :, 4:8] == 0.0)


def test_initialisation_choices():
    pop = build(ModelConfig(kind="rnn", width=16, depth=1, activation="relu", recurrent_init="identity",
                            weight_variance=2.0), (2, 5), "regression", 0, [0, 1])
    lay = pop.core.layers[0][0]
    assert torch.equal(lay.weight_hh[1], torch.eye(16)) and torch.all(lay.ih.bias == 0)
    w = build(ModelConfig(kind="gru", width=64, depth=1, weight_variance=2.0), (3, 5), "regression", 0,
              list(range(8))).core.layers[0][0].weight_hh
    assert abs(float(w.detach().var()) * 64 / 2.0 - 1) < 0.05  # N(0, σ_w²/H)
    t = build(ModelConfig(kind="lstm", width=25, depth=1, forget_bias=None), (1, 4), "regression", 0,
              list(range(4))).core.layers[0][0]
    bound = 1 / 5  # U(±1/√H), as torch draws it
    assert float(t.weight_hh.detach().abs().max()) <= bound and float(t.ih.bias.detach().abs().max()) <= bound
    o = build(ModelConfig(kind="lstm", width=6, depth=1, recurrent_init="orthogonal"), (1, 4), "regression", 0,
              [0]).core.layers[0][0].weight_hh[0]
    for k in range(4):
        torch.testing.assert_close(o[:, 6 * k:6 * k + 6].T @ o[:, 6 * k:6 * k + 6], torch.eye(6), atol=1e-5, rtol=0)


def test_adding_problem_generator():
    x, y = adding_arrays(4000, 30, np.random.default_rng(5))
    assert x.shape == (4000, 2, 30) and y.shape == (4000,)
    marks = x[:, 1]
    assert np.all(marks.sum(1) == 2) and np.all(marks[:, :15].sum(1) == 1) and np.all(marks[:, 15:].sum(1) == 1)
    np.testing.assert_allclose(y, (x[:, 0] * marks).sum(1), rtol=1e-6)
    assert 0 <= x[:, 0].min() and x[:, 0].max() < 1
    mse = float(((y - 1) ** 2).mean())  # guessing the mean: Var(U + U') = 1/6
    se = float(((y - 1) ** 2).std()) / math.sqrt(len(y))
    assert abs(mse - GUESS_MSE) < 4 * se
    a, b = data.load("adding", T=12, n=60, seed=3), data.load("adding", T=12, n=60, seed=3)
    assert torch.equal(a.x_train, b.x_train) and a.task == "regression" and a.input_shape == (2, 12)
    assert len(a.x_test) == 10 and a.provenance["guess_mse"] == GUESS_MSE
    with pytest.raises(ActlabError, match="T=1"):
        data.load("adding", T=1)


def test_gradient_through_time_of_a_linear_rnn_is_the_recurrent_matrix_power():
    """h_t = h_{t-1} W + x_t U + b, loss at the last step: ∂ℓ/∂h_t = ∂ℓ/∂h_T (Wᵀ)^(T−t) exactly."""
    steps, hidden = 12, 5
    pop = build(ModelConfig(kind="rnn", activation="identity", width=hidden, depth=1, weight_variance=1.5),
                (2, steps), "regression", 0, [0, 1, 2])
    ds = data.load("adding", T=steps, n=40)
    obj = _Objective(pop, ds, TrainConfig())
    rec = probes.probe_population(pop, ds.x_train[:16], ds.y_train[:16], obj, 0)
    names, got = rec.extra_stats["state_grad_norm"]
    assert names == [f"layer1.step{t + 1}" for t in range(steps)]
    lay = pop.core.layers[0][0]
    with torch.no_grad():
        out = pop(ds.x_train[:16])[..., 0].double()  # (M, B)
    for r in range(3):
        w = lay.weight_hh[r].detach().double()
        g_t = 2 * (out[r] - ds.y_train[:16].double())[:, None] * pop.core.head.weight[r, :, 0].detach().double()
        expect = []
        for _ in range(steps):
            expect.append(float(g_t.square().sum(1).mean().sqrt()))  # RMS over examples of ‖∂ℓ_i/∂h_t‖
            g_t = g_t @ w.T
        np.testing.assert_allclose(got[r], expect[::-1], rtol=1e-4)
    # each slot is traced apart, weights grouped per layer
    assert rec.activation_layers == ["layer1.state", "output"] and rec.weight_layers == ["layer1", "output"]


def test_lstm_probe_traces_every_gate_and_training_learns_the_adding_problem():
    ds = data.load("adding", T=10, n=2400)
    pop = build([ModelConfig(kind="lstm", width=16, depth=1), ModelConfig(kind="lstm", width=16, depth=1,
                                                                          cell_activation="identity")],
                ds.input_shape, ds.task, 0, [0, 1])
    hist = train(pop, ds, TrainConfig(optimizer="adam", lr=1e-2, epochs=8, batch_size=50, probe_epochs=[0],
                                      probe_size=32))
    assert np.all(hist.test_loss[:, -1] < GUESS_MSE / 4)  # every replica far below guessing
    rec = hist.probes[0]
    assert rec.activation_layers == [f"layer1.{s}" for s in ("input_gate", "forget_gate", "output_gate", "candidate",
                                                             "cell")] + ["output"]
    assert rec.activation_stats["a_mean"].shape == (4, 6)
    # the forget gate starts near σ(1) = 0.731 (forget_bias 1.0; small weights)
    assert np.all(np.abs(rec.activation_stats["a_mean"][:, 1] - 1 / (1 + math.exp(-1))) < 0.1)


def test_bad_slot_choices_get_one_clear_message():
    cases = [({"kind": "lstm", "gate_activation": "softmax"}, "gate_activation='softmax' is vector-valued"),
             ({"kind": "gru", "activation": "swiglu"}, "is gated"),
             ({"kind": "rnn", "gate_activation": "sigmoid"}, "a rnn has no such slot"),
             ({"kind": "gru", "cell_activation": "identity"}, "cell_activation is for lstm"),
             ({"kind": "gru", "forget_bias": 0.5}, "only an LSTM has a forget gate"),
             ({"kind": "mlp", "bidirectional": True}, "apply to recurrent kinds only"),
             ({"kind": "lstm", "norm": "batch"}, "a lstm takes depth"),
             ({"kind": "lstm", "bias_init": 0.5}, "bias_init"),
             ({"kind": "lstm", "init": "suo"}, "init")]
    for fields, msg in cases:
        with pytest.raises(ValidationError, match=msg):
            ModelConfig(**fields)
    with pytest.raises(ActlabError, match="no time axis"):
        build(ModelConfig(kind="lstm"), (2,), "binary", 2, [0])
    with pytest.raises(ActlabError, match="bidirectional must be false"):
        build(ModelConfig(kind="gru", bidirectional=True), (16,), "next_token", 30, [0])


def test_configuration_round_trip_labels_and_earlier_keys():
    cfg = ModelConfig(kind="lstm", width=8, activation="identity", gate_activation="Hard-Sigmoid")
    dumped = cfg.model_dump(mode="json")
    assert dumped["gate_activation"] == "Hard-Sigmoid" and "cell_activation" not in dumped  # the usual tanh
    assert ModelConfig(**dumped).model_dump(mode="json") == dumped and ModelConfig(**dumped).cell_activation == "tanh"
    # a slot left at its usual choice is not written, so a grid may turn the LSTM into a GRU
    assert ModelConfig(**{**ModelConfig(kind="lstm").model_dump(mode="json"), "kind": "gru"}).kind == "gru"
    assert activation_label(dumped) == "lstm (gate Hard-Sigmoid, candidate identity: NIAF)"
    assert activation_label(ModelConfig(kind="rnn", activation="relu", recurrent_init="identity").model_dump(
        mode="json")) == "rnn relu (identity init)"
    rnn = ModelConfig(kind="rnn").model_dump(mode="json")
    assert rnn["activation"] == "tanh" and "gate_activation" not in rnn and "forget_bias" not in rnn
    mlp = ModelConfig().model_dump(mode="json")
    assert not {"gate_activation", "readout", "bidirectional", "recurrent_init", "forget_bias"} & set(mlp)


def test_a_recurrent_language_model_reads_every_step():
    pop = build(ModelConfig(kind="lstm", width=8, depth=1), (12,), "next_token", 20, [0, 1])
    ids = torch.randint(0, 20, (3, 12), generator=torch.Generator().manual_seed(0))
    out = pop(ids)
    assert out.shape == (2, 3, 12, 20)
    with torch.no_grad():  # causal: changing the last token leaves every earlier step's output unchanged
        ids2 = ids.clone()
        ids2[:, -1] = (ids2[:, -1] + 1) % 20
        torch.testing.assert_close(pop(ids2)[:, :, :-1], out[:, :, :-1].detach(), atol=0, rtol=0)
    assert activations.get("tanh") == pop.cfg.activation


def test_gain_per_step_at_init_follows_mean_field_theory():
    """A wide plain RNN with Gaussian weights: the measured gain per step of ‖∂ℓ/∂h_t‖ far from both ends
    against √χ₁ at the fixed point of q = σ_w² E[φ(√q z)²] + σ_w² E‖x‖²/2, computed here by independent
    quadrature (scipy), and against the analysis' prediction."""
    from scipy import integrate, optimize

    from actlab.analysis.recurrent import predicted_gain
    from actlab.store.results import CellData

    steps = 40
    ds = data.load("adding", T=steps, n=600)
    power = (1 / 3 + 2 / steps) / 2

    def gauss(f):  # E[f(z)], z ~ N(0, 1)
        return integrate.quad(lambda z: f(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi), -12, 12, limit=200)[0]

    for act, sw2 in (("tanh", 1.0), ("tanh", 2.0), ("relu", 1.0), ("relu", 2.0)):
        if act == "tanh":
            q = optimize.brentq(lambda q: sw2 * gauss(lambda z: math.tanh(math.sqrt(q) * z) ** 2) + sw2 * power - q,
                                1e-6, 10)
            chi = sw2 * gauss(lambda z: (1 - math.tanh(math.sqrt(q) * z) ** 2) ** 2)
        else:
            chi = sw2 / 2  # E[relu′²] = 1/2 at any q
        pop = build(ModelConfig(kind="rnn", activation=act, width=512, depth=1, weight_variance=sw2),
                    ds.input_shape, ds.task, 0, [0, 1, 2])
        rec = probes.probe_population(pop, ds.x_train[:256], ds.y_train[:256], _Objective(pop, ds, TrainConfig()), 0)
        g = rec.extra_stats["state_grad_norm"][1]
        measured = float(np.exp(np.mean(np.log(g[:, 5] / g[:, 35]))) ** (1 / 30))
        assert measured == pytest.approx(math.sqrt(chi), rel=0.05), (act, sw2)
        cell = CellData("k", 0, "", {}, {"model": {"kind": "rnn", "activation": act, "weight_variance": sw2}},
                        "done", None, None, None, None, None)
        assert predicted_gain(cell, power) == pytest.approx(math.sqrt(chi), rel=1e-4)


def test_recurrent_studies_report_each_arm_against_the_reference_with_figures(smoke_runs, smoke_dir):
    from actlab.analysis.findings import findings
    from actlab.report.figures import recurrent as figs
    from actlab.store.results import Run

    with Run.open(smoke_dir / "lstm-slots") as run:
        assert [c.series for c in run.cells[:6]] == [
            "lstm", "lstm (candidate identity: NIAF)", "lstm (cell identity: NOAF)", "lstm (gate relu)",
            "lstm (gate hard_sigmoid)", "gru"]
        assert {c.context for c in run.cells} == {"data=mnist1d, n_train=100, n_test=50", "data=adding, T=30, n=120"}
        texts = [f.text for f in findings(run)]
        assert sum(t.startswith("Final test accuracy (data=mnist1d") for t in texts) == 5  # each arm vs lstm
        assert sum(t.startswith("Final test MSE (data=adding, T=30") for t in texts) == 5
        assert any("solved (MSE below 0.0167, a tenth of guessing's 0.167)" in t for t in texts)
        guide = [t for t in texts if t.startswith("The guide's claim \"LSTM gates require bounded activations\"")]
        assert len(guide) == 1 and "lstm (gate relu)" in guide[0]
        assert any("saturated fraction of each gate of layer 1" in t and "forget gate" in t for t in texts)
        assert figs.time_gradient_figure(run) is not None and figs.score_vs_length_figure(run) is None
    with Run.open(smoke_dir / "rnn-time") as run:
        assert {c.series for c in run.cells} == {"rnn tanh", "rnn relu", "rnn relu (identity init)"}
        texts = [f.text for f in findings(run)]
        theory = [t for t in texts if "mean-field theory predicts √χ₁" in t]
        assert theory and not any("identity init" in t for t in theory)  # no prediction for the IRNN
        assert figs.score_vs_length_figure(run) is not None


def test_guide_verdict_follows_the_holm_adjusted_comparisons():
    from actlab.analysis.recurrent import _guide_verdict
    from actlab.analysis.statements import Finding, Stats, verdict

    st = Stats()
    worse = Finding("x", paired=st.paired({s: 0.5 + 0.01 * s for s in range(10)}, {s: 0.1 for s in range(10)}))
    verdict(worse, 0.01, "relu", "lstm", "has the lower MSE")
    tie = Finding("y", paired=st.paired({s: (-1) ** s * 0.01 for s in range(10)}, {s: 0.0 for s in range(10)}))
    verdict(tie, 0.9, "relu", "lstm", "has the lower MSE")
    one = _guide_verdict([(worse, "lstm (gate relu)", "T=30", "", True)])
    assert "detectably worse" in one.text and "Supported at these settings" in one.text
    both = _guide_verdict([(worse, "lstm (gate relu)", "T=30", "", True),
                           (tie, "lstm (gate relu)", "mnist1d", "", True)])
    assert "Not supported as a requirement" in both.text and "detectably worse on T=30." in both.text
    # a task where the score ties but the unbounded gate diverges more often counts as worse on that task
    div = _guide_verdict([(tie, "lstm (gate relu)", "mnist1d", "", False), (worse, "lstm (gate relu)", "mnist1d",
                                                                             "divergence", True)])
    assert "(mnist1d, divergence, Holm-adjusted p = 0.01)" in div.text and "Supported" in div.text
    better = _guide_verdict([(worse, "lstm (gate relu)", "acc", "", False)])  # higher accuracy: better
    assert "Contradicted" in better.text
    none = _guide_verdict([(tie, "lstm (gate relu)", "mnist1d", "", True)])
    assert "detectably worse on no task." in none.text
    # the survivors of an arm that diverges more often score better: survivorship, not a contradiction
    surv = _guide_verdict([(worse, "lstm (gate relu)", "mnist1d", "", False),
                           (worse, "lstm (gate relu)", "mnist1d", "divergence", True)])
    assert "Contradicted" not in surv.text and "mixed on mnist1d" in surv.text


def test_a_user_function_that_is_not_element_wise_is_refused_in_any_slot():
    with pytest.raises(ActlabError, match="is not element-wise"):
        activations.from_callable(lambda x: torch.softmax(x, 0), name="my_softmax")
    with pytest.raises(ActlabError, match="is not element-wise"):
        activations.from_callable(lambda x: x / x.norm(), name="my_norm")
    assert activations.from_callable(lambda x: x * torch.tanh(x), name="my_xtanh").name == "my_xtanh"


def test_forget_bias_none_from_a_study_and_only_on_an_lstm():
    from actlab.studies.config import expand, load_study

    cfg = ModelConfig(kind="lstm", forget_bias="none")
    assert cfg.forget_bias is None and cfg.model_dump(mode="json")["forget_bias"] is None
    cells = expand(load_study("lstm-slots", ["seeds=2", "grid.model=[{kind=\"lstm\", forget_bias=\"none\"}, "
                                             "{kind=\"lstm\", forget_bias=2.0}, {kind=\"gru\"}]"]))
    assert [c.config.model.forget_bias for c in cells[:3]] == [None, 2.0, 1.0]  # the GRU holds the unused default
    assert "forget_bias" not in cells[2].config.model.model_dump(mode="json")
    with pytest.raises(ValidationError, match="only an LSTM has a forget gate"):
        ModelConfig(kind="gru", forget_bias=1.0)
