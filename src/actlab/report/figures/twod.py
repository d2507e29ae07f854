"""The report's figures for 2-D binary data (the moons protocol), from a run's stored artifacts alone.

- the dataset (train filled, test hollow), from the `dataset` artifact;
- the decision boundary per cell: the first seed's probability surface with its 0.5 contour, the other
  stored seeds' 0.5 contours thin, so the spread across seeds shows, and the mean surface's 0.5 contour
  dashed; test accuracy in the title;
- the seeds' consensus per cell: the fraction of every seed on the majority side of 0.5 at each grid point;
- the signal trace of the protocol's two far points: mean |z| and |a| per stage, mean over seeds with a CI;
- the hidden-space scatter of the test set for layers 1 and 2 (first two units, first seed), with the std
  of all hidden values (mean over seeds with its CI).
Each returns None where the run holds no such artifact (non-2-D data, diagnostics turned off).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from matplotlib.figure import Figure

from actlab.analysis.stats import column_ci, mean_ci
from actlab.report.figures import catalog as plots
from actlab.report.figures.common import CLASS_COLORS, MAX_PANELS, colors, panel_grid, suptitle
from actlab.store.results import CellData, Run


def _with(run: Run, name: str) -> list[tuple[CellData, dict[str, np.ndarray]]]:
    out = []
    for c in run.done:
        art = run.artifact(c, name)
        if art is not None:
            out.append((c, art))
    return out[:MAX_PANELS]


def _name(run: Run, c: CellData) -> str:
    """What tells a cell's panel or line from the others: its series, its depth where depths vary, and the other
    grid values (e.g. "relu, depth 2, lr=0.05")."""
    depth = f", depth {c.depth}" if len(run.depths()) > 1 else ""
    return f"{c.series}{depth}" + (f", {c.context}" if c.context else "")


def _title(run: Run, c: CellData) -> str:
    acc = mean_ci(list(run.replicas(c).values()), bounds=(0.0, 1.0))
    first = next(iter(run.replicas(c).values()), np.nan)
    where = ", ".join(p for p in (f"depth {c.depth}", c.context) if p)
    return f"{c.series} ({where})\ntest acc seed {run.seeds[0]}: {first:.3f}; mean [95 % CI] {acc}"


def stored_dataset_figure(run: Run) -> Figure | None:
    """The study's 2-D points by class, as stored with its cells (`catalog.dataset_figure` draws them)."""
    arts = _with(run, "dataset")
    if not arts:
        return None
    d = arts[0][1]
    record = SimpleNamespace(name=run.study["config"]["data"]["name"], input_shape=(2,), class_names=["0", "1"],
                             x_train=d["x_train"], y_train=d["y_train"], x_test=d["x_test"], y_test=d["y_test"])
    return plots.dataset_figure(record)


