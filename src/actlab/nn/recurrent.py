"""A population of recurrent networks: the plain RNN, the GRU and the LSTM, with an activation in every slot.

Every parameter has the replica dimension first, as for the other families, so M networks step through time
together: per layer and direction the input projection of every step is one batched product hoisted out of
the time loop, then each step is one `baddbmm` over (M, B, H) @ (M, H, G·H) and the cell's element-wise work.
Replica m computes what the same seed computes alone, and with the default slots what torch's own `nn.RNN`,
`nn.GRU` and `nn.LSTM` compute with the same weights (tests/test_recurrent.py).

The cells, with x_t the step's input, h the previous state and every product per replica:
- rnn:  h' = φ(W_ih x_t + b_ih + W_hh h + b_hh)                        φ: `model.activation` (tanh)
- gru:  r = σ(·), u = σ(·) (torch's z);  n = φ(W_in x_t + b_in + r ⊙ (W_hn h + b_hn));  h' = (1 − u) ⊙ n + u ⊙ h
                                                                        σ: `model.gate_activation` (sigmoid),
                                                                        φ: `model.activation` (tanh)
- lstm: i, f, o = σ(·);  g = φ(·);  c' = f ⊙ c + i ⊙ g;  h' = o ⊙ ψ(c')   σ: `model.gate_activation` (sigmoid),
                                                                        φ: `model.activation` (the candidate,
                                                                        tanh), ψ: `model.cell_activation` (tanh)
Greff et al. 2017's variants are slot choices: NIAF is φ = identity, NOAF is ψ = identity; an unbounded gate
(relu) or hard_sigmoid are gate choices. Internally the LSTM's gate blocks are ordered (i, f, o, g), so one
call applies σ to the three gates; torch orders them (i, f, g, o) (`torch_order` maps between the two).

Inputs are sequences: a signal (C, L) is L steps of C features (MNIST-1D: 40 steps of 1; the adding problem:
T steps of 2), an image (C, H, W) is H steps of its rows (C·W features), and token ids (T,) are embedded
(width = the hidden size) for the next_token task, where the head reads every step. Otherwise the readout is
`last` (the last state of the top layer, with the backward direction's final state beside it when
bidirectional) or `all` (every step's top state, flattened).

Probes (`trace`): per layer each slot's pre-activation and value over every step (`input_gate`,
`forget_gate`, `output_gate`, `candidate`, `cell` for the LSTM; `reset_gate`, `update_gate`, `candidate`
for the GRU; `state` for the RNN), so dead and saturated fractions follow per slot; `extras`: the state of
each layer at each step, whose gradient norm the probe reports (gradient flow through time).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from actlab import rng
from actlab.errors import ActlabError
from actlab.nn import init as inits
from actlab.nn.layers import PopLinear, embed_tokens

KINDS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks per cell
SLOTS = {"rnn": ("state",), "gru": ("reset_gate", "update_gate", "candidate"),
         "lstm": ("input_gate", "forget_gate", "output_gate", "candidate", "cell")}
Record = Callable[[str, Tensor, Tensor, nn.Module, int, int], None]  # (name, z, a, slot module, batch, steps)


def torch_order(kind: str, hidden: int) -> Tensor:
    """Row indices that turn torch's gate blocks into actlab's: lstm (i, f, g, o) -> (i, f, o, g); rnn and gru
    share torch's order. `ours = theirs[torch_order(...)]` along the gate dimension."""
    blocks = [0, 1, 3, 2] if kind == "lstm" else list(range(GATES[kind]))
    return torch.cat([torch.arange(b * hidden, (b + 1) * hidden) for b in blocks])


