"""When to use an activation: short selection guidelines for the explorer and the catalog.

Two kinds of text, kept apart:
- `NOTES`: an editorial line per catalog entry (where it is used: hidden layers, the output layer for a
  task, the architectures that adopted it), from the literature each entry's description cites;
- `cautions`: sentences *derived from the measured properties* (saturation, zero-gradient half-lines,
  zero-centredness, non-monotonicity, cost), so they hold for a user's activation too.
"""

from __future__ import annotations

from typing import Any

from actlab.catalog.properties import Properties

# Where each catalog entry is used: hidden layers, the output layer (by task), architecture types.
NOTES: dict[str, str] = {
    "sigmoid": "Output layer for binary classification (with binary cross-entropy) and gates (LSTM/GRU); avoid "
               "in deep hidden stacks, where its gradient (at most 0.25) shrinks layer after layer.",
    "tanh": "Hidden state of recurrent networks (RNN/LSTM cells) and small shallow MLPs; zero-centred, but it "
            "saturates, so deep feed-forward stacks need normalisation or Xavier init.",
    "hard_tanh": "A cheap piecewise-linear tanh for quantised or embedded networks; its gradient is exactly 0 "
                 "outside [-1, 1].",
    "softsign": "A slower-saturating tanh alternative (polynomial tails) for shallow networks; rarely used.",
    "relu": "The default for hidden layers of MLPs and CNNs (ResNets, VGG), with He (Kaiming) init; watch for "
            "dead units with large learning rates or negative biases.",
    "relu6": "Mobile CNNs (MobileNet v1/v2): ReLU capped at 6 for low-precision arithmetic.",
    "leaky_relu": "A ReLU replacement in hidden layers when dead units are a problem (GAN discriminators, deep "
                  "CNNs); a small negative slope keeps every unit trainable.",
    "prelu": "Deep CNNs (ImageNet-era ResNet variants): Leaky ReLU whose negative slope is learned per layer.",
    "elu": "Hidden layers of deep MLPs/CNNs without batch norm: negative outputs pull the mean toward 0.",
    "celu": "A continuously differentiable ELU (for any alpha); same uses as ELU.",
    "selu": "Self-normalising deep MLPs (SNNs): use with LeCun-normal init, no batch norm, and alpha-dropout.",
    "softplus": "A smooth ReLU for hidden layers, and the output for strictly positive quantities "
                "(variances, rates).",
    "swish": "Hidden layers of modern CNNs (EfficientNet, MobileNetV3 as hard-swish) and transformer FFNs "
             "(SiLU, SwiGLU in LLaMA-style models).",
    "mish": "Hidden layers of detection CNNs (YOLOv4 backbones); smooth and non-monotonic like Swish.",
    "gelu": "Transformer FFNs (BERT, GPT, ViT): the exact erf form; the default in most transformer code.",
    "gelu_tanh": "The tanh approximation of GELU used by GPT-2 and many fused kernels; within 5e-4 of the "
                 "exact form.",
    "gelu_sigmoid": "x·σ(1.702x), the cheapest GELU approximation (within 0.021): Swish with beta = 1.702.",
    "hard_sigmoid": "A piecewise-linear sigmoid for mobile networks and quantised gates (MobileNetV3 "
                    "squeeze-and-excitation).",
    "hard_swish": "MobileNetV3's hidden layers: Swish built from ReLU6, cheap on mobile hardware.",
    "identity": "The output layer for regression (with MSE); in hidden layers the network stays linear, "
                "whatever its depth.",
    "softmax": "The output layer for multiclass classification (with cross-entropy); vector-valued, never a "
               "hidden activation.",
    "relu2": "Transformer FFNs: found by search in Primer (So et al. 2021), the modded-nanogpt speedrun's FFN; "
             "zero below 0 like ReLU, so units can die (measure it: transformer-ffn).",
    "glu": "A gated transformer FFN, σ(xW)·xV (two input projections: transformer models only); Shazeer 2020 "
           "found it about level with GELU.",
    "bilinear": "A gated FFN with no nonlinearity, xW·xV: still not linear in x (a product of two projections); "
                "Shazeer 2020 found it ahead of every ungated FFN.",
    "reglu": "A gated transformer FFN, max(0, xW)·xV (transformer models only).",
    "geglu": "A gated transformer FFN, GELU(xW)·xV; best of Shazeer 2020's Table 1 (transformer models only).",
    "swiglu": "The FFN of PaLM and LLaMA, Swish(xW)·xV (transformer models only); Shazeer 2020's runner-up.",
}

