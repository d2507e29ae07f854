"""What theory predicts for a stored run: mean-field theory's trainable depth over a σ_w² × depth grid, the
gradient ratios of gradient-flow, selu-selfnorm's layer statistics, ffn-stats' output std, and any MLP's
forward second moments at initialisation. Each function reads stored rows or cells and returns numbers;
the report's figures draw them and the findings state them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from actlab import catalog
from actlab.analysis.stats import Estimate, ratio_of_means
from actlab.catalog.theory import meanfield
from actlab.errors import ActlabError
from actlab.nn import init as inits
from actlab.nn.models import ModelConfig
from actlab.store.results import CellData, Run

COARSE = meanfield.COARSE_POINTS  # the phase diagram's many evaluations use the coarser quadrature


@dataclass
class Trainability:
    """One activation's cells of a study that grids σ_w² (model.weight_variance) and depth: the measured mean
    test accuracy per (depth, σ_w²) and theory's trainable depth 6 ξ_c per σ_w² (at the cells' σ_b²)."""

    activation: str
    params: dict[str, float]
    sb2: float
    sw2: list[float]
    depths: list[int]
    acc: np.ndarray  # (depths, sw2) mean final test accuracy over seeds (NaN where no cell finished)
    n: np.ndarray  # (depths, sw2) seeds behind each mean
    six_xi: list[float]  # 6 ξ_c per σ_w² (inf at the edge of chaos; nan where theory has no fixed point)
    chance: float
    threshold: float  # trainable: mean test accuracy above this
    chance_known: bool = True  # False: `chance` is the worst cell's accuracy (the class count was not stored)

    def agreement(self) -> tuple[int, int, int, int]:
        """(cells where measurement and prediction agree, cells judged, trained though deeper than 6 ξ_c,
        failed though within 6 ξ_c)."""
        agree = judged = over = under = 0
        for i, d in enumerate(self.depths):
            for j, limit in enumerate(self.six_xi):
                if not np.isfinite(self.acc[i, j]) or math.isnan(limit):
                    continue
                trained, predicted = self.acc[i, j] > self.threshold, d <= limit
                judged += 1
                agree += trained == predicted
                over += trained and not predicted
                under += predicted and not trained
        return agree, judged, over, under


def trainability(run: Run) -> list[Trainability]:
    """The study's σ_w² × depth grids, one per activation (none unless it grids both)."""
    done = [c for c in run.done if c.model.get("weight_variance") is not None and c.depth is not None]
    out = []
    for act_name in dict.fromkeys(c.model["activation"] for c in done):
        cells = [c for c in done if c.model["activation"] == act_name]
        sw2s = sorted({float(c.model["weight_variance"]) for c in cells})
        depths = sorted({int(c.depth) for c in cells})
        if len(sw2s) < 2 or len(depths) < 2:
            continue
        params = cells[0].model.get("activation_params") or {}
        sb2 = float(cells[0].model.get("bias_std") or 0.0) ** 2
        acc = np.full((len(depths), len(sw2s)), np.nan)
        n = np.zeros_like(acc)
        for c in cells:
            vals = np.array([v for v in run.replicas(c).values() if np.isfinite(v)])
            if vals.size:
                i, j = depths.index(int(c.depth)), sw2s.index(float(c.model["weight_variance"]))
                acc[i, j], n[i, j] = vals.mean(), vals.size
        try:
            act = catalog.get(act_name)
            six = []
            for w in sw2s:
                r = meanfield.propagation(act, w, sb2, params, points=COARSE)
                six.append(math.nan if r.trainable_depth is None else r.trainable_depth)
        except ActlabError:  # a user's activation the reader cannot import: no prediction
            continue
        classes = {int(d["n_classes"]) for d in run.datasets() if d.get("n_classes")}
        known = len(classes) == 1
        chance = 1.0 / classes.pop() if known else float(np.nanmin(acc))  # else: the worst cell
        best = float(np.nanmax(acc))
        out.append(Trainability(act_name, params, sb2, sw2s, depths, acc, n, six, chance,
                                chance + 0.25 * (best - chance), known))
    return out


# ------------------------------------------------------------------------ the simulations, predicted


def toy_gradient(rows: list[dict]) -> dict[int, tuple[float, Estimate]]:
    """Seed 003's gradient-flow toy, per depth L: (theory, measured) for the ratio of root-mean-square norms
    of the first pair's g over the second's. Each toy layer multiplies E‖g‖² by χ = σ_w² E[φ′(z)²] (z ~ N(0, 1),
    σ_w² = gain², W independent of g), so theory's ratio is (χ_a / χ_b)^(L/2); the measured one is
    √(mean‖g_a‖² / mean‖g_b‖²) with its paired bootstrap interval. (The source's table is the ratio of mean
    norms, which theory does not give: E‖g‖ falls below √E‖g‖² as depth multiplies the fluctuations.)"""
    toy = [r for r in rows if r.get("method") == "source toy"]
    pairs = list(dict.fromkeys((r["activation"], r["init"]) for r in toy))
    if len(pairs) < 2:
        return {}
    chi = []
    for act, scheme in pairs[:2]:
        k = meanfield.Kernel(catalog.get(act), {})
        chi.append(inits.scheme_gain(scheme, catalog.get(act)) ** 2 * k.slope_moment(1.0).value)
    out = {}
    for depth in sorted({r["depth"] for r in toy}):
        a, b = ({r["seed"]: r["grad_norm"] ** 2 for r in toy if r["depth"] == depth and (r["activation"], r["init"]) == pr}
                for pr in pairs[:2])
        e = ratio_of_means(a, b)
        measured = Estimate(math.sqrt(e.mean), math.sqrt(max(e.lo, 0.0)), math.sqrt(max(e.hi, 0.0)), e.n, e.method)
        out[depth] = ((chi[0] / chi[1]) ** (depth / 2), measured)
    return out


