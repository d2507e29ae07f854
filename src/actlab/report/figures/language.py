"""Figures of language-model studies (a next-token task, `actlab.analysis.language`): validation bits per
character per epoch with bands, the ranking with paired intervals against the reference arm beside the published
ordering, and the transformer's own probes (attention entropy per head, the residual stream's RMS per block)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from actlab.analysis import language
from actlab.analysis.stats import column_ci
from actlab.report.figures.common import colors, suptitle
from actlab.store.results import Run


def _arm_colors(run: Run, rankings: list[language.Ranking]) -> dict[str, str]:
    labels = list(dict.fromkeys(a.label for r in rankings for a in r.arms))
    return colors(labels)


def bpc_figure(run: Run) -> Figure | None:
    """Validation bits per character after each epoch, per arm: mean over seeds with a 95 % band (gated FFNs
    dashed); one panel per group (e.g. a sequence length)."""
    if not language.is_language(run) or not run.done:
        return None
    rankings = language.rankings(run)
    col = _arm_colors(run, rankings)
    fig = Figure(figsize=(6.2 * len(rankings), 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(rankings), squeeze=False)[0])
    for ax, r in zip(axes, rankings, strict=True):
        for a in r.arms:
            _, te = run.metric(a.cell, "test_loss")
            v = te / language.LN2
            mean, lo, hi, _ = column_ci(v)
            x = np.arange(1, v.shape[1] + 1)
            ls = "--" if language.gated(a.cell.model["activation"]) and r.field == "activation" else "-"
            ax.plot(x, mean, color=col[a.label], ls=ls, lw=1.6, label=a.label)
            ax.fill_between(x, lo, hi, color=col[a.label], alpha=0.15, lw=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation bits per character")
        ax.set_title(r.group or "all cells", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncols=2)
    n = max((a.estimate.n for r in rankings for a in r.arms), default=0)
    suptitle(fig, f"{run.name}: validation loss per epoch, mean and 95 % band over n = {n} seeds"
                  + (" (gated FFNs dashed)" if any(r.field == "activation" for r in rankings) else ""), fontsize=10)
    return fig


def ranking_figure(run: Run) -> Figure | None:
    """Left: each arm against the reference arm, the paired difference in validation bits per character with its
    95 % CI (below 0: better than the reference), arms in ranked order. Right: actlab's rank of each arm against
    the published one, with Kendall's τ (where the study lists published numbers)."""
    if not language.is_language(run) or not run.done:
        return None
    rankings = [r for r in language.rankings(run) if r.reference is not None]
    if not rankings:
        return None
    col = _arm_colors(run, rankings)
    with_pub = any(r.tau_n >= 3 for r in rankings)
    fig = Figure(figsize=(11 if with_pub else 6.5, 0.5 + 3.6 * len(rankings)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rankings), 2 if with_pub else 1, squeeze=False))
    for row, r in zip(axes, rankings, strict=True):
        ax = row[0]
        arms = [a for a in r.arms if a.label in r.versus]
        y = np.arange(len(arms))[::-1]
        for yy, a in zip(y, arms, strict=True):
            d = r.versus[a.label].diff
            marker = "s" if language.gated(a.cell.model["activation"]) and r.field == "activation" else "o"
            ax.errorbar([d.mean], [yy], xerr=[[d.mean - d.lo], [d.hi - d.mean]], fmt=marker, color=col[a.label],
                        capsize=3, ms=6)
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_yticks(y, [a.label for a in arms])
        ax.set_xlabel(f"arm − {r.reference}, validation bits per character (paired, 95 % CI)")
        ax.set_title((f"{r.group}: " if r.group else "") + f"against {r.reference}; n = "
                     f"{max((p.n for p in r.versus.values()), default=0)} paired seeds"
                     + (" (squares: gated)" if r.field == "activation" else ""), fontsize=9)
        ax.grid(alpha=0.3, axis="x")
        if with_pub:
            ax2 = row[1]
            both = [a for a in r.arms if a.published is not None and np.isfinite(a.estimate.mean)]
            if len(both) >= 3:
                ours = {a.label: i + 1 for i, a in enumerate(sorted(both, key=lambda a: a.estimate.mean))}
                theirs = {a.label: i + 1 for i, a in enumerate(sorted(both, key=lambda a: a.published))}
                for a in both:
                    ax2.plot([0, 1], [theirs[a.label], ours[a.label]], "-o", color=col[a.label], lw=1.5)
                    ax2.annotate(a.label, (0, theirs[a.label]), xytext=(-6, 0), textcoords="offset points",
                                 ha="right", va="center", fontsize=8)
                    ax2.annotate(a.label, (1, ours[a.label]), xytext=(6, 0), textcoords="offset points",
                                 ha="left", va="center", fontsize=8)
                ax2.set_xlim(-0.6, 1.6)
                ax2.set_ylim(len(both) + 0.5, 0.5)
                ax2.set_xticks([0, 1], ["published order", "actlab's order"])
                ax2.set_ylabel("rank (1 = lowest loss)")
                ci = f", 95 % [{r.tau_ci[0]:.2f}, {r.tau_ci[1]:.2f}]" if np.isfinite(r.tau_ci[0]) else ""
                how = "exact p" if r.tau_method == "exact" else f"p ({r.tau_method}, ties)"
                ax2.set_title(f"Kendall's τ = {r.tau:.2f} ({how} = {r.tau_p:.2g}{ci}) over {r.tau_n} arms",
                              fontsize=9)
            else:
                ax2.set_visible(False)
    suptitle(fig, f"{run.name}: ranking with paired intervals" + (" and the published ordering" if with_pub else ""),
             fontsize=10)
    return fig


