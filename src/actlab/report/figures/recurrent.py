"""Figures of recurrent-net studies (`actlab.analysis.recurrent`): the gradient flowing back through time per
arm, with mean-field theory's per-step gain where it gives one, and the score against the sequence length."""

from __future__ import annotations

import re

import numpy as np
from matplotlib.figure import Figure

from actlab.analysis import recurrent
from actlab.analysis.stats import column_ci
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
    fig = Figure(figsize=(min(5.4 * len(ctxs), 22), 4.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(ctxs), squeeze=False)[0])
    drawn = False
    for ax, ctx in zip(axes, ctxs, strict=True):
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
                ax.plot(t, 10 ** mean, color=col[c.series], ls="--" if first else "-", lw=1.5,
                        label=f"{c.series}, epoch {e}")
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
        ax.legend(fontsize=5.5, ncols=1 if len(ax.get_lines()) <= 8 else 2)
    if not drawn:
        return None
    axes[0].set_ylabel("‖∂ℓ/∂h_t‖ (RMS over examples)")
    n = max(len(run.replicas(c)) for c in run.done)
    suptitle(fig, f"{run.name}: gradient through time, layer 1 (dashed: first probe epoch, solid: last), geometric "
                  f"mean and 95 % band over n = {n} seeds", fontsize=10)
    return fig


def score_vs_length_figure(run: Run) -> Figure | None:
    """The score against a numeric context (the adding problem's T): per arm the mean over seeds with its 95 %
    interval; for the adding problem, the MSE of guessing the mean (1/6) dashed. None when the contexts are not
    one number each."""
    if not recurrent.is_recurrent(run) or not run.done:
        return None
    parsed = [_NUMERIC_CONTEXT.match(c) for c in _contexts(run)]
    if len(parsed) < 2 or not all(parsed) or len({m.group(1) for m in parsed}) != 1:
        return None
    key = parsed[0].group(1)
    series = list(dict.fromkeys(c.series for c in run.done))
    col = colors(series)
    regression = run.regression
    fig = Figure(figsize=(6.4, 4.3), layout="constrained")
    ax = fig.subplots()
    for s in series:
        xs, ms, los, his = [], [], [], []
        for c in sorted((c for c in run.done if c.series == s), key=lambda c: float(_NUMERIC_CONTEXT.match(
                c.context).group(2))):
            v = np.array(list(recurrent.score(run, c).values()), float)
            mean, lo, hi, _ = column_ci(v[:, None])
            xs.append(float(_NUMERIC_CONTEXT.match(c.context).group(2)))
            ms.append(mean[0])
            los.append(lo[0])
            his.append(hi[0])
        ms_a, los_a, his_a = (np.array(a) for a in (ms, los, his))
        if regression:
            los_a = np.maximum(los_a, 0)
        ax.errorbar(xs, ms_a, yerr=[ms_a - los_a, his_a - ms_a], color=col[s], marker="o", ms=4, capsize=3, label=s)
    guess = next(((c.data_provenance or {}).get("guess_mse") for c in run.done), None)
    if regression and guess:
        ax.axhline(guess, color="0.4", ls="--", lw=1, label=f"guessing the mean ({guess:.3g})")
    ax.set_xlabel(key)
    ax.set_ylabel("final test MSE" if regression else "final test score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    n = max(len(run.replicas(c)) for c in run.done)
    suptitle(fig, f"{run.name}: final test {'MSE' if regression else 'score'} against {key}, mean and 95 % CI over "
                  f"n = {n} seeds", fontsize=10)
    return fig
