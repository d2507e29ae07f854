"""The classic simulations (DESIGN §5), each a function of its parameters and seeds returning rows.

Every simulation returns `{"rows": [dict, ...]}`: one row per measured quantity, seed included, so the
report can give means with confidence intervals. Weights come from the counter-based draws of
`actlab.nn.init`, so configurations that differ only in their activation share the same draw.

- gradient-flow: how much gradient reaches the first layer, vs depth. Two methods side by side: the
  original toy (independent z ~ N(0, 1) at every layer: g <- Wᵀ(g ⊙ φ'(z))) and the real thing (backprop
  through an actual network on N(0, 1) inputs). ratio = ‖∂L/∂W₁‖ / ‖∂L/∂W_L‖ (real) or ‖g₁‖/‖g_L‖ (toy).
- dead-neurons: fraction of never-active ReLU units per layer on a probe batch, at init and after
  training on moons, for bias 0, -1, +1 and a too-large weight scale (gain × 10).
- selu-selfnorm: mean and variance of the activations through 50 layers of width 1000 on N(0, 1) inputs.
- xor-speed: 2-4-1 on the four XOR points, weights N(0, 0.25) (std 0.5), biases 0, sigmoid output, the
  loss E = 0.5·Σ(t − o)² over the four points, full batch lr 0.5: epochs until E < 0.01. (Read as the
  textbook sum, this reproduces the write-up's scale: sigmoid ~1,500 epochs, ReLU ~200 when it converges;
  read as 0.5·mean, every count is 4× larger.) Each row also keeps E at about 500 epochs (`curve_epochs`,
  `loss_curve`) for the convergence figure.
- gelu-approx: max |GELU − approximation| of the tanh and sigmoid forms (actlab.catalog.theory).
- ffn-stats: a transformer FFN 768 → 3072 → 768 with nn.Linear's default init on N(0, 1) inputs: output
  mean, std and range per activation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import ConfigDict, Field, ValidationError, validate_call

from actlab import data, rng
from actlab.catalog.activations import get
from actlab.catalog.theory import gelu_approximation_error
from actlab.errors import ActlabError
from actlab.nn import init as inits
from actlab.nn.models import ModelConfig, build
from actlab.training.loop import TrainConfig, train

Depth = Annotated[int, Field(ge=1, le=1000)]
Width = Annotated[int, Field(ge=1, le=8192)]
Batch = Annotated[int, Field(ge=1, le=100_000)]
# (activation, init scheme) pairs; gains are the activation's unless the scheme says otherwise.
Pairs = tuple[tuple[str, str], ...]


def _draw(scheme: str, act: str, seeds: list[int], layer: int, shape: tuple[int, int]) -> torch.Tensor:
    """(M, fan_in, fan_out) weights: LeCun is N(0, 1/fan_in) (gain 1); other schemes use the activation's gain."""
    gain = 1.0 if scheme == "lecun_normal" else get(act).init_gain()
    return inits.draw(scheme, gain, seeds, layer, shape, shape[0], shape[1])


@validate_call(config=ConfigDict(strict=False))
def gradient_flow(seeds: list[int], depths: tuple[Depth, ...] = (5, 10, 20, 50), width: Width = 256,
                  batch: Batch = 64, pairs: Pairs = (("relu", "kaiming_normal"), ("sigmoid", "lecun_normal"))) -> dict:
    """Gradient reaching the first layer vs depth: the independent-z toy and real backprop, side by side."""
    rows = []
    for act, scheme in pairs:
        f = get(act)
        for depth in depths:
            ws = [_draw(scheme, act, seeds, layer, (width, width)) for layer in range(depth)]  # (M, w, w) each
            # Toy: start from g = 1 at the top; every layer multiplies by φ'(z) at an independent z ~ N(0, 1).
            g = torch.ones(len(seeds), width)
            norms = []
            for layer in reversed(range(depth)):
                z = rng.normal(seeds, rng.stream_id("toy-z", depth, layer), (width,))
                zz = z.clone().requires_grad_()
                (d,) = torch.autograd.grad(f(zz).sum(), zz)
                g = torch.einsum("mij,mj->mi", ws[layer], g * d)
                norms.append(g.norm(dim=1))
            toy_ratio = (norms[-1] / norms[0]).numpy()
            # Real: forward N(0, 1) inputs through the network, loss = mean of the last layer's output sum.
            x = rng.normal(seeds, rng.stream_id("gf-x", depth), (batch, width))
            params = [w.clone().requires_grad_() for w in ws]
            h = x
            for w in params:
                h = f(torch.bmm(h, w))
            loss = h.sum(dim=(1, 2)).mean() / batch
            grads = torch.autograd.grad(loss, params)
            first = grads[0].flatten(1).norm(dim=1)
            last = grads[-1].flatten(1).norm(dim=1)
            real_ratio = (first / last).numpy()
            for r, seed in enumerate(seeds):
                rows.append({"activation": act, "init": scheme, "depth": depth, "method": "toy", "seed": seed,
                             "ratio": float(toy_ratio[r])})
                rows.append({"activation": act, "init": scheme, "depth": depth, "method": "real", "seed": seed,
                             "ratio": float(real_ratio[r]), "first_grad_norm": float(first[r]),
                             "last_grad_norm": float(last[r])})
    return {"rows": rows}


