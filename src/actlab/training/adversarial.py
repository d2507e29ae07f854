"""Adversarial training of a GAN population (Goodfellow et al. 2014) on a 2-D mixture, every replica its own
generator G and discriminator D, trained side by side and independent of the others.

Protocol, per optimizer step (one minibatch of real points; replica m reads them in its own seeded order, as in
`actlab.training.loop`):
- z ~ N(0, I) from the replica's seed and the step (`PopGAN.noise`); fake = G(z).
- Discriminator step: minimise BCE(D(real), 1) + BCE(D(fake), 0) (each a mean over the batch), fake detached.
- Generator step, on the same fake batch against the updated D (as PyTorch's DCGAN example): the
  non-saturating loss BCE(D(G(z)), 1) = mean softplus(−D(G(z))) (Goodfellow et al. 2014, §3).
- Two optimizers of the same kind and settings (`train.optimizer`, `lr`, `betas`: Adam with betas (0.5, 0.999) is
  the classic choice); `grad_clip` clips each net's gradient per replica.
- A replica whose D or G loss becomes NaN or inf is marked diverged at that epoch and stopped (its metrics NaN).

After each epoch, EVAL_SAMPLES points of each generator from a fixed noise batch (the same every epoch, so a
replica's samples move smoothly) are scored against the mixture's modes (`mode_scores`): the **high-quality share**
(samples within 3σ of their nearest mode; Srivastava et al. 2017) and the **modes covered** (modes nearest to at
least a tenth of the high-quality samples a perfect generator would put there: COVER_SHARE). History columns, per
replica and epoch:
batch_loss = D's loss and batch_acc = D's accuracy (real scored > 0, fake < 0) over the epoch's steps; train_loss =
G's loss over the epoch; test_loss = D's loss on the test set's real points and the evaluation samples;
test_acc = the high-quality share; probes at every epoch: `modes_covered` and `high_quality` (layer "samples"),
and at `probe_epochs` the activation statistics of G (on the evaluation noise) and D (on the training points).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from actlab import rng
from actlab.data.record import Dataset
from actlab.errors import ActlabError
from actlab.nn.models import PopGAN, Trace
from actlab.training.loop import (
    History,
    TrainConfig,
    _mask_grads,
    _record,
    _zero_replicas,
    clip_per_replica,
    end_epoch,
    lr_factor,
    make_optimizer,
    resolve_device,
)
from actlab.training.probes import ProbeRecord, trace_stats

EVAL_SAMPLES = 2500  # generator samples scored after each epoch (Srivastava et al. 2017 score 2,500)
# A mode is covered when it holds at least this share of what a perfect generator puts there (S/K samples): 31 of
# 2,500 on the ring, 10 on the grid. Srivastava et al. count one sample, which chance meets: uniform noise over
# [-1, 1]² "covers" 7 of the ring's 8 modes and 23 of the grid's 25 that way, and 0 of either this way.
COVER_SHARE = 0.1


def mode_scores(samples: Tensor, modes: Tensor, sigma: float) -> tuple[Tensor, Tensor, Tensor]:
    """Per replica: (high-quality share (M,), modes covered (M,), samples per mode (M, K) among the high-quality
    ones). samples: (M, S, 2); modes: (K, 2). A sample is high quality within 3σ of its nearest mode (Srivastava et
    al. 2017); a mode is covered when at least COVER_SHARE × S/K high-quality samples are nearest it (at least one).
    Non-finite samples are not high quality."""
    d = torch.cdist(samples.double(), modes.double().expand(samples.shape[0], -1, -1))  # (M, S, K)
    d = torch.nan_to_num(d, nan=math.inf)
    near, idx = d.min(-1)
    good = near < 3 * sigma
    counts = torch.zeros(samples.shape[0], modes.shape[0], dtype=torch.float64, device=samples.device)
    counts.scatter_add_(1, idx, good.double())
    need = max(1.0, math.ceil(COVER_SHARE * samples.shape[1] / modes.shape[0]))
    return good.double().mean(1), (counts >= need).sum(1).double(), counts


def _d_loss(model: PopGAN, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """(M,) D's loss and (M,) its number of correct calls on real (→ 1) and fake (→ 0) points."""
    lr_, lf = model.discriminate(real), model.discriminate(fake)
    loss = F.softplus(-lr_).mean(1) + F.softplus(lf).mean(1)
    return loss, (lr_ > 0).sum(1).double() + (lf < 0).sum(1).double()


