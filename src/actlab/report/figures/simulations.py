"""The report's figures and tables for the classic simulations, from a run's stored rows alone.

`FIGURES[simulation name]` lists the figure functions of each simulation; each takes the rows
(`Run.sim_rows()`) and returns a Figure. Means carry 95 % CIs over seeds (`stats`); quantities that span
orders of magnitude (gradient ratios) are averaged as log10, so their means are geometric means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from actlab.catalog.activations import get
from actlab.report.figures.common import colors, suptitle
from actlab.stats import Estimate, column_ci, mean_ci
from actlab.store.results import group_rows

Rows = list[dict[str, Any]]


def group(rows: Rows, *keys: str) -> dict[tuple, Rows]:
    """Rows grouped by the values of `keys`, in order of first appearance."""
    return group_rows(rows, keys)


def values(rows: Rows, key: str) -> list[float]:
    return [np.nan if r.get(key) is None else float(r[key]) for r in rows]


def log_ratio(rows: Rows, method: str = "t") -> Estimate:
    """Mean of log10(ratio) over seeds with its CI: 10**mean is the geometric-mean ratio. A ratio of exactly
    0 (the first layer's gradient underflowed in float32) has no logarithm: it is left out, and n says so."""
    v = np.array(values(rows, "ratio"))
    with np.errstate(divide="ignore", invalid="ignore"):
        return mean_ci(np.where(v > 0, np.log10(v), np.nan), method=method)


def underflows(rows: Rows) -> int:
    """Replicas whose ratio is exactly 0: the gradient reaching the first layer underflowed (float32)."""
    return sum(1 for v in values(rows, "ratio") if v == 0.0)


def _errbar(ax, x, ests: list[Estimate], **kw) -> None:
    m = np.array([e.mean for e in ests])
    err = np.nan_to_num(np.array([[e.mean - e.lo, e.hi - e.mean] for e in ests]).T)
    ax.errorbar(x, m, yerr=err, capsize=3, **kw)


def _n(rows: Rows) -> int:
    return len({r.get("seed") for r in rows})


def gradient_flow_figure(rows: Rows) -> Figure:
    """Gradient ratio first/last layer vs depth (log scale), toy (dashed) and real (solid), per activation."""
    pairs = list(dict.fromkeys((r["activation"], r["init"]) for r in rows))
    col = colors([f"{a} + {i}" for a, i in pairs])
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    for (act, init, method), g in group(rows, "activation", "init", "method").items():
        by_depth = group(g, "depth")
        depths = [d for (d,) in by_depth]
        ests = [log_ratio(by_depth[(d,)]) for d in depths]
        _errbar(ax, depths, ests, color=col[f"{act} + {init}"], ls="-" if method == "real" else "--", marker="o",
                label=f"{act} + {init} ({method})")
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel("log10 ‖grad first layer‖ / ‖grad last layer‖")
    ax.axhline(0, color="0.5", lw=0.7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"gradient flow: geometric-mean ratio with 95 % CI (solid: real backprop, dashed: "
                 f"independent-z toy); n = {_n(rows)} seeds", fontsize=9)
    return fig


def dead_neurons_figure(rows: Rows) -> Figure:
    """Dead fraction per hidden layer and condition, at init and after training: grouped bars with CIs."""
    epochs = sorted({r["epoch"] for r in rows})
    conds = list(dict.fromkeys(r["condition"] for r in rows))
    layers = sorted({r["layer"] for r in rows})
    col = colors(conds)
    fig = Figure(figsize=(5.2 * len(epochs) + 0.5, 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(epochs), sharey=True))
    width = 0.8 / len(conds)
    g = group(rows, "epoch", "condition", "layer")
    for ax, epoch in zip(axes, epochs, strict=True):
        for k, cond in enumerate(conds):
            ests = [mean_ci(values(g.get((epoch, cond, layer), []), "dead_fraction")) for layer in layers]
            x = np.array(layers) + (k - (len(conds) - 1) / 2) * width
            err = np.nan_to_num(np.array([[e.mean - e.lo, e.hi - e.mean] for e in ests]).T)
            ax.bar(x, [e.mean for e in ests], width, yerr=err, capsize=2, color=col[cond], label=cond)
        ax.set_xticks(layers)
        ax.set_xlabel("hidden layer")
        ax.set_title("at initialisation" if epoch == 0 else f"after {epoch} epochs", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("dead fraction (never active on the probe batch)")
    axes[0].legend(fontsize=8)
    suptitle(fig, f"dead ReLU units per layer, mean and 95 % CI; n = {_n(rows)} seeds")
    return fig


def selu_figure(rows: Rows) -> Figure:
    """Mean and variance of the activations through depth per activation, mean over seeds with a 95 % band."""
    g = group(rows, "activation", "init")
    col = colors([f"{a} + {i}" for a, i in g])
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for (act, init), rs in g.items():
        by_layer = group(rs, "layer")
        layers = [layer for (layer,) in by_layer]
        for ax, key in zip(axes, ("mean", "variance"), strict=True):
            ests = [mean_ci(values(by_layer[(layer,)], key)) for layer in layers]
            ax.plot(layers, [e.mean for e in ests], color=col[f"{act} + {init}"], label=f"{act} + {init}")
            ax.fill_between(layers, [e.lo for e in ests], [e.hi for e in ests], color=col[f"{act} + {init}"],
                            alpha=0.2, lw=0)
    axes[0].axhline(0, color="k", lw=0.7, ls="--")
    axes[1].axhline(1, color="k", lw=0.7, ls="--")
    axes[1].set_yscale("log")
    for ax, key in zip(axes, ("mean", "variance"), strict=True):
        ax.set_xlabel("layer")
        ax.set_ylabel(f"{key} of the activations")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    suptitle(fig, f"self-normalisation: activation mean and variance through depth (dashed: 0 and 1), 95 % band; "
                 f"n = {_n(rows)} seeds")
    return fig


def xor_figure(rows: Rows) -> Figure:
    """XOR convergence: E per epoch (mean over seeds with a 95 % band, log scale), and epochs to threshold."""
    g = group(rows, "activation")
    col = colors([a for (a,) in g])
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    for (act,), rs in g.items():
        if rs[0].get("loss_curve"):
            x = np.array(rs[0]["curve_epochs"])
            v = np.array([[np.nan if e is None else e for e in r["loss_curve"]] for r in rs], dtype=float)
            mean, lo, hi, _ = column_ci(np.log10(np.clip(v, 1e-12, None)))
            ax.plot(x, 10 ** mean, color=col[act], label=act)
            ax.fill_between(x, 10 ** lo, 10 ** hi, color=col[act], alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("E = ½·Σ(t − o)² (geometric mean over seeds)")
    ax.grid(alpha=0.3, which="both")
    if ax.lines:
        ax.legend(fontsize=8)
    for i, ((act,), rs) in enumerate(g.items()):
        hit = [r["epochs_to_threshold"] for r in rs if r["epochs_to_threshold"] is not None]
        jitter = (np.arange(len(hit)) - (len(hit) - 1) / 2) * 0.03
        bx.scatter(i + jitter, hit, color=col[act], s=18)
        if hit:
            est = mean_ci(hit)
            _errbar(bx, [i + 0.25], [est], color="k", marker="_", ms=12)
        bx.annotate(f"{len(hit)}/{len(rs)} reached", (i, 0), xycoords=("data", "axes fraction"), ha="center",
                    va="bottom", fontsize=8)
    bx.set_xticks(range(len(g)), [a for (a,) in g])
    bx.set_ylabel("epochs until E < threshold")
    bx.grid(alpha=0.3, axis="y")
    suptitle(fig, f"XOR speed: convergence (left) and epochs to threshold per seed with mean and 95 % CI (right); "
                 f"n = {_n(rows)} seeds")
    return fig


def gelu_figure(rows: Rows) -> Figure:
    """|exact GELU − approximation| over x, with the stored maximum of each marked."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    lo, hi = rows[0]["lo"], rows[0]["hi"]
    x = torch.linspace(max(lo, -6.0), min(hi, 6.0), 2401, dtype=torch.float64)
    exact = get("gelu")(x)
    for r, c in zip(rows, ("tab:blue", "tab:orange"), strict=False):
        err = (exact - get(r["approximation"])(x)).abs().numpy()
        ax.plot(x.numpy(), err, color=c, label=f"{r['approximation']}: {r['formula']}")
        ax.scatter([r["at_x"], -r["at_x"]], [r["max_abs_error"]] * 2, color=c, zorder=3)
        ax.annotate(f"max {r['max_abs_error']:.3e} at ±{r['at_x']:.4f}", (r["at_x"], r["max_abs_error"]),
                    textcoords="offset points", xytext=(6, 6), fontsize=8, color=c)
    ax.set_yscale("log")
    ax.set_ylim(1e-9, None)
    ax.set_xlabel("x")
    ax.set_ylabel("|GELU(x) − approximation(x)|")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower center")
    ax.set_title(f"GELU approximations vs the exact erf form (float64); maxima over [{lo:g}, {hi:g}]", fontsize=9)
    return fig


def ffn_figure(rows: Rows) -> Figure:
    """FFN output mean, std, min and max per activation: bars with 95 % CIs over seeds."""
    g = group(rows, "activation")
    acts = [a for (a,) in g]
    col = colors(acts)
    keys = ("mean", "std", "min", "max", "hidden_zero_fraction")
    fig = Figure(figsize=(3.0 * len(keys), 3.6), layout="constrained")
    axes = fig.subplots(1, len(keys))
    for ax, key in zip(axes, keys, strict=True):
        ests = [mean_ci(values(g[(a,)], key)) for a in acts]
        err = np.nan_to_num(np.array([[e.mean - e.lo, e.hi - e.mean] for e in ests]).T)
        ax.bar(range(len(acts)), [e.mean for e in ests], yerr=err, capsize=3, color=[col[a] for a in acts])
        ax.set_xticks(range(len(acts)), acts)
        ax.set_title(key.replace("_", " "), fontsize=9)
        ax.axhline(0, color="0.4", lw=0.6)
        ax.grid(alpha=0.3, axis="y")
    suptitle(fig, f"transformer FFN output statistics per activation, mean and 95 % CI; n = {_n(rows)} seeds",
                 fontsize=10)
    return fig


FIGURES: dict[str, list[tuple[str, Callable[[Rows], Figure]]]] = {
    "gradient-flow": [("gradient_flow", gradient_flow_figure)],
    "dead-neurons": [("dead_neurons", dead_neurons_figure)],
    "selu-selfnorm": [("selu_selfnorm", selu_figure)],
    "xor-speed": [("xor_convergence", xor_figure)],
    "gelu-approx": [("gelu_error", gelu_figure)],
    "ffn-stats": [("ffn_stats", ffn_figure)],
}


def gradient_flow_table(rows: Rows) -> tuple[list[str], list[list[str]]]:
    """The ratio table: depth rows; a column per (activation + init, method): geometric-mean ratio [95 % CI]."""
    cols = list(dict.fromkeys((r["activation"], r["init"], r["method"]) for r in rows))
    g = group(rows, "depth", "activation", "init", "method")
    body = []
    for depth in sorted({r["depth"] for r in rows}):
        line = [str(depth)]
        for a, i, m in cols:
            rs = g.get((depth, a, i, m), [])
            e, zero = log_ratio(rs), underflows(rs)
            cell = "—" if e.n == 0 else f"{10 ** e.mean:.3g}" + (
                f" [{10 ** e.lo:.3g}, {10 ** e.hi:.3g}]" if np.isfinite(e.lo) else "") + f" (n = {e.n})"
            line.append(cell + (f"; 0 (underflow) in {zero} of {len(rs)}" if zero else ""))
        body.append(line)
    return ["depth", *(f"{a} + {i} ({m})" for a, i, m in cols)], body
