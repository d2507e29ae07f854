"""The report's figures and tables for the classic simulations, from a run's stored rows alone.

`FIGURES[simulation name]` lists the figure functions of each simulation; each takes the rows
(`Run.sim_rows()`) and returns a Figure. Means carry 95 % CIs over seeds (`stats`); quantities that span
orders of magnitude (gradient ratios) are averaged as log10, so their means are geometric means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from actlab.analysis.published import parse_key
from actlab.analysis.simulations import real_gradient, selfnorm, source_ratios, toy_gradient
from actlab.analysis.stats import Estimate, column_ci, mean_ci, time_to_event
from actlab.analysis.summary import group, log_ratio, values
from actlab.catalog import activations
from actlab.errors import ActlabError
from actlab.report.figures import catalog as plots
from actlab.report.figures.common import colors, suptitle

Rows = list[dict[str, Any]]
Published = Sequence[dict[str, Any]]  # a study's `published` entries, as stored in its configuration


def _errbar(ax, x, ests: list[Estimate], **kw) -> None:
    m = np.array([e.mean for e in ests])
    err = np.nan_to_num(np.array([[e.mean - e.lo, e.hi - e.mean] for e in ests]).T)
    ax.errorbar(x, m, yerr=err, capsize=3, **kw)


def _n(rows: Rows) -> int:
    return len({r.get("seed") for r in rows})


def published_markers(ax, points: list[tuple[float, float]], log: bool = True) -> None:
    """The source's published values as black crosses on an axes."""
    if points:
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs, np.log10(ys) if log else ys, marker="x", s=60, color="black", zorder=5, label="published")
        ax.legend(fontsize=8)


def gradient_flow_figure(rows: Rows, published: Published = ()) -> Figure:
    """Left: seed 003's table, mean‖g‖ ratio of its toy vs depth with the published values and mean-field
    theory; middle: real backprop, the geometric-mean ratio of the first to the last layer's gradient norm per
    activation (95 % CI) with theory dashed; right: measured minus theory in decades (0 is agreement)."""
    real = [r for r in rows if r.get("method") == "real"]
    try:
        real_pred = real_gradient(rows)
    except ActlabError:  # a user's activation that does not import here: no theory line
        real_pred = {}
    fig = Figure(figsize=(15.5 if real_pred else 11, 4.6), layout="constrained")
    left, right, *resid = fig.subplots(1, 3 if real_pred else 2, width_ratios=[1, 1, 0.8] if real_pred else None)
    toy = [r for r in rows if r.get("method") == "source toy"]
    pairs = list(dict.fromkeys((r["activation"], r["init"]) for r in toy))
    ratios = source_ratios(rows)
    if ratios:
        depths = sorted(ratios)
        est = [ratios[d] for d in depths]
        m = np.log10([e.mean for e in est])
        err = np.nan_to_num(np.array([[np.log10(e.mean) - np.log10(e.lo), np.log10(e.hi) - np.log10(e.mean)]
                                      for e in est]).T)
        left.errorbar(depths, m, yerr=err, capsize=3, marker="o", color="tab:blue", label="actlab, 95 % CI")
        left.set_ylabel(f"log10 ‖g {pairs[0][0]}‖ / ‖g {pairs[1][0]}‖")
        try:
            predicted = toy_gradient(rows)
        except ActlabError:  # a user's activation that does not import here: no theory line
            predicted = {}
        if predicted:
            ds = sorted(predicted)
            rms = [predicted[d][1] for d in ds]
            left.plot(ds, np.log10([predicted[d][0] for d in ds]), color="tab:red", lw=1.5, ls="--",
                      label="mean-field theory (ratio of RMS norms)")
            left.errorbar(ds, np.log10([e.mean for e in rms]), capsize=2, marker="s", mfc="none", ls="none",
                          color="tab:red", yerr=np.nan_to_num(np.array(
                              [[np.log10(e.mean) - np.log10(e.lo), np.log10(e.hi) - np.log10(e.mean)] for e in rms]).T),
                          label="actlab, ratio of RMS norms, 95 % CI (paired bootstrap)")
            left.legend(fontsize=7)
        published_markers(left, [(float(p["key"].split("=")[1]), p["value"]) for p in published
                                 if p["key"].startswith("ratio@depth=")])
    left.set_xlabel("depth (layers)")
    left.grid(alpha=0.3)
    left.set_title(f"seed 003's toy: ratio of gradient norms (n = {_n(toy)} simulations)", fontsize=9)
    col = colors([f"{a} + {i}" for a, i in dict.fromkeys((r["activation"], r["init"]) for r in real)])
    for j, ((act, init), g) in enumerate(group(real, "activation", "init").items()):
        by_depth = group(g, "depth")
        depths = [d for (d,) in by_depth]
        ests = [log_ratio(by_depth[(d,)]) for d in depths]
        _errbar(right, depths, ests, color=col[f"{act} + {init}"], marker="o", label=f"{act} + {init}")
        if p := real_pred.get((act, init)):
            ds = sorted(p)
            right.plot(ds, [p[d] for d in ds], color=col[f"{act} + {init}"], ls="--", lw=1.2,
                       label=f"{act} + {init}, mean-field theory")
            shift = (j - 0.5) * 0.6  # side by side, so overlapping intervals stay readable
            _errbar(resid[0], [d + shift for d in depths],
                    [Estimate(e.mean - p[d], e.lo - p[d], e.hi - p[d], e.n, e.method) for d, e in zip(depths, ests,
                                                                                                    strict=True)],
                    color=col[f"{act} + {init}"], marker="o", ls="none", label=f"{act} + {init}")
    if resid:
        resid[0].axhline(0, color="k", lw=0.8, ls="--")
        resid[0].set_xlabel("depth (layers)")
        resid[0].set_ylabel("log10 measured − log10 theory (decades)")
        resid[0].grid(alpha=0.3)
        resid[0].legend(fontsize=8)
        resid[0].set_title("real backprop against mean-field theory: 0 is agreement\n(geometric mean, 95 % CI; "
                           "theory is the infinite-width limit)", fontsize=9)
    right.set_xlabel("depth (layers)")
    right.set_ylabel("log10 ‖grad first layer‖ / ‖grad last layer‖")
    right.axhline(0, color="0.5", lw=0.7)
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    right.set_title(f"real backprop: geometric-mean ratio with 95 % CI; n = {_n(real)} seeds", fontsize=9)
    return fig


