"""The selection guide, tested: claims declared in study files get verdicts from stores whose answer is known
(synthetic histories written through the store's own writer), the claim specification refuses bad input, and
`actlab activations guide --runs` shows the verdicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats as sps

from actlab.analysis import guide
from actlab.analysis.findings import findings
from actlab.store.results import Run
from actlab.store.writer import CellResult, Store
from actlab.studies.config import Claim, expand, load_study
from actlab.training.loop import History
from test_cli import actlab


def _write(tmp_path, name: str, study, final: dict[str, np.ndarray], loss: dict[str, np.ndarray] | None = None,
           diverged: dict[str, np.ndarray] | None = None, provenance: dict | None = None):
    """A store of `study` whose cells end at the given per-seed values (keyed by the cell's series label)."""
    from actlab.store.results import activation_label

    cells = expand(study)
    store = Store(tmp_path / name)
    store.save_study(study.name, study.model_dump(mode="json"), {})
    store.add_cells(cells)
    results = []
    for c in cells:
        label = activation_label(c.config.model.model_dump(mode="json"))
        m = len(study.seed_list())
        acc = np.tile(final[label][:, None], (1, 3)) if label in final else np.full((m, 3), np.nan)
        te = np.tile(loss[label][:, None], (1, 3)) if loss and label in loss else np.full((m, 3), np.nan)
        div = diverged[label] if diverged and label in diverged else np.zeros(m, dtype=np.int64)
        nan = np.full((m, 3), np.nan)
        h = History(study.seed_list(), nan, nan, None, None, te, acc, None, div)
        results.append((c.key, CellResult(wall_s=1.0, device="cpu", history=h, data_provenance=provenance)))
    store.write_results(results)
    store.close()
    return Run.open(tmp_path / name)


def test_known_answers_supported_contradicted_not_decided(tmp_path):
    study = load_study("vit-activations", ["seeds=8"])  # claims: swish over relu, gelu over relu (accuracy)
    gen = np.random.default_rng(0)
    relu = 0.9 + gen.normal(0, 0.005, 8)
    cases = {"supported": {"relu": relu, "swish": relu + 0.04 + gen.normal(0, 0.004, 8), "gelu": relu + 0.03},
             "contradicted": {"relu": relu, "swish": relu - 0.05 + gen.normal(0, 0.004, 8), "gelu": relu - 0.02},
             "undecided": {"relu": relu, "swish": relu + gen.normal(0, 0.01, 8), "gelu": relu}}
    for name, values in cases.items():
        with _write(tmp_path, name, study, values) as run:
            got = guide.claim_verdicts(run)
            assert [cv.guide for cv in got] == ["Transformer", "Transformer"]
            swish, gelu = got
            if name == "supported":
                assert swish.verdict == gelu.verdict == "supported"
            elif name == "contradicted":
                assert swish.verdict == gelu.verdict == "contradicted"
            else:
                assert swish.verdict == "not decided" and gelu.verdict == "not decided"
                assert "tied, equal on every one of the 8 seeds" in gelu.sentence()
                g = swish.groups[0]
                z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
                d = swish.groups[0].paired
                assert g.needed == max(2, math.ceil((z / abs(d.effect_size)) ** 2))
                assert f"about {g.needed} seeds would decide it" in swish.sentence()
            # the family is Holm over the study's claims: each adjusted p >= its raw p
            assert all(g.p_holm >= g.paired.p for cv in got for g in cv.groups)
            texts = [f.text for f in findings(run)]
            assert sum(t.startswith("The guide's \"") for t in texts) == 2


def test_zero_one_outcomes_count_every_seed(tmp_path):
    study = load_study("lstm-slots", ["seeds=10"])
    std = "lstm"
    relu = "lstm (gate relu)"
    div = {std: np.zeros(10, dtype=np.int64), relu: np.array([2, 1, 3, 0, 2, 2, 1, 4, 0, 2])}  # 8 of 10 diverged
    final = {k: np.full(10, 0.5) for k in (std, relu)}
    loss = {std: np.full(10, 0.001), relu: np.full(10, 0.5)}  # adding: the standard solves, the relu gate does not
    with _write(tmp_path, "s", study, final, loss, div, {"task": "regression", "guess_mse": 1 / 6}) as run:
        got = {cv.metric: cv for cv in guide.claim_verdicts(run)}
        assert got["diverged"].verdict == "supported" and got["diverged"].groups[0].paired.n == 10
        assert got["diverged"].groups[0].paired.diff.mean == pytest.approx(0.8)
        # solved: the diverged seeds count as unsolved, not dropped (10 paired seeds, not 2)
        assert got["solved"].groups[0].paired.n == 10 and got["solved"].verdict == "supported"


def test_a_claim_without_its_cells_is_not_run(tmp_path):
    study = load_study("vit-activations", ["seeds=3", "grid.activation=[relu,gelu]"])  # no swish cell
    with _write(tmp_path, "n", study, {"relu": np.full(3, 0.9), "gelu": np.full(3, 0.9)}) as run:
        swish, gelu = guide.claim_verdicts(run)
        assert swish.verdict == "not run" and "holds no pair of cells" in swish.sentence()
        assert gelu.verdict == "not decided"


def test_claim_specification_refuses_bad_input():
    ok = dict(guide="RNN/LSTM", claim="x", metric="solved", better="activation=tanh", than="activation=relu")
    assert Claim(**ok).better == "activation=tanh"
    for change, msg in (({"guide": "Perceptron"}, "not a row of the selection guide"),
                        ({"metric": "auc"}, "metric"), ({"better": "activation"}, "each part must be field=value"),
                        ({"than": "activation=tanh"}, "the same arm")):
        with pytest.raises(ValidationError, match=msg):
            Claim(**{**ok, **change})


def test_shipped_claims_name_rows_of_the_guide_and_cells_of_their_study():
    from actlab.catalog.guide import ARCHITECTURES

    measured = {s.strip() for row in ARCHITECTURES for s in row[4].split(",") if s.strip()}
    for name in ("moons", "activation-zoo", "vit-activations", "transformer-ffn-cpu", "transformer-ffn", "lstm-slots",
                 "rnn-time", "residual-depth"):
        study = load_study(name)
        assert study.claims, name
        rows = {c.guide for c in study.claims} - {"rule of thumb"}
        assert all(name in next(r[4] for r in ARCHITECTURES if r[0] == row) for row in rows), name
        assert name in measured or not rows


def test_guide_command_shows_verdicts_from_runs(tmp_path):
    study = load_study("vit-activations", ["seeds=8"])
    relu = np.linspace(0.8, 0.9, 8)
    _write(tmp_path / "runs", "vit", study, {"relu": relu, "swish": relu - 0.05, "gelu": relu + 0.0}).close()
    r = actlab("activations", "guide", "--runs", str(tmp_path / "runs"), "--json")
    assert r.returncode == 0, r.stderr
    g = json.loads(r.stdout)
    verdicts = g["verdicts"]["Transformer"]
    assert [v["verdict"] for v in verdicts] == ["contradicted", "not decided"] and verdicts[0]["study"] == \
        "vit-activations"
    r = actlab("activations", "guide", "--runs", str(tmp_path / "runs"))
    assert r.returncode == 0 and "contradicted" in r.stdout and "not yet run" in r.stdout
    empty = actlab("activations", "guide", "--runs", str(tmp_path / "nothing"))
    assert empty.returncode == 0 and "No stored run under" in empty.stdout


def test_pre_activation_residual_mlp_against_its_formula():
    """residual='pre': h₀ = W₀x + b₀, hᵢ = hᵢ₋₁ + (Wᵢ φ(hᵢ₋₁) + bᵢ)/√L, out = W φ(h_L) + b, in float64."""
    import torch

    from actlab.nn.models import ModelConfig, build

    pop = build(ModelConfig(activation="tanh", depth=5, width=6, residual="pre"), (3,), "multiclass", 4, [0, 1])
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    trace: list = []
    with torch.no_grad():
        out = pop(x, trace=trace)
    r = 1
    w = [lay.weight[r].double() for lay in pop.hidden]
    b = [lay.bias[r, 0].double() for lay in pop.hidden]
    h = x.double() @ w[0] + b[0]
    for i in range(1, 5):
        h = h + (torch.tanh(h) @ w[i] + b[i]) / math.sqrt(4)
    ref = torch.tanh(h) @ pop.head.weight[r].double() + pop.head.bias[r, 0].double()
    torch.testing.assert_close(out[r].double(), ref, atol=1e-5, rtol=1e-5)
    assert [name for name, *_ in trace] == [f"hidden{i}" for i in range(1, 6)] + ["output"]  # one per weight layer
    with pytest.raises(ValidationError, match="residual='pre'"):
        ModelConfig(widths=[8, 16], residual="pre")


def test_pre_activation_residual_convnet_against_torch_conv_in_float64():
    """A ConvNet's residual='pre': h₀ = conv₀(x), hᵢ = hᵢ₋₁ + convᵢ(φ(hᵢ₋₁))/√L, out = W mean_pos φ(h_L) + b, replica
    by replica with torch's own conv1d in float64."""
    import torch
    import torch.nn.functional as F

    from actlab.nn.models import ModelConfig, build

    pop = build(ModelConfig(kind="convnet", activation="relu", depth=3, width=4, residual="pre"), (2, 10),
                "multiclass", 5, [3, 8])
    x = torch.randn(6, 2, 10, generator=torch.Generator().manual_seed(1))
    trace: list = []
    with torch.no_grad():
        out = pop(x, trace=trace)
    for r in range(2):
        def conv(i, h, r=r):
            lay = pop.convs[i]
            rows = slice(r * lay.out_channels, (r + 1) * lay.out_channels)
            return F.conv1d(h, lay.weight[rows].double(), lay.bias[rows].double(), padding=1)

        h = conv(0, x.double())
        for i in range(1, 4):
            h = h + conv(i, torch.relu(h)) / math.sqrt(3)
        ref = torch.relu(h).mean(-1) @ pop.head.weight[r].double() + pop.head.bias[r, 0].double()
        torch.testing.assert_close(out[r].double(), ref, atol=1e-5, rtol=1e-5)
    assert [name for name, *_ in trace] == ["block1", "block2", "block3", "final", "output"]


def test_pre_activation_keeps_a_deep_relu_stream_finite_where_the_plain_net_fades():
    import torch

    from actlab.nn.models import ModelConfig, build

    x = torch.randn(512, 40, generator=torch.Generator().manual_seed(1))
    out = {}
    for res in (False, "pre"):
        pop = build(ModelConfig(activation="relu", depth=64, width=64, residual=res, weight_variance=1.0), (40,),
                    "multiclass", 10, [0, 1, 2])
        trace: list = []
        with torch.no_grad():
            pop(x, trace=trace)
        out[res] = [float(t[1].std()) for t in trace[:-1]]
    # LeCun-scaled ReLU halves the variance per plain layer; the residual stream stays within a factor of e
    assert out[False][-1] < 1e-6 * out[False][0]
    assert 0.3 < out["pre"][-1] / out["pre"][0] < 3.0


def test_residual_depth_smoke_run_decides_its_claim_where_the_depth_ran(smoke_runs, smoke_dir):
    """The smoke profile runs depths 2 and 4: the claim at 64 layers is not run there, and says so."""
    with Run.open(smoke_dir / "residual-depth") as run:
        (cv,) = guide.claim_verdicts(run)
        assert cv.guide == "ResNet" and cv.verdict == "not run"
        assert {c.model["residual"] for c in run.cells} == {False, "pre"}
    with Run.open(smoke_dir / "moons") as run:
        (cv,) = guide.claim_verdicts(run)
        assert cv.verdict in guide.VERDICTS and cv.groups and cv.groups[0].better == "relu"


def test_the_guide_suite_holds_every_study_with_claims_that_runs_on_a_cpu():
    from actlab.studies import library

    suite = load_study("guide")
    assert suite.kind == "suite" and set(suite.include) <= set(library.names())
    with_claims = {n for n in library.names() if load_study(n).kind == "train" and load_study(n).claims}
    # the two transformer-ffn profiles need a download and minutes (the GPU one, a GPU): named in the suite's note
    assert with_claims - set(suite.include) == {"transformer-ffn", "transformer-ffn-cpu"}
    assert "transformer-ffn-cpu" in suite.note
    zoo = load_study("activation-zoo", suite.overrides["activation-zoo"])
    cells = expand(zoo)
    assert {c.config.model.depth for c in cells} == {16}
    for claim in zoo.claims:  # every claim's two arms are among the profile's cells
        for sel in (claim.better, claim.than):
            assert any(c.config.model.activation.name == sel.split("=")[1] for c in cells)


def test_a_pre_activation_population_keeps_the_equivalence_contract():
    """Members differing in their activation share one residual='pre' population; replica k trains as its seed
    alone (same initial draw, same data order, same trajectory)."""
    from actlab import data
    from actlab.nn.models import ModelConfig, build
    from actlab.training.loop import TrainConfig, train

    ds = data.load("moons")
    members = [ModelConfig(activation=a, depth=3, width=8, residual="pre") for a in ("relu", "tanh")]
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.05, engine="torch")
    pop = build(members, ds.input_shape, ds.task, ds.n_classes, [4, 9])
    hp = train(pop, ds, cfg)
    for i, mc in enumerate(members):
        solo = build(mc, ds.input_shape, ds.task, ds.n_classes, [9])
        hs = train(solo, ds, cfg)
        np.testing.assert_allclose(hp.test_loss[2 * i + 1], hs.test_loss[0], rtol=1e-4, atol=1e-6)


