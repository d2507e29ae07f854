"""The population engine: equivalence contract, paired design, divergence, determinism, probes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from actlab import data, rng
from actlab.nn import ModelConfig, build
from actlab.nn.layers import PopLinear
from actlab.training import probes
from actlab.training.loop import TrainConfig, _mean_abs_grad, _Objective, lr_factor, train


@pytest.fixture(scope="module")
def moons():
    return data.load("moons", n=120)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n_train=96, n_test=40, downsample=2)  # (1, 4, 4) images, quick


def _params(model, m):
    """Every parameter of replica m as one float64 vector (replica-major layout)."""
    return torch.cat([p.detach().reshape(model.m, -1)[m].double() for p in model.parameters()])


SEEDS = [11, 3, 7, 42]


# ------------------------------------------------------------------------------ equivalence contract


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_mlp_replica_follows_its_solo_trajectory(moons, optimizer, norm):
    cfg = ModelConfig(widths=[8, 8], activation="tanh", norm=norm)
    tc = TrainConfig(epochs=6, batch_size=16, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 0.01,
                     momentum=0.9 if optimizer == "sgd" else 0.0)
    pop = build(cfg, moons.input_shape, moons.task, 2, SEEDS)
    hp = train(pop, moons, tc)
    for k, seed in enumerate(SEEDS):
        solo = build(cfg, moons.input_shape, moons.task, 2, [seed])
        hs = train(solo, moons, tc)
        np.testing.assert_allclose(hp.test_loss[k], hs.test_loss[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(hp.batch_loss[k], hs.batch_loss[0], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(_params(pop, k), _params(solo, 0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_convnet_with_batchnorm_replica_follows_its_solo_trajectory(digits, optimizer):
    cfg = ModelConfig(kind="convnet", depth=2, width=6, norm="batch", activation="relu")
    tc = TrainConfig(epochs=3, batch_size=32, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 3e-3,
                     momentum=0.9 if optimizer == "sgd" else 0.0, grad_stats=True)
    seeds = SEEDS[:3]
    pop = build(cfg, digits.input_shape, digits.task, 10, seeds)
    hp = train(pop, digits, tc)
    for k, seed in enumerate(seeds):
        solo = build(cfg, digits.input_shape, digits.task, 10, [seed])
        hs = train(solo, digits, tc)
        np.testing.assert_allclose(hp.test_loss[k], hs.test_loss[0], rtol=2e-4, atol=1e-5)
        np.testing.assert_allclose(hp.grad_mean[k], hs.grad_mean[0], rtol=2e-4, atol=1e-7)
        torch.testing.assert_close(_params(pop, k), _params(solo, 0), rtol=2e-4, atol=2e-5)
        bn_pop = [b for b in pop.buffers() if b.dim() > 0]
        bn_solo = [b for b in solo.buffers() if b.dim() > 0]
        for bp, bs in zip(bn_pop, bn_solo, strict=True):  # running statistics too
            torch.testing.assert_close(bp.reshape(len(seeds), -1)[k], bs.reshape(1, -1)[0], rtol=2e-4, atol=2e-5)


def test_conv1d_on_mnist1d_shapes():
    ds = data.load("mnist1d", n_train=64, n_test=32)
    pop = build(ModelConfig(kind="convnet", depth=1, width=4, norm="batch"), ds.input_shape, ds.task, 10, [0, 1])
    h = train(pop, ds, TrainConfig(epochs=1, batch_size=32, optimizer="adam", lr=1e-3))
    assert h.test_acc.shape == (2, 1) and np.isfinite(h.test_loss).all()


# -------------------------------------------------------------------------------- paired design


def test_paired_design_same_draw_across_activations_and_depths(moons):
    relu = build(ModelConfig(widths=[8, 8], activation="relu", init="kaiming_normal"), (2,), "binary", 2, [5, 6])
    sig = build(ModelConfig(widths=[8, 8], activation="sigmoid", init="kaiming_normal", init_gain=1.0),
                (2,), "binary", 2, [5, 6])
    deeper = build(ModelConfig(widths=[8, 8, 8], activation="relu", init="kaiming_normal"), (2,), "binary", 2, [5, 6])
    # Same underlying draw, scaled by the gain: relu's sqrt(2) against sigmoid's 1.
    torch.testing.assert_close(relu.hidden[0].weight, sig.hidden[0].weight * math.sqrt(2))
    torch.testing.assert_close(relu.hidden[1].weight, deeper.hidden[1].weight)


def test_init_scales(moons):
    seeds = list(range(400))
    for scheme, expected in [("kaiming_normal", math.sqrt(2 / 8)), ("lecun_normal", None),
                             ("xavier_uniform", None), ("blobs", None)]:
        m = build(ModelConfig(widths=[8, 8], activation="relu", init=scheme), (2,), "binary", 2, seeds)
        w = m.hidden[1].weight.detach()  # fan_in 8, fan_out 8
        if scheme == "kaiming_normal":
            assert float(w.std()) == pytest.approx(expected, rel=0.02)
        if scheme == "lecun_normal":  # relu's gain sqrt(2) applies to any scheme unless init_gain is given
            assert float(w.std()) == pytest.approx(math.sqrt(2) / math.sqrt(8), rel=0.02)
        if scheme == "xavier_uniform":
            bound = math.sqrt(2) * math.sqrt(6 / 16)
            assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.99 * bound
        if scheme == "blobs":
            assert float(w.min()) >= 0 and float(w.max()) < 0.01 and float(w.mean()) == pytest.approx(0.005, rel=0.02)
    orth = build(ModelConfig(widths=[8, 8], init="orthogonal", init_gain=1.0), (2,), "binary", 2, [1, 2])
    w = orth.hidden[1].weight.double()
    torch.testing.assert_close(w[0].T @ w[0], torch.eye(8, dtype=torch.float64), atol=1e-6, rtol=0)


def test_data_order_depends_on_the_seed_only():
    a = rng.permutations([4, 9, 1], rng.stream_id("order", 3), 50)
    b = rng.permutations([9], rng.stream_id("order", 3), 50)
    assert torch.equal(a[1], b[0]) and sorted(a[0].tolist()) == list(range(50))
    assert not torch.equal(a[0], a[1])


# --------------------------------------------------------------------------- divergence and determinism


def test_divergent_replica_is_masked_and_the_others_go_on(moons):
    cfg = ModelConfig(widths=[8], activation="relu")
    tc = TrainConfig(epochs=5, batch_size=32, loss="mse", lr=0.05, probe_epochs=[5])
    pop = build(cfg, moons.input_shape, moons.task, 2, [1, 2, 3])
    with torch.no_grad():
        pop.hidden[0].weight[1] *= 1e30  # replica 1 overflows on its first step
        pop.head.weight[1] *= 1e30
    h = train(pop, moons, tc)
    assert h.diverged_epoch.tolist() == [0, 1, 0]
    assert np.isnan(h.test_loss[1]).all() and np.isfinite(h.test_loss[[0, 2]]).all()
    assert np.isnan(h.probes[0].weight_stats["grad_norm"][1]).all()
    assert all(torch.isfinite(p).all() for p in pop.parameters())  # nothing non-finite left behind
    solo = build(cfg, moons.input_shape, moons.task, 2, [3])
    hs = train(solo, moons, tc)
    np.testing.assert_allclose(h.test_loss[2], hs.test_loss[0], rtol=1e-5)  # untouched by its neighbour


def test_same_seed_same_numbers_bitwise(digits):
    torch.set_num_threads(2)
    cfg = ModelConfig(kind="convnet", depth=1, width=4, norm="batch", activation="gelu")
    tc = TrainConfig(epochs=2, batch_size=16, optimizer="adamw", lr=1e-3, probe_epochs=[0, 2], grad_stats=True)
    runs = [train(build(cfg, digits.input_shape, digits.task, 10, [0, 1]), digits, tc) for _ in range(2)]
    for key in ("batch_loss", "test_loss", "test_acc", "train_loss", "grad_mean"):
        assert np.array_equal(getattr(runs[0], key), getattr(runs[1], key)), key
    assert np.array_equal(runs[0].probes[1].weight_stats["grad_norm"], runs[1].probes[1].weight_stats["grad_norm"])


def test_probing_does_not_change_the_trajectory(digits):
    cfg = ModelConfig(kind="convnet", depth=1, width=4, norm="batch")
    plain = train(build(cfg, digits.input_shape, digits.task, 10, [0]), digits, TrainConfig(epochs=2, batch_size=16))
    probed = train(build(cfg, digits.input_shape, digits.task, 10, [0]), digits,
                   TrainConfig(epochs=2, batch_size=16, probe_epochs=[0, 1, 2]))
    assert np.array_equal(plain.test_loss, probed.test_loss)


def test_schedules():
    tc = TrainConfig(epochs=10, schedule="step", step_every=3, gamma=0.5)
    f = lr_factor(tc, steps_per_epoch=2)
    assert [f(s) for s in (0, 5, 6, 12, 19)] == [1.0, 1.0, 0.5, 0.25, 0.125]
    f = lr_factor(TrainConfig(epochs=10, schedule="cosine"), 2)
    assert f(0) == 1.0 and f(10) == pytest.approx(0.5) and f(20) == pytest.approx(0.0)
    f = lr_factor(TrainConfig(epochs=10, schedule="warmup_cosine", warmup_epochs=2), 2)
    assert f(0) == 0.25 and f(3) == 1.0 and f(4) == pytest.approx(1.0) and f(20) == pytest.approx(0.0)
    for warm_epochs, steps in ((1.25, 2), (0.25, 2)):  # a fractional warm-up (2.5 and 0.5 steps): never above 1
        f = lr_factor(TrainConfig(epochs=10, schedule="warmup_cosine", warmup_epochs=warm_epochs), steps)
        ramp = [f(s) for s in range(math.ceil(warm_epochs * steps))]  # the warm-up steps: rising, ending at 1
        assert ramp[-1] == 1.0 and max(ramp) == 1.0 and ramp == sorted(ramp) and f(len(ramp)) <= 1.0


def test_bad_configs_are_named(moons):
    with pytest.raises(Exception, match="nesterov=True needs momentum > 0"):
        train(build(ModelConfig(), (2,), "binary", 2, [0]), moons, TrainConfig(epochs=1, nesterov=True))
    with pytest.raises(Exception, match="loss='ce' needs a multiclass task"):
        train(build(ModelConfig(), (2,), "binary", 2, [0]), moons, TrainConfig(epochs=1, loss="ce"))
    with pytest.raises(Exception, match="distinct"):
        build(ModelConfig(), (2,), "binary", 2, [1, 1])
    with pytest.raises(Exception, match="vector-valued"):
        build(ModelConfig(activation="softmax"), (2,), "binary", 2, [1])


def test_prelu_slope_is_per_replica(moons):
    pop = build(ModelConfig(widths=[4], activation="prelu", activation_params={"alpha": 0.1}), (2,), "binary", 2, [0,
                                                                                                                   1])
    train(pop, moons, TrainConfig(epochs=2, batch_size=16, lr=0.5))
    slopes = pop.act.weight.detach()
    assert slopes.shape == (2,) and slopes[0] != slopes[1]


# ---------------------------------------------------------------------------------------- probes


def _reference_mlp(pop, k):
    """Replica k of a PopMLP as a plain nn.Sequential of nn.Linear (an independent implementation)."""
    layers = []
    for lin in [*pop.hidden, pop.head]:
        ref = nn.Linear(lin.in_features, lin.out_features).double()
        with torch.no_grad():
            ref.weight.copy_(lin.weight[k].T)
            ref.bias.copy_(lin.bias[k, 0])
        layers.append(ref)
    return layers


def test_population_probe_matches_hand_computation():
    torch.manual_seed(0)
    pop = build(ModelConfig(widths=[5, 4], activation="relu", bias_init=-0.3), (3,), "binary", 2, [2, 8])
    x = torch.randn(64, 3)
    y = (x[:, 0] > 0).long()
    from actlab.training.loop import _Objective

    objective = _Objective(pop, data.record.Dataset("t", "binary", x, y, x, y, ("0", "1")), TrainConfig())
    rec = probes.probe_population(pop, x, y, objective, epoch=0)
    for k in range(2):
        l1, l2, l3 = _reference_mlp(pop, k)
        xd = x.double()
        z1 = l1(xd)
        a1 = torch.relu(z1)
        z2 = l2(a1)
        a2 = torch.relu(z2)
        out = l3(a2)[:, 0]
        loss = nn.functional.binary_cross_entropy_with_logits(out, y.double())
        grads = torch.autograd.grad(loss, [l1.weight, l2.weight, l3.weight])
        for j, g in enumerate(grads):
            assert rec.weight_stats["grad_norm"][k, j] == pytest.approx(float(g.norm()), rel=1e-4)
            assert rec.weight_stats["grad_mean_abs"][k, j] == pytest.approx(float(g.abs().mean()), rel=1e-4)
        for j, (z, a) in enumerate([(z1.detach(), a1.detach()), (z2.detach(), a2.detach())]):
            s = rec.activation_stats
            assert s["z_mean"][k, j] == pytest.approx(float(z.mean()), abs=1e-5)
            assert s["z_std"][k, j] == pytest.approx(float(z.std(correction=0)), rel=1e-4)
            assert s["a_mean_abs"][k, j] == pytest.approx(float(a.abs().mean()), abs=1e-5)
            dead = float(((z <= 0).all(0)).double().mean())  # never active on the batch
            assert s["dead_fraction"][k, j] == pytest.approx(dead)
            assert s["saturated_fraction"][k, j] == pytest.approx(float((z <= 0).double().mean()))
    assert rec.activation_layers == ["hidden1", "hidden2", "output"]


def test_probe_any_user_module():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    rec = probes.probe(net, x, y)
    assert rec.activation_layers == ["1", "3"] and rec.weight_layers == ["0", "2", "4"]
    with torch.no_grad():
        a1 = torch.tanh(net[0](x))
    assert rec.activation_stats["a_mean"][0, 0] == pytest.approx(float(a1.mean()), abs=1e-6)
    sat = float(((1 - a1**2) < 0.01).float().mean())
    assert rec.activation_stats["saturated_fraction"][0, 0] == pytest.approx(sat)
    loss = nn.functional.cross_entropy(net(x), y)
    g = torch.autograd.grad(loss, net[2].weight)[0]
    assert rec.weight_stats["grad_norm"][0, 1] == pytest.approx(float(g.norm()), rel=1e-5)
    assert all(p.grad is None for p in net.parameters())  # .grad untouched
    conv = nn.Sequential(nn.Conv2d(1, 3, 3), nn.GELU())
    rec = probes.probe(conv, torch.randn(2, 1, 6, 6))
    assert rec.activation_layers == ["1"] and rec.weight_stats == {}


def test_2d_diagnostics(moons):
    pop = build(ModelConfig(widths=[8, 8], activation="relu"), (2,), "binary", 2, [0, 1, 2])
    train(pop, moons, TrainConfig(epochs=30, batch_size=32, lr=0.1))
    s = probes.decision_surface(pop, moons.x_train, step=0.025, margin=0.5)
    gx, gy, p = s.gx, s.gy, s.kept[0]
    assert p.shape == (3, len(gy), len(gx)) and gx[1] - gx[0] == pytest.approx(0.025)
    assert gx[0] == pytest.approx(float(moons.x_train[:, 0].min()) - 0.5, abs=1e-6)
    assert ((p >= 0) & (p <= 1)).all()
    pts = moons.x_test[:2]
    tr = probes.signal_trace(pop, pts)
    assert set(tr) == {"z1", "a1", "z2", "a2", "z_out"} and tr["z1"].shape == (3, 2)
    l1, *_ = _reference_mlp(pop, 0)
    with torch.no_grad():
        assert tr["z1"][0, 0] == pytest.approx(float(l1(pts[:1].double()).abs().mean()), rel=1e-5)
    snap = probes.hidden_snapshot(pop, moons.x_test)
    assert snap["layer1"]["points"].shape == (3, len(moons.x_test), 2) and snap["layer2"]["std"].shape == (3,)


def test_poplinear_accepts_shared_and_per_replica_inputs():
    lin = PopLinear(3, 4, 2)
    torch.nn.init.normal_(lin.weight)
    x = torch.randn(5, 4)
    torch.testing.assert_close(lin(x), lin(x.expand(3, 5, 4).contiguous()))


def test_chunked_evaluation_and_probes_equal_whole_batch(moons, monkeypatch):
    import actlab.training.probes as probes_mod

    cfg = ModelConfig(widths=[8, 8], activation="relu")
    tc = TrainConfig(epochs=2, batch_size=32, probe_epochs=[2])
    whole = train(build(cfg, moons.input_shape, moons.task, 2, [0, 1]), moons, tc)
    monkeypatch.setattr(probes_mod, "CHUNK_FLOATS", 2 * 8 * 7)  # 7 examples per chunk
    chunked = train(build(cfg, moons.input_shape, moons.task, 2, [0, 1]), moons, tc)
    np.testing.assert_allclose(chunked.test_loss, whole.test_loss, rtol=1e-6)
    np.testing.assert_array_equal(chunked.test_acc, whole.test_acc)
    for key, v in whole.probes[0].activation_stats.items():
        np.testing.assert_allclose(chunked.probes[0].activation_stats[key], v, rtol=1e-5, atol=1e-7, err_msg=key)
    for key, v in whole.probes[0].weight_stats.items():
        np.testing.assert_allclose(chunked.probes[0].weight_stats[key], v, rtol=1e-5, err_msg=key)


def test_divergent_convnet_replica_is_zeroed_in_channels_last_weights(digits):
    cfg = ModelConfig(kind="convnet", depth=1, width=4, norm="batch")
    pop = build(cfg, digits.input_shape, digits.task, 10, [1, 2])
    assert pop.convs[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        pop.head.weight[0] *= 1e38  # replica 0 overflows
        pop.head.weight[0] *= 1e38
    h = train(pop, digits, TrainConfig(epochs=2, batch_size=32, optimizer="adam", lr=1e-3))
    assert h.diverged_epoch.tolist() == [1, 0]
    for p in pop.parameters():
        assert torch.isfinite(p).all()
        assert (p.reshape(2, -1)[0] == 0).all()  # the diverged replica's slice really is zero
    assert np.isfinite(h.test_loss[1]).all()


@pytest.mark.parametrize("kind", ["mlp", "convnet"])
def test_mixed_population_members_follow_their_solo_trajectories(moons, digits, kind):
    ds = moons if kind == "mlp" else digits
    base = {"kind": kind, "depth": 1, "width": 6, "norm": "batch" if kind == "convnet" else "none"}
    members = [ModelConfig(**base, activation="relu", init="kaiming_normal"),
               ModelConfig(**base, activation="tanh", init="xavier_uniform", bias_init=0.1),
               ModelConfig(**base, activation="prelu", activation_params={"alpha": 0.2})]
    seeds = [5, 9]
    tc = TrainConfig(epochs=3, batch_size=32, optimizer="adam", lr=3e-3, probe_epochs=[3])
    pop = build(members, ds.input_shape, ds.task, ds.n_classes, seeds)
    assert pop.m == 6 and pop.seeds == [5, 9, 5, 9, 5, 9]
    h = train(pop, ds, tc)
    for i, mc in enumerate(members):
        part = h.take(2 * i, 2 * i + 2)
        solo = train(build(mc, ds.input_shape, ds.task, ds.n_classes, seeds), ds, tc)
        np.testing.assert_allclose(part.test_loss, solo.test_loss, rtol=2e-4, atol=1e-6)
        np.testing.assert_allclose(part.probes[0].weight_stats["grad_norm"], solo.probes[0].weight_stats["grad_norm"],
                                   rtol=2e-3, atol=1e-7)
    with pytest.raises(Exception, match="must differ only in activation"):
        build([ModelConfig(widths=[4]), ModelConfig(widths=[5])], (2,), "binary", 2, [0])


# ---------------------------------------------------------------- the cnn-depth source's init and metric (#12)


class _SourceNetwork(nn.Module):
    """seed 001's Network (stem conv+BN+act, blocks of conv+BN+act, average pool, linear), for 1-channel input."""

    def __init__(self, num_blocks: int, width: int, activation: str):
        super().__init__()
        act = nn.ReLU if activation == "relu" else nn.Sigmoid
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), act())
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), act())
                                    for _ in range(num_blocks))
        self.fc = nn.Linear(width, 10)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.fc(x.mean((2, 3)))


