"""Population layers: M independent replicas of a layer in one module, every parameter replica-major.

Shapes: MLP activations are (M, B, F); image activations are (B, M·C, H, W) and signals (B, M·C, L), so a
grouped convolution with groups=M and a BatchNorm over M·C channels are exactly M independent layers
(running statistics included). Every parameter can be viewed as (M, -1): `replica_view(p, M)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actlab.errors import ActlabError


def replica_view(p: Tensor, m: int) -> Tensor:
    """A parameter (or its gradient) as (M, everything else of one replica), for reading: a channels-last
    convolution weight comes back as a copy, so never write through it (use `replica_zero_`)."""
    return p.reshape(m, -1)


def replica_zero_(t: Tensor, m: int, which: Tensor) -> None:
    """In place: set the slices of the replicas where `which` (M,) is True to 0, NaN and inf included.
    `t` is replica-major along dimension 0 (every population parameter, buffer and optimizer state is)."""
    t.masked_fill_(which.repeat_interleave(t.shape[0] // m).view(-1, *([1] * (t.dim() - 1))), 0.0)


def embed_tokens(table: Tensor, x: Tensor, limit: int, what: str) -> Tensor:
    """Token ids (B, T) shared by every replica, or (M, B, T) per replica, looked up in each replica's own table
    (M, vocab, F): (M, B, T, F). A sequence longer than `limit` is refused, naming `what` holds the limit."""
    m = table.shape[0]
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(m, -1, -1)
    if x.shape[2] > limit:
        raise ActlabError(f"sequence of {x.shape[2]} tokens is longer than the model's {what} {limit}")
    return table[torch.arange(m, device=x.device).view(m, 1, 1), x.long()]


class PopLinear(nn.Module):
    """M linear maps: (M, B, in) @ (M, in, out) + (M, 1, out). Also accepts x of shape (B, in), shared by all."""

    def __init__(self, m: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.m, self.in_features, self.out_features = m, in_features, out_features
        self.weight = nn.Parameter(torch.empty(m, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(m, 1, out_features)) if bias else None

    @property
    def fans(self) -> tuple[int, int]:
        return self.in_features, self.out_features

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            return torch.bmm(x, self.weight) if self.bias is None else torch.baddbmm(self.bias, x, self.weight)
        y = torch.matmul(x, self.weight)  # (B, in) broadcast to every replica
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"replicas={self.m}, in={self.in_features}, out={self.out_features}"


class PopConv(nn.Module):
    """M convolutions (1-D or 2-D) as one grouped convolution: weight (M·out, in, k[, k]), groups=M."""

    def __init__(self, m: int, in_channels: int, out_channels: int, kernel_size: int, padding: int, dims: int = 2,
                 bias: bool = True):
        super().__init__()
        self.m, self.in_channels, self.out_channels = m, in_channels, out_channels
        self.padding, self.dims = padding, dims
        kernel = (kernel_size,) * dims
        # 2-D: channels-last memory, oneDNN's preferred layout on CPU (faster convolutions: benchmarks/RESULTS.md).
        fmt = torch.channels_last if dims == 2 else torch.contiguous_format
        self.weight = nn.Parameter(torch.empty(m * out_channels, in_channels, *kernel, memory_format=fmt))
        self.bias = nn.Parameter(torch.zeros(m * out_channels)) if bias else None
        self._conv = F.conv2d if dims == 2 else F.conv1d

    @property
    def fans(self) -> tuple[int, int]:
        k = self.weight[0, 0].numel()
        return self.in_channels * k, self.out_channels * k

    def forward(self, x: Tensor) -> Tensor:  # (B, M·in, *spatial) -> (B, M·out, *spatial)
        return self._conv(x, self.weight, self.bias, padding=self.padding, groups=self.m)

    def extra_repr(self) -> str:
        return (f"replicas={self.m}, in={self.in_channels}, out={self.out_channels}, "
                f"kernel={tuple(self.weight.shape[2:])}, padding={self.padding}")


class PopBatchNorm(nn.Module):
    """BatchNorm of M replicas on (M, B, F) features. (Conv maps (B, M·C, ...) use nn.BatchNorm2d(M·C) as is.)"""

    def __init__(self, m: int, features: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(m * features)

    def forward(self, x: Tensor) -> Tensor:  # (M, B, F) -> (B, M·F) -> back
        m, b, f = x.shape
        return self.bn(x.transpose(0, 1).reshape(b, m * f)).reshape(b, m, f).transpose(0, 1)


class PopLayerNorm(nn.Module):
    """LayerNorm over the features of each example of each replica: (M, B, F), affine per replica."""

    def __init__(self, m: int, features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(m, 1, features))
        self.bias = nn.Parameter(torch.zeros(m, 1, features))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight + self.bias


class PopPReLU(nn.Module):
    """PReLU with one learnable slope per replica, for (M, B, F) features or (B, M·C, ...) maps."""

    def __init__(self, m: int, alpha: float):
        super().__init__()
        self.m = m
        self.weight = nn.Parameter(torch.full((m,), float(alpha)))

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() == 3:  # (M, B, F)
            a = self.weight.view(self.m, 1, 1)
        else:  # (B, M·C, *spatial): each replica's slope repeated over its channels
            c = z.shape[1] // self.m
            a = self.weight.repeat_interleave(c).view(1, self.m * c, *([1] * (z.dim() - 2)))
        return torch.where(z >= 0, z, a * z)
