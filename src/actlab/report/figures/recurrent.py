"""Figures of recurrent-net studies (`actlab.analysis.recurrent`): the gradient flowing back through time per
arm, with mean-field theory's per-step gain where it gives one, and the score against the sequence length."""

from __future__ import annotations

import re

import numpy as np
from matplotlib.figure import Figure

from actlab.analysis import recurrent
from actlab.analysis.stats import column_ci, proportion_ci
from actlab.report.figures.common import colors, suptitle
from actlab.store.results import Run

_NUMERIC_CONTEXT = re.compile(r"^([A-Za-z_][\w.]*)=(-?[\d.]+(?:e-?\d+)?)$")


def _contexts(run: Run) -> list[str]:
    return list(dict.fromkeys(c.context for c in sorted(run.done, key=lambda c: c.index)))


def time_gradient_figure(run: Run) -> Figure | None:
    """‖∂ℓ/∂h_t‖ of the first layer against the step t (log scale), per arm: the geometric mean over seeds with a
    95 % band, at the first probe epoch (dashed) and the last (solid); dotted, where mean-field theory gives a
    per-step gain (a plain RNN with Gaussian weights), the decay it predicts from the last step back. One panel
    per context (a dataset, a sequence length)."""
    if not recurrent.is_recurrent(run) or not run.done:
        return None
    ctxs = _contexts(run)
    col = colors(list(dict.fromkeys(c.series for c in run.done)))
    cols = min(len(ctxs), 2)
    rows = -(-len(ctxs) // cols)
    fig = Figure(figsize=(6.2 * cols, 4.6 * rows), layout="constrained")
    grid = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    axes = grid.ravel()
    for ax in axes[len(ctxs):]:
        ax.set_visible(False)
    total = max(len(run.replicas(c)) for c in run.done)
    drawn = False
    for ax, ctx in zip(axes, ctxs, strict=False):
        for c in (c for c in run.done if c.context == ctx):
            epochs = run.probe_epochs(c)
            for k, e in enumerate(dict.fromkeys([epochs[0], epochs[-1]]) if epochs else []):
                names, v = recurrent.step_gains(run, c, e)
                if not names:
                    continue
                with np.errstate(divide="ignore", invalid="ignore"):
                    lv = np.log10(np.where(v > 0, v, np.nan))
                mean, lo, hi, _ = column_ci(lv)
                t = np.array([recurrent.step_index(n) for n in names])
                first = k == 0 and len(epochs) > 1
                n = int(np.isfinite(lv).all(axis=1).sum())  # diverged seeds have no gradient to show
                ax.plot(t, 10 ** mean, color=col[c.series], ls="--" if first else "-", lw=1.5,
                        label=f"{c.series}, epoch {e}" + (f" (n = {n})" if n < total else ""))
                ax.fill_between(t, 10 ** lo, 10 ** hi, color=col[c.series], alpha=0.12, lw=0)
                drawn = True
                gain = recurrent.predicted_gain(c, recurrent.input_power(c)) if e == 0 else None
                if gain is not None and np.isfinite(mean[-1]):
                    ax.plot(t, 10 ** mean[-1] * gain ** (t[-1] - t), color=col[c.series], ls=":", lw=1.2,
                            label=f"{c.series}: theory √χ₁ = {gain:.3f}/step")
        ax.set_yscale("log")
        ax.set_xlabel("step t (the loss reads the last)")
        ax.set_title(ctx or "all cells", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6.5, ncols=1 if len(ax.get_lines()) <= 8 else 2)
    if not drawn:
        return None
    for row in grid:
        row[0].set_ylabel("‖∂ℓ/∂h_t‖ (RMS over examples)")
    suptitle(fig, f"{run.name}: gradient through time, layer 1 (dashed: first probe epoch, solid: last), geometric "
                  f"mean and 95 % band over n = {total} seeds (fewer where seeds diverged: n in the legend)",
             fontsize=10)
    return fig


def gates_figure(run: Run) -> Figure | None:
    """Each slot of layer 1 at the last probe epoch, per arm: the saturated fraction (|φ′| < 0.01; solid bars) and
    the dead fraction (units shut on every probe example and step; hatched), mean and 95 % CI over the seeds that
    did not diverge (n under each bar group). One panel per context."""
    if not recurrent.is_recurrent(run) or not run.done:
        return None
    ctxs = _contexts(run)
    series = list(dict.fromkeys(c.series for c in run.done))
    col = colors(series)
    slot_order = ("input_gate", "forget_gate", "output_gate", "reset_gate", "update_gate", "candidate", "cell",
                  "state")
    fig = Figure(figsize=(6.2 * min(len(ctxs), 2), 4.2 * -(-len(ctxs) // 2)), layout="constrained")
    grid = np.atleast_2d(fig.subplots(-(-len(ctxs) // 2), min(len(ctxs), 2), squeeze=False))
    axes = grid.ravel()
    for ax in axes[len(ctxs):]:
        ax.set_visible(False)
    drawn = False
    for ax, ctx in zip(axes, ctxs, strict=False):
        cells = [c for c in run.done if c.context == ctx]
        slots = [s for s in slot_order if any(f"layer1.{s}" in _last(run, c, "saturated_fraction")[0] for c in cells)]
        width = 0.8 / max(len(cells), 1)
        for j, c in enumerate(cells):
            labelled = False
            names, sat = _last(run, c, "saturated_fraction")
            _, dead = _last(run, c, "dead_fraction")
            for i, s in enumerate(slots):
                if f"layer1.{s}" not in names:
                    continue
                k = names.index(f"layer1.{s}")
                for v, hatch, alpha in ((sat[:, k], None, 0.8), (dead[:, k], "////", 0.0)):
                    mean, lo, hi, _ = column_ci(v[:, None])
                    if not np.isfinite(mean[0]):
                        continue
                    x = i + (j - (len(cells) - 1) / 2) * width
                    ax.bar(x, mean[0], width * 0.9, color=col[c.series], alpha=alpha if hatch is None else 1.0,
                           fill=hatch is None, hatch=hatch, edgecolor=col[c.series],
                           label=c.series if (not labelled and hatch is None) else None)
                    labelled = labelled or hatch is None
                    ax.errorbar(x, mean[0], yerr=[[mean[0] - max(lo[0], 0)], [min(hi[0], 1) - mean[0]]],
                                color="0.2", lw=0.8, capsize=2)
                    drawn = True
        ax.set_xticks(range(len(slots)), [s.replace("_", " ") for s in slots], fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.set_title(ctx or "all cells", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=6.5)
    if not drawn:
        return None
    for row in grid:
        row[0].set_ylabel("fraction at the last probe")
    suptitle(fig, f"{run.name}: saturated (|φ′| < 0.01, solid) and dead (hatched) fractions of each slot of layer 1 "
                  "at the last probe, mean and 95 % CI over the seeds that did not diverge", fontsize=10)
    return fig


def _last(run: Run, c, stat: str) -> tuple[list[str], np.ndarray]:
    """(layer names, (seeds, layers)) of a probe statistic at the cell's last probe epoch."""
    epochs = run.probe_epochs(c)
    return run.probe(c, stat, epochs[-1]) if epochs else ([], np.zeros((0, 0)))


def score_vs_length_figure(run: Run) -> Figure | None:
    """The score against a numeric context (the adding problem's T), per arm. Regression (the adding problem):
    left, the median final test MSE with the interquartile range over seeds on a log axis (a mean would follow
    one exploding seed), guessing's 1/6 dashed; right, the share of seeds that solved it with its exact 95 %
    interval. Otherwise the mean score with its 95 % interval. None when the contexts are not one number each."""
    if not recurrent.is_recurrent(run) or not run.done:
        return None
    parsed = [_NUMERIC_CONTEXT.match(c) for c in _contexts(run)]
    if len(parsed) < 2 or not all(parsed) or len({m.group(1) for m in parsed}) != 1:
        return None
    key = parsed[0].group(1)
    series = list(dict.fromkeys(c.series for c in run.done))
    col = colors(series)
    regression = run.regression
    fig = Figure(figsize=(11.5 if regression else 6.4, 4.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 2 if regression else 1))
    x_of = lambda c: float(_NUMERIC_CONTEXT.match(c.context).group(2))  # noqa: E731 - a sort key
    for k, s in enumerate(series):
        cells = sorted((c for c in run.done if c.series == s), key=x_of)
        xs = np.array([x_of(c) for c in cells]) * (1 + 0.015 * (k - (len(series) - 1) / 2))  # side by side
        if regression:
            vals = [np.array([v for v in recurrent.score(run, c).values() if np.isfinite(v)]) for c in cells]
            med = np.array([np.median(v) if len(v) else np.nan for v in vals])
            q1 = np.array([np.percentile(v, 25) if len(v) else np.nan for v in vals])
            q3 = np.array([np.percentile(v, 75) if len(v) else np.nan for v in vals])
            axes[0].errorbar(xs, med, yerr=[med - q1, q3 - med], color=col[s], marker="o", ms=4, capsize=3, label=s)
            shares = [proportion_ci(int(sum(recurrent.solved(run, c).values())), len(recurrent.solved(run, c)))
                      for c in cells]
            p = np.array([sh.p for sh in shares])
            axes[1].errorbar(xs, p, yerr=[p - np.array([sh.lo for sh in shares]),
                                          np.array([sh.hi for sh in shares]) - p],
                             color=col[s], marker="o", ms=4, capsize=3, label=s)
        else:
            ms, los, his = [], [], []
            for c in cells:
                mean, lo, hi, _ = column_ci(np.array(list(recurrent.score(run, c).values()), float)[:, None])
                ms.append(mean[0])
                los.append(lo[0])
                his.append(hi[0])
            m_a = np.array(ms)
            axes[0].errorbar(xs, m_a, yerr=[m_a - np.array(los), np.array(his) - m_a], color=col[s], marker="o",
                             ms=4, capsize=3, label=s)
    guess = next(((c.data_provenance or {}).get("guess_mse") for c in run.done), None)
    if regression:
        if guess:
            axes[0].axhline(guess, color="0.4", ls="--", lw=1, label=f"guessing the mean ({guess:.3g})")
            axes[0].axhline(recurrent.SOLVED_SHARE * guess, color="0.6", ls=":", lw=1,
                            label=f"solved below {recurrent.SOLVED_SHARE * guess:.3g}")
        axes[0].set_yscale("log")
        axes[0].set_ylabel("final test MSE: median and interquartile range")
        axes[1].set_ylabel("share of seeds that solved it (95 % CI, exact)")
        axes[1].set_ylim(-0.03, 1.03)
        axes[1].set_xlabel(key)
        axes[1].grid(alpha=0.3)
    else:
        axes[0].set_ylabel("final test score, mean and 95 % CI")
    axes[0].set_xlabel(key)
    axes[0].grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    n = max(len(run.replicas(c)) for c in run.done)
    suptitle(fig, f"{run.name}: the final score against {key}, n = {n} seeds per arm"
                  + (" (diverged seeds are unsolved, and left out of the MSE)" if regression else ""), fontsize=10)
    return fig
