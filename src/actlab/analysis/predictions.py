"""What theory predicts for a stored run: mean-field theory's trainable depth over a σ_w² × depth grid, the
gradient ratios of gradient-flow, selu-selfnorm's layer statistics, ffn-stats' output std, and any MLP's
forward second moments at initialisation. Each function reads stored rows or cells and returns numbers;
the report's figures draw them and the findings state them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from actlab.catalog import activations
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
            act = activations.get(act_name)
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
