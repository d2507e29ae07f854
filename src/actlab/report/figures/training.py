"""The report's figures for training studies, drawn from a stored run (`actlab.store.results.Run`) alone.

One function per figure; each returns a matplotlib `Figure` (no pyplot), or None where the study has
nothing to show (no depth sweep, no probes, no 2-D artifacts). Curves are means over seeds with a 95 %
band (Student t, `stats.column_ci`); error bars are 95 % CIs (`stats.mean_ci`); every title states n.
A study's series (its activations) keep one colour across every figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from actlab.analysis import language
from actlab.analysis.stats import column_ci, mean_ci
from actlab.catalog import palette
from actlab.nn.models import ModelConfig
from actlab.report.figures import catalog as plots
from actlab.report.figures.common import MAX_PANELS, colors, panel_grid, suptitle
from actlab.store.results import RECURRENT_KINDS, CellData, Run

HIDDEN_STATS = ("dead_fraction", "saturated_fraction")


def _band(ax, x: np.ndarray, values: np.ndarray, color, label: str | None, ls: str = "-", alpha: float = 0.2) -> None:
    mean, lo, hi, _ = column_ci(values)
    ax.plot(x, mean, color=color, ls=ls, lw=1.6, label=label)
    if np.isfinite(lo).any():
        ax.fill_between(x, lo, hi, color=color, alpha=alpha, lw=0)


def _panel_title(cell: CellData, with_series: bool = False) -> str:
    parts = [p for p in ((cell.series if with_series else ""), f"depth {cell.depth}", cell.context) if p]
    return ", ".join(parts)


def _panels(run: Run) -> list[tuple[str, list[CellData]]]:
    """Done cells grouped by (depth, context): one panel each, its cells one line per series."""
    groups: dict[str, list[CellData]] = {}
    for c in run.done:
        groups.setdefault(_panel_title(c), []).append(c)
    return list(groups.items())


def _n(run: Run, cells: Sequence[CellData]) -> str:
    ns = sorted({len(run.replicas(c)) for c in cells})
    return "n = " + "/".join(map(str, ns)) + " seeds"


def activations_figure(run: Run) -> Figure | None:
    """Function (solid) and derivative (dashed) of the study's activations (a GAN's: its discriminators' and its
    outputs'); small multiples past four of them."""
    specs: dict[str, tuple[Any, dict]] = {}
    for c in run.cells:
        if c.model.get("kind") == "gan":  # what a GAN study varies: the discriminator's activation and the output
            d = c.model.get("discriminator_activation")
            for name, params in ((d or "leaky_relu", c.model.get("discriminator_activation_params") or
                                  ({} if d else {"alpha": 0.2})), (c.model.get("output_activation") or "identity", {})):
                label = name + "".join(f"({', '.join(f'{k}={v:g}' for k, v in sorted(params.items()))})"
                                       for _ in [0] if params)
                specs.setdefault(label, (name, params))
            continue
        specs.setdefault(c.series, (c.model["activation"], c.model.get("activation_params") or {}))
        if c.model.get("transform", "none") != "none":  # DKS/TAT: the transformed shape beside the original
            act, params = ModelConfig(**c.model).resolved_activation()
            specs.setdefault(act.name, (act, params))
    if not specs:
        return None
    if len(specs) <= 4:
        return plots.activation_figure(list(specs.values()))
    return plots.catalog_figure([name for name, _ in specs.values()])


