"""Summaries of a stored run: per-cell accuracy with its interval, a simulation's rows grouped over seeds, and
the small data-shaping helpers (grouping rows, log-ratios) that the findings, tables and figures share.

Everything here reads the store (`actlab.store.results.Run`) and returns plain records; nothing draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from actlab.analysis.stats import Estimate, mean_ci, proportion_ci, time_to_event
from actlab.store.results import Run, score_of

Rows = list[dict[str, Any]]


def prose_name(field: str) -> str:
    """A stored column's name as a sentence says it: final_test_acc -> 'final test accuracy'."""
    return " ".join({"acc": "accuracy", "mse": "MSE"}.get(w, w) for w in field.split("_"))


def bounds_of(field: str) -> tuple[float, float] | None:
    """The range a measured quantity cannot leave, by its name: accuracies and fractions [0, 1]; losses, stds,
    variances, norms, ratios, errors and times [0, ∞); None where it may take any sign. Intervals are clipped
    to it."""
    if field in ("final_test_acc", "best_test_acc") or field.endswith(("_acc", "_fraction", "accuracy")):
        return (0.0, 1.0)
    if field in ("epochs", "std", "variance", "ratio", "grad_norm") or field.endswith(
            ("_loss", "_std", "_variance", "_norm", "_error", "_units", "_ratio")):
        return (0.0, math.inf)
    return None


def summary_rows(run: Run) -> list[dict[str, Any]]:
    """Per cell: label, status, n, final and best test accuracy with 95 % CIs (a regression task: the final
    test MSE, `final_test_mse`, instead), the cell's score (`score_of`: what ranks it, with its name and
    direction), diverged count, sim rows, wall time and error."""
    counts = dict(run.store.query("SELECT cell, COUNT(*) FROM sim_rows GROUP BY cell"))
    rows = []
    for c in run.cells:
        final = run.replicas(c, "final_test_acc")
        regression = (c.data_provenance or {}).get("task") == "regression"
        mse = run.replicas(c, "final_test_loss") if regression else {}
        sc = score_of(c) if run.kind == "train" else None
        score = run.replicas(c, sc.column) if sc else {}
        rows.append({"cell": c.label, "status": c.status, "replicas": len(final),
                     "score": mean_ci(list(score.values()), bounds=sc.bounds) if score else None,
                     "score_name": sc.name if sc else None, "score_lower": sc.lower if sc else False,
                     "score_spec": sc.spec if sc else ".3f",
                     **({"final_test_mse": mean_ci(list(mse.values()), bounds=(0.0, math.inf)) if mse else None}
                        if regression else {}),
                     "final_test_acc": mean_ci(list(final.values()), bounds=(0.0, 1.0)) if final else None,
                     "best_test_acc": mean_ci(list(run.replicas(c, "best_test_acc").values()), bounds=(0.0, 1.0))
                     if final else None,
                     "diverged": run.diverged(c), "sim_rows": counts.get(c.key, 0), "wall_s": c.wall_s,
                     "error": c.error})
    return rows


GROUP_INTS = ("depth", "layer", "epoch")  # integer fields that name a condition rather than measure one