def train_gan(model: PopGAN, ds: Dataset, cfg: TrainConfig | None = None,
              on_epoch: Callable[[int, History], None] | None = None) -> History:
    """Train every replica's G and D on `ds` (a mixture from actlab.data.mixtures); see the module's protocol."""
    cfg = cfg or TrainConfig()
    prov = ds.provenance
    if "modes" not in prov or ds.input_shape != (2,):
        raise ActlabError(f"a gan trains on the 2-D mixtures 'ring' or 'grid' (their modes define its scores); "
                          f"dataset {ds.name} is not one")
    if cfg.loss != "auto":
        raise ActlabError(f"train.loss={cfg.loss!r}: a gan trains on its own losses (the discriminator's BCE, the "
                          "generator's non-saturating BCE); allowed: 'auto'")
    if cfg.engine == "fused" or cfg.amp or cfg.grad_stats:
        raise ActlabError(f"train.engine={cfg.engine!r}, amp={cfg.amp}, grad_stats={cfg.grad_stats}: a gan trains "
                          "on torch; allowed: engine 'auto' or 'torch', amp and grad_stats off")
    if not len(ds.x_train):
        raise ActlabError(f"dataset {ds.name} has no training points (its test_size leaves none); allowed: a "
                          "test_size below 1 − 1/n")
    if cfg.epoch_examples is not None and cfg.epoch_examples > len(ds.x_train):
        raise ActlabError(f"train.epoch_examples={cfg.epoch_examples} is more than the {len(ds.x_train)} training "
                          f"points of {ds.name}; allowed: 1 to {len(ds.x_train)}, or none (every point)")
    device = resolve_device(cfg.device)
    model.to(device).train()
    modes = torch.tensor(prov["modes"], dtype=torch.float64, device=device)
    sigma = float(prov["sigma"])
    xtr, xte = ds.x_train.to(device), ds.x_test.to(device)
    n, m, e = len(xtr), model.m, cfg.epochs
    n_ep = n if cfg.epoch_examples is None else cfg.epoch_examples
    bs = n_ep if cfg.batch_size in (None, "full") else min(cfg.batch_size, n_ep)
    steps = math.ceil(n_ep / bs)
    g_params = list(model.core.generator.parameters())
    d_params = [*model.core.discriminator.parameters(), *model.d_act.parameters()]
    g_opt, d_opt = make_optimizer(g_params, cfg), make_optimizer(d_params, cfg)
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, lr_factor(cfg, steps)) for o in (g_opt, d_opt)]
    seeds = torch.tensor(model.seeds, device=device)
    z_eval = model.noise("gan-eval", n=EVAL_SAMPLES, device=device)

    def nan() -> np.ndarray:
        return np.full((m, e), np.nan)

    hist = History(model.seeds, nan(), nan(), nan(), None, nan(), nan(), None, np.zeros(m, dtype=np.int64),
                   device=str(device), engine_note="a gan trains on torch (its own adversarial loop)")
    alive = torch.ones(m, dtype=torch.bool, device=device)
    probe_at = cfg.probe_set()
    t0 = time.perf_counter()
    if 0 in probe_at:
        hist.probes.append(_activation_probe(model, z_eval[:, :cfg.probe_size], xtr[:cfg.probe_size], 0,
                                             cfg.saturation_threshold))
    for epoch in range(1, e + 1):
        order = rng.permutations(seeds, rng.stream_id("order", epoch), n, device)
        d_sum = torch.zeros(m, device=device, dtype=torch.float64)
        g_sum = torch.zeros_like(d_sum)
        hits = torch.zeros_like(d_sum)
        bad = torch.zeros(m, dtype=torch.bool, device=device)
        for s in range(steps):
            idx = order[:, s * bs: min((s + 1) * bs, n_ep)]
            real, b = xtr[idx], idx.shape[1]
            fake = model.generate(model.noise("gan-z", epoch, s, n=b, device=device))
            d_loss, d_hits = _d_loss(model, real, fake.detach())
            d_opt.zero_grad(set_to_none=True)
            d_loss.sum().backward()
            _finish_grads(d_params, alive, m, cfg)
            d_opt.step()
            g_loss = F.softplus(-model.discriminate(fake)).mean(1)
            g_opt.zero_grad(set_to_none=True)
            g_loss.sum().backward()
            _finish_grads(g_params, alive, m, cfg)
            g_opt.step()
            for sc in scheds:
                sc.step()
            with torch.no_grad():
                bad |= ~torch.isfinite(d_loss) | ~torch.isfinite(g_loss)
                d_sum += torch.nan_to_num(d_loss.detach().double(), nan=0.0, posinf=0.0, neginf=0.0) * b
                g_sum += torch.nan_to_num(g_loss.detach().double(), nan=0.0, posinf=0.0, neginf=0.0) * b
                hits += d_hits
        newly = bad & alive
        if bool(newly.any()):
            hist.diverged_epoch[newly.cpu().numpy()] = epoch
            alive &= ~bad
            _zero_replicas(model, g_opt, ~alive, m)
            _zero_replicas(model, d_opt, ~alive, m)
        keep = alive.cpu().numpy()
        seen = n_ep
        _record(hist, epoch, keep, batch_loss=d_sum / seen, batch_acc=hits / (2 * seen), train_loss=g_sum / seen)
        with torch.no_grad():
            samples = model.generate(z_eval)
            d_test, _ = _d_loss(model, xte, samples)
            hq, covered, _ = mode_scores(samples, modes, sigma)
        _record(hist, epoch, keep, test_loss=d_test, test_acc=hq)
        rec = ProbeRecord(epoch, [], {}, [], {}, {"modes_covered": (["samples"], covered[:, None].cpu().numpy()),
                                                  "high_quality": (["samples"], hq[:, None].cpu().numpy())})
        if epoch in probe_at:
            act = _activation_probe(model, z_eval[:, :cfg.probe_size], xtr[:cfg.probe_size], epoch,
                                    cfg.saturation_threshold)
            rec.activation_layers, rec.activation_stats = act.activation_layers, act.activation_stats
        rec.mask(keep)
        hist.probes.append(rec)
        end_epoch(hist, epoch, t0, on_epoch)
    return hist