def test_the_closing_remark_reads_gaps_among_the_recommended_activations(tmp_path):
    """Known answers: a 10-point gap between ReLU and GELU is larger than a few points; a 1-point one within;
    sigmoid's gap is counted apart; the verdict follows the exact interval of the share of larger groups."""
    study = load_study("vit-activations", ["seeds=8", "grid.activation=[relu,gelu,sigmoid]"])
    gen = np.random.default_rng(3)
    relu = 0.9 + gen.normal(0, 0.004, 8)
    prov = {"task": "multiclass"}
    with _write(tmp_path, "big", study, {"relu": relu, "gelu": relu - 0.10 + gen.normal(0, 0.004, 8),
                                         "sigmoid": relu - 0.5}, provenance=prov) as run:
        (big,) = guide.spreads(run)
        assert (big.best, big.worst, big.verdict) == ("relu", "gelu", "larger")
        assert big.paired.diff.mean == pytest.approx(0.10, abs=0.01)
        (every,) = guide.spreads(run, among=None)
        assert (every.best, every.worst) == ("relu", "sigmoid")
    with _write(tmp_path, "small", study, {"relu": relu, "gelu": relu - 0.01 + gen.normal(0, 0.002, 8)},
                provenance=prov) as run:
        (small,) = guide.spreads(run)
        assert small.verdict == "within" and small.paired.diff.hi < guide.FEW_POINTS
    one = guide.spread_verdict([big])
    assert one["verdict"] == "not decided" and one["larger"] == 1  # 1 of 1: exact CI [0.025, 1] spans a quarter
    assert guide.spread_verdict([small] * 12)["verdict"] == "not decided"  # 0 of 12: exact upper bound 0.265
    many = guide.spread_verdict([small] * 14, [small] * 14 + [every])
    assert many["verdict"] == "supported"  # 0 of 14: 1 − 0.025^(1/14) = 0.231 < a quarter
    assert "With sigmoid and tanh counted too: 1 of 15 groups differ by more than 5%" in many["sentence"]
    assert guide.spread_verdict([big] * 12)["verdict"] == "contradicted"
    assert guide.spread_verdict([])["verdict"] == "not run"


