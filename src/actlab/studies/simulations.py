"""The classic simulations (DESIGN §5), each a function of its parameters and seeds returning rows.

Every simulation returns `{"rows": [dict, ...]}`: one row per measured quantity, seed included, so the
report can give means with confidence intervals. Weights come from the counter-based draws of
`actlab.nn.init`, so configurations that differ only in their activation share the same draw. Seed 003's
simulations follow its code (the tests port it as the reference); each docstring says how.

- gradient-flow: seed 003's toy (one simulation per seed, its loop's layer count) and real backprop, in
  float64 so no norm underflows.
- dead-neurons: seed 003's dead-unit experiment as written, and its ReLU / Leaky ReLU / ELU panel.
- dead-neurons-trained: actlab's trained variant (moons, per layer, at init and after training).
- selu-selfnorm: mean and variance of the activations through 50 layers of width 1000 on N(0, 1) inputs.
- xor-speed: seed 003's 2-4-1 XOR network: update on 0.5·Σ, stop on its printed 0.5·mean < 0.01; censored.
  Rows also keep the loss at about 500 epochs (`curve_epochs`, `loss_curve`) for the convergence figure.
- gelu-approx: max |GELU − approximation| of the tanh and sigmoid forms (actlab.catalog.theory.gelu).
- ffn-stats: seed 003's transformer FFN (4,096 rows, He-normal weights, GELU's tanh form): output statistics.
- linear-collapse: identity MLPs of depth 1..8 against logistic regression, and the composed weight matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field, ValidationError, validate_call

from actlab import catalog, data, rng
from actlab.catalog.theory.gelu import gelu_approximation_error
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
    """(M, fan_in, fan_out) weights drawn with `inits.scheme_gain`."""
    return inits.draw(scheme, inits.scheme_gain(scheme, catalog.get(act)), seeds, layer, shape, shape[0], shape[1])


SEED_CHUNK = 10  # gradient-flow draws the weights of this many seeds at a time (bounded memory)


@validate_call(config=ConfigDict(strict=False))
def gradient_flow(seeds: list[int], depths: tuple[Depth, ...] = (5, 10, 20, 50), width: Width = 256,
                  batch: Batch = 64, pairs: Pairs = (("relu", "kaiming_normal"), ("sigmoid", "lecun_normal"))) -> dict:
    """Gradient reaching the first layer vs depth, two ways, in float64 so no norm underflows.

    - "source toy" (seed 003's `gradient_flow_comparison`, one simulation per seed): g starts as ones; each
      of `depth` layers draws z ~ N(0, 1), shared by every activation, and a fresh weight matrix per
      activation (independent draws), and sets g <- Wᵀ(g ⊙ φ'(z)). Row: ‖g‖ after the last layer (`grad_norm`). The
      source's table is mean‖g_ReLU‖ / mean‖g_sigmoid‖ over its 100 simulations.
    - "real": backprop through an actual network on N(0, 1) inputs, its output read by a fixed random vector
      r ~ N(0, I) per seed (as an output layer would; mean of h_L·r over the batch is the loss); ratio =
      ‖∂L/∂W₁‖ / ‖∂L/∂W_L‖, the norms taken in float64 of the float32 gradients (a plain sum of the outputs
      would correlate the readout with W_L and add a term mean-field theory ignores); `first_all_zero` says whether
      every entry of ∂L/∂W₁ is
      exactly 0 (the only case in which the gradient vanished entirely).
    """
    rows = []
    for lo in range(0, len(seeds), SEED_CHUNK):
        chunk = seeds[lo: lo + SEED_CHUNK]
        for depth in depths:
            rows += _gradient_flow_chunk(chunk, depth, width, batch, pairs)
    order = {(r["activation"], r["depth"], r["method"]): i for i, r in enumerate(rows)}
    return {"rows": sorted(rows, key=lambda r: (order[(r["activation"], r["depth"], r["method"])], r["seed"]))}


def _gradient_flow_chunk(seeds: list[int], depth: int, width: int, batch: int, pairs: Pairs) -> list[dict]:
    rows = []
    zs = [rng.normal(seeds, rng.stream_id("toy-z", depth, layer), (width,)).double() for layer in range(depth)]
    for act, scheme in pairs:
        f = catalog.get(act)
        scale = inits.scheme_gain(scheme, f) / math.sqrt(width)
        g = torch.ones(len(seeds), width, dtype=torch.float64)
        for layer in range(depth):  # the source's loop: layer 1 to depth, each with its own z, and its own W per
            zz = zs[layer].clone().requires_grad_()  # activation (independent draws, as np.random.randn gives)
            (d,) = torch.autograd.grad(f(zz).sum(), zz)
            w = rng.normal(seeds, rng.stream_id("toy-w", act, depth, layer), (width, width)).double() * scale
            g = torch.einsum("mij,mj->mi", w, g * d)  # Wᵀg in the source's layout is W g in this one
        toy = g.norm(dim=1).numpy()
        ws = [_draw(scheme, act, seeds, layer, (width, width)) for layer in range(depth)]  # (M, w, w) float32
        x = rng.normal(seeds, rng.stream_id("gf-x", depth), (batch, width))
        readout = rng.normal(seeds, rng.stream_id("gf-readout", depth), (width,))  # (M, w), shared by the pairs
        params = [w.clone().requires_grad_() for w in ws]
        h = x
        for w in params:
            h = f(torch.bmm(h, w))
        loss = torch.einsum("mbi,mi->", h, readout) / batch  # each replica's loss is its own term of the sum
        grads = torch.autograd.grad(loss, params)
        first = grads[0].double().flatten(1).norm(dim=1)
        last = grads[-1].double().flatten(1).norm(dim=1)
        zero = (grads[0].flatten(1) == 0).all(dim=1)
        for r, seed in enumerate(seeds):
            rows.append({"activation": act, "init": scheme, "depth": depth, "method": "source toy", "seed": seed,
                         "grad_norm": float(toy[r])})
            rows.append({"activation": act, "init": scheme, "depth": depth, "method": "real", "seed": seed,
                         "ratio": float(first[r] / last[r]), "first_grad_norm": float(first[r]),
                         "last_grad_norm": float(last[r]), "first_all_zero": bool(zero[r]), "batch": batch,
                         "width": width})
    return rows


@validate_call(config=ConfigDict(strict=False))
def dead_neurons(seeds: list[int], n_units: Width = 1000, n_inputs: Width = 10, n_samples: Batch = 1000,
                 variant_units: Width = 500, variant_shift: float = -0.5) -> dict:
    """Seed 003's `dead_neuron_simulation` as its code runs it, and its ReLU-variant panel.

    Bias panel: 1,000 inputs x ~ N(0, I₁₀), one layer of `n_units` ReLU units with weights N(0, 2/10), and the
    bias of each strategy (0, −1, +1; "poor_init" also bias 0); a unit is dead when it is never positive.
    The source draws hidden weights per strategy (×0.1, or ×1.0 for "poor_init") but never uses them, so
    "poor_init" is "zero_bias" exactly (the report says so). Variant panel
    (`visualize_relu_variants`): z ~ N(−0.5, 1), 1000 × 500; ReLU units are dead when every output is 0,
    Leaky ReLU (α = 0.1) and ELU units "inactive" when every output is ≤ 0.
    """
    strategies = {"zero_bias": 0.0, "negative_bias": -1.0, "positive_bias": 1.0, "poor_init": 0.0}
    variants = {"relu": ("relu", {}), "leaky_relu(alpha=0.1)": ("leaky_relu", {"alpha": 0.1}), "elu": ("elu", {})}
    rows = []
    for seed in seeds:
        x = rng.normal([seed], rng.stream_id("dead-x"), (n_samples, n_inputs))[0].double()
        w = rng.normal([seed], rng.stream_id("dead-w"), (n_units, n_inputs))[0].double() * math.sqrt(2 / n_inputs)
        pre = x @ w.T  # (samples, units), as the source's inputs @ input_weights.T
        for name, bias in strategies.items():
            dead = (torch.relu(pre + bias) == 0).all(dim=0)
            rows.append({"panel": "bias", "condition": name, "seed": seed, "dead_fraction": float(dead.double().mean()),
                         "dead_units": int(dead.sum())})
        z = rng.normal([seed], rng.stream_id("dead-variants"), (n_samples, variant_units))[0].double() + variant_shift
        for label, (act, params) in variants.items():
            a = catalog.get(act)(z, **params)
            dead = (a == 0).all(dim=0) if act == "relu" else (a <= 0).all(dim=0)
            rows.append({"panel": "variants", "condition": label, "seed": seed,
                         "dead_fraction": float(dead.double().mean()), "dead_units": int(dead.sum())})
    return {"rows": rows}


@validate_call(config=ConfigDict(strict=False))
def dead_neurons_trained(seeds: list[int], width: Width = 64, depth: Depth = 4,
                         epochs: Annotated[int, Field(ge=0)] = 200,
                 lr: Annotated[float, Field(gt=0)] = 0.05) -> dict:
    """actlab's trained variant: dead ReLU units per layer of a width × depth MLP at init and after training on
    moons, for bias 0, −1, +1 and a weight scale ×10. (The ×10 scale makes SGD at lr 0.05 diverge on every seed:
    its fraction after training cannot be measured, and the report says so; at init it is.)"""
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
        f = catalog.get(act)
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
              threshold: Annotated[float, Field(gt=0)] = 0.01,
              criterion: Literal["source", "textbook"] = "source", source_init: bool = False) -> dict:
    """Epochs until the loss of a 2-4-1 network on XOR falls below `threshold` (None: never, censored).

    Seed 003's `train_simple_network`: weights randn·0.5, biases 0, sigmoid output, full batch; the update
    is lr times the gradient of 0.5·Σ(o − t)² over the four points (its dz2 is not divided by 4), which is
    lr·n/2 on actlab's per-replica mean squared error. It stops when its printed loss, 0.5·mean(o − t)²,
    falls below 0.01 (`criterion="source"`); `criterion="textbook"` reads the threshold on E = 0.5·Σ, four
    times stricter. `source_init=True` gives every replica the source's own initial weights (np.random.seed(42),
    W1 = randn(4, 2)·0.5, W2 = randn(1, 4)·0.5, for every activation), which reproduces its printout.
    """
    ds = data.load("xor")
    n = len(ds.x_train)
    seeds = seeds[:1] if source_init else seeds  # the source's weights are one run, whatever the seeds
    scale = 0.5 if criterion == "source" else 0.5 * n  # the read loss, per unit of actlab's mean squared error
    rows = []
    for act in activations:
        cfg = ModelConfig(widths=[4], activation=act, output_activation="sigmoid", init="normal",
                          init_gain=weight_std)
        model = build(cfg, ds.input_shape, ds.task, 2, seeds)
        if source_init:
            _source_xor_weights(model)
        h = train(model, ds, TrainConfig(epochs=epochs, batch_size=None, lr=lr * n / 2, loss="mse",
                                         eval_train=True, device="cpu"))
        read = scale * h.train_loss
        shown = np.unique(np.r_[np.arange(0, epochs, max(1, epochs // CURVE_POINTS)), epochs - 1])  # epoch indices
        for r, seed in enumerate(seeds):
            below = np.nonzero(read[r] < threshold)[0]
            rows.append({"activation": act, "init": "source" if source_init else "seeds", "seed": seed,
                         "epochs_to_threshold": int(below[0]) + 1 if len(below) else None,
                         "horizon": epochs, "final_loss": float(read[r, -1]), "solved": bool(h.train_acc[r, -1] == 1.0),
                         "curve_epochs": (shown + 1).tolist(),
                         "loss_curve": [float(v) if np.isfinite(v) else None for v in read[r, shown]]})  # JSON-safe
    return {"rows": rows}


def _source_xor_weights(model: torch.nn.Module) -> None:
    """Seed 003's initial weights (np.random.seed(42); W1 = randn(4, 2)·0.5, W2 = randn(1, 4)·0.5) in every
    replica; actlab's PopLinear weights are (M, in, out), the transposes of the source's (out, in)."""
    gen = np.random.RandomState(42)
    w1, w2 = gen.randn(4, 2) * 0.5, gen.randn(1, 4) * 0.5
    with torch.no_grad():
        model.hidden[0].weight[:] = torch.tensor(w1.T, dtype=torch.float32)
        model.head.weight[:] = torch.tensor(w2.T, dtype=torch.float32)
        model.hidden[0].bias.zero_()
        model.head.bias.zero_()


@validate_call(config=ConfigDict(strict=False))
def gelu_approx(seeds: list[int], lo: float = -10.0, hi: float = 10.0) -> dict:
    """Max and mean |GELU − approximation| for the tanh and sigmoid forms (seed-free: one row each)."""
    if not lo < hi:
        raise ActlabError(f"simulation gelu-approx: lo={lo} must be smaller than hi={hi}")
    return {"rows": [r.model_dump() for r in gelu_approximation_error(lo, hi)]}


@validate_call(config=ConfigDict(strict=False))
def ffn_stats(seeds: list[int], d_model: Width = 768, d_ff: Width = 3072, batch: Batch = 32 * 128,
              activations: tuple[str, ...] = ("relu", "gelu_tanh", "swish"), source_init: bool = False) -> dict:
    """Output statistics of a transformer FFN per activation, seed 003's `transformer_activation_comparison`:
    32 × 128 = 4,096 rows of N(0, 1) inputs, W1 (d_ff × d_model) and W2 (d_model × d_ff) He-normal,
    N(0, 2/fan_in), no biases, GELU in its tanh form. `source_init=True` draws x, W1 and W2 exactly as the
    source does (np.random.seed(42), float32), the same for every seed, which reproduces its printout."""
    rows = []
    for seed in seeds[:1] if source_init else seeds:  # the source's draws are one run, whatever the seeds
        if source_init:
            gen = np.random.RandomState(42)
            x = torch.from_numpy(gen.randn(batch, d_model).astype(np.float32))
            w1 = torch.from_numpy(gen.randn(d_ff, d_model).astype(np.float32) * np.float32(math.sqrt(2 / d_model))).T
            w2 = torch.from_numpy(gen.randn(d_model, d_ff).astype(np.float32) * np.float32(math.sqrt(2 / d_ff))).T
        else:
            x = rng.normal([seed], rng.stream_id("ffn-x"), (batch, d_model))[0]
            w1 = rng.normal([seed], rng.stream_id("ffn-w1"), (d_model, d_ff))[0] * math.sqrt(2 / d_model)
            w2 = rng.normal([seed], rng.stream_id("ffn-w2"), (d_ff, d_model))[0] * math.sqrt(2 / d_ff)
        for act in activations:
            hidden = catalog.get(act)(x @ w1)
            out = hidden @ w2
            rows.append({"activation": act, "seed": seed, "mean": float(out.mean()),
                         "std": float(out.std(correction=0)),
                         "min": float(out.min()), "max": float(out.max()),
                         "hidden_mean": float(hidden.mean()),
                         "hidden_zero_fraction": float((hidden == 0).float().mean())})
    return {"rows": rows}


@validate_call(config=ConfigDict(strict=False))
def linear_collapse(seeds: list[int], depths: tuple[Annotated[int, Field(ge=1, le=32)], ...] = (1, 2, 4, 8),
                    width: Width = 16, epochs: Annotated[int, Field(ge=1, le=10_000)] = 300,
                    lr: Annotated[float, Field(gt=0)] = 0.01, dataset: str = "moons") -> dict:
    """Seed 003's opening, measured: without a non-linearity any depth is one linear map. Per seed, MLPs with
    the identity activation at each depth (LeCun init, Adam, BCE, batch 64), logistic regression (depth 0, the
    same training) and a ReLU MLP of depth 2 as the contrast, on the same data and the same seeds. Rows: the
    test accuracy, and for the identity networks the largest |logit − (x W_eff + b_eff)| over the test set,
    W_eff = W₁ W₂ … W_out and b_eff composed the same way in float64 from the trained weights: the network is
    the single linear map, to float32 rounding."""
    ds = data.load(dataset)
    if ds.task != "binary" or len(ds.input_shape) != 1:
        raise ActlabError(f"linear-collapse needs a binary task on vector inputs; {dataset!r} is {ds.task} "
                          f"with inputs {tuple(ds.input_shape)}")
    tc = TrainConfig(epochs=epochs, batch_size=64, optimizer="adam", lr=lr, eval_train=False, device="cpu",
                     probe_epochs=[])
    rows = []
    x = ds.x_test.flatten(1).double()
    runs = [("logistic regression", 0, "identity")] + [("identity", d, "identity") for d in depths] + \
           [("relu", 2, "relu")]
    for model_name, depth, act in runs:
        cfg = ModelConfig(widths=[width] * depth, activation=act,
                          init="lecun_normal" if act == "identity" else "kaiming_normal")
        model = build(cfg, ds.input_shape, ds.task, ds.n_classes, seeds)
        h = train(model, ds, tc)
        diffs = [math.nan] * len(seeds)
        if act == "identity":
            with torch.no_grad():
                logits = model(ds.x_test)[..., 0].double()  # (M, N)
                w = torch.eye(x.shape[1], dtype=torch.float64).expand(len(seeds), -1, -1)
                b = torch.zeros(len(seeds), 1, x.shape[1], dtype=torch.float64)
                for lin in [*model.hidden, model.head]:
                    lw, lb = lin.weight.double(), lin.bias.double()
                    b = torch.bmm(b, lw) + lb
                    w = torch.bmm(w, lw)
                composed = (torch.einsum("ni,mio->mno", x, w) + b)[..., 0]
                diffs = (logits - composed).abs().amax(dim=1).tolist()
        for r, seed in enumerate(seeds):
            rows.append({"model": model_name, "depth": depth, "seed": seed, "test_acc": float(h.final_test_acc[r]),
                         "max_abs_diff": None if math.isnan(diffs[r]) else float(diffs[r])})
    return {"rows": rows}


SIMULATIONS: dict[str, Callable[..., dict]] = {
    "gradient-flow": gradient_flow, "dead-neurons": dead_neurons, "dead-neurons-trained": dead_neurons_trained,
    "selu-selfnorm": selu_selfnorm,
    "xor-speed": xor_speed, "gelu-approx": gelu_approx, "ffn-stats": ffn_stats, "linear-collapse": linear_collapse,
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