def _finish_grads(params: list[Tensor], alive: Tensor, m: int, cfg: TrainConfig) -> None:
    if not bool(alive.all()):
        _mask_grads(params, alive, m)
    if cfg.grad_clip is not None:
        clip_per_replica(params, m, cfg.grad_clip)


def _activation_probe(model: PopGAN, z: Tensor, x: Tensor, epoch: int, threshold: float) -> ProbeRecord:
    """Activation statistics of every hidden layer of G (on noise z) and D (on real points x)."""
    trace: Trace = []
    with torch.no_grad():
        model.generate(z, trace)
        model.discriminate(x, trace)
    stats = {k: v.cpu().numpy() for k, v in trace_stats(trace, threshold).items()}
    return ProbeRecord(epoch, [name for name, *_ in trace], stats, [], {})


def chance(ds_provenance: dict, n: int = EVAL_SAMPLES) -> tuple[float, float]:
    """(modes covered, high-quality share) of a generator that ignores the data: n points uniform over [-1, 1]²
    (a fixed draw), scored as the generators are: the floor a trained generator's numbers are read against."""
    pts = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, n, 2)))
    hq, covered, _ = mode_scores(pts, torch.tensor(ds_provenance["modes"], dtype=torch.float64),
                                 float(ds_provenance["sigma"]))
    return float(covered[0]), float(hq[0])


def samples(model: PopGAN, n: int = EVAL_SAMPLES) -> np.ndarray:
    """(M, n, 2) float32: each generator's points from the evaluation noise (the first n of its EVAL_SAMPLES)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return model.generate(model.noise("gan-eval", n=EVAL_SAMPLES, device=device)[:, :n]).float().cpu().numpy()