def test_every_guide_line_names_its_study_or_is_marked_a_convention():
    from actlab.catalog import guide as sources
    from actlab.studies import library

    g = sources.selection_guide()
    shipped = set(library.names())
    for row in g["architectures"]["rows"]:  # every architecture row has a shipped study
        assert row[4] != "—" and all(s.split()[-1] in shipped for s in row[4].split("; "))
    assert all(r[-1].startswith("convention") for r in g["outputs"]["rows"])
    for by in [s["tested_by"] for s in g["flowchart"]] + g["rules_tested_by"]:
        assert by == sources.CONVENTION or all(s.strip() in shipped for s in by.split(","))
    assert len(g["rules_tested_by"]) == len(g["rules"])
    # each study named for a claim declares claims of that row
    for row in sources.ARCHITECTURES:
        if row[0] in ("MLP (general)", "Deep MLP (>10 layers)", "Transformer"):
            continue  # their older studies (dead-neurons-trained, selu-selfnorm, ...) measure without claims
        first = load_study(row[4].split(",")[0].strip())
        assert any(c.guide == row[0] for c in first.claims), row[0]


def test_the_explorer_guide_carries_the_stored_verdicts(tmp_path):
    from pathlib import Path

    from actlab.web.routes.activations import tested_guide

    study = load_study("vit-activations", ["seeds=8"])
    gen = np.random.default_rng(5)
    relu = 0.9 + gen.normal(0, 0.005, 8)
    _write(tmp_path, "vit", study, {"relu": relu, "swish": relu + 0.04 + gen.normal(0, 0.004, 8),
                                    "gelu": relu + 0.03}, provenance={"task": "multiclass"}).close()
    g = tested_guide(Path(tmp_path))
    (swish, gelu) = g["verdicts"]["Transformer"]
    assert swish["verdict"] == "supported" and swish["run_dir"] == "vit" and swish["better"] == "activation=swish"
    assert g["remark"]["groups"] == 1 and g["remark"]["verdict"] == "not decided"
    assert tested_guide(Path(tmp_path) / "nowhere")["verdicts"] == {}


def test_spellings_and_copies_of_a_study_do_not_change_a_verdict(tmp_path):
    """A grid spelled 'ReLU', 'Swish' meets claims written 'activation=relu'; three copies of one study under a
    runs folder are one setting (the most finished copy), not three."""
    study = load_study("vit-activations", ["seeds=8", "grid.activation=[ReLU,Swish,GELU]"])
    gen = np.random.default_rng(1)
    relu = 0.9 + gen.normal(0, 0.004, 8)
    values = {"ReLU": relu, "Swish": relu + 0.2 + gen.normal(0, 0.004, 8), "GELU": relu + 0.01}
    for i in range(3):
        _write(tmp_path / "runs", f"copy{i}", study, values, provenance={"task": "multiclass"}).close()
    with Run.open(tmp_path / "runs" / "copy0") as run:
        assert [cv.verdict for cv in guide.claim_verdicts(run)] == ["supported", "supported"]
        assert [s.best for s in guide.spreads(run)] == ["Swish"]  # 'Swish' is the catalog's swish
    assert len(guide.scan(tmp_path / "runs")) == 2  # the two claims once, not three times
    assert len(guide.scan_spreads(tmp_path / "runs")) == 1