OUTPUT_BY_TASK = {"binary": "sigmoid", "multiclass": "softmax", "regression": "identity"}


def cautions(p: Properties) -> list[str]:
    """Sentences derived from measured properties: what to watch for in hidden layers."""
    out = []
    if p.saturates == "both":
        out.append("Saturates on both sides (φ′ → 0): gradients vanish through deep stacks unless normalised.")
    elif p.saturates in ("negative", "positive"):
        out.append(f"Saturates on the {p.saturates} side only; the other side keeps its gradient.")
    if p.zero_gradient != "none":
        out.append(f"φ′ is exactly 0 on the {p.zero_gradient} half-line{'s' if p.zero_gradient == 'both' else ''}: "
                   "units can die; watch the dead fraction.")
    if not p.zero_centred:
        out.append(f"Not zero-centred (E[φ(z)] = {p.mean:.3g} for z ~ N(0, 1)): the next layer sees shifted inputs.")
    if not p.monotonic and p.minimum is not None:
        out.append(f"Non-monotonic: minimum {p.minimum.value:.4g} at x = {p.minimum.x:.4g}.")
    if p.cost_vs_relu is not None and p.cost_vs_relu > 2:
        out.append(f"Costs {p.cost_vs_relu:.1f}× ReLU per element (forward + backward, this machine).")
    out.append(f"Variance-preserving weight gain 1/√E[φ(z)²] = {p.variance_gain:.4g}.")
    return out


def guidance(name: str, p: Properties | None) -> dict[str, Any]:
    """{'note': editorial line or None (a user's activation), 'output_for': tasks, 'cautions': derived}."""
    return {"note": NOTES.get(name), "output_for": [t for t, a in OUTPUT_BY_TASK.items() if a == name],
            "cautions": cautions(p) if p is not None else []}


# ------------------------------------------------------------------ the sources' selection guide (seeds 003, 004)

