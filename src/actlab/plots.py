"""Figures. One function per figure, each returning a matplotlib `Figure` and drawing nothing on screen.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot), so no global backend or figure
registry is touched; `save(fig, path)` writes PNG, or any format matplotlib knows by the suffix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from actlab.activations import Activation, get
from actlab.properties import evaluate

FUNCTION_COLOR = "tab:blue"  # the function is drawn in blue, its derivative in red, as in the original visualiser
DERIVATIVE_COLOR = "tab:red"
LINESTYLES = ("-", "--", ":", "-.")


def activation_figure(curves: Sequence[tuple[str | Activation, dict[str, Any]]], lo: float = -5.0,
                      hi: float = 5.0, points: int = 1001) -> Figure:
    """Function (blue) and derivative (red) of each (activation, params) on one axes; overlays differ by line style."""
    x = np.linspace(lo, hi, points)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for i, (spec, params) in enumerate(curves):
        act = get(spec)
        y, dy = evaluate(act, x, **params)
        style = LINESTYLES[i % len(LINESTYLES)]
        label = act.label(**params)
        ax.plot(x, y, color=FUNCTION_COLOR, linestyle=style, lw=2, label=f"{label}")
        ax.plot(x, dy, color=DERIVATIVE_COLOR, linestyle=style, lw=1.5, label=f"{label}′")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set_xlabel("x (pre-activation)")
    ax.set_ylabel("φ(x) (blue), φ′(x) (red)")
    names = ", ".join(get(s).label(**p) for s, p in curves)
    ax.set_title(f"{names}: function and derivative")
    ax.legend(fontsize=8, ncols=2 if len(curves) > 2 else 1)
    ax.grid(alpha=0.3)
    return fig


def catalog_figure(names: Sequence[str | Activation], lo: float = -5.0, hi: float = 5.0, cols: int = 5) -> Figure:
    """Small multiples: every activation's function (blue) and derivative (red) at its default parameters."""
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(2.6 * cols, 2.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True)).ravel()
    x = np.linspace(lo, hi, 801)
    for ax, name in zip(axes, names, strict=False):
        act = get(name)
        y, dy = evaluate(act, x)
        ax.plot(x, y, color=FUNCTION_COLOR, lw=1.6)
        ax.plot(x, dy, color=DERIVATIVE_COLOR, lw=1.2)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.axvline(0, color="0.7", lw=0.5)
        ax.set_title(act.label(), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_ylim(max(-2.0, min(y.min(), dy.min()) - 0.2), min(4.0, max(y.max(), dy.max()) + 0.2))
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle("actlab catalog: φ (blue) and φ′ (red)", fontsize=11)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write `fig` to `path` (format from the suffix), creating its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
