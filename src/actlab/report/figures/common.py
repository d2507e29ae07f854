"""What every report figure shares: the series colours, wrapped titles, panel grids, and saving to a file."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

MAX_PANELS = 20  # a figure shows at most this many panels; the caption says how many more there were


def colors(series: Sequence[str]) -> dict[str, tuple]:
    """One colour per series, stable across a report's figures."""
    cmap = colormaps["tab10" if len(series) <= 10 else "tab20"]
    return {s: cmap(i % cmap.N) for i, s in enumerate(series)}


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


def save(fig: Figure, path: str | Path) -> Path:
    """Write `fig` to `path` (format from the suffix), creating its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