def _summary(s: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """(mean, agreement, n) of a stored decision surface; runs stored before the summaries were kept hold
    every seed's surface, from which they are computed the same way."""
    if "mean" in s:
        return s["mean"], s["agreement"], int(s["n"])
    p = s["p"]
    finite = np.isfinite(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        count = finite.sum(0)
        mean = np.where(finite, p, 0.0).sum(0) / count
        above = ((p > 0.5) & finite).sum(0) / count
    return mean, np.maximum(above, 1.0 - above), len(p)


def decision_figure(run: Run) -> Figure | None:
    """Decision boundary per cell: first seed's surface and 0.5 contour; the other stored seeds' 0.5 contours
    thin; the mean surface's 0.5 contour dashed (over every seed)."""
    arts = _with(run, "decision_surface")
    if not arts:
        return None
    data = _with(run, "dataset")
    fig, axes = panel_grid(len(arts), cols=3, w=4.2, h=3.9)
    shown = []
    for ax, (c, s) in zip(axes, arts, strict=True):
        gx, gy, p = s["gx"], s["gy"], s["p"]
        mean, _, n = _summary(s)
        shown.append((len(p), n))
        if len(p):
            ax.contourf(gx, gy, p[0], levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55, vmin=0, vmax=1)
        for r in range(1, len(p)):
            ax.contour(gx, gy, p[r], levels=[0.5], colors="0.35", linewidths=0.5, alpha=0.6)
        if len(p):
            ax.contour(gx, gy, p[0], levels=[0.5], colors="k", linewidths=1.6)
        if np.isfinite(mean).any() and np.nanmin(mean) < 0.5 < np.nanmax(mean):
            ax.contour(gx, gy, mean, levels=[0.5], colors="#7a0177", linewidths=1.4, linestyles="--")
        if data:
            d = data[0][1]
            for k, col in enumerate(CLASS_COLORS):
                te = d["x_test"][d["y_test"] == k]
                ax.scatter(te[:, 0], te[:, 1], s=9, color=col, edgecolors="k", linewidths=0.3)
        ax.set_title(_title(run, c), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    kept, n = max(shown)
    parts = ([f"black: seed {run.seeds[0]}"] if kept else []) + \
        ([f"grey: the next {kept - 1} of {n} seeds" if kept < n else "grey: the other seeds"] if kept > 1 else [])
    suptitle(fig, f"{run.name}: decision boundary "
                  f"({'; '.join([*parts, f'dashed purple: the mean over the {n} seeds outputs'])}), "
                  "test points")
    return fig


def consensus_figure(run: Run) -> Figure | None:
    """Where the seeds agree: per cell, the fraction of all its seeds on the majority side of 0.5 at each
    grid point (0.5: split evenly, 1: unanimous), with the mean surface's 0.5 contour."""
    arts = _with(run, "decision_surface")
    if not arts:
        return None
    fig, axes = panel_grid(len(arts), cols=3, w=4.2, h=3.9)
    mappable = None
    ns = []
    for ax, (c, s) in zip(axes, arts, strict=True):
        gx, gy = s["gx"], s["gy"]
        mean, agree, n = _summary(s)
        ns.append(n)
        # rasterized: in the SVG one embedded image instead of a path per grid cell (tens of MB for moons)
        mappable = ax.pcolormesh(gx, gy, agree, cmap="magma", vmin=0.5, vmax=1.0, shading="auto", rasterized=True)
        if np.isfinite(mean).any() and np.nanmin(mean) < 0.5 < np.nanmax(mean):
            ax.contour(gx, gy, mean, levels=[0.5], colors="w", linewidths=1.2, linestyles="--")
        split = float(np.nanmean(agree < 0.9)) if np.isfinite(agree).any() else float("nan")
        ax.set_title(f"{_name(run, c)}\n{split:.1%} of the grid has < 90 % agreement; n = {n} seeds", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if mappable is not None:
        fig.colorbar(mappable, ax=list(axes), shrink=0.8, label="fraction of seeds on the majority side")
    suptitle(fig, f"{run.name}: agreement of the seeds' decisions (dashed: the mean output's 0.5 contour); "
                  f"n = {min(ns)}" + (f"–{max(ns)}" if max(ns) != min(ns) else "") + " seeds per cell")
    return fig


def signal_trace_figure(run: Run) -> Figure | None:
    """Mean |z| and |a| per stage for the two far points, a line per series, mean over seeds with a 95 % band."""
    arts = _with(run, "signal_trace")
    if not arts:
        return None
    col = colors(run.series())
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for c, t in arts:
        stages = sorted((k for k in t if k[0] in "za" and k != "z_out"), key=lambda k: (int(k[1:]), k[0] == "a"))
        stages.append("z_out")
        for i, ax in enumerate(axes):
            v = np.stack([t[k][:, i] for k in stages], 1)  # (seeds, stages)
            x = np.arange(len(stages))
            mean, lo, hi, _ = column_ci(v)
            ax.plot(x, mean, marker="o", color=col[c.series], label=_name(run, c))
            if np.isfinite(lo).any():
                ax.fill_between(x, lo, hi, color=col[c.series], alpha=0.2, lw=0)
            ax.set_xticks(x, [f"|{k[0]}{k[1:]}|" if k != "z_out" else "|z out|" for k in stages])
    pts = arts[0][1]["points"]
    for i, ax in enumerate(axes):
        ax.set_title(f"class-{i} far point ({pts[i, 0]:.2f}, {pts[i, 1]:.2f})", fontsize=9)
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("mean over units")
    axes[0].legend(fontsize=7)
    n = len(arts[0][1]["z_out"])
    suptitle(fig, f"{run.name}: signal trace through the network, mean and 95 % band, n = {n} seeds")
    return fig


def hidden_figure(run: Run) -> Figure | None:
    """Test set in hidden space, layers 1 and 2 (first two units, first seed), coloured by class; std in titles."""
    arts = _with(run, "hidden_snapshot")
    if not arts:
        return None
    layers = sorted({k.split("_")[0] for k in arts[0][1] if k.endswith("_points")})
    fig, axes = panel_grid(len(arts) * len(layers), cols=2 * min(len(layers), 2), w=3.8, h=3.5)
    for i, (c, h) in enumerate(arts):
        y = h["y"]
        for j, layer in enumerate(layers):
            ax = axes[i * len(layers) + j]
            pts = h[f"{layer}_points"][0]  # (N, 2)
            for k, colr in enumerate(CLASS_COLORS):
                ax.scatter(pts[y == k, 0], pts[y == k, 1], s=9, color=colr, alpha=0.8)
            std = mean_ci(h[f"{layer}_std"])
            ax.set_title(f"{_name(run, c)}, {layer.replace('layer', 'layer ')}: std {std}", fontsize=8)
            ax.set_xlabel("unit 1")
            ax.set_ylabel("unit 2")
    suptitle(fig, f"{run.name}: test points in hidden space (seed {run.seeds[0]}); std of all hidden values, "
                 "mean [95 % CI] over seeds")
    return fig