def test_torch_default_init_keeps_the_conv_bias_and_draws_like_pytorch(digits):
    cfg = ModelConfig(kind="convnet", depth=2, width=8, norm="batch", init="torch_default", norm_bias=True)
    pop = build(cfg, digits.input_shape, digits.task, 10, list(range(40)))
    for layer in pop.weight_layers():
        bound = 1 / math.sqrt(layer.fans[0])  # nn.Conv2d / nn.Linear: U(±1/sqrt(fan_in)) for weight and bias
        for t in (layer.weight, layer.bias):
            assert t is not None and t.abs().max() <= bound and t.abs().max() > 0.9 * bound
            assert t.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    no_bias = build(ModelConfig(kind="convnet", depth=2, width=8, norm="batch"), digits.input_shape, digits.task,
                    10, [0])
    assert no_bias.convs[0].bias is None


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_gradient_average_is_the_source_metric(digits, activation):
    """One population replica and seed 001's network with the same weights: the source's per-batch gradient
    average (mean over parameter tensors of each tensor's mean |grad|) equals actlab's grad_mean."""
    cfg = ModelConfig(kind="convnet", depth=2, width=8, norm="batch", init="torch_default", norm_bias=True,
                      activation=activation)
    pop = build(cfg, digits.input_shape, digits.task, 10, [5])
    src = _SourceNetwork(2, 8, activation)
    with torch.no_grad():
        for conv, seq in zip(pop.convs, [src.stem, *src.blocks], strict=True):
            seq[0].weight.copy_(conv.weight)
            seq[0].bias.copy_(conv.bias)
        src.fc.weight.copy_(pop.head.weight[0].T)
        src.fc.bias.copy_(pop.head.bias.reshape(-1))
    x, y = digits.x_train[:128], digits.y_train[:128]
    loss = nn.functional.cross_entropy(src(x), y)
    loss.backward()
    source = np.mean([p.grad.abs().mean().item() for p in src.parameters() if p.grad is not None])
    pop.train()
    out = pop(x)
    _Objective(pop, digits, TrainConfig(loss="ce")).losses(out, y).sum().backward()
    mine = _mean_abs_grad([p for p in pop.parameters() if p.requires_grad], 1)
    assert mine.item() == pytest.approx(source, rel=1e-4)
    assert len([p for p in src.parameters()]) == len([p for p in pop.parameters()]) == 4 * 3 + 2


