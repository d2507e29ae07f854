"""Figures of generative studies (`actlab.analysis.generative`): a GAN's samples over the mixture's modes and its
mode coverage over training; a VAE's negative ELBO split into its reconstruction and KL terms."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from actlab.analysis import generative
from actlab.analysis.stats import column_ci, mean_ci
from actlab.report.figures.common import colors, suptitle
from actlab.store.results import Run


def _contexts(run: Run) -> list[str]:
    return list(dict.fromkeys(c.context for c in sorted(run.done, key=lambda c: c.index)))


def gan_samples_figure(run: Run) -> Figure | None:
    """Each generator's samples after training over the mixture's modes (grey discs: 3σ, where a sample counts as
    high quality), one panel per arm (columns) and dataset (rows), for the first seed, with the cell's mean modes
    covered and high-quality share over all seeds in the title."""
    if run.generative != "gan" or not run.done:
        return None
    ctxs = _contexts(run)
    series = list(dict.fromkeys(c.series for c in sorted(run.done, key=lambda c: c.index)))
    col = colors(series)
    fig = Figure(figsize=(3.3 * len(series), 3.5 * len(ctxs)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(ctxs), len(series), squeeze=False))
    for i, ctx in enumerate(ctxs):
        for j, s in enumerate(series):
            ax = axes[i, j]
            c = next((c for c in run.done if c.context == ctx and c.series == s), None)
            art = run.artifact(c, "gan_samples") if c is not None else None
            if art is None:
                ax.set_visible(False)
                continue
            sigma = float(art["sigma"])
            for mu in art["modes"]:
                ax.add_patch(Circle(tuple(mu), 3 * sigma, color="0.75", lw=0, zorder=0))
            pts = art["samples"][0]
            ax.scatter(pts[:, 0], pts[:, 1], s=2, color=col[s], alpha=0.5, lw=0, zorder=1)
            modes = mean_ci(list(generative._alive(run, c, "modes_covered").values()))
            hq = mean_ci(list(generative._alive(run, c, "high_quality").values()))
            ax.set_title(f"{s}\n{ctx}: {modes.mean:.3g} of {len(art['modes'])} modes, {hq.mean:.0%} high quality "
                         f"(n = {modes.n})", fontsize=7)
            ax.set_xlim(-1.15, 1.15)
            ax.set_ylim(-1.15, 1.15)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=6)
    suptitle(fig, f"{run.name}: each generator's samples (first seed, {len(art['samples'][0])} points) over the modes "
                  "(grey: 3σ discs)", fontsize=10)
    return fig


def gan_coverage_figure(run: Run) -> Figure | None:
    """Modes covered (top) and the high-quality share (bottom) after every epoch, per arm: mean over seeds with a
    95 % band, one column per dataset; the number of modes dotted."""
    if run.generative != "gan" or not run.done:
        return None
    ctxs = _contexts(run)
    col = colors(list(dict.fromkeys(c.series for c in run.done)))
    fig = Figure(figsize=(5.6 * len(ctxs), 6.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(2, len(ctxs), squeeze=False))
    for j, ctx in enumerate(ctxs):
        k = 0
        for c in (c for c in run.done if c.context == ctx):
            k = generative.n_modes(c)
            for i, stat in enumerate(("modes_covered", "high_quality")):
                epochs = [e for e in run.probe_epochs(c) if e > 0]
                v = np.stack([run.probe(c, stat, e)[1][:, 0] for e in epochs], 1) if epochs else np.zeros((0, 0))
                if not v.size:
                    continue
                mean, lo, hi, _ = column_ci(v)
                axes[i, j].plot(epochs, mean, color=col[c.series], lw=1.5, label=f"{c.series} (n = {len(v)})")
                axes[i, j].fill_between(epochs, lo, hi, color=col[c.series], alpha=0.15, lw=0)
        axes[0, j].axhline(k, color="0.4", ls=":", lw=1)
        axes[0, j].set_title(ctx or "all cells", fontsize=9)
        axes[0, j].set_ylabel("modes covered")
        axes[1, j].set_ylabel("high-quality share")
        axes[1, j].set_ylim(0, 1)
        axes[1, j].set_xlabel("epoch")
        axes[0, j].legend(fontsize=6.5)
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
    suptitle(fig, f"{run.name}: mode coverage over training, mean and 95 % band over seeds", fontsize=10)
    return fig


def vae_terms_figure(run: Run) -> Figure | None:
    """The test negative ELBO of every arm split into its reconstruction term (solid) and KL term (hatched, on
    top), nats per example, mean over seeds, with the 95 % CI of the total; one panel per dataset."""
    if run.generative != "vae" or not run.done:
        return None
    ctxs = _contexts(run)
    col = colors(list(dict.fromkeys(c.series for c in run.done)))
    fig = Figure(figsize=(4.6 * len(ctxs), 4.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(ctxs), squeeze=False)[0])
    for ax, ctx in zip(axes, ctxs, strict=True):
        cells = [c for c in sorted(run.done, key=lambda c: c.index) if c.context == ctx]
        tops = []
        for x, c in enumerate(cells):
            art = run.artifact(c, "elbo_terms")
            if art is None:
                continue
            t = art["test"][np.isfinite(art["test"]).all(1)]
            rec, kl = float(t[:, 0].mean()), float(t[:, 1].mean())
            total = mean_ci(t.sum(1))
            ax.bar(x, rec, color=col[c.series], alpha=0.85)
            ax.bar(x, kl, bottom=rec, color=col[c.series], alpha=0.35, hatch="//", edgecolor="white")
            ax.errorbar(x, total.mean, yerr=[[total.mean - total.lo], [total.hi - total.mean]], color="black",
                        capsize=3, lw=1)
            tops.append((total.lo, total.hi))
        ax.set_xticks(range(len(cells)), [c.series for c in cells], fontsize=8, rotation=20)
        if tops:  # the differences are a fraction of a nat: zoom to the totals, the terms' split stays readable
            lo, hi = min(a for a, _ in tops), max(b for _, b in tops)
            span = max(hi - lo, 1e-3)
            ax.set_ylim(lo - 8 * span, hi + span)
        ax.set_ylabel("nats per test example")
        ax.set_title(ctx or "all cells", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    suptitle(fig, f"{run.name}: test negative ELBO = reconstruction (solid) + KL (hatched), mean over seeds, 95 % CI "
                  "of the total (axis zoomed to the totals)", fontsize=10)
    return fig
