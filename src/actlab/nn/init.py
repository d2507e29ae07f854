"""Weight initialisation of populations from counter-based draws (paired design, DESIGN §2).

Replica m's weights of layer l are a fixed draw of the replica's seed and the layer index, scaled by the
scheme: so two cells that differ only in their activation (or init scale) start from the *same* draw, and
replica m of a population starts exactly where the same seed starts alone.

Schemes (std for normal, bound b for U(-b, b); fan_in, fan_out count kernel positions for convolutions):

| scheme          | weights                                   |
|-----------------|-------------------------------------------|
| kaiming_normal  | N(0, gain² / fan_in)                      |
| kaiming_uniform | U(±gain·sqrt(3 / fan_in))                 |
| lecun_normal    | N(0, gain² / fan_in) (gain 1 unless given)|
| xavier_normal   | N(0, gain² · 2 / (fan_in + fan_out))      |
| xavier_uniform  | U(±gain·sqrt(6 / (fan_in + fan_out)))     |
| orthogonal      | gain · Q of the QR of a normal draw       |
| blobs           | 0.01 · U[0, 1) (the blobs-depth protocol) |
| normal          | N(0, gain²): a fixed std, not scaled by fan (the XOR protocol) |
| torch_default   | PyTorch's own Linear/Conv init: weights and biases U(±1/sqrt(fan_in)) (the cnn-depth protocol) |
| default         | the activation's paired scheme            |

Biases are the constant `bias_init`, except under `torch_default`, whose biases are drawn too (`draw_bias`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from actlab import rng
from actlab.catalog.activations import Activation

SCHEMES = ("default", "kaiming_normal", "kaiming_uniform", "lecun_normal", "xavier_normal", "xavier_uniform",
           "orthogonal", "suo", "blobs", "normal", "torch_default")
DRAWN_BIAS = ("torch_default",)  # schemes whose biases are drawn, not the constant bias_init
PAIRED = {"kaiming": "kaiming_normal", "lecun": "lecun_normal", "xavier": "xavier_normal"}


def scheme_gain(scheme: str, act: Activation) -> float:
    """The simulations' weight gain: LeCun is N(0, 1/fan_in) (gain 1); other schemes use the activation's gain.
    On the square layers of gradient-flow and selu-selfnorm every scheme's variance is gain²/width, so σ_w² of
    mean-field theory is gain²."""
    return 1.0 if scheme == "lecun_normal" else act.init_gain()


def draw(scheme: str, gain: float, seeds: list[int], layer: int, shape: tuple[int, ...], fan_in: int,
         fan_out: int) -> Tensor:
    """(M, *shape) float32 initial weights of layer `layer` for each seed. `shape` is one replica's weight."""
    stream = rng.stream_id("init", layer)
    if scheme in ("kaiming_normal", "lecun_normal"):
        return rng.normal(seeds, stream, shape) * (gain / math.sqrt(fan_in))
    if scheme == "xavier_normal":
        return rng.normal(seeds, stream, shape) * (gain * math.sqrt(2.0 / (fan_in + fan_out)))
    if scheme in ("kaiming_uniform", "xavier_uniform"):
        bound = gain * (math.sqrt(3.0 / fan_in) if scheme == "kaiming_uniform" else math.sqrt(6.0 / (fan_in + fan_out)))
        return (2.0 * rng.uniform(seeds, stream, shape) - 1.0) * bound
    if scheme == "normal":
        return rng.normal(seeds, stream, shape) * gain
    if scheme == "torch_default":  # kaiming_uniform_(a=sqrt(5)) in nn.Linear/nn.Conv*: bound = 1/sqrt(fan_in)
        return (2.0 * rng.uniform(seeds, stream, shape) - 1.0) / math.sqrt(fan_in)
    if scheme == "blobs":
        return 0.01 * rng.uniform(seeds, stream, shape)
    if scheme in ("orthogonal", "suo"):  # suo: scaled uniform orthogonal (DKS), ×max(√(fan_out/fan_in), 1)
        rows, cols = shape[0], math.prod(shape[1:])
        a = rng.normal(seeds, stream, (max(rows, cols), min(rows, cols)), dtype=torch.float64)
        q, r = torch.linalg.qr(a)  # batched over replicas
        q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)  # unique Q (Mezzadri 2007)
        q = q if rows >= cols else q.transpose(-2, -1)
        scale = gain * (max(math.sqrt(fan_out / fan_in), 1.0) if scheme == "suo" else 1.0)
        return (scale * q).to(torch.float32).reshape(-1, *shape)
    raise ValueError(f"unknown init scheme {scheme!r}")


def weight_variance(scheme: str, gain: float, fan_in: int, fan_out: int) -> tuple[float, float] | None:
    """(σ_w², σ_b²) of one layer under `draw` and `draw_bias` in mean-field terms (weight variance × fan_in,
    bias variance of drawn biases), or None for a scheme whose weights have a non-zero mean (`blobs`)."""
    if scheme in ("kaiming_normal", "lecun_normal", "kaiming_uniform"):
        return gain ** 2, 0.0
    if scheme == "orthogonal":  # orthonormal columns (fan_in ≥ fan_out) keep q; rows (fan_in < fan_out) shrink it
        return gain ** 2 * min(1.0, fan_in / fan_out), 0.0
    if scheme == "suo":  # the rescaling restores q
        return gain ** 2, 0.0
    if scheme in ("xavier_normal", "xavier_uniform"):
        return gain ** 2 * 2 * fan_in / (fan_in + fan_out), 0.0
    if scheme == "normal":
        return gain ** 2 * fan_in, 0.0
    if scheme == "torch_default":  # U(±1/√fan_in) weights and biases
        return 1 / 3, 1 / (3 * fan_in)
    return None


def draw_bias(scheme: str, seeds: list[int], layer: int, n: int, fan_in: int) -> Tensor | None:
    """(M, n) initial biases of layer `layer` for a scheme that draws them (PyTorch's default: U(±1/sqrt(fan_in))),
    or None for the schemes whose biases are the constant `bias_init`."""
    if scheme not in DRAWN_BIAS:
        return None
    return (2.0 * rng.uniform(seeds, rng.stream_id("init-bias", layer), (n,)) - 1.0) / math.sqrt(fan_in)
