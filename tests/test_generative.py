"""Generative kinds: the 2-D mixtures, the VAE's ELBO terms against a float64 reference, the GAN's losses against
torch's BCE, mode counting on samples whose answer is known, the equivalence contract for both, bad input, and the
studies' findings, claims and figures on their smoke runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from actlab import data
from actlab.data.mixtures import centres
from actlab.errors import ActlabError
from actlab.nn.models import ModelConfig, build
from actlab.store.results import activation_label
from actlab.training.adversarial import _d_loss, mode_scores, train_gan
from actlab.training.loop import TrainConfig, evaluate_terms, train

F64 = torch.float64


def test_mixtures_are_the_published_layouts_scaled_into_the_unit_square():
    ring, grid = centres("ring"), centres("grid")
    assert ring.shape == (8, 2) and np.allclose(np.linalg.norm(ring, axis=1), 2.0)
    assert grid.shape == (25, 2) and sorted(set(grid[:, 0])) == [-4, -2, 0, 2, 4]
    for name, sigma, reach in (("ring", 0.02, 2.06), ("grid", 0.05, 4.15)):
        ds = data.load(name, n=4000, seed=3)
        modes = np.array(ds.provenance["modes"])
        assert ds.provenance["sigma"] == pytest.approx(sigma / reach)
        assert np.abs(modes).max() + 3 * ds.provenance["sigma"] == pytest.approx(1.0)  # every 3σ disc inside
        x, y = ds.x_train.numpy(), ds.y_train.numpy()
        near = np.linalg.norm(x[:, None] - modes[None], axis=-1).argmin(1)
        assert (near == y).mean() > 0.99  # each point near the mode it was drawn from
        assert np.allclose(np.std(x - modes[y], axis=0), ds.provenance["sigma"], rtol=0.1)
        assert torch.equal(data.load(name, n=4000, seed=3).x_test, ds.x_test)  # deterministic
    raw = data.load("ring", scale="none", n=100)
    assert raw.provenance["sigma"] == 0.02 and np.allclose(raw.provenance["modes"], ring)


def test_mode_scores_on_samples_with_a_known_answer():
    modes = torch.tensor(centres("ring")) / 2.06
    sigma = 0.02 / 2.06
    good = modes[[0, 0, 3, 5]] + torch.tensor([[0.0, 0.0], [2.5 * sigma, 0.0], [0.0, -2.9 * sigma], [sigma, sigma]])
    bad = torch.tensor([[0.0, 0.0], [modes[1, 0] + 3.1 * sigma, modes[1, 1]], [math.nan, 0.0], [5.0, 5.0]])
    s = torch.stack([torch.cat([good, bad]), modes.double(), torch.zeros(8, 2, dtype=F64)])  # (3 replicas, 8, 2)
    hq, covered, counts = mode_scores(s, modes, sigma)
    assert hq.tolist() == [0.5, 1.0, 0.0]
    assert covered.tolist() == [3.0, 8.0, 0.0]
    assert counts[0].tolist() == [2, 0, 0, 1, 0, 1, 0, 0]


def _vae_reference(pop, r: int, x: torch.Tensor, eps: torch.Tensor, likelihood: str, act) -> torch.Tensor:
    """Replica r's (B, 2) reconstruction and KL terms in float64, from its weights."""
    def run(layers, h):
        for i, lay in enumerate(layers):
            h = h @ lay.weight[r].double() + lay.bias[r, 0].double()
            if i < len(layers) - 1:
                h = act(h)
        return h

    x = x.double()
    stats = run(pop.core.encoder, x)
    mu, logvar = stats.chunk(2, -1)
    out = run(pop.core.decoder, mu + torch.exp(0.5 * logvar) * eps.double())
    if likelihood == "bernoulli":
        p = torch.sigmoid(out)
        recon = -(x * torch.log(p) + (1 - x) * torch.log1p(-p)).sum(-1)
    else:
        recon = (0.5 * (x - out) ** 2 + 0.5 * math.log(2 * math.pi)).sum(-1)
    kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)
    return torch.stack([recon, kl], -1)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("act", ["relu", "elu", "gelu"])
def test_vae_terms_match_a_float64_reference(likelihood, act):
    torch.manual_seed(0)
    x = torch.rand(16, 12) if likelihood == "bernoulli" else torch.randn(16, 12)
    pop = build(ModelConfig(kind="vae", activation=act, depth=2, width=10, latent=3, likelihood=likelihood),
                (12,), "multiclass", 2, [4, 9])
    pop.at_step(2, 5)
    out = pop(x)
    eps = pop.eps(16, torch.device("cpu"))
    fn = {"relu": torch.relu, "elu": F.elu, "gelu": F.gelu}[act]
    for r in range(2):
        ref = _vae_reference(pop, r, x, eps[r], likelihood, fn)
        torch.testing.assert_close(out[r].double(), ref, atol=2e-4, rtol=1e-4)
    assert out.shape == (2, 16, 2) and (out[..., 1] >= 0).all()  # KL ≥ 0