def dead_neurons_figure(rows: Rows, published: Published = ()) -> Figure:
    """Seed 003's dead units: never-positive fraction per bias strategy, and the ReLU-variant inactive rates."""
    panels = list(dict.fromkeys(r["panel"] for r in rows))
    fig = Figure(figsize=(5.0 * len(panels) + 0.5, 4.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    titles = {"bias": "one ReLU layer, 1,000 inputs: dead units by bias strategy",
              "variants": "z ~ N(−0.5, 1): dead (ReLU) or inactive (≤ 0) units"}
    for ax, panel in zip(axes, panels, strict=True):
        g = group([r for r in rows if r["panel"] == panel], "condition")
        conds = [c for (c,) in g]
        ests = [mean_ci(values(g[(c,)], "dead_fraction"), bounds=(0.0, 1.0)) for c in conds]
        err = np.nan_to_num(np.array([[e.mean - e.lo, e.hi - e.mean] for e in ests]).T)
        ax.bar(range(len(conds)), [100 * e.mean for e in ests], yerr=100 * err, capsize=3,
               color=[colors(conds)[c] for c in conds])
        for i, e in enumerate(ests):
            ax.text(i, 100 * e.mean + 1, f"{100 * e.mean:.1f} %", ha="center", fontsize=8)
        ax.set_xticks(range(len(conds)), conds, fontsize=8, rotation=15)
        ax.set_ylim(0, max(10.0, 100 * max(e.hi for e in ests if np.isfinite(e.hi)) * 1.2 if ests else 10.0))
        ax.set_ylabel("% of units")
        ax.set_title(titles.get(panel, panel), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    suptitle(fig, f"dead neurons, seed 003's experiment: mean and 95 % CI; n = {_n(rows)} seeds")
    return fig


def dead_neurons_trained_figure(rows: Rows, published: Published = ()) -> Figure:
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
            ests = [mean_ci(values(g.get((epoch, cond, layer), []), "dead_fraction"), bounds=(0.0, 1.0))
                    for layer in layers]
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


def selu_figure(rows: Rows, published: Published = ()) -> Figure:
    """Mean and variance of the activations through depth per activation, mean over seeds with a 95 % band."""
    g = group(rows, "activation", "init")
    col = colors([f"{a} + {i}" for a, i in g])
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for (act, init), rs in g.items():
        by_layer = group(rs, "layer")
        layers = [layer for (layer,) in by_layer]
        try:
            predicted = selfnorm(act, init, max(layers))
        except ActlabError:  # a user's activation that does not import here: no theory line
            predicted = None
        for i, (ax, key) in enumerate(zip(axes, ("mean", "variance"), strict=True)):
            ests = [mean_ci(values(by_layer[(layer,)], key)) for layer in layers]
            ax.plot(layers, [e.mean for e in ests], color=col[f"{act} + {init}"], label=f"{act} + {init}")
            ax.fill_between(layers, [e.lo for e in ests], [e.hi for e in ests], color=col[f"{act} + {init}"],
                            alpha=0.2, lw=0)
            if predicted is not None:
                ax.plot(np.arange(1, max(layers) + 1), predicted[i], color=col[f"{act} + {init}"], ls=":", lw=1.5)
    axes[0].axhline(0, color="k", lw=0.7, ls="--")
    axes[1].axhline(1, color="k", lw=0.7, ls="--")
    axes[1].set_yscale("log")
    for ax, key in zip(axes, ("mean", "variance"), strict=True):
        ax.set_xlabel("layer")
        ax.set_ylabel(f"{key} of the activations")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    axes[1].plot([], [], color="0.3", ls=":", label="mean-field theory")
    axes[1].legend(fontsize=8)
    suptitle(fig, f"self-normalisation: activation mean and variance through depth (dashed: 0 and 1), 95 % band; "
                 f"dotted: mean-field theory's prediction; n = {_n(rows)} seeds")
    return fig


def xor_figure(rows: Rows, published: Published = ()) -> Figure:
    """XOR convergence: E per epoch (mean over seeds with a 95 % band, log scale), and epochs to threshold; the
    rerun of the source's own initial weights (rows with init = "source"), where the run has it, as a diamond."""
    source = {r["activation"]: r for r in rows if r.get("init") == "source"}
    rows = [r for r in rows if r.get("init") != "source"]
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
    ax.set_ylabel("loss read by the stopping rule (geo. mean)")
    ax.grid(alpha=0.3, which="both")
    if ax.lines:
        ax.legend(fontsize=8)
    for i, ((act,), rs) in enumerate(g.items()):
        horizon = max(r.get("horizon") or 0 for r in rs)
        t = [r["epochs_to_threshold"] for r in rs]
        hit = [v for v in t if v is not None]
        jitter = (np.arange(len(t)) - (len(t) - 1) / 2) * 0.03
        bx.scatter([i + j for j, v in zip(jitter, t, strict=True) if v is not None], hit, color=col[act], s=18)
        cens = [i + j for j, v in zip(jitter, t, strict=True) if v is None]
        if cens and horizon:
            bx.scatter(cens, [horizon] * len(cens), edgecolors=col[act], marker="^", s=28, facecolors="none",
                       label="never reached (censored at the horizon)" if i == 0 or not bx.get_legend() else None)
        tte = time_to_event(t, horizon) if horizon else None
        if tte is not None and np.isfinite(tte.median):
            lo, hi = tte.median_lo, tte.median_hi if np.isfinite(tte.median_hi) else horizon
            bx.errorbar([i + 0.25], [tte.median], yerr=[[tte.median - lo], [hi - tte.median]], color="k", marker="_",
                        ms=12, capsize=3)
        bx.annotate(f"{len(hit)}/{len(rs)} reached", (i, 0), xycoords=("data", "axes fraction"), ha="center",
                    va="bottom", fontsize=8)
    pub = [(parse_key(p["key"])[1].get("activation"), p["value"]) for p in published
           if parse_key(p["key"])[0] == "epochs"]
    for a, v in pub:
        if (a,) in g:
            bx.scatter([list(g).index((a,)) - 0.25], [v], marker="x", s=60, color="black", zorder=5)
    for i, (a,) in enumerate(g):
        r = source.get(a)
        if r is not None and r["epochs_to_threshold"] is not None:
            bx.scatter([i - 0.25], [r["epochs_to_threshold"]], marker="D", s=36, facecolors="none", edgecolors="black",
                       zorder=4, label="the source's own initial weights, rerun" if not i else None)
    bx.set_xticks(range(len(g)), [a for (a,) in g])
    bx.set_ylabel("epochs until the loss < threshold")
    bx.grid(alpha=0.3, axis="y")
    if any(r["epochs_to_threshold"] is None for r in rows):
        top = max(r.get("horizon") or 0 for r in rows)
        bx.set_ylim(top=top * 1.25)  # room above the censored markers for the legend
    if bx.get_legend_handles_labels()[0]:
        bx.legend(fontsize=7, loc="upper left")
    suptitle(fig, "XOR speed: convergence (left: geometric mean over seeds, 95 % band); epochs to threshold per "
                  "seed, seeds that never reached it "
                  "censored at the horizon (▲), Kaplan–Meier median with 95 % CI (black)"
                  + (", published single-seed values (×)" if pub else "")
                  + (", the source's own initial weights rerun (◇)" if source else "") + f"; n = {_n(rows)} seeds")
    return fig


def gelu_figure(rows: Rows, published: Published = ()) -> Figure:
    """|exact GELU − approximation| over x, with the stored maximum of each marked."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    lo, hi = rows[0]["lo"], rows[0]["hi"]
    x = torch.linspace(max(lo, -6.0), min(hi, 6.0), 2401, dtype=torch.float64)
    exact = activations.get("gelu")(x)
    for r, c in zip(rows, ("tab:blue", "tab:orange"), strict=False):
        err = (exact - activations.get(r["approximation"])(x)).abs().numpy()
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


def ffn_figure(rows: Rows, published: Published = ()) -> Figure:
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


def linear_collapse_figure(rows: Rows, published: Published = ()) -> Figure:
    """Left: test accuracy against depth for identity networks (mean, 95 % CI), logistic regression's band
    and the ReLU contrast; right: each identity network's largest |logit − x W_eff − b_eff| (log scale)."""
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    g = group(rows, "model", "depth")
    col = colors(["identity", "relu", "logistic regression"])
    lr = g.get(("logistic regression", 0))
    depths = sorted(d for (m, d) in g if m == "identity")
    if lr:
        e = mean_ci(values(lr, "test_acc"), bounds=(0.0, 1.0))
        left.axhspan(e.lo if np.isfinite(e.lo) else e.mean, e.hi if np.isfinite(e.hi) else e.mean,
                     color=col["logistic regression"], alpha=0.2, lw=0)
        left.axhline(e.mean, color=col["logistic regression"], lw=1.5,
                     label=f"logistic regression (depth 0): {e.mean:.3f}")
    _errbar(left, depths, [mean_ci(values(g[("identity", d)], "test_acc"), bounds=(0.0, 1.0)) for d in depths],
            color=col["identity"], marker="o", label="identity MLP (no non-linearity)")
    for (m, d), rs in g.items():
        if m == "relu":
            e = mean_ci(values(rs, "test_acc"), bounds=(0.0, 1.0))
            _errbar(left, [d], [e], color=col["relu"], marker="s", ls="none", label=f"ReLU MLP, depth {d}")
    left.set(xlabel="depth (hidden layers)", ylabel="test accuracy", title=f"mean and 95 % CI, n = {_n(rows)} seeds")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    for d in depths:
        v = [x for x in values(g[("identity", d)], "max_abs_diff") if x is not None and np.isfinite(x)]
        right.scatter([d] * len(v), v, color=col["identity"], s=14, alpha=0.7)
    right.set_yscale("log")
    right.set(xlabel="depth (hidden layers)", ylabel="max |logit − (x W_eff + b_eff)|",
              title="each identity network vs its composed map")
    right.grid(alpha=0.3, which="both")
    suptitle(fig, "linear collapse: identity networks of every depth against logistic regression (the findings say "
                  "whether they are equivalent) and against their own composed linear map")
    return fig


def classical_panel(rows: Rows, published: Published = ()) -> Figure:
    """Seed 003's classical-activations panel, measured: sigmoid and tanh, their derivatives' maxima, and the
    gradient scale against depth (best case, typical E[φ′(z)]^L, the toy's measured decay)."""
    return plots.classical_figure(rows)


def minima_panel(rows: Rows, published: Published = ()) -> Figure:
    """Swish's and GELU's non-monotonic dip, zoomed, with the minima the catalog measures."""
    return plots.minima_figure()


FIGURES: dict[str, list[tuple[str, Callable[[Rows, Published], Figure]]]] = {
    "gradient-flow": [("gradient_flow", gradient_flow_figure), ("classical", classical_panel)],
    "dead-neurons": [("dead_neurons", dead_neurons_figure)],
    "dead-neurons-trained": [("dead_neurons_trained", dead_neurons_trained_figure)],
    "selu-selfnorm": [("selu_selfnorm", selu_figure)],
    "xor-speed": [("xor_convergence", xor_figure)],
    "gelu-approx": [("gelu_error", gelu_figure), ("nonmonotonic_minima", minima_panel)],
    "ffn-stats": [("ffn_stats", ffn_figure)],
    "linear-collapse": [("linear_collapse", linear_collapse_figure)],
}