def transformer_probes_figure(run: Run) -> Figure | None:
    """Per arm at the last probe epoch: each head's attention entropy (nats; log T is uniform attention over T
    keys) and the residual stream's RMS after each block, mean over seeds."""
    cells = [c for c in run.done if c.model.get("kind") == "transformer" and run.probe_epochs(c)]
    if not cells:
        return None
    fld = language.arm_field(run)
    col = colors(list(dict.fromkeys(language.arm_of(c, fld) for c in cells)))
    styles = {g: ls for g, ls in zip(dict.fromkeys(language.group_of(c, fld) for c in cells), ("-", "--", ":", "-."))}
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    drawn = False
    for c in cells:
        e = run.probe_epochs(c)[-1]
        arm, group = language.arm_of(c, fld), language.group_of(c, fld)
        layers, ent = run.probe(c, "attention_entropy", e)
        blocks, rms = run.probe(c, "residual_rms", e)
        if not layers:
            continue
        drawn = True
        label = arm + (f" ({group})" if group else "")
        ls = styles.get(group, "-")
        y = np.nanmean(ent, 0)
        first = [k for k, name in enumerate(layers) if k and name.split(".")[0] != layers[k - 1].split(".")[0]]
        y = np.insert(y.astype(float), first, np.nan)  # a gap between blocks: heads of two blocks are no series
        xs = np.insert(np.arange(1, len(layers) + 1, dtype=float), first, np.nan)
        ax1.plot(xs, y, "o", ls=ls, ms=3, color=col[arm], label=label)
        ax2.plot(range(1, len(blocks) + 1), np.nanmean(rms, 0), "o", ls=ls, ms=3, color=col[arm], label=label)
        ax1.set_xticks(range(1, len(layers) + 1), layers, rotation=60, fontsize=6)
        ax2.set_xticks(range(1, len(blocks) + 1), blocks, fontsize=8)
    if not drawn:
        return None
    ax1.set_ylabel("attention entropy (nats)")
    ax2.set_ylabel("residual stream RMS")
    ax1.grid(alpha=0.3)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, ncols=2)
    suptitle(fig, f"{run.name}: the transformer's probes at the last probe epoch, mean over seeds", fontsize=10)
    return fig