def test_vae_noise_is_the_replicas_own_and_evaluation_is_chunk_independent():
    ds = data.load("digits", normalize="unit", n_train=200, n_test=150)
    cfg = ModelConfig(kind="vae", depth=1, width=16, latent=4)
    pop = build(cfg, ds.input_shape, ds.task, ds.n_classes, [0, 1, 2])
    alone = build(cfg, ds.input_shape, ds.task, ds.n_classes, [1])
    tc = TrainConfig(epochs=3, optimizer="adam", lr=1e-3, batch_size=32, eval_train=False)
    h, h1 = train(pop, ds, tc), train(alone, ds, tc)
    assert np.isnan(h.test_acc).all()  # a VAE predicts nothing: no accuracy, not a zero
    np.testing.assert_allclose(h.test_loss[1], h1.test_loss[0], rtol=1e-5)  # the equivalence contract
    assert pop.likelihood == "bernoulli"  # 'auto' on data in [0, 1]
    whole = evaluate_terms(pop, ds.x_test, batch=150)
    chunks = evaluate_terms(pop, ds.x_test, batch=7)  # ε per example, whatever the chunk
    np.testing.assert_allclose(whole, chunks, rtol=1e-5)
    np.testing.assert_allclose(whole.sum(1), h.test_loss[:, -1], rtol=1e-5)  # the terms sum to the test −ELBO


def test_vae_learns_and_probes_the_encoder():
    ds = data.load("digits", normalize="unit")
    pop = build(ModelConfig(kind="vae", depth=2, width=32, latent=4), ds.input_shape, ds.task, ds.n_classes, [0, 1])
    h = train(pop, ds, TrainConfig(epochs=4, optimizer="adam", lr=3e-3, batch_size=64, probe_epochs=[0, "last"]))
    assert (h.test_loss[:, -1] < h.test_loss[:, 0]).all() and (h.test_loss[:, -1] < 40).all()
    assert h.probes[0].weight_layers == ["encoder1", "encoder2", "latent", "decoder1", "decoder2", "output"]
    assert h.probes[0].activation_layers == ["encoder1", "encoder2", "decoder1", "decoder2"]
    assert (h.probes[-1].weight_stats["grad_norm"] > 0).all()


def test_gan_losses_are_torchs_binary_cross_entropy():
    torch.manual_seed(1)
    pop = build(ModelConfig(kind="gan", depth=1, width=8, latent=3), (2,), "multiclass", 8, [0, 5])
    real, fake = torch.randn(2, 6, 2), torch.randn(2, 6, 2)
    loss, hits = _d_loss(pop, real, fake)
    lr_, lf = pop.discriminate(real).double(), pop.discriminate(fake).double()
    ref = (F.binary_cross_entropy_with_logits(lr_, torch.ones_like(lr_), reduction="none").mean(1)
           + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf), reduction="none").mean(1))
    torch.testing.assert_close(loss.double(), ref, atol=1e-6, rtol=1e-6)
    assert hits.tolist() == ((lr_ > 0).sum(1) + (lf < 0).sum(1)).double().tolist()
    assert pop.generate(torch.randn(2, 4, 3)).shape == (2, 4, 2)


def test_gan_replica_trains_as_alone_and_discriminator_slots_share_their_draws():
    ds = data.load("ring", n=600)
    relu = ModelConfig(kind="gan", depth=1, width=8, latent=3, discriminator_activation="relu")
    leaky = ModelConfig(kind="gan", depth=1, width=8, latent=3)  # the usual: leaky_relu(0.2)
    assert activation_label(leaky.model_dump(mode="json")) == "G relu → identity, D leaky_relu(alpha=0.2)"
    pop = build([relu, leaky], ds.input_shape, ds.task, ds.n_classes, [0, 7])
    for (_, p) in pop.named_parameters():  # the same seed draws the same weights in both members
        torch.testing.assert_close(p[1], p[3])
    tc = TrainConfig(epochs=2, optimizer="adam", lr=1e-3, betas=(0.5, 0.999), batch_size=100, eval_train=False,
                     probe_epochs=[0, "last"])
    h = train_gan(pop, ds, tc)
    h1 = train_gan(build(leaky, ds.input_shape, ds.task, ds.n_classes, [7]), ds, tc)
    np.testing.assert_allclose(h.batch_loss[3], h1.batch_loss[0], rtol=1e-5)
    np.testing.assert_allclose(h.test_acc[3], h1.test_acc[0], rtol=1e-5)
    assert not np.allclose(h.batch_loss[1], h.batch_loss[3])  # the slot changed something
    last = h.probes[-1]
    assert last.extra_stats["modes_covered"][1].shape == (4, 1)
    assert last.activation_layers == ["generator1", "discriminator1"]