def loss_figure(run: Run) -> Figure | None:
    """Per panel (depth, context): training loss (solid) and test loss (dotted) per epoch, mean with a 95 % band.
    A language-model run draws its validation bits per character instead (actlab.report.figures.language); a GAN's
    losses say little of its samples: its mode coverage is drawn instead (actlab.report.figures.generative)."""
    panels = _panels(run)
    if not panels or language.is_language(run) or run.generative == "gan":
        return None
    col = colors(run.series())
    fig, axes = panel_grid(min(len(panels), MAX_PANELS))
    positive = True
    for ax, (title, cells) in zip(axes, panels, strict=False):
        for c in cells:
            train_name = "train_loss" if np.isfinite(run.metric(c, "train_loss")[1]).any() else "batch_loss"
            _, tr = run.metric(c, train_name)
            _, te = run.metric(c, "test_loss")
            x = np.arange(1, tr.shape[1] + 1)
            _band(ax, x, tr, col[c.series], c.series)
            _band(ax, x, te, col[c.series], None, ls=":", alpha=0.1)
            positive &= bool(np.nanmin(np.r_[tr.ravel(), te.ravel(), np.inf]) > 0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes:
        if positive:
            ax.set_yscale("log")
    what = "negative ELBO" if run.generative == "vae" else "loss"
    axes[0].set_ylabel("−ELBO (nats per example)" if run.generative == "vae" else "loss")
    axes[0].legend(fontsize=7)
    suptitle(fig, f"{run.name}: training {what} (solid) and test {what} (dotted), mean and 95 % band; "
                  f"{_n(run, run.done)}", fontsize=10)
    return fig


def accuracy_depth_figure(run: Run) -> Figure | None:
    """Final test accuracy vs depth, one line per series, 95 % CI error bars; one panel per context."""
    if len(run.depths()) < 2 or not run.done:
        return None
    col = colors(run.series())
    contexts = run.contexts()[:MAX_PANELS]
    fig, axes = panel_grid(len(contexts), cols=3, w=4.5, h=3.4)
    for ax, ctx in zip(axes, contexts, strict=True):
        for s in run.series():
            cells = sorted((c for c in run.done if c.series == s and c.context == ctx), key=lambda c: c.depth)
            if not cells:
                continue
            est = [mean_ci(list(run.replicas(c).values()), bounds=(0.0, 1.0)) for c in cells]
            d = [c.depth for c in cells]
            m = np.array([e.mean for e in est])
            err = np.array([[e.mean - e.lo, e.hi - e.mean] for e in est]).T
            ax.errorbar(d, m, yerr=np.nan_to_num(err), color=col[s], marker="o", capsize=3, label=s)
        ax.set_xticks(run.depths())
        ax.set_xlabel("depth (hidden layers, or blocks after the stem)")
        ax.set_ylabel("final test accuracy")
        ax.set_title(ctx or run.name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    suptitle(fig, f"{run.name}: test accuracy vs depth, mean and 95 % CI; {_n(run, run.done)}")
    return fig


def _probe_panels(run: Run) -> list[tuple[str, list[CellData]]]:
    """Probed cells grouped by (series, context): one panel each, one line per depth."""
    groups: dict[str, list[CellData]] = {}
    for c in run.done:
        if run.probe_epochs(c):
            groups.setdefault(", ".join(p for p in (c.series, c.context) if p), []).append(c)
    return list(groups.items())


def _depth_colors(run: Run, title: str) -> dict[int, str]:
    """Depths as shades of the panel's activation colour, dark (shallow) to light (deep); a panel that names
    no catalog activation uses its series colour's shades too."""
    base = colors([title.split(",")[0]])[title.split(",")[0]]
    return dict(zip(run.depths(), palette.shades(base, len(run.depths())), strict=True))


def _epoch_styles(epochs: list[int]) -> dict[int, tuple[str, float]]:
    """First probe epoch dashed and faint, the last solid; the ones between dotted."""
    return {e: (("--", 0.55) if i == 0 and len(epochs) > 1 else ("-", 1.0) if i == len(epochs) - 1 else (":", 0.8))
            for i, e in enumerate(epochs)}


def gradient_layers_figure(run: Run) -> Figure | None:
    """Per-layer weight-gradient norm vs layer index (log scale), a line per depth, per probe epoch."""
    panels = _probe_panels(run)
    if not panels:
        return None
    fig, axes = panel_grid(min(len(panels), MAX_PANELS), cols=4)
    drawn = False
    for ax, (title, cells) in zip(axes, panels, strict=False):
        dcol = _depth_colors(run, title)
        for c in sorted(cells, key=lambda c: c.depth):
            epochs = run.probe_epochs(c)
            for e, (ls, alpha) in _epoch_styles(epochs).items():
                layers, v = run.probe(c, "grad_norm", e)
                if not layers:
                    continue
                drawn = True
                x = np.arange(1, len(layers) + 1)
                _band(ax, x, v, dcol[c.depth], f"depth {c.depth}, epoch {e}", ls=ls, alpha=0.12 * alpha)
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = first; the last is the output)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        if ax.get_lines():
            ax.legend(fontsize=6)
    if not drawn:  # no weight gradients probed (a GAN's probes are its activations and its samples)
        return None
    axes[0].set_ylabel("‖∂L/∂W‖ per layer")
    suptitle(fig, f"{run.name}: per-layer gradient norm at the probe epochs (dashed: first, solid: last), "
                 f"mean and 95 % band; {_n(run, run.done)}")
    return fig


def dead_saturated_figure(run: Run) -> Figure | None:
    """Dead and saturated fractions per hidden layer at each probe epoch: a row per statistic (panels wrap after
    five, each one's two statistics stacked)."""
    panels = _probe_panels(run)[:MAX_PANELS // 2]
    if not panels or any(c.model.get("kind") in RECURRENT_KINDS for c in run.done):  # recurrent: gates_figure
        return None
    cols = min(len(panels), 5)
    blocks = -(-len(panels) // cols)
    fig = Figure(figsize=(3.6 * cols + 0.8, 2.9 * 2 * blocks), layout="constrained")
    grid = np.atleast_2d(fig.subplots(2 * blocks, cols, squeeze=False))
    for k in range(len(panels), blocks * cols):  # unused places of the last block
        grid[2 * (k // cols), k % cols].set_visible(False)
        grid[2 * (k // cols) + 1, k % cols].set_visible(False)
    for j, (title, cells) in enumerate(panels):
        dcol = _depth_colors(run, title)
        top = 2 * (j // cols)
        for i, stat in enumerate(HIDDEN_STATS):
            ax = grid[top + i, j % cols]
            for c in sorted(cells, key=lambda c: c.depth):
                for e, (ls, alpha) in _epoch_styles(run.probe_epochs(c)).items():
                    layers, v = run.probe(c, stat, e)
                    hidden = [k for k, name in enumerate(layers) if name != "output"]
                    if not hidden:
                        continue
                    _band(ax, np.arange(1, len(hidden) + 1), v[:, hidden], dcol[c.depth],
                          f"depth {c.depth}, epoch {e}", ls=ls, alpha=0.12 * alpha)
            ax.set_ylim(-0.03, 1.03)
            ax.grid(alpha=0.3)
            ax.set_title(f"{title}: {stat.replace('_', ' ')}", fontsize=8)
            ax.xaxis.get_major_locator().set_params(integer=True)
            if i == 1:
                ax.set_xlabel("hidden layer (a transformer's: its blocks' FFN)"
                              if cells[0].model.get("kind") == "transformer" else "hidden layer")
        grid[top, j % cols].legend(fontsize=6)
    for b in range(blocks):
        grid[2 * b, 0].set_ylabel("dead (φ′ = 0 on all probes)")
        grid[2 * b + 1, 0].set_ylabel("saturated (|φ′| < 0.01)")
    suptitle(fig, f"{run.name}: dead and saturated units per layer (dashed: first probe epoch, solid: last), mean "
                 f"and 95 % band over seeds; {_n(run, run.done)}")
    return fig


def grad_mean_figure(run: Run) -> Figure | None:
    """Mean |grad| over all parameters per batch, averaged per epoch (the cnn-depth protocol), when recorded."""
    recorded = [c for c in run.done if np.isfinite(run.metric(c, "grad_mean")[1]).any()]
    if not recorded:
        return None
    col = colors(run.series())
    contexts = list(dict.fromkeys(c.context for c in recorded))[:MAX_PANELS]
    dstyle = dict(zip(run.depths(), ("-", "--", ":", "-.") * 8, strict=False))
    fig, axes = panel_grid(len(contexts), cols=3, w=4.5, h=3.4)
    for ax, ctx in zip(axes, contexts, strict=True):
        for c in (c for c in recorded if c.context == ctx):
            _, v = run.metric(c, "grad_mean")
            _band(ax, np.arange(1, v.shape[1] + 1), v, col[c.series], f"{c.series}, depth {c.depth}",
                  ls=dstyle[c.depth], alpha=0.1)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean |∂L/∂θ| per batch")
        ax.set_title(ctx or run.name, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, ncols=2)
    suptitle(fig, f"{run.name}: gradient mean per epoch, mean and 95 % band; {_n(run, recorded)}")
    return fig