def real_gradient(rows: list[dict]) -> dict[tuple[str, str], dict[int, float]]:
    """gradient-flow's real backprop predicted: per (activation, init) and depth, log10 of theory's
    ‖∂L/∂W₁‖ / ‖∂L/∂W_L‖ (`meanfield.weight_gradient_ratio`: N(0, 1) inputs uncorrelated across the batch,
    weights of variance gain²/fan_in, a random readout; widths cancel, the row's `batch` counts). Rows stored
    before rows carried their batch get no prediction. Raises ActlabError for an activation that cannot be
    imported here."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for r in rows:
        if r.get("method") != "real" or "batch" not in r:
            continue
        key = (r["activation"], r["init"])
        if key not in out:
            out[key] = {}
        if r["depth"] not in out[key]:
            sw2 = inits.scheme_gain(r["init"], catalog.get(r["activation"])) ** 2
            ratio = meanfield.weight_gradient_ratio(r["activation"], int(r["depth"]), sw2, int(r["batch"]))
            out[key][r["depth"]] = math.log10(ratio) if ratio > 0 and math.isfinite(ratio) else math.nan
    return out


def selfnorm(act: str, scheme: str, depth: int) -> tuple[np.ndarray, np.ndarray, meanfield.SignalPropagation]:
    """selu-selfnorm predicted: the post-activation mean and variance of layers 1..depth (inputs N(0, 1), so
    q₁ = σ_w², no biases), and the variance map's fixed point at σ_w² = gain²."""
    sw2 = inits.scheme_gain(scheme, catalog.get(act)) ** 2
    k = meanfield.Kernel(catalog.get(act), {})
    qs = meanfield.q_iterates(act, sw2, depth, sw2, 0.0)
    means, variances = [], []
    for q in qs:
        if not math.isfinite(q):
            means.append(math.nan)
            variances.append(math.nan)
            continue
        s = math.sqrt(q)
        m = k.mean(lambda z: k.phi(s * z), err=False).value
        means.append(m)
        variances.append(k.second_moment(q, err=False).value - m * m)
    return np.array(means), np.array(variances), meanfield.propagation(act, sw2, 0.0)


# ------------------------------------------------------------------- any MLP study's forward statistics


def forward_prediction(run: Run, cell: CellData, q1: float) -> np.ndarray | None:
    """Theory's pre-activation second moment of hidden layers 1..L of an MLP cell at initialisation, from
    layer 1's measured q₁ (the data's own second moment needs no model): q_{l+1} = σ_w² E[φ(√q_l z)²] + σ_b²
    with each layer's σ_w² from its init scheme. None where theory does not apply: a ConvNet, normalisation,
    residual connections, a constant non-zero bias, weights with a non-zero mean, or a user's activation the
    reader cannot import."""
    m = cell.model
    if m.get("kind", "mlp") != "mlp" or m.get("norm", "none") != "none" or m.get("residual") or m.get("bias_init"):
        return None
    try:
        cfg = ModelConfig(**m)
        act, params = cfg.resolved_activation()
        scheme, gain = cfg.init_scheme()
    except (ActlabError, ValueError):
        return None
    widths = cfg.hidden_widths()
    if inits.weight_variance(scheme, gain, 1, 1) is None:
        return None
    k = meanfield.Kernel(act, params, meanfield.COARSE_POINTS)
    sb2_drawn = float(m.get("bias_std") or 0.0) ** 2
    qs = [q1]
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        layer = inits.weight_variance(scheme, gain, fan_in, fan_out)
        if layer is None:
            return None
        sw2, sb2 = layer
        q = qs[-1]
        qs.append(math.nan if not math.isfinite(q) or q > meanfield.Q_MAX else
                  sw2 * k.second_moment(q, err=False).value + sb2 + sb2_drawn)
    return np.array(qs)


def ffn_std(act: str) -> float:
    """ffn-stats predicted: the output std of φ(x W1) W2 with x ~ N(0, 1) and He-normal W1, W2 (σ_w² = 2 each,
    no biases): the pre-activation variance is q = 2, so E[out²] = 2 E[φ(√2 z)²] and the mean is 0."""
    return math.sqrt(2.0 * meanfield.Kernel(catalog.get(act), {}).second_moment(2.0).value)