def test_bad_generative_input_gets_one_clear_message():
    with pytest.raises(ValidationError, match="only a generative model"):
        ModelConfig(kind="mlp", latent=4)
    with pytest.raises(ValidationError, match="a vae takes .*given output_activation='tanh'"):
        ModelConfig(kind="vae", output_activation="tanh")
    with pytest.raises(ValidationError, match="a gan takes .*given likelihood='gaussian'"):
        ModelConfig(kind="gan", likelihood="gaussian")
    with pytest.raises(ValidationError, match="element-wise"):
        ModelConfig(kind="gan", discriminator_activation="swiglu")
    mnist = data.load("mnist1d", n_train=50, n_test=20)
    pop = build(ModelConfig(kind="vae", likelihood="bernoulli", depth=1, width=4), mnist.input_shape, mnist.task,
                10, [0])
    with pytest.raises(ActlabError, match=r"likelihood='bernoulli' models data in \[0, 1\].*normalize = 'unit'"):
        train(pop, mnist, TrainConfig(epochs=1))
    with pytest.raises(ActlabError, match="a gan learns 2-D points"):
        build(ModelConfig(kind="gan"), mnist.input_shape, mnist.task, 10, [0])
    moons = data.load("moons")
    with pytest.raises(ActlabError, match="'ring' or 'grid'"):
        train_gan(build(ModelConfig(kind="gan"), (2,), "binary", 2, [0]), moons, TrainConfig(epochs=1))
    assert "latent" not in ModelConfig().model_dump()  # earlier kinds' configurations, and cell keys, unchanged


def test_generative_studies_report_findings_claims_and_figures(smoke_runs, smoke_dir):
    from actlab.analysis import guide
    from actlab.analysis.findings import findings
    from actlab.report.figures import generative as figs
    from actlab.store.results import Run

    with Run.open(smoke_dir / "gan-modes") as run:
        assert run.generative == "gan"
        assert [c.series for c in run.cells[:3]] == [
            "G relu → tanh, D leaky_relu(alpha=0.2)", "G relu → tanh, D relu",
            "G relu → identity, D leaky_relu(alpha=0.2)"]
        texts = [f.text for f in findings(run)]
        assert sum(t.startswith("Modes covered (data=ring") for t in texts) == 2
        assert any("every mode covered on" in t and "of 8" in t for t in texts)
        claims = {cv.guide: cv for cv in guide.claim_verdicts(run)}
        assert set(claims) == {"GAN discriminator", "GAN generator"}
        assert all(len(cv.groups) == 2 for cv in claims.values())  # ring and grid
        assert figs.gan_samples_figure(run) is not None and figs.gan_coverage_figure(run) is not None
    with Run.open(smoke_dir / "vae-activations") as run:
        assert run.generative == "vae"
        texts = [f.text for f in findings(run)]
        assert any(t.startswith("relu (data=digits") and "= reconstruction" in t and "encoder1" in t for t in texts)
        assert sum(t.startswith("Test negative ELBO (nats) (data=mnist1d") for t in texts) == 3
        verdicts = guide.claim_verdicts(run)
        assert len(verdicts) == 3 and {cv.guide for cv in verdicts} == {"VAE encoder"}
        assert figs.vae_terms_figure(run) is not None


def test_a_mode_needs_a_tenth_of_its_share_so_noise_covers_none():
    """Srivastava et al.'s one-sample rule is met by chance (uniform noise 'covers' most modes); a mode is covered
    here when it holds a tenth of what a perfect generator puts there."""
    from actlab.training.adversarial import COVER_SHARE, EVAL_SAMPLES, chance

    for name, k in (("ring", 8), ("grid", 25)):
        prov = data.load(name, n=100).provenance
        modes, sigma = torch.tensor(prov["modes"]), prov["sigma"]
        noise = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, EVAL_SAMPLES, 2)))
        hq, covered, counts = mode_scores(noise, modes, sigma)
        assert (counts[0] > 0).sum() >= k // 2  # the one-sample rule would credit noise with many modes
        assert covered.item() == 0 and chance(prov) == (0.0, pytest.approx(hq.item()))
        need = math.ceil(COVER_SHARE * EVAL_SAMPLES / k)
        exact = modes[0] + torch.zeros(need, 2, dtype=modes.dtype)  # `need` perfect samples on mode 1, the rest far
        pts = torch.cat([exact, torch.full((EVAL_SAMPLES - need, 2), 5.0, dtype=modes.dtype)])[None]
        assert mode_scores(pts, modes, sigma)[1].item() == 1
        assert mode_scores(pts[:, 1:], modes, sigma)[1].item() == (1 if math.ceil(
            COVER_SHARE * (EVAL_SAMPLES - 1) / k) < need else 0)


def test_gan_guards_name_the_field_and_the_value():
    from actlab.studies.config import load_study

    ring = data.load("ring", n=400)
    pop = build(ModelConfig(kind="gan", depth=1, width=4), (2,), "multiclass", 8, [0])
    with pytest.raises(ActlabError, match=r"train.epoch_examples=5000 is more than the 320 training points"):
        train_gan(pop, ring, TrainConfig(epochs=1, epoch_examples=5000))
    with pytest.raises(ActlabError, match=r"train.loss='mse': a gan trains on its own losses"):
        train_gan(pop, ring, TrainConfig(epochs=1, loss="mse"))
    with pytest.raises(ActlabError, match="(?s)gan-modes.*model.kind='gan' learns the 2-D mixtures.*data.name='moons'"):
        load_study("gan-modes", ["data.name=moons", 'grid.data=[{name="moons"}]'])
