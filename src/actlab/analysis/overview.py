"""A run at a glance and two runs side by side: what the report's overview row says of a study (`overview`), and
what differs between two stored runs (`compare_runs`: their configurations, the cells they share aligned in one
table with a paired difference, and their curves overlaid).

Everything here reads stores and returns plain records; the explorer and the report draw them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.analysis.published import compare
from actlab.analysis.stats import Estimate, mean_ci, paired_difference
from actlab.analysis.summary import cells_done, headline, sim_summary, summary_rows, verdict_counts
from actlab.catalog import palette
from actlab.store.results import Run, score_of

# the per-epoch metrics overlaid when two runs are compared, with their names in prose
CURVES = {"train_loss": "training loss", "test_loss": "test loss", "test_acc": "test accuracy"}
MAX_POINTS = 400  # a compared curve is thinned to at most this many epochs (its last one kept)
SKIP = ("name", "description", "note", "published", "source", "claims")  # prose, not configuration


def overview(run: Run) -> dict[str, Any]:
    """The report's overview row of a study: cells done, the source's numbers by verdict, the headline."""
    comparisons = compare(run)
    return {"cells": cells_done([c.status for c in run.cells]), "source": verdict_counts(comparisons),
            "headline": headline(summary_rows(run), sim_summary(run) if run.kind == "simulation" else [],
                                 comparisons)}


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """A nested configuration as {'train.lr': 0.05, ...}; lists stay values."""
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out |= flatten(v, f"{prefix}{k}.")
        return out
    return {prefix[:-1]: doc}


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The settings two study configurations give differently ({path, a, b}; a side without it: None), and how
    many they give alike. Prose fields (name, description, note, published numbers, claims) are left out."""
    fa = {k: v for k, v in flatten(a).items() if k.split(".")[0] not in SKIP}
    fb = {k: v for k, v in flatten(b).items() if k.split(".")[0] not in SKIP}
    paths = list(dict.fromkeys([*fa, *fb]))
    differ = [{"path": p, "a": fa.get(p), "b": fb.get(p)} for p in paths if fa.get(p) != fb.get(p)]
    return differ, len(paths) - len(differ)


def _estimate(e: Estimate, spec: str) -> dict[str, Any]:
    return {"mean": e.mean, "lo": e.lo, "hi": e.hi, "n": e.n, "text": e.format(spec)}


def _thin(epochs: list[int]) -> np.ndarray:
    """Indices of at most MAX_POINTS epochs, evenly spaced, the last always kept."""
    n = len(epochs)
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.r_[np.linspace(0, n - 1, MAX_POINTS).round().astype(int), n - 1])


def compare_runs(a: Run, b: Run) -> dict[str, Any]:
    """Two stored runs side by side: the configuration diff, the cells they share (matched by label) in one
    table, each run's score per cell with its 95 % interval and n, and b − a paired by seed over the seeds both
    ran (mean difference, its interval, the exact sign-flip test); cells only one run has; and per metric in
    CURVES the mean curve over seeds of every shared cell in both runs (a solid, b dashed in the explorer)."""
    differ, same = config_diff(a.study["config"], b.study["config"])
    cells_a, cells_b = {c.label: c for c in a.cells}, {c.label: c for c in b.cells}
    trained = a.kind == "train" and b.kind == "train"  # a simulation's rows are compared in its own tables
    shared = [label for label in cells_a if label in cells_b] if trained else []
    rows = []
    for label in shared:
        ca, cb = cells_a[label], cells_b[label]
        sa, sb = score_of(ca), score_of(cb)
        row: dict[str, Any] = {"cell": label, "score": sa.name, "lower_better": sa.lower}
        if (sa.column, sa.name) != (sb.column, sb.name):  # a classifier against a regression: nothing to subtract
            row |= {"a": None, "b": None, "diff": None, "note": f"scored by {sa.name} in a, {sb.name} in b"}
            rows.append(row)
            continue
        ra, rb = a.replicas(ca, sa.column), b.replicas(cb, sb.column)
        row["a"] = _estimate(mean_ci(list(ra.values()), bounds=sa.bounds), sa.spec)
        row["b"] = _estimate(mean_ci(list(rb.values()), bounds=sb.bounds), sb.spec)
        span = (sa.bounds[1] - sa.bounds[0]) if sa.bounds and math.isfinite(sa.bounds[1] - sa.bounds[0]) else None
        d = paired_difference(rb, ra, bounds=(-span, span) if span else None)
        row["diff"] = {"mean": d.diff.mean, "lo": d.diff.lo, "hi": d.diff.hi, "n": d.n, "p": d.p,
                       "text": (f"{d.diff.mean:+{sa.spec}} [{d.diff.lo:+{sa.spec}}, {d.diff.hi:+{sa.spec}}], "
                                f"p = {d.p:.2g} (paired by seed, n = {d.n})") if d.n >= 2 else
                       f"— (n = {d.n} seed{'s' if d.n != 1 else ''} in both runs)"}
        rows.append(row)
    colors = palette.series_colors(shared) if shared else {}
    curves: dict[str, Any] = {}
    for metric, name in CURVES.items():
        series = []
        for label in shared:
            for side, run, cell in (("a", a, cells_a[label]), ("b", b, cells_b[label])):
                _, values = run.metric(cell, metric)
                if not values.size or np.isnan(values).all():
                    continue
                with np.errstate(all="ignore"):
                    mean = np.nanmean(values, 0)
                epochs = list(range(1, values.shape[1] + 1))
                keep = _thin(epochs)
                series.append({"cell": label, "run": side, "color": colors[label], "epochs": [epochs[i] for i in keep],
                               "mean": [None if not math.isfinite(v) else float(v) for v in mean[keep]],
                               "n": int(values.shape[0])})
        if series:
            curves[metric] = {"name": name, "series": series}
    return {"a": {"name": a.name, "seeds": len(a.seeds), "cells": len(a.cells)},
            "b": {"name": b.name, "seeds": len(b.seeds), "cells": len(b.cells)},
            "diff": differ, "same": same, "shared": rows,
            "only_a": [c for c in cells_a if c not in cells_b] if trained else [],
            "only_b": [c for c in cells_b if c not in cells_a] if trained else [],
            "kinds": [a.kind, b.kind], "curves": curves}