def sequence_shape(in_shape: tuple[int, ...], tokens: bool) -> tuple[int, int]:
    """(steps, features per step) of one example's input shape (see the module docstring)."""
    if tokens:
        if len(in_shape) != 1:
            raise ActlabError(f"a recurrent language model takes token sequences (T,), not inputs of shape {in_shape}")
        return in_shape[0], 0
    if len(in_shape) == 2:  # (C, L): L steps of C features
        return in_shape[1], in_shape[0]
    if len(in_shape) == 3:  # (C, H, W): H steps of C·W features
        return in_shape[1], in_shape[0] * in_shape[2]
    raise ActlabError(f"a recurrent model takes sequences: signals (C, L), images (C, H, W) read row by row, or "
                      f"token ids; inputs of shape {in_shape} have no time axis (use model.kind='mlp')")


def parameter_count(kind: str, features: int, hidden: int, layers: int, directions: int, head_in: int,
                    out: int, vocab: int = 0) -> int:
    """Parameters of one replica: torch's count for the recurrent layers (two biases per block), the head and,
    for tokens, the embedding."""
    g = GATES[kind] * hidden
    total = vocab * hidden
    for layer in range(layers):
        fan = (features if layer == 0 else hidden * directions) if not (layer == 0 and vocab) else hidden
        total += directions * (fan * g + hidden * g + 2 * g)
    return total + head_in * out + out


class RecurrentLayer(nn.Module):
    """One direction of one layer of M replicas: W_ih (with b_ih) as a PopLinear, W_hh (M, H, G·H), b_hh."""

    def __init__(self, m: int, kind: str, features: int, hidden: int):
        super().__init__()
        self.kind, self.hidden = kind, hidden
        g = GATES[kind] * hidden
        self.ih = PopLinear(m, features, g)
        self.weight_hh = nn.Parameter(torch.empty(m, hidden, g))
        self.bias_hh = nn.Parameter(torch.zeros(m, 1, g))

    def forward(self, x: Tensor, steps: int, slots: dict[str, nn.Module], reverse: bool, record: Record | None,
                states: list[Tensor] | None, name: str) -> Tensor:
        """x: (M, B·T, F) -> every step's state (M, B, T, H); `states` collects each step's state (time order)."""
        m, h_size, kind = x.shape[0], self.hidden, self.kind
        b = x.shape[1] // steps
        # the input projection of every step: one product, unbound into per-step views (indexing xp[:, :, t]
        # instead would make autograd zero-fill a buffer of xp's size for every step's gradient)
        xp = self.ih(x).view(m, b, steps, -1)
        if kind != "gru":  # b_hh joins the input projection once (the GRU's b_hn sits inside r ⊙ (W_hn h + b_hn))
            xp = xp + self.bias_hh.unsqueeze(2)
        xs = xp.unbind(2)
        h = x.new_zeros(m, b, h_size)
        c = x.new_zeros(m, b, h_size) if kind == "lstm" else None
        out: list[Tensor] = [h] * steps
        seen: dict[str, list[tuple[Tensor, Tensor]]] = {}
        keep = record is not None

        def note(slot: str, z: Tensor, a: Tensor) -> None:
            if keep:
                seen.setdefault(slot, []).append((z, a))

        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            xt = xs[t]
            if kind == "rnn":
                z = torch.baddbmm(xt, h, self.weight_hh)  # x_t W_ih + b_ih + b_hh + h W_hh, one product
                h = slots["state"](z)
                note("state", z, h)
            elif kind == "gru":  # split, not sliced: one gradient buffer per step, not one per slice
                rec = torch.baddbmm(self.bias_hh, h, self.weight_hh)  # (M, B, 3H)
                x_rz, x_n = xt.split([2 * h_size, h_size], -1)
                h_rz, h_n = rec.split([2 * h_size, h_size], -1)
                zg = x_rz + h_rz
                r, u = slots["gate"](zg).chunk(2, -1)
                zn = x_n + r * h_n
                n = slots["candidate"](zn)
                h = n + u * (h - n)  # (1 − u) n + u h
                if keep:
                    zr, zu = zg.chunk(2, -1)
                    note("reset_gate", zr, r)
                    note("update_gate", zu, u)
                    note("candidate", zn, n)
            else:
                zg, zc = torch.baddbmm(xt, h, self.weight_hh).split([3 * h_size, h_size], -1)
                i, f, o = slots["gate"](zg).chunk(3, -1)
                g = slots["candidate"](zc)
                c = f * c + i * g
                s = slots["cell"](c)
                h = o * s
                if keep:
                    zi, zf, zo = zg.chunk(3, -1)
                    note("input_gate", zi, i)
                    note("forget_gate", zf, f)
                    note("output_gate", zo, o)
                    note("candidate", zc, g)
                    note("cell", c, s)
            out[t] = h
        if states is not None:
            states.extend(out)
        if record is not None:
            module = {"state": "state", "reset_gate": "gate", "update_gate": "gate", "input_gate": "gate",
                      "forget_gate": "gate", "output_gate": "gate", "candidate": "candidate", "cell": "cell"}
            for slot in SLOTS[kind]:
                pairs = seen[slot][::-1] if reverse else seen[slot]  # time order
                z = torch.stack([p[0] for p in pairs], 2)  # (M, B, T, H)
                a = torch.stack([p[1] for p in pairs], 2)
                record(f"{name}.{slot}", z.reshape(m, b * steps, h_size), a.reshape(m, b * steps, h_size),
                       slots[module[slot]], b, steps)
        return torch.stack(out, 2)