def test_the_chunked_decision_surface_equals_the_whole_grid_at_once(moons):
    """Two cells of 4 seeds as one population: evaluated 7 grid points at a time, the per-cell mean, the
    agreement and the kept surfaces equal what the whole grid through the model at once gives (float32
    outputs, summaries from NumPy in float64), one seed's diverged (NaN) output left out of its cell's
    summaries, and only `keep` surfaces per cell are stored."""
    cfgs = [ModelConfig(widths=[8, 8], activation="relu"), ModelConfig(widths=[8, 8], activation="tanh")]
    pop = build(cfgs, (2,), "binary", 2, [0, 1, 2, 3])
    train(pop, moons, TrainConfig(epochs=20, batch_size=32, lr=0.1))
    with torch.no_grad():
        pop.hidden[0].weight[5] = float("nan")  # replica 5 (cell 2, its second seed) diverged
    chunked = probes.decision_surface(pop, moons.x_train, step=0.05, groups=2, keep=2, chunk=7)
    gx, gy = chunked.gx, chunked.gy
    xx, yy = np.meshgrid(gx, gy)
    pts = torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float32)
    pop.eval()
    with torch.no_grad():
        full = torch.sigmoid(pop(pts)[..., 0]).numpy().reshape(2, 4, len(gy), len(gx))
    assert np.isnan(full[1, 1]).all() and np.isfinite(full[0]).all()
    np.testing.assert_allclose(chunked.kept, full[:, :2], rtol=0, atol=1e-6, equal_nan=True)
    for cell in range(2):
        ok = full[cell][np.isfinite(full[cell]).all(axis=(1, 2))].astype(np.float64)
        assert len(ok) == (4 if cell == 0 else 3)
        np.testing.assert_allclose(chunked.mean[cell], ok.mean(0), rtol=0, atol=1e-6)
        frac = (ok > 0.5).mean(0)
        np.testing.assert_allclose(chunked.agreement[cell], np.maximum(frac, 1 - frac), rtol=0, atol=1e-6)
    assert chunked.kept.shape == (2, 2, len(gy), len(gx)) and chunked.n == 4
    assert ((chunked.agreement >= 0.5) & (chunked.agreement <= 1)).all()
    whole = probes.decision_surface(pop, moons.x_train, step=0.05, groups=2, keep=2)  # its own chunk size
    np.testing.assert_allclose(whole.mean, chunked.mean, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="do not split into 3 equal groups"):
        probes.decision_surface(pop, moons.x_train, groups=3)


