"""Mean-field theory figures (`actlab theory`, the report): the variance and correlation maps of one
activation at one (σ_w², σ_b²), χ₁ against σ_w², and the (σ_w², σ_b²) phase diagram with the critical line
and a ξ_c heat map."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from actlab.analysis.predictions import COARSE, forward_prediction, trainability
from actlab.analysis.stats import mean_ci
from actlab.catalog import activations, palette
from actlab.catalog.activations import Activation
from actlab.catalog.theory import meanfield
from actlab.report.figures.common import MAX_PANELS, panel_grid, suptitle
from actlab.store.results import CellData, Run, depth_of


def _label(act: Activation, params: dict[str, float]) -> str:
    return act.label(**params)


def maps_figure(activation: str | Activation, sw2: float, sb2: float = 0.0, params: dict[str, float] | None = None,
                depth: int = 30) -> Figure:
    """Four panels: V(q) against q with its fixed point; C(c) against c with c*; and the iterates q_l and c_l
    of `depth` layers from q₁ = 1 (and from c₁ = 0.5, 0.9), which any MLP study's forward statistics follow."""
    act = activations.get(activation)
    params = act.resolve(**(params or {}))
    r = meanfield.propagation(act, sw2, sb2, params)
    k = meanfield.Kernel(act, params)
    fig = Figure(figsize=(12.5, 3.4), layout="constrained")
    ax_q, ax_c, ax_ql, ax_cl = fig.subplots(1, 4)
    top = max(3.0, 2.0 * (r.q_star or 1.0))
    qs = np.linspace(0.0, top, 121)
    ax_q.plot(qs, [k.variance(float(q), sw2, sb2) for q in qs], color="C0", label="V(q)")
    ax_q.plot(qs, qs, color="0.5", ls=":", lw=1, label="q")
    if r.q_star is not None and r.q_star <= top:
        ax_q.plot([r.q_star], [r.q_star], "o", color="C3", label=f"q* = {r.q_star:.4g}")
    ax_q.set(xlabel="q (pre-activation variance, layer l)", ylabel="layer l + 1", title="variance map")
    ax_q.legend(fontsize=7, loc="upper left")
    if r.q_star is not None and r.q_star > 0:
        cs = np.linspace(-1.0, 1.0, 81)
        cmap = [k.correlation(r.q_star, float(c), sw2, sb2) for c in cs]
        ax_c.plot(cs, cmap, color="C0", label="C(c)")
        ax_c.plot(cs, cs, color="0.5", ls=":", lw=1, label="c")
        ax_c.plot([r.c_star], [r.c_star], "o", color="C3", label=f"c* = {r.c_star:.4g}")
        ax_c.legend(fontsize=7, loc="upper left")
    else:
        ax_c.text(0.5, 0.5, "no correlation map:\n" + ("q* = 0" if r.q_star == 0 else "q grows without bound"),
                  ha="center", va="center", transform=ax_c.transAxes, fontsize=9)
    ax_c.set(xlabel="c (correlation of two inputs, layer l)", ylabel="layer l + 1", title="correlation map at q*")
    layers = np.arange(1, depth + 1)
    ax_ql.plot(layers, meanfield.q_iterates(act, 1.0, depth, sw2, sb2, params), color="C0", marker=".", ms=3)
    ax_ql.set(xlabel="layer", ylabel="q_l", title="variance by layer (q₁ = 1)")
    for c0, color in ((0.5, "C1"), (0.9, "C2")):
        ax_cl.plot(layers, meanfield.c_iterates(act, 1.0, c0, depth, sw2, sb2, params), color=color, marker=".", ms=3,
                   label=f"c₁ = {c0}")
    ax_cl.set(xlabel="layer", ylabel="c_l", title="correlation by layer (q₁ = 1)", ylim=(-1.05, 1.05))
    ax_cl.legend(fontsize=7)
    for ax in (ax_ql, ax_cl):
        ax.xaxis.get_major_locator().set_params(integer=True)
    xi = "∞" if r.xi_c is not None and math.isinf(r.xi_c) else f"{r.xi_c:.3g}" if r.xi_c is not None else "—"
    chi = f"{r.chi1:.4g}" if r.chi1 is not None else "—"
    suptitle(fig, f"{_label(act, params)}, σ_w² = {sw2:g}, σ_b² = {sb2:g}: χ₁ = {chi} ({r.phase or 'no fixed point'}), "
                  f"ξ_c = {xi} layers (mean-field theory, infinitely wide network)")
    return fig


