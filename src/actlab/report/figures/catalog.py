"""Figures. One function per figure, each returning a matplotlib `Figure` and drawing nothing on screen.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot), so no global backend or figure
registry is touched; `save(fig, path)` writes PNG, or any format matplotlib knows by the suffix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from actlab.analysis.stats import mean_ci
from actlab.catalog import activations, palette
from actlab.catalog.activations import Activation
from actlab.catalog.properties import evaluate, properties
from actlab.catalog.theory import meanfield
from actlab.report.figures.common import CLASS_COLORS

FUNCTION_STYLE, DERIVATIVE_STYLE = "-", "--"  # every activation in its own colour: φ solid, φ′ dashed


def activation_figure(curves: Sequence[tuple[str | Activation, dict[str, Any]]], lo: float = -5.0,
                      hi: float = 5.0, points: int = 1001) -> Figure:
    """Function (solid) and derivative (dashed) of each (activation, params) on one axes, each activation in
    its palette colour (shades of it for several parameter settings of one activation)."""
    x = np.linspace(lo, hi, points)
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    labels = [activations.get(spec).label(**params) for spec, params in curves]
    col = palette.series_colors(labels)
    for (spec, params), label in zip(curves, labels, strict=True):
        y, dy = evaluate(activations.get(spec), x, **params)
        ax.plot(x, y, color=col[label], linestyle=FUNCTION_STYLE, lw=2, label=f"{label}")
        ax.plot(x, dy, color=col[label], linestyle=DERIVATIVE_STYLE, lw=1.5, label=f"{label}′")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set_xlabel("x (pre-activation)")
    ax.set_ylabel("φ(x) (solid), φ′(x) (dashed)")
    ax.set_title(f"{', '.join(labels)}: function and derivative")
    ax.legend(fontsize=8, ncols=2 if len(curves) > 2 else 1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return fig


def gated_figure(spec: str | Activation, params: dict[str, Any] | None = None, lo: float = -3.0, hi: float = 3.0,
                 points: int = 301) -> Figure:
    """A gated entry φ(a)·b: its two-input function as a heat map over (gate input a, value input b), and on
    one axes its gate φ(x) and its self-gated diagonal x·φ(x) (both inputs equal), in the entry's colour."""
    act = activations.get(spec)
    if act.gate is None:
        raise ValueError(f"{act.name} is not a gated entry")
    params = act.resolve(**(params or {}))
    x = np.linspace(lo, hi, points)
    t = torch.as_tensor(x, dtype=torch.float64)
    z = act.gated_fn(t.view(1, -1), t.view(-1, 1), **params).numpy()  # rows: b, columns: a
    fig = Figure(figsize=(10.5, 4.4), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.1, 1])
    lim = float(np.abs(z).max()) or 1.0
    im = ax.imshow(z, origin="lower", extent=(lo, hi, lo, hi), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.contour(x, x, z, levels=[0.0], colors="0.3", linewidths=0.6)
    ax.plot(x, x, color="0.2", lw=0.8, ls=":")
    ax.set_xlabel("a = xW + b_W (gate input)")
    ax.set_ylabel("b = xV + b_V (value input)")
    ax.set_title(f"{act.label(**params)}(a, b) = {act.gate.name}(a)·b (dotted: the diagonal a = b)")
    fig.colorbar(im, ax=ax, shrink=0.85)
    color = palette.series_colors([act.name])[act.name]
    y_gate, _ = evaluate(act.gate, x, **params)
    y_diag, dy_diag = evaluate(act, x, **params)
    ax2.plot(x, y_diag, color=color, lw=2, label=f"diagonal x·{act.gate.name}(x)")
    ax2.plot(x, dy_diag, color=color, lw=1.4, ls=DERIVATIVE_STYLE, label="its derivative")
    ax2.plot(x, y_gate, color="0.35", lw=1.4, label=f"gate {act.gate.name}(x)")
    ax2.axhline(0, color="0.6", lw=0.6)
    ax2.axvline(0, color="0.6", lw=0.6)
    ax2.set_xlabel("x")
    ax2.set_title("the gate and the self-gated diagonal")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    return fig


def catalog_figure(names: Sequence[str | Activation], lo: float = -5.0, hi: float = 5.0, cols: int = 5) -> Figure:
    """Small multiples: every activation's function (solid) and derivative (dashed) at its default
    parameters, each in its palette colour."""
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(2.6 * cols, 2.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True)).ravel()
    x = np.linspace(lo, hi, 801)
    col = palette.series_colors([activations.get(n).name for n in names])
    for ax, name in zip(axes, names, strict=False):
        act = activations.get(name)
        y, dy = evaluate(act, x)
        ax.plot(x, y, color=col[act.name], lw=1.6, ls=FUNCTION_STYLE)
        ax.plot(x, dy, color=col[act.name], lw=1.2, ls=DERIVATIVE_STYLE)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.axvline(0, color="0.7", lw=0.5)
        ax.set_title(act.label() + (f": x·{act.gate.name}(x), a = b" if act.gated else ""), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_ylim(max(-2.0, min(y.min(), dy.min()) - 0.2), min(4.0, max(y.max(), dy.max()) + 0.2))
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle("actlab catalog: φ (solid) and φ′ (dashed), each activation in its own colour", fontsize=11)
    return fig


def dataset_figure(ds: Any, per_class: int = 4) -> Figure:
    """What a dataset looks like: 2-D points by class (train filled, test hollow), signals, or image samples."""
    shape = ds.input_shape
    if len(shape) == 1:
        return _points_figure(ds)
    return _samples_figure(ds, per_class)


def _points_figure(ds: Any) -> Figure:
    """Scatter of the first two input dimensions (all of them for 2-D data)."""
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    for c, name in enumerate(ds.class_names):
        col = CLASS_COLORS[c % len(CLASS_COLORS)]
        tr, te = ds.x_train[ds.y_train == c], ds.x_test[ds.y_test == c]
        ax.scatter(tr[:, 0], tr[:, 1], s=14, color=col, alpha=0.8, label=f"class {name} train ({len(tr)})")
        ax.scatter(te[:, 0], te[:, 1], s=22, facecolors="none", edgecolors=col, label=f"class {name} test ({len(te)})")
    dims = "" if ds.input_shape[0] == 2 else f" (first 2 of {ds.input_shape[0]} dimensions)"
    ax.set_title(f"{ds.name}: {len(ds.x_train)} train, {len(ds.x_test)} test{dims}")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.legend(fontsize=7)
    return fig


def _samples_figure(ds: Any, per_class: int) -> Figure:
    """`per_class` training samples of each class: images in gray or RGB, 1-D signals as lines."""
    k = min(len(ds.class_names), 10)
    fig = Figure(figsize=(1.3 * per_class + 1, 1.2 * k + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(k, per_class))
    for c in range(k):
        idx = (ds.y_train == c).nonzero().flatten()[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(idx):
                ax.set_visible(False)
                continue
            x = ds.x_train[idx[j]].numpy()
            if x.ndim == 2:  # (C, L) signal
                ax.plot(x[0], color="k", lw=1)
            else:  # (C, H, W) image, shown min-max scaled
                img = (x - x.min()) / (x.max() - x.min() + 1e-8)
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray")
            if j == 0:
                ax.set_ylabel(ds.class_names[c], fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(f"{ds.name}: {per_class} training samples per class, input {tuple(ds.input_shape)}", fontsize=10)
    return fig


# ------------------------------------------------------------------ the sources' figures, from measurements


def classical_figure(rows: Sequence[dict] = ()) -> Figure:
    """Seed 003's classical-activations panel, measured: sigmoid and tanh; their derivatives with the maxima
    the catalog measures marked (0.25 and 1); and the gradient scale against depth: the best case max φ′^L,
    the "typical" E[φ′(z)]^L (z ~ N(0, 1); the source's guessed 0.2 and 0.7 are these, 0.207 and 0.606), and
    where gradient-flow rows are given, the measured mean ‖g_L‖ / ‖g_0‖ of seed 003's toy with its 95 % CI."""
    names = ("sigmoid", "tanh")
    col = palette.series_colors(names)
    z = np.linspace(-6, 6, 1201)
    fig = Figure(figsize=(14, 4.2), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    depths = np.arange(1, 51)
    for name in names:
        act = activations.get(name)
        y, dy = evaluate(act, z)
        props = properties(name)
        top = props.derivative_range.high
        ax1.plot(z, y, color=col[name], lw=2, label=name)
        ax2.plot(z, dy, color=col[name], lw=2, ls=DERIVATIVE_STYLE, label=f"{name}′")
        ax2.axhline(top, color=col[name], ls=":", lw=1, label=f"max {name}′ = {top:.3g} (measured)")
        k = meanfield.Kernel(act, {})
        typical = k.mean(lambda x, k=k: k.dphi(x)).value
        ax3.semilogy(depths, float(top) ** depths.astype(float), color=col[name], ls="--", alpha=0.6,
                     label=f"{name}: best case {top:.3g}^L")
        ax3.semilogy(depths, typical ** depths.astype(float), color=col[name], lw=2,
                     label=f"{name}: typical E[φ′(z)]^L = {typical:.3f}^L")
    width = next((r["width"] for r in rows if r.get("method") == "real" and "width" in r), None)
    toy = [r for r in rows if r.get("method") == "source toy" and r.get("activation") in names]
    if width:
        for name in names:
            by_depth: dict[int, list[float]] = {}
            for r in toy:
                if r["activation"] == name:
                    by_depth.setdefault(int(r["depth"]), []).append(r["grad_norm"] / math.sqrt(width))
            ds = sorted(by_depth)
            if ds:
                ests = [mean_ci(by_depth[d], bounds=(0.0, math.inf)) for d in ds]
                err = np.nan_to_num(np.array([[e.mean - e.lo, e.hi - e.mean] for e in ests]).T)
                ax3.errorbar(ds, [e.mean for e in ests], yerr=err, ls="none", marker="o", color=col[name],
                             mec="k", capsize=3, label=f"{name}: seed 003's toy, mean ‖g_L‖/‖g_0‖, 95 % CI (n = "
                                                       f"{ests[0].n} seeds)")
    for ax in (ax1, ax2):
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        ax.grid(alpha=0.3)
        ax.set_xlabel("z (pre-activation)")
        ax.legend(fontsize=8)
    ax1.set(ylabel="φ(z)", title="values", ylim=(-1.2, 1.2))
    ax2.set(ylabel="φ′(z)", title="derivatives, maxima marked", ylim=(-0.1, 1.2))
    ax3.axhline(1e-10, color="0.5", ls=":", lw=1)
    ax3.set(xlabel="depth (layers)", ylabel="gradient scale", title="gradient magnitude vs depth", ylim=(1e-40, 10))
    ax3.grid(alpha=0.3, which="major")
    ax3.legend(fontsize=7, loc="lower left")
    fig.suptitle("seed 003's classical activations, measured: each sigmoid layer multiplies the backward signal "
                 "by φ′ ≤ 0.25 (tanh: ≤ 1) before its weights act", fontsize=10)
    return fig


def minima_figure(names: Sequence[str] = ("swish", "gelu")) -> Figure:
    """Seed 003's non-monotonicity detail, measured: Swish and GELU on [−3, 1] with each one's interior
    minimum as the catalog finds it (the source marks approximate −1.278 and −0.77 by hand)."""
    z = np.linspace(-3, 1, 801)
    col = palette.series_colors(names)
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    for name in names:
        y, _ = evaluate(activations.get(name), z)
        ax.plot(z, y, color=col[name], lw=2, label=name)
        m = properties(name).minimum
        if m is not None:
            ax.scatter([m.x], [m.value], marker="v", s=90, color=col[name], edgecolors="k", zorder=5,
                       label=f"{name} minimum: φ({m.x:.4f}) = {m.value:.4f}")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set(xlabel="z (pre-activation)", ylabel="φ(z)", ylim=(-0.4, 0.6),
           title="non-monotonic near 0: each dips below zero once (minima measured by the catalog)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig
