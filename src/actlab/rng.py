"""Counter-based random numbers: every draw is a hash of (seed, stream, index), vectorised over replicas.

Why not `torch.Generator`: replica m of a population must draw exactly what the same seed draws when
trained alone (the equivalence contract), and a population of 10,000 replicas cannot afford 10,000
generator calls per epoch. Hashing gives both: `uniform(seeds, stream, shape)` returns, for each seed, the
same numbers whatever other seeds sit beside it, in one tensor operation, on any device.

The hash is the `lowbias32` integer finaliser (Wellons 2018), applied in int64 arithmetic with 32-bit masks
(the low 32 bits of a wrapped product are exact). A stream is any integer naming one use of randomness
(an init layer, an epoch's data order); `stream_id("order", epoch)` makes one from words and numbers.
"""

from __future__ import annotations

import math
import zlib

import torch
from torch import Tensor

MASK32 = 0xFFFFFFFF


def mix(x: Tensor) -> Tensor:
    """lowbias32 on int64 values in [0, 2^32): torch tensors here, and the same function compiled by numba on
    int64 scalars in the fused kernel (`actlab.training.fused.kernel`). Products wrap in int64; their low 32
    bits, all that the mask keeps, are exact."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def stream_id(*parts: str | int) -> int:
    """A 32-bit stream number from words and integers, stable across runs and machines (CRC-32)."""
    return zlib.crc32("/".join(str(p) for p in parts).encode()) & MASK32


def _seed_keys(seeds: Tensor | list[int], stream: int, device: torch.device | str | None) -> Tensor:
    s = torch.as_tensor(seeds, dtype=torch.int64, device=device) & MASK32
    return mix(mix(s) ^ (stream & MASK32))  # (M,)


def bits(seeds: Tensor | list[int], stream: int, n: int, device: torch.device | str | None = None) -> Tensor:
    """(M, n) 32-bit integers (held in int64) for each seed: lowbias32 of the seed's key and the spread index."""
    key = _seed_keys(seeds, stream, device)
    idx = (torch.arange(n, dtype=torch.int64, device=key.device) * 0x9E3779B9) & MASK32  # golden-ratio spread
    return mix(key[:, None] ^ idx[None, :])


def uniform(seeds: Tensor | list[int], stream: int, shape: tuple[int, ...],
            device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """(M, *shape) uniform values in (0, 1), 32 bits of resolution."""
    n = math.prod(shape)
    u = (bits(seeds, stream, n, device).to(torch.float64) + 0.5) / 2.0**32
    return u.to(dtype).reshape(-1, *shape)


def normal(seeds: Tensor | list[int], stream: int, shape: tuple[int, ...],
           device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """(M, *shape) standard normal values (Box–Muller on two hashed uniforms per value)."""
    n = math.prod(shape)
    u = uniform(seeds, stream, (2, n), device, torch.float64)
    z = torch.sqrt(-2.0 * torch.log(u[:, 0])) * torch.cos(2.0 * math.pi * u[:, 1])
    return z.to(dtype).reshape(-1, *shape)


def permutations(seeds: Tensor | list[int], stream: int, n: int, device: torch.device | str | None = None) -> Tensor:
    """(M, n) int64: one random permutation of range(n) per seed (stable argsort of hashed 32-bit keys;
    the rare equal keys keep index order, so the result is always a permutation and deterministic)."""
    return torch.argsort(bits(seeds, stream, n, device), dim=1, stable=True)
