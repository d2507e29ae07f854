"""What every report figure shares: the series colours, wrapped titles, panel grids, and saving to a file."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FuncFormatter,
    LogFormatter,
    LogFormatterSciNotation,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

from actlab.catalog import palette

CLASS_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple")  # data points by class, every figure

MAX_PANELS = 20  # a figure shows at most this many panels; the caption says how many more there were


def colors(series: Sequence[str]) -> dict[str, str]:
    """One colour per series from the palette registry (`actlab.catalog.palette`): each activation its own
    colour in every figure of every report, shades of it for several series of one activation."""
    return palette.series_colors(series)


def suptitle(fig: Figure, text: str, fontsize: float = 10) -> None:
    """A suptitle wrapped to the figure's width."""
    width = max(40, int(fig.get_figwidth() * 118 / fontsize))
    fig.suptitle(textwrap.fill(text, width), fontsize=fontsize)


def panel_grid(n: int, cols: int = 4, w: float = 3.6, h: float = 2.9) -> tuple[Figure, list]:
    """A figure of `n` panels, `cols` per row, each w × h inches; spare axes hidden."""
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig = Figure(figsize=(w * cols + 0.8, h * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


INTEGER_AXES = ("depth", "layer", "hidden layer", "epoch")  # axes labelled so count whole things


def _plain(v: float, _pos: object = None) -> str:
    """A tick value as a short plain number: 0.2, 3, 1e+03 only where plain is unreadable."""
    return f"{v:.3g}"


def log_ticks(axis, lo: float, hi: float) -> None:
    """Readable ticks on a log axis spanning [lo, hi]: powers of ten written 10⁻⁴ when it spans a decade or
    more (no labels on the minor ticks), otherwise plain numbers at 1-2-5 (or every digit on a narrow span),
    never "2.5×10⁰" or a lone "0"."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi <= lo:
        return
    decades = np.log10(hi) - np.log10(lo)
    if decades >= 1:
        axis.set_major_locator(LogLocator(base=10, numticks=12))
        axis.set_major_formatter(LogFormatterSciNotation(base=10))
    else:
        subs = (1.0, 2.0, 5.0) if decades >= 0.6 else tuple(float(k) for k in range(1, 10))
        axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
        axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(NullFormatter())


def finish(fig: Figure) -> Figure:
    """The house style applied before a figure is written: an axis that counts layers, depths or epochs
    gets whole-number ticks only (no "2.5 layers"); a log axis reads 10⁻⁴ (or plain numbers on a span
    under a decade), unless its figure chose its own formatter."""
    for ax in fig.axes:
        for axis, label, lim in ((ax.xaxis, ax.get_xlabel(), ax.get_xlim), (ax.yaxis, ax.get_ylabel(), ax.get_ylim)):
            if label.lower().startswith(INTEGER_AXES) and axis.get_scale() == "linear":
                axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
            elif axis.get_scale() == "log" and isinstance(axis.get_major_formatter(), LogFormatter):
                lo, hi = sorted(lim())
                log_ticks(axis, lo, hi)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write `fig` to `path` (format from the suffix), creating its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    finish(fig).savefig(path, dpi=120)
    return path