@validate_call(config=ConfigDict(strict=False))
def dead_neurons(seeds: list[int], width: Width = 64, depth: Depth = 4, epochs: Annotated[int, Field(ge=0)] = 200,
                 lr: Annotated[float, Field(gt=0)] = 0.05) -> dict:
    """Dead ReLU units per layer at init and after training on moons, for four initial conditions."""
    ds = data.load("moons")
    conditions = {"bias 0": {}, "bias -1": {"bias_init": -1.0}, "bias +1": {"bias_init": 1.0},
                  "weights x10": {"init_gain": 10 * math.sqrt(2)}}
    rows = []
    for name, extra in conditions.items():
        cfg = ModelConfig(widths=[width] * depth, activation="relu", init="kaiming_normal", **extra)
        model = build(cfg, ds.input_shape, ds.task, 2, seeds)
        h = train(model, ds, TrainConfig(epochs=epochs, batch_size=64, lr=lr, probe_epochs=[0, epochs],
                                         eval_train=False, device="cpu"))
        for rec in h.probes:
            dead = rec.activation_stats["dead_fraction"]
            for r, seed in enumerate(seeds):
                for li, layer in enumerate(rec.activation_layers[:-1]):  # hidden layers only
                    rows.append({"condition": name, "epoch": rec.epoch, "layer": li + 1, "seed": seed,
                                 "dead_fraction": float(dead[r, li]),
                                 "test_acc": float(h.final_test_acc[r]) if rec.epoch else None})
    return {"rows": rows}


@validate_call(config=ConfigDict(strict=False))
def selu_selfnorm(seeds: list[int], depth: Depth = 50, width: Width = 1000, batch: Batch = 500,
                  pairs: Pairs = (("selu", "lecun_normal"), ("relu", "kaiming_normal"), ("tanh", "xavier_normal"),
                                  ("elu", "kaiming_normal"), ("gelu", "kaiming_normal"))) -> dict:
    """Mean and variance of the activations at every layer of a deep random network on N(0, 1) inputs."""
    rows = []
    for act, scheme in pairs:
        f = get(act)
        for r, seed in enumerate(seeds):
            h = rng.normal([seed], rng.stream_id("selu-x"), (batch, width))[0]
            for layer in range(depth):
                w = _draw(scheme, act, [seed], layer, (width, width))[0]
                h = f(h @ w)
                rows.append({"activation": act, "init": scheme, "layer": layer + 1, "seed": seed,
                             "mean": float(h.mean()), "variance": float(h.var(correction=0))})
    return {"rows": rows}


CURVE_POINTS = 500  # xor-speed keeps E at about this many epochs per replica, for the convergence figure