class RecurrentCore(nn.Module):
    """Embedding (tokens), `layers` recurrent layers (two directions when bidirectional), and the head."""

    def __init__(self, m: int, kind: str, in_shape: tuple[int, ...], hidden: int, layers: int,
                 bidirectional: bool, readout: str, out_features: int, vocab: int = 0):
        super().__init__()
        if kind not in KINDS:
            raise ActlabError(f"model.kind={kind!r} is not recurrent; allowed: {', '.join(KINDS)}")
        if layers < 1:
            raise ActlabError(f"model.depth={layers}: a recurrent model has at least one layer")
        self.m, self.kind, self.hidden, self.readout = m, kind, hidden, readout
        self.tokens = vocab > 0
        self.steps, features = sequence_shape(in_shape, self.tokens)
        if self.tokens and (bidirectional or readout != "last"):
            raise ActlabError("a recurrent language model reads every step causally: model.bidirectional must be "
                              f"false and model.readout 'last' (given {bidirectional}, {readout!r})")
        self.in_shape, self.dirs = in_shape, 2 if bidirectional else 1
        self.embed = nn.Parameter(torch.empty(m, vocab, hidden)) if self.tokens else None
        if self.tokens:
            features = hidden
        self.layers = nn.ModuleList()
        for layer in range(layers):
            fan = features if layer == 0 else hidden * self.dirs
            self.layers.append(nn.ModuleList(RecurrentLayer(m, kind, fan, hidden) for _ in range(self.dirs)))
        width = hidden * self.dirs
        self.head = PopLinear(m, width * (self.steps if readout == "all" else 1), out_features)

    def init_weights(self, seeds: list[int], rows: slice, scheme: str, gain: float, recurrent: str,
                     bias: tuple[float, float], forget_bias: float | None) -> None:
        """Draw replicas `rows`' tensors from `seeds`, each tensor's stream its name (so two slot choices start
        from the same draws). scheme 'torch': PyTorch's own (every recurrent weight and bias U(±1/√H), the head
        nn.Linear's U(±1/√fan_in), the embedding N(0, 1)); otherwise each gate block of a weight is drawn with
        its fan-in by `scheme` and `gain` and biases are N(bias[0], bias[1]²). `recurrent` 'identity' sets each
        W_hh block to I (Le et al. 2015), 'orthogonal' draws each block orthogonal; `forget_bias` sets the
        LSTM's forget-gate block of b_ih (block 1 of (i, f, o, g)) and zeroes b_hh's, so the gate starts at
        σ(forget_bias)."""
        h = self.hidden
        with torch.no_grad():
            for name, p in self.named_parameters():
                shape = tuple(p.shape[1:])
                stream = rng.stream_id("recurrent-init", name)
                if name == "embed":
                    p[rows] = rng.normal(seeds, stream, shape)
                    continue
                head = name.startswith("head.")
                is_bias = name.endswith("bias") or name.endswith("bias_hh")
                if scheme == "torch":
                    bound = 1 / math.sqrt(shape[0] if head and not is_bias else
                                          self.head.in_features if head else h)
                    p[rows] = (2 * rng.uniform(seeds, stream, shape) - 1) * bound
                elif is_bias:
                    n = math.prod(shape)
                    draw = bias[1] * rng.normal(seeds, stream, (n,)) if bias[1] > 0 else torch.zeros(len(seeds), n)
                    p[rows] = (bias[0] + draw).view(len(seeds), *shape)
                elif head:
                    p[rows] = inits.draw(scheme, gain, seeds, stream, shape, *shape).view(len(seeds), *shape)
                else:  # (fan_in, G·H): each gate block (fan_in, H) drawn alone with its own fans
                    p[rows] = torch.cat([inits.draw(scheme, gain, seeds, rng.stream_id(name, k), (shape[0], h),
                                                    shape[0], h) for k in range(shape[1] // h)], -1)
                if name.endswith("weight_hh") and recurrent != "default":
                    eye = torch.eye(h)
                    for k in range(shape[1] // h):
                        if recurrent == "identity":
                            p[rows, :, k * h:(k + 1) * h] = eye
                        else:
                            q = inits.draw("orthogonal", 1.0, seeds, rng.stream_id(name, k), (h, h), h, h)
                            p[rows, :, k * h:(k + 1) * h] = q.view(len(seeds), h, h)
            if self.kind == "lstm" and forget_bias is not None:
                for direction in self.layers:
                    for layer in direction:
                        layer.ih.bias[rows, :, h:2 * h] = forget_bias
                        layer.bias_hh[rows, :, h:2 * h] = 0.0

    def forward(self, x: Tensor, slots: dict[str, nn.Module], record: Record | None = None,
                states: dict[str, list] | None = None) -> Tensor:
        m = self.m
        if self.tokens:
            seq = embed_tokens(self.embed, x, self.steps, "number of steps")  # (M, B, T, H)
            b, t = seq.shape[1], seq.shape[2]
        else:
            shared = x.dim() == len(self.in_shape) + 1
            if not shared:
                x = x.flatten(0, 1)
            n = x.shape[0]
            seq = (x.transpose(1, 2) if x.dim() == 3 else x.permute(0, 2, 1, 3).reshape(n, self.steps, -1))
            b, t = (n, self.steps) if shared else (n // m, self.steps)
            seq = seq.expand(m, *seq.shape) if shared else seq.reshape(m, b, t, -1)
        h = seq.reshape(m, b * t, -1)
        for li, directions in enumerate(self.layers):
            outs = []
            for di, layer in enumerate(directions):
                name = f"layer{li + 1}" + ("" if self.dirs == 1 else (".forward", ".backward")[di])
                kept: list[Tensor] | None = [] if states is not None else None
                outs.append(layer(h, t, slots, di == 1, record, kept, name))
                if states is not None:
                    states.setdefault(f"layer{li + 1}", []).append(kept)
            y = outs[0] if self.dirs == 1 else torch.cat(outs, -1)  # (M, B, T, H·dirs)
            h = y.reshape(m, b * t, -1)
        y = h.view(m, b, t, -1)
        if self.tokens:
            return self.head(h).view(m, b, t, -1)  # (M, B, T, V)
        if self.readout == "all":
            return self.head(y.reshape(m, b, -1))
        last = y[:, :, -1, :self.hidden]
        if self.dirs == 2:
            last = torch.cat([last, y[:, :, 0, self.hidden:]], -1)  # the backward direction's final state
        return self.head(last)

    def extra_repr(self) -> str:
        return (f"replicas={self.m}, kind={self.kind}, hidden={self.hidden}, steps={self.steps}, "
                f"directions={self.dirs}, readout={self.readout}")