def chi_figure(activation: str | Activation, sb2: float = 0.0, params: dict[str, float] | None = None,
               sw2_range: tuple[float, float] = (0.25, 4.0), points: int = 60) -> Figure:
    """χ₁ against σ_w² at this σ_b², the edge of chaos (χ₁ = 1) marked."""
    act = activations.get(activation)
    params = act.resolve(**(params or {}))
    grid = np.linspace(*sw2_range, points)
    chis = [np.nan if (c := meanfield.chi1(act, float(sw2), sb2, params, points=COARSE)) is None else c for sw2 in grid]
    fig = Figure(figsize=(5.2, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.plot(grid, chis, color="C0")
    ax.axhline(1.0, color="0.5", ls=":", lw=1)
    crit = meanfield.critical_sw2(act, sb2, params)
    if crit is not None and sw2_range[0] <= crit <= sw2_range[1]:
        ax.axvline(crit, color="C3", ls="--", lw=1, label=f"edge of chaos σ_w² = {crit:.4g}")
        ax.legend(fontsize=8)
    ax.set(xlabel="σ_w²", ylabel="χ₁", title=f"{_label(act, params)}: χ₁ at σ_b² = {sb2:g}")
    return fig


def phase_figure(activation: str | Activation, params: dict[str, float] | None = None,
                 sw2_range: tuple[float, float] = (0.5, 4.0), sb2_range: tuple[float, float] = (0.0, 0.3),
                 shape: tuple[int, int] = (28, 11), mark: Sequence[tuple[float, float]] = ()) -> Figure:
    """The (σ_w², σ_b²) plane: ξ_c as a heat map (log colour), the critical line χ₁ = 1, ordered below it
    and chaotic above, and any `mark`ed points."""
    act = activations.get(activation)
    params = act.resolve(**(params or {}))
    sw2s = np.linspace(*sw2_range, shape[0])
    sb2s = np.linspace(*sb2_range, shape[1])
    xi = np.full((len(sb2s), len(sw2s)), np.nan)
    for i, sb2 in enumerate(sb2s):
        for j, sw2 in enumerate(sw2s):
            r = meanfield.propagation(act, float(sw2), float(sb2), params, points=COARSE)
            if r.xi_c is not None and math.isfinite(r.xi_c) and r.xi_c > 0:
                xi[i, j] = r.xi_c
    crit = [(sb2, meanfield.critical_sw2(act, float(sb2), params, points=COARSE)) for sb2 in np.linspace(*sb2_range,
                                                                                                         13)]
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    finite = xi[np.isfinite(xi)]
    if finite.size:
        mesh = ax.pcolormesh(sw2s, sb2s, xi, shading="nearest", cmap="viridis",
                             norm=LogNorm(vmin=max(finite.min(), 0.1), vmax=max(finite.max(), 1.0)))
        fig.colorbar(mesh, ax=ax, label="ξ_c (layers)")
    line = [(w, b) for b, w in crit if w is not None and sw2_range[0] <= w <= sw2_range[1]]
    if line:
        ax.plot([w for w, _ in line], [b for _, b in line], color="white", lw=2, label="edge of chaos (χ₁ = 1)")
    for w, b in mark:
        ax.plot([w], [b], "o", color="C3", mec="white")
    ax.set(xlabel="σ_w²", ylabel="σ_b²", xlim=sw2_range, ylim=sb2_range,
           title=f"{_label(act, params)}: depth scale ξ_c and the edge of chaos")
    if line:
        ax.legend(fontsize=8, loc="upper left")
    return fig


# ------------------------------------------------------------------------------- trainability vs theory


def trainability_figure(run: Run) -> Figure | None:
    """Test accuracy over (σ_w², depth) with theory's trainable depth 6 ξ_c drawn over it (Schoenholz et al.
    2017, Fig. 5), one panel per activation."""
    grids = trainability(run)
    if not grids:
        return None
    fig = Figure(figsize=(6.4 * len(grids), 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(grids)))
    for ax, t in zip(axes, grids, strict=True):
        mesh = ax.pcolormesh(t.sw2, t.depths, t.acc, shading="nearest", cmap="magma", vmin=t.chance,
                             vmax=float(np.nanmax(t.acc)))
        fig.colorbar(mesh, ax=ax, label="final test accuracy (mean over seeds)")
        act = activations.get(t.activation)
        fine = np.linspace(t.sw2[0], t.sw2[-1], 60)
        line = []
        for w in fine:
            r = meanfield.propagation(act, float(w), t.sb2, t.params, points=COARSE)
            line.append(np.nan if r.trainable_depth is None else min(r.trainable_depth, 1e6))
        ax.plot(fine, line, color="C0", lw=2, label="6 ξ_c (mean-field theory)")
        ax.contour(t.sw2, t.depths, t.acc, levels=[t.threshold], colors="white", linewidths=1, linestyles="--")
        ax.plot([], [], color="white", ls="--", label=f"accuracy = {t.threshold:.2f} (trainable above)")
        ax.set(xlabel="σ_w²", ylabel="depth (hidden layers)", ylim=(t.depths[0] - 1, t.depths[-1] * 1.08),
               title=f"{act.label(**t.params)}, σ_b² = {t.sb2:.3g}")
        ax.legend(fontsize=7, loc="upper right", facecolor="0.3", labelcolor="white")
    n = int(np.nanmin(np.where(grids[0].n > 0, grids[0].n, np.nan)))
    suptitle(fig, f"{run.name}: test accuracy over σ_w² and depth (mean of n = {n} seeds per cell), and the depth "
                  "mean-field theory predicts trainable, 6 ξ_c")
    return fig


def forward_variance_figure(run: Run) -> Figure | None:
    """Per hidden layer at initialisation (probe epoch 0): the measured pre-activation second moment
    E[z²] = mean² + std² (band over seeds) and mean-field theory's iterates from layer 1's value (dotted). A
    transformer's layers are its blocks' FFN pre-activations (measured only: mean-field theory here is for
    MLPs without normalisation; a pre-norm block re-normalises each FFN input)."""
    panels: dict[str, list[CellData]] = {}
    for c in run.done:
        if 0 in run.probe_epochs(c) and depth_of(c.model) >= 2:
            panels.setdefault(", ".join(p for p in (c.series, c.context) if p), []).append(c)
    drawn = []
    for title, cells in list(panels.items())[:MAX_PANELS]:
        lines = []
        for c in sorted(cells, key=lambda c: c.depth or 0):
            names, zm = run.probe(c, "z_mean", 0)
            _, zs = run.probe(c, "z_std", 0)
            transformer = c.model.get("kind") == "transformer"
            hidden = [i for i, n in enumerate(names) if n.startswith("block" if transformer else "hidden")]
            if len(hidden) < 2:
                continue
            q = zm[:, hidden] ** 2 + zs[:, hidden] ** 2
            pred = None if transformer else forward_prediction(run, c, float(np.nanmean(q[:, 0])))
            if pred is not None or transformer:
                lines.append((c, q, pred))
        if lines:
            drawn.append((title, lines))
    if not drawn:
        return None
    fig, axes = panel_grid(len(drawn), cols=4)
    # each activation its own colour (shades of it for several depths), as in every other figure
    col = palette.series_colors([f"{c.series} (depth {c.depth})" for _, lines in drawn for c, _, _ in lines])
    for ax, (title, lines) in zip(axes, drawn, strict=True):
        floor = np.inf
        for c, q, pred in lines:
            color = col[f"{c.series} (depth {c.depth})"]
            x = np.arange(1, q.shape[1] + 1)
            est = [mean_ci(list(q[:, j])) for j in range(q.shape[1])]
            means = np.array([e.mean for e in est])
            floor = min(floor, float(np.nanmin(np.where(means > 0, means, np.inf))) / 10)
            ax.plot(x, means, color=color, label=f"depth {c.depth}")
            # a band reaching 0 (n = 3: a wide t interval) is cut at a tenth of the smallest mean: the log axis
            # shows the data that can be read, not 1e-315
            lo = np.array([e.lo for e in est])
            ax.fill_between(x, np.maximum(lo, floor if np.isfinite(floor) else 1e-300), [e.hi for e in est],
                            color=color, alpha=0.15, lw=0)
            if pred is not None:
                ax.plot(x, pred, color=color, ls=":", lw=1.6)
        ax.set_yscale("log")
        ax.set_xlabel("block (FFN pre-activation)" if all(p is None for _, _, p in lines) else "hidden layer")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.xaxis.get_major_locator().set_params(integer=True)
    theory = any(p is not None for _, lines in drawn for _, _, p in lines)
    if theory:
        axes[0].plot([], [], color="0.3", ls=":", label="mean-field theory")
    axes[0].legend(fontsize=6)
    axes[0].set_ylabel("E[z²] of the pre-activations, at init")
    n = len(run.seeds)
    suptitle(fig, f"{run.name}: pre-activation second moment per hidden layer at initialisation (probe batch), "
                  f"mean and 95 % band over n = {n} seeds" + ("; dotted: mean-field theory from layer 1's value"
                                                              if theory else "; measured only (no mean-field "
                                                              "theory for a transformer's pre-norm blocks)"))
    return fig
