"""A population of small transformers: a decoder for token sequences (causal, a character-level language
model) and an encoder with patch embedding for images and signals (a small ViT).

Every parameter has the replica dimension first, as for the MLP and the ConvNet, so M transformers train as
batched matrix products: a block's projections are `PopLinear` (one `bmm` over (M, B·T, d)), attention runs
on (M·B, heads, T, d_head). Replica m computes exactly what the same seed computes alone.

The block is pre-norm (GPT-2, nanoGPT): x + Attn(Norm(x)), then x + FFN(Norm(x)), a final Norm before the
head; learned positions; Norm is LayerNorm or RMSNorm (`model.norm`). The slots:
- `model.activation`, the FFN's: an element-wise entry (FFN(x) = W₂ φ(W₁x)) or a gated one
  (FFN(x) = W₂ (φ(W₁x) ⊙ Vx), Shazeer 2020). `model.ffn_width` defaults to 4d for an element-wise entry and to
  2/3 of that, rounded to a multiple of 8, for a gated one, so both have the same parameter count within 1 % from
  d = 64 up (at d = 32 the rounding alone costs 1.9 %, at d = 16 about 3 %; Shazeer 2020 matched them this way;
  the model's `counts` record its own and the ungated one's).
- `model.attention`, the score function on S = QKᵀ/√d_head (masked to the past for the decoder):
  `softmax` (row-normalised, the default); `sigmoid`: σ(S + b) with b = −log n (Ramapuram et al. 2024, n the
  sequence length, one constant for every query, as the paper sets it); `relu_seqlen`: ReLU(S)/n (Wortsman et
  al. 2023, n the sequence length); `relu`: ReLU(S), unnormalised. The decoder masks future keys in each.

Initialisation follows GPT-2 as nanoGPT writes it: every weight and embedding N(0, 0.02²), the two projections
that write into the residual stream (attention out, FFN out) N(0, 0.02²/(2L)), biases 0, norm gains 1. Each
tensor is drawn by name from the replicas' seeds, so the tensors that two FFN choices share (embeddings,
attention, norms, head) start from the same draws in every cell: the paired design.

Probes (`trace`): per block the FFN's pre-activation and gate value (dead and saturated fractions follow), and
`extras`: the residual stream's RMS norm after each block and each head's attention entropy (of its weights
normalised to sum 1 over the keys, so a score function that does not normalise is measured by its spread).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actlab import rng
from actlab.errors import ActlabError
from actlab.nn.layers import PopLayerNorm, PopLinear, embed_tokens

# record(layer name, FFN pre-activation z, gate value φ(z), batch, tokens): the population's probe trace
Record = Callable[[str, Tensor, Tensor, int, int], None]
INIT_STD = 0.02  # GPT-2's initial weight std (Radford et al. 2019; nanoGPT)
SCORES = ("softmax", "sigmoid", "relu_seqlen", "relu")


def ffn_width(d: int, gated: bool, given: int | None = None) -> int:
    """The FFN's hidden width: `given`, else 4d, or for a gated FFN 2/3 of 4d rounded to a multiple of 8."""
    if given is not None:
        return given
    return 4 * d if not gated else max(8, int(round(2 * 4 * d / 3 / 8)) * 8)


def parameter_count(d: int, layers: int, ffn: int, gated: bool, vocab_in: int, positions: int, out: int,
                    norm: str = "layer") -> int:
    """Parameters of one replica: embeddings (or patch projection) + positions + blocks + final norm + head;
    `norm` 'layer' (gain and bias), 'rms' (gain) or 'none'."""
    norm = {"layer": 2 * d, "rms": d, "none": 0}[norm]
    attn = d * 3 * d + 3 * d + d * d + d
    mlp = d * ffn + ffn + (d * ffn + ffn if gated else 0) + ffn * d + d
    return vocab_in + positions * d + layers * (2 * norm + attn + mlp) + norm + d * out + out