def group_rows(rows: list[dict[str, Any]], by: tuple[str, ...] | Callable[[dict[str, Any]], tuple]
               ) -> dict[tuple, list[dict[str, Any]]]:
    """Rows grouped by the values of the fields `by` (or by `by(row)`), in order of first appearance."""
    key = by if callable(by) else (lambda r: tuple(r.get(k) for k in by))
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def group_sim_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A simulation's rows grouped over seeds: text fields (and depth/layer/epoch) as the group, each
    numeric field as a mean with its 95 % CI (a yes/no field: the proportion of yes with its exact interval). A time to
    a threshold (`*_to_threshold`, rows with a `horizon`) is censored data: how many reached it (exact interval)
    and the Kaplan–Meier median, no seed dropped."""
    def condition(r: dict[str, Any]) -> tuple:
        return tuple((k, v) for k, v in r.items() if k != "seed" and (isinstance(v, str) or k in GROUP_INTS))

    out = []
    for key, members in group_rows(rows, condition).items():
        entry: dict[str, Any] = dict(key)
        numeric = [k for k, v in members[0].items() if k != "seed" and k not in entry and
                   (isinstance(v, (int, float)) or v is None)]
        for k in numeric:
            vals = [None if m[k] is None else float(m[k]) for m in members]
            if k.endswith("_to_threshold") and "horizon" in members[0]:  # censored at the horizon, never dropped
                horizon = max(float(m["horizon"]) for m in members)
                if len(vals) == 1:  # one run (the source's own weights): its time, or that it never got there
                    entry[k] = f"never reached within {horizon:g} (one run)" if vals[0] is None else \
                        f"{vals[0]:g} (one run)"
                    continue
                tte = time_to_event(vals, horizon)
                entry[k] = f"reached: {tte.reached.format()}; Kaplan–Meier median {tte.format_median()}"
                continue
            if all(isinstance(m[k], bool) for m in members if m[k] is not None):  # yes/no: a proportion, exact CI
                yes = [bool(m[k]) for m in members if m[k] is not None]
                entry[k] = proportion_ci(sum(yes), len(yes)).format()
                continue
            entry[k] = mean_ci([np.nan if v is None else v for v in vals], bounds=bounds_of(k))
            if any(v is None for v in vals):
                entry[f"{k}_missing"] = sum(v is None for v in vals)
        out.append(entry)
    return out


def sim_summary(run: Run) -> list[dict[str, Any]]:
    """`group_sim_rows` of the run's stored rows."""
    return group_sim_rows(run.sim_rows())


def group(rows: Rows, *keys: str) -> dict[tuple, Rows]:
    """Rows grouped by the values of `keys`, in order of first appearance."""
    return group_rows(rows, keys)


def values(rows: Rows, key: str) -> list[float]:
    return [np.nan if r.get(key) is None else float(r[key]) for r in rows]


def log_ratio(rows: Rows, method: str = "t") -> Estimate:
    """Mean of log10(ratio) over seeds with its CI: 10**mean is the geometric-mean ratio. A ratio of exactly
    0 (every entry of the first layer's gradient was 0) has no logarithm: it is left out, and n says so."""
    v = np.array(values(rows, "ratio"))
    with np.errstate(divide="ignore", invalid="ignore"):
        return mean_ci(np.where(v > 0, np.log10(v), np.nan), method=method)


def vanished(rows: Rows) -> int:
    """Replicas in which every entry of the first layer's gradient was exactly 0 (the gradient vanished)."""
    return sum(1 for r in rows if r.get("first_all_zero"))


def headline(rows: list[dict[str, Any]], sims: list[dict[str, Any]], published: list[Any]) -> str:
    """A study's first number a reader wants: its best cell by its score (`summary_rows`), or its first comparison
    with the source's published number, or how many result rows a simulation gave."""
    scored = [r for r in rows if r.get("score") is not None and r["score"].n]
    if scored:
        lower = scored[0]["score_lower"]
        best = (min if lower else max)(scored, key=lambda r: r["score"].mean)
        return f"{'lowest' if lower else 'best'} final {best['score_name']}: {best['cell']} " \
            f"{best['score'].format(best['score_spec'], with_n=False)} (n = {best['score'].n})"
    if published:
        c = published[0]
        rep = "—" if c.reproduced is None or c.reproduced.n == 0 else c.reproduced.format(c.spec)
        return f"{c.quantity}: {rep} ({c.verdict} with {c.published:.4g})"
    return f"{len(sims)} result rows" if sims else "—"


def cells_done(statuses: list[str]) -> str:
    """'5 of 6 done, 1 failed'."""
    failed = statuses.count("failed")
    return f"{statuses.count('done')} of {len(statuses)} done" + (f", {failed} failed" if failed else "")


def verdict_counts(published: list[Any]) -> str:
    """'3 consistent, 1 not comparable': the source's numbers by verdict, or '—'."""
    counts: dict[str, int] = {}
    for c in published:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
    return ", ".join(f"{n} {v}" for v, n in counts.items()) or "—"
