"""Generative populations: the variational autoencoder and the GAN, M replicas of each, every parameter with the
replica dimension first (as for every population, `actlab.nn.layers`).

VAE (Kingma & Welling 2014), `model.kind = "vae"`: an MLP encoder x → hidden widths → (μ, log σ²) of a Gaussian
latent of `latent` dimensions, z = μ + σ ⊙ ε with ε ~ N(0, I) (the reparameterisation), and an MLP decoder z →
the hidden widths reversed → the data's dimensions. The hidden activation is the model's `activation`, in every
hidden layer of both. The likelihood is `bernoulli` (the decoder gives logits; data in [0, 1], the classic choice
for MNIST-like images, read as intensities) or `gaussian` (the decoder gives the mean, unit variance). The forward
pass returns, per replica and example, the two terms of the negative ELBO in nats: the reconstruction term
−log p(x | z) summed over the data's dimensions, and KL(q(z | x) ‖ N(0, I)) in closed form,
½ Σ (μ² + σ² − 1 − log σ²). So the ordinary training loop minimises the negative ELBO (each replica's batch
mean), and evaluation reports it in nats per example.

ε is drawn from the replica's seed, never from a global generator: in training from the stream of the optimizer
step (the loop calls `at_step(epoch, step)`), in evaluation per example from its position in the evaluated set
(the loop calls `at_examples(start)`), so a replica draws the same ε alone as in any population and the
evaluation is the same every epoch and for every chunk size.

GAN (Goodfellow et al. 2014), `model.kind = "gan"`: a generator MLP, noise z ~ N(0, I) of `latent` dimensions →
hidden widths (the model's `activation`) → 2 outputs through `output_activation` (none: identity; tanh), and a
discriminator MLP, 2 inputs → the same hidden widths (`discriminator_activation`, leaky_relu with α = 0.2 unless
set, as DCGAN, Radford et al. 2016) → one logit. Both are one population pair per replica; the adversarial
training lives in `actlab.training.adversarial`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actlab import rng
from actlab.nn.layers import PopLinear

EVAL_BLOCK = 64  # examples per evaluation noise stream: ε of example j comes from block j // 64, row j % 64
LOG_2PI = math.log(2 * math.pi)


def example_noise(seeds: list[int], tag: str, start: int, count: int, dims: int, device: torch.device) -> Tensor:
    """(M, count, dims) standard normals for examples start..start+count-1 of an evaluated set, per seed: the
    same values for an example whatever the chunk it falls in."""
    first, last = start // EVAL_BLOCK, (start + count - 1) // EVAL_BLOCK
    blocks = [rng.normal(seeds, rng.stream_id(tag, b), (EVAL_BLOCK, dims), device) for b in range(first, last + 1)]
    offset = start - first * EVAL_BLOCK
    return torch.cat(blocks, 1)[:, offset: offset + count]


def mlp(m: int, sizes: list[int]) -> nn.ModuleList:
    """PopLinear layers between consecutive sizes."""
    return nn.ModuleList(PopLinear(m, a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def run_mlp(layers: nn.ModuleList, h: Tensor, act: nn.Module, names: list[str], record) -> Tensor:
    """Every layer but the last followed by `act` (recorded under its name), the last one linear."""
    for lin, name in zip(layers[:-1], names, strict=True):
        z = lin(h)
        h = act(z)
        record(name, z, h, act)
    return layers[-1](h)


class VAECore(nn.Module):
    """The encoder and decoder of a VAE population (no activation of its own: the caller passes it)."""

    def __init__(self, m: int, data_dim: int, hidden: list[int], latent: int):
        super().__init__()
        self.m, self.data_dim, self.latent = m, data_dim, latent
        self.encoder = mlp(m, [data_dim, *hidden, 2 * latent])
        self.decoder = mlp(m, [latent, *reversed(hidden), data_dim])
        self.enc_names = [f"encoder{i + 1}" for i in range(len(hidden))]
        self.dec_names = [f"decoder{i + 1}" for i in range(len(hidden))]

    def terms(self, x: Tensor, eps: Tensor, act: nn.Module, likelihood: str, record) -> Tensor:
        """(M, B, 2): per example the reconstruction term and the KL term of the negative ELBO, in nats.
        x: (B, D) shared or (M, B, D) per replica; eps: (M, B, latent)."""
        stats = run_mlp(self.encoder, x, act, self.enc_names, record)
        mu, logvar = stats[..., : self.latent], stats[..., self.latent:]
        z = mu + torch.exp(0.5 * logvar) * eps
        out = run_mlp(self.decoder, z, act, self.dec_names, record)
        target = x.expand(self.m, *x.shape) if x.dim() == 2 else x
        if likelihood == "bernoulli":
            recon = F.binary_cross_entropy_with_logits(out, target, reduction="none").sum(-1)
        else:
            recon = 0.5 * ((target - out) ** 2 + LOG_2PI).sum(-1)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(-1)
        return torch.stack([recon, kl], -1)


class GANCore(nn.Module):
    """The generator and the discriminator of a GAN population."""

    def __init__(self, m: int, hidden: list[int], latent: int, data_dim: int = 2):
        super().__init__()
        self.m, self.latent = m, latent
        self.generator = mlp(m, [latent, *hidden, data_dim])
        self.discriminator = mlp(m, [data_dim, *hidden, 1])
        self.g_names = [f"generator{i + 1}" for i in range(len(hidden))]
        self.d_names = [f"discriminator{i + 1}" for i in range(len(hidden))]