class PopRMSNorm(nn.Module):
    """RMSNorm (Zhang & Sennrich 2019) over the last dimension of (M, N, F), a gain per replica."""

    def __init__(self, m: int, features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(m, 1, features))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    """One pre-norm transformer block of M replicas."""

    def __init__(self, m: int, d: int, heads: int, ffn: int, gated: bool, rms: bool, score: str, causal: bool):
        super().__init__()
        self.m, self.d, self.heads, self.score, self.causal, self.gated = m, d, heads, score, causal, gated
        norm = (lambda: PopRMSNorm(m, d)) if rms else (lambda: PopLayerNorm(m, d))
        self.norm1, self.norm2 = norm(), norm()
        self.qkv = PopLinear(m, d, 3 * d)
        self.proj = PopLinear(m, d, d)
        self.fc = PopLinear(m, d, ffn)
        self.value = PopLinear(m, d, ffn) if gated else None
        self.out = PopLinear(m, ffn, d)

    def attention(self, h: Tensor, b: int, t: int, want: bool) -> tuple[Tensor, Tensor | None]:
        """h: (M, B·T, d) -> (M, B·T, d), and each head's entropy (M, heads) when `want`."""
        m, hd = self.m, self.d // self.heads
        qkv = self.qkv(h).view(m * b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)  # 3 × (M·B, H, T, hd)
        q, k, v = qkv[0], qkv[1], qkv[2]
        entropy = None
        if self.score == "softmax" and not want:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # (M·B, H, T, T)
            mask = torch.ones(t, t, dtype=torch.bool, device=h.device).tril() if self.causal else None
            if self.score == "softmax":
                p = torch.softmax(s if mask is None else s.masked_fill(~mask, float("-inf")), dim=-1)
            else:
                if self.score == "sigmoid":
                    p = torch.sigmoid(s - math.log(t))
                elif self.score == "relu_seqlen":
                    p = torch.relu(s) / t
                else:
                    p = torch.relu(s)
                if mask is not None:
                    p = p.masked_fill(~mask, 0.0)
            y = p @ v
            if want:
                with torch.no_grad():
                    w = p / p.sum(-1, keepdim=True).clamp_min(1e-30)
                    ent = -(w * torch.log(w.clamp_min(1e-30))).sum(-1)  # (M·B, H, T)
                    entropy = ent.view(m, b, self.heads, t).mean((1, 3))
        y = y.transpose(1, 2).reshape(m, b * t, self.d)
        return self.proj(y), entropy

    def forward(self, x: Tensor, b: int, t: int, act: nn.Module, record: Record | None,
                extras: dict[str, list[Tensor]] | None, name: str) -> Tensor:
        a, ent = self.attention(self.norm1(x), b, t, extras is not None)
        x = x + a
        h = self.norm2(x)
        z = self.fc(h)
        g = act(z)
        u = g * self.value(h) if self.value is not None else g
        x = x + self.out(u)
        if record is not None:
            record(name, z, g, b, t)
        if extras is not None:
            extras.setdefault("attention_entropy", []).append(ent)
            with torch.no_grad():
                extras.setdefault("residual_rms", []).append((x.detach() ** 2).mean(-1).sqrt().mean(1, keepdim=True))
        return x