@pytest.mark.parametrize("optimizer,extra", [
    ("adam", {}), ("adam", {"weight_decay": 0.01, "betas": (0.8, 0.99)}), ("adamw", {"weight_decay": 0.01}),
    ("adamw", {"weight_decay": 0.05, "betas": (0.85, 0.95)}), ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"weight_decay": 0.01}), ("sgd", {})])
@pytest.mark.parametrize("layout", ["standard", "channels_last"])
def test_the_optimizers_step_as_torch_s_single_tensor_reference(optimizer, extra, layout):
    """make_optimizer's implementations (Adam and AdamW fused into one kernel when every parameter is in the
    standard layout, else foreach; SGD foreach) take the steps of torch's plain per-tensor implementation
    (foreach=False), to float32 rounding, over changing gradients; sizes off the vector width exercise the
    kernels' tails, and a channels-last convolution weight with gradients laid out otherwise is updated
    right too (torch's fused kernel would not)."""
    from actlab.training.loop import make_optimizer

    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(200, 63, 65, generator=gen), torch.randn(200, 1, 65, generator=gen)]
    if layout == "channels_last":
        start.append(torch.randn(24, 5, 3, 3, generator=gen).contiguous(memory_format=torch.channels_last))
    mine = [torch.nn.Parameter(t.clone(memory_format=torch.preserve_format)) for t in start]
    ref = [torch.nn.Parameter(t.clone(memory_format=torch.preserve_format)) for t in start]
    cfg = TrainConfig(optimizer=optimizer, lr=1e-2, **extra)
    opt = make_optimizer(mine, cfg)
    if optimizer != "sgd":
        assert bool(opt.defaults["fused"]) == (layout == "standard")
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[optimizer]
    kw = {"betas": cfg.betas} if optimizer != "sgd" else {"momentum": cfg.momentum, "nesterov": cfg.nesterov}
    ref_opt = cls(ref, lr=1e-2, weight_decay=cfg.weight_decay, foreach=False, **kw)
    for _ in range(5):
        grads = [torch.randn(t.shape, generator=gen) for t in start]  # standard layout, whatever the parameter's
        for p, q, g in zip(mine, ref, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    for p, q, s in zip(mine, ref, start, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-6, atol=1e-6)
        assert not torch.equal(p.detach(), s)