SOURCE = "seed 003 ('Selection guidelines') and seed 004 ('Rule of Thumb')"
# (architecture, hidden layers, output layer, the page's note, the shipped study that measures the claim)
ARCHITECTURES: tuple[tuple[str, str, str, str, str], ...] = (
    ("MLP (general)", "ReLU or Leaky ReLU", "task-dependent", "start with ReLU; try Leaky if dead neurons",
     "dead-neurons-trained, moons"),
    ("Deep MLP (>10 layers)", "SELU or ELU", "task-dependent", "SELU with LeCun init; no BatchNorm needed",
     "selu-selfnorm, deep-rescue, activation-zoo"),
    ("CNN", "ReLU", "softmax (classification)", "ReLU is standard; BatchNorm handles activation drift",
     "cnn-batchnorm, cnn-depth-cpu"),
    ("ResNet", "ReLU", "softmax", "skip connections allow ReLU to work at any depth",
     "residual-depth, residual-depth-cnn"),
    ("Transformer", "GELU (preferred) or Swish", "task-dependent", "GELU is standard for NLP; Swish for vision",
     "transformer-ffn-cpu, vit-activations, attention-scores, transformer-ffn, ffn-stats, gelu-approx"),
    ("RNN/LSTM", "tanh (state), sigmoid (gates)", "task-dependent", "LSTM gates require bounded activations",
     "lstm-slots, rnn-time"),
    ("GAN generator", "ReLU or Leaky ReLU", "tanh", "tanh output for the [-1, 1] image range", "gan-modes"),
    ("GAN discriminator", "Leaky ReLU", "sigmoid or none", "Leaky ReLU prevents mode collapse", "gan-modes"),
    ("VAE encoder", "ReLU or ELU", "linear (mean/logvar)", "smooth activations help gradient flow", "vae-activations"),
)
CONVENTION = "a convention, not an empirical claim"
# Each output row is a convention: the output activation is the inverse link of the loss's likelihood (sigmoid with
# Bernoulli cross-entropy, softmax with categorical, identity with Gaussian MSE); nothing to measure, so no study.
OUTPUT_STATUS = {
    "binary classification": "convention: sigmoid is the Bernoulli likelihood's inverse link (BCE)",
    "multi-class classification": "convention: softmax is the categorical likelihood's inverse link (cross-entropy)",
    "regression": "convention: identity is the Gaussian likelihood's link (MSE)",
    "bounded regression": "convention: the output's range is the target's",
    "multi-label classification": "convention: one Bernoulli likelihood per label",
}
# (task, activation, loss, output range)
OUTPUTS: tuple[tuple[str, str, str, str], ...] = (
    ("binary classification", "sigmoid", "binary cross-entropy", "(0, 1)"),
    ("multi-class classification", "softmax", "cross-entropy", "probability simplex"),
    ("regression", "identity (linear)", "MSE or MAE", "(-∞, +∞)"),
    ("bounded regression", "sigmoid × scale", "MSE", "(0, scale)"),
    ("multi-label classification", "sigmoid (each)", "binary cross-entropy per label", "(0, 1) per label"),
)
# seed 003's decision flowchart: its questions in order; the answers are the page's own tables (the chart's
# drawing is not part of the text), and the first "yes" decides
FLOWCHART: tuple[tuple[str, str, str], ...] = (  # (question, answer, the studies that test it, or a convention)
    ("Is it an output layer?", "use the task's output activation (table above)", CONVENTION),
    ("Is it a transformer or modern NLP model?", "GELU (Swish for vision)", "transformer-ffn-cpu, vit-activations"),
    ("Is it an RNN gate?", "sigmoid for gates, tanh for the state", "lstm-slots, rnn-time"),
    ("Are you using batch normalization?", "ReLU (BatchNorm handles activation drift)", "cnn-batchnorm"),
    ("Is the network very deep (>20 layers) without skip connections?", "SELU with LeCun init, or ELU",
     "activation-zoo, selu-selfnorm, deep-rescue"),
    ("Otherwise", "ReLU: almost always a safe starting choice", "moons, activation-zoo"),
)
RULES: tuple[str, ...] = (  # seed 004's rule of thumb
    "Start with ReLU for hidden layers.",
    "If you face dead ReLU units, try Leaky ReLU.",
    "Use sigmoid for a binary classification output.",
    "Use softmax for a multi-class classification output.",
    "Avoid sigmoid and tanh in the hidden layers of deep networks.",
)
RULES_TESTED = ("moons, activation-zoo", "dead-neurons-trained", CONVENTION, CONVENTION, "activation-zoo")
# the seeds' closing remark ("activation choice rarely makes more than a few percentage points of difference"):
# tested across every stored study by actlab.analysis.guide.spread_verdict
REMARK_TESTED = "every stored classification study: actlab activations guide --runs DIR"


def selection_guide() -> dict[str, Any]:
    """The sources' selection tables, flowchart and rule of thumb, with the shipped study that measures each
    claim where there is one (the explorer and `actlab activations guide` render this)."""
    return {"source": SOURCE,
            "architectures": {"header": ["architecture", "hidden layers", "output layer", "note", "measure it"],
                              "rows": [list(r[:4]) + ["; ".join(f"actlab run {s.strip()}" for s in r[4].split(","))
                                                      if r[4] else "—"]
                                       for r in ARCHITECTURES]},
            "outputs": {"header": ["task", "activation", "loss", "output range", "tested?"],
                        "rows": [[*r, OUTPUT_STATUS[r[0]]] for r in OUTPUTS]},
            "flowchart": [{"question": q, "then": a, "tested_by": t} for q, a, t in FLOWCHART],
            "rules": list(RULES), "rules_tested_by": list(RULES_TESTED), "remark_tested_by": REMARK_TESTED}