def _patches(x: Tensor, patch: int) -> Tensor:
    """(N, C, H, W) -> (N, H/p · W/p, C·p·p), or (N, C, L) -> (N, L/p, C·p)."""
    if x.dim() == 4:
        n, c, hh, ww = x.shape
        x = x.view(n, c, hh // patch, patch, ww // patch, patch).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(n, (hh // patch) * (ww // patch), c * patch * patch)
    n, c, length = x.shape
    return x.view(n, c, length // patch, patch).permute(0, 2, 1, 3).reshape(n, length // patch, c * patch)


class TransformerCore(nn.Module):
    """Embeddings, blocks, final norm and head of M transformers (see the module docstring)."""

    def __init__(self, m: int, d: int, layers: int, heads: int, ffn: int, gated: bool, rms: bool, score: str,
                 in_shape: tuple[int, ...], out_features: int, causal: bool, vocab: int, patch: int | None):
        super().__init__()
        if d % heads:
            raise ActlabError(f"model.width={d} (the residual stream d) must be a multiple of model.heads={heads}")
        if score not in SCORES:
            raise ActlabError(f"model.attention={score!r} is unknown; allowed: {', '.join(SCORES)}")
        self.m, self.d, self.causal, self.patch, self.in_shape = m, d, causal, patch, in_shape
        if causal:  # token ids (T,)
            if len(in_shape) != 1:
                raise ActlabError(f"a decoder transformer takes token sequences (T,), not inputs of shape {in_shape}")
            if patch is not None:
                raise ActlabError(f"model.patch={patch} cuts images or signals into patches; a decoder on token "
                                  "sequences (the next_token task) takes none: leave model.patch unset")
            self.tokens = in_shape[0]
            self.tok = nn.Parameter(torch.empty(m, vocab, d))
            self.embed = None
        else:  # images (C, H, W) or signals (C, L), cut into patches
            if len(in_shape) not in (2, 3) or patch is None:
                raise ActlabError(f"an encoder transformer (a ViT) takes images (C, H, W) or signals (C, L) with "
                                  f"model.patch set; got input shape {in_shape}, patch={patch}")
            spatial = in_shape[1:]
            if any(s % patch for s in spatial):
                raise ActlabError(f"model.patch={patch} must divide the input's spatial size {spatial}")
            self.tokens = math.prod(s // patch for s in spatial)
            fan = in_shape[0] * patch ** len(spatial)
            self.embed = PopLinear(m, fan, d)
            self.tok = None
        self.pos = nn.Parameter(torch.empty(m, self.tokens, d))
        self.blocks = nn.ModuleList(Block(m, d, heads, ffn, gated, rms, score, causal) for _ in range(layers))
        self.norm = PopRMSNorm(m, d) if rms else PopLayerNorm(m, d)
        self.head = PopLinear(m, d, out_features)

    def init_weights(self, seeds: list[int], rows: slice) -> None:
        """Draw replicas `rows`' tensors from `seeds` (GPT-2's scheme; each tensor's stream is its name)."""
        residual = INIT_STD / math.sqrt(2 * len(self.blocks))
        with torch.no_grad():
            for name, p in self.named_parameters():
                leaf = name.rsplit(".", 1)[-1]
                if "norm" in name:
                    p[rows] = 1.0 if leaf == "weight" else 0.0
                elif leaf == "bias":
                    p[rows] = 0.0
                else:
                    std = residual if name.endswith(("proj.weight", "out.weight")) else INIT_STD
                    p[rows] = std * rng.normal(seeds, rng.stream_id("transformer-init", name), tuple(p.shape[1:]))

    def forward(self, x: Tensor, act: nn.Module, record: Record | None = None,
                extras: dict[str, list[Tensor]] | None = None) -> Tensor:
        m = self.m
        if self.causal:
            h = embed_tokens(self.tok, x, self.tokens, "context")
            b, t = h.shape[1], h.shape[2]
            h = h + self.pos[:, None, :t]  # (M, B, T, d)
        else:
            shared = x.dim() == len(self.in_shape) + 1
            p = _patches(x, self.patch) if shared else _patches(x.flatten(0, 1), self.patch).view(
                m, x.shape[1], self.tokens, -1)
            b, t = p.shape[-3], self.tokens
            h = self.embed(p.reshape(b * t, -1) if shared else p.reshape(m, b * t, -1)).view(m, b, t, self.d)
            h = h + self.pos[:, None]
        h = h.reshape(m, b * t, self.d)
        for i, blk in enumerate(self.blocks):
            h = blk(h, b, t, act, record, extras, f"block{i + 1}")
        h = self.norm(h)
        if self.causal:
            return self.head(h).view(m, b, t, -1)  # (M, B, T, V)
        return self.head(h.view(m, b, t, self.d).mean(2))  # (M, B, K): mean over patches

    def extra_repr(self) -> str:
        return f"replicas={self.m}, d={self.d}, tokens={self.tokens}, causal={self.causal}"