@validate_call(config=ConfigDict(strict=False))
def xor_speed(seeds: list[int], activations: tuple[str, ...] = ("sigmoid", "relu", "tanh"),
              weight_std: Annotated[float, Field(gt=0)] = 0.5, lr: Annotated[float, Field(gt=0)] = 0.5,
              epochs: Annotated[int, Field(ge=1, le=1_000_000)] = 5000,
              threshold: Annotated[float, Field(gt=0)] = 0.01) -> dict:
    """Epochs until E = 0.5·Σ(t − o)² of a 2-4-1 network on XOR falls below `threshold` (None: never)."""
    ds = data.load("xor")
    rows = []
    for act in activations:
        cfg = ModelConfig(widths=[4], activation=act, output_activation="sigmoid", init="normal",
                          init_gain=weight_std)
        model = build(cfg, ds.input_shape, ds.task, 2, seeds)
        # Our mse is mean((o - t)²) over n points; E = 0.5·Σ = (n/2)·mse, so lr on E is lr·n/2 on ours.
        n = len(ds.x_train)
        h = train(model, ds, TrainConfig(epochs=epochs, batch_size=None, lr=lr * n / 2, loss="mse",
                                         eval_train=True, device="cpu"))
        half = (n / 2) * h.train_loss
        shown = np.unique(np.r_[np.arange(0, epochs, max(1, epochs // CURVE_POINTS)), epochs - 1])  # epoch indices
        for r, seed in enumerate(seeds):
            below = np.nonzero(half[r] < threshold)[0]
            rows.append({"activation": act, "seed": seed, "epochs_to_threshold": int(below[0]) + 1 if len(below) else None,
                         "final_loss": float(half[r, -1]), "solved": bool(h.train_acc[r, -1] == 1.0),
                         "curve_epochs": (shown + 1).tolist(), "loss_curve": [float(v) if np.isfinite(v) else None for v in half[r, shown]]})  # JSON-safe
    return {"rows": rows}


@validate_call(config=ConfigDict(strict=False))
def gelu_approx(seeds: list[int], lo: float = -10.0, hi: float = 10.0) -> dict:
    """Max and mean |GELU − approximation| for the tanh and sigmoid forms (seed-free: one row each)."""
    if not lo < hi:
        raise ActlabError(f"simulation gelu-approx: lo={lo} must be smaller than hi={hi}")
    return {"rows": [r.model_dump() for r in gelu_approximation_error(lo, hi)]}


@validate_call(config=ConfigDict(strict=False))
def ffn_stats(seeds: list[int], d_model: Width = 768, d_ff: Width = 3072, batch: Batch = 512,
              activations: tuple[str, ...] = ("relu", "gelu", "swish")) -> dict:
    """Output statistics of a transformer FFN (nn.Linear default init: U(±1/sqrt(fan_in))) per activation."""
    rows = []
    for seed in seeds:
        x = rng.normal([seed], rng.stream_id("ffn-x"), (batch, d_model))[0]
        w1 = (2 * rng.uniform([seed], rng.stream_id("ffn-w1"), (d_model, d_ff))[0] - 1) / math.sqrt(d_model)
        w2 = (2 * rng.uniform([seed], rng.stream_id("ffn-w2"), (d_ff, d_model))[0] - 1) / math.sqrt(d_ff)
        for act in activations:
            hidden = get(act)(x @ w1)
            out = hidden @ w2
            rows.append({"activation": act, "seed": seed, "mean": float(out.mean()), "std": float(out.std()),
                         "min": float(out.min()), "max": float(out.max()),
                         "hidden_mean": float(hidden.mean()), "hidden_zero_fraction": float((hidden == 0).float().mean())})
    return {"rows": rows}


SIMULATIONS: dict[str, Callable[..., dict]] = {
    "gradient-flow": gradient_flow, "dead-neurons": dead_neurons, "selu-selfnorm": selu_selfnorm,
    "xor-speed": xor_speed, "gelu-approx": gelu_approx, "ffn-stats": ffn_stats,
}


def run(name: str, params: dict[str, Any], seeds: list[int]) -> dict:
    """Run simulation `name`; bad parameters become one ActlabError naming each."""
    if name not in SIMULATIONS:
        raise ActlabError(f"simulation {name!r} is unknown; allowed: {', '.join(SIMULATIONS)}")
    try:
        return SIMULATIONS[name](seeds=seeds, **params)
    except ValidationError as e:
        bad = "; ".join(f"{'.'.join(map(str, err['loc']))}={err.get('input')!r}: {err['msg']}" for err in e.errors())
        raise ActlabError(f"simulation {name}: {bad}") from None
