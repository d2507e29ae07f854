"""Published beside reproduced: each number a study's source published, next to actlab's estimate of the same
quantity from the run's store, with a verdict.

A study file lists its source's numbers (`[[published]]`: key, value, whether it was a single run). Each key
names a reproduced estimate, `metric@field=value,...`:
- training studies: a replica column (final_test_acc, best_test_acc, final_test_loss, final_train_loss), or a
  per-epoch metric at the last epoch (batch_loss: the epoch's mean minibatch loss), of the cells whose model
  fields match (activation, depth = hidden layers, ...), e.g. `final_test_acc@activation=relu,depth=2`;
- simulations: `ratio@depth=D` (gradient-flow: seed 003's mean‖g‖ ratio), `epochs@activation=A` (xor-speed,
  censored at the horizon), `std@activation=A` (ffn-stats).

Verdicts, each under the conditions the source ran (the study's protocol fields):
- a single-run published value is **consistent** when it lies within the 95 % prediction interval of one more
  run from actlab's seeds (mean ± t·s·sqrt(1 + 1/n), clipped to the quantity's bounds);
- a single-run time to an event (`epochs`) is judged against the seeds' own times with censoring kept: the
  Kaplan–Meier 2.5–97.5 % range of single runs (`stats.time_range`); where fewer than 97.5 % of the seeds
  reached the event, the range is open above (a run that never reaches it within the horizon), and a time
  between the last seed's and the horizon, where no seed landed, is not consistent. A time past actlab's
  horizon is **not comparable** (actlab's runs stop there). Fewer than `MIN_SEEDS_FOR_RANGE` seeds give no
  range: **too few seeds**;
- a published mean of `runs` runs is consistent when it lies within actlab's 95 % interval widened by
  sqrt(1 + n/runs), since the published mean has its own sampling error;
- otherwise **not consistent**, with the difference. Each comparison allows half the published value's
  rounding (`resolution`) and float32's rounding;
- **not comparable** where the study file says the source ran something else (its `why`), or where this run
  changed a protocol field of the published cells (`--set train.epochs=50`: "train.epochs = 50, the source's
  800"; the study records such changes when it is loaded, `StudyConfig.protocol_changes`); **not measured**
  where this run has no such cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from actlab.analysis.simulations import source_ratios
from actlab.analysis.stats import Estimate, TimeRange, mean_ci, sign_flip_test, time_range, time_to_event
from actlab.analysis.summary import bounds_of, prose_name
from actlab.store.results import METRICS, Run

REPLICA_METRICS = ("final_test_acc", "best_test_acc", "final_test_loss", "final_train_loss")
MIN_SEEDS_FOR_RANGE = 5  # a range of single runs' times from fewer seeds says too little to judge by


@dataclass(frozen=True)
class Reproduced:
    """actlab's estimate of a published quantity: value, 95 % interval, n, and the per-seed values behind it."""

    value: float
    lo: float
    hi: float
    n: int
    per_seed: tuple[float, ...] = ()
    censored: int = 0  # per-seed values that are a horizon, not a measurement
    times: tuple[float | None, ...] | None = None  # a time to an event per seed (None: never), for `epochs`
    horizon: float | None = None

    def format(self, spec: str = ".4g") -> str:
        """'value [lo, hi] (n = k)', as every estimate is written; a time to an event as its Kaplan–Meier median
        with its interval and the share of seeds that reached it."""
        if self.times is not None and self.n == 1:
            t = self.times[0]
            return f"never reached within {self.horizon:g} (one run)" if t is None else f"{t:g} (one run)"
        if self.times is not None:
            tte = time_to_event(list(self.times), self.horizon)
            return (f"Kaplan–Meier median {tte.format_median()}; reached by {tte.reached.k} of {tte.n} seeds "
                    f"within {self.horizon:g}")
        return Estimate(self.value, self.lo, self.hi, self.n).format(spec)

    def time_range(self) -> TimeRange | None:
        return None if self.times is None else time_range(list(self.times), self.horizon)


@dataclass(frozen=True)
class Comparison:
    quantity: str
    published: float
    unit: str
    source: str
    single_run: bool
    reproduced: Reproduced | None
    verdict: str  # consistent, not consistent, not comparable, not measured
    detail: str  # the range compared, the difference, or why
    key: str = ""  # the published number's key, metric@where

    @property
    def spec(self) -> str:
        """How actlab's estimate is written: an accuracy or a fraction as every table writes it (0.795), other
        quantities to 4 significant digits."""
        return ".3f" if bounds_of(parse_key(self.key)[0]) == (0.0, 1.0) else ".4g"


def parse_key(key: str) -> tuple[str, dict[str, str]]:
    """'metric@a=1,b=x' -> ('metric', {'a': '1', 'b': 'x'})."""
    metric, _, rest = key.partition("@")
    where = dict(part.split("=", 1) for part in rest.split(",") if "=" in part)
    return metric, where


def _from_values(values: list[float], censored: int = 0, bounds: tuple[float, float] | None = None) -> Reproduced:
    e = mean_ci(values, bounds=bounds)
    finite = tuple(float(v) for v in values if v is not None and np.isfinite(v))
    return Reproduced(e.mean, e.lo, e.hi, e.n, finite, censored)


def _training(run: Run, metric: str, where: dict[str, str]) -> Reproduced | None:
    if metric not in REPLICA_METRICS and metric not in METRICS:
        return None
    cells = [c for c in run.done if all(str(c.depth if k == "depth" else c.model.get(k)) == v for k,
                                        v in where.items())]
    if not cells:
        return None
    if metric in REPLICA_METRICS:
        values = [v for c in cells for v in run.replicas(c, metric).values()]
    else:  # a per-epoch metric: its value at the last epoch (e.g. the epoch's mean minibatch loss, as sources print)
        values = [float(v) for c in cells for v in run.final(c, metric)[1]]
    return _from_values(values, bounds=_bounds(metric))


def _simulation(run: Run, metric: str, where: dict[str, str]) -> Reproduced | None:
    rows = run.sim_rows()
    if metric == "ratio" and "depth" in where:
        r = source_ratios(rows).get(int(where["depth"]))
        return None if r is None else Reproduced(r.mean, r.lo, r.hi, r.n)
    mine = [r for r in rows if all(str(r.get(k)) == v for k, v in where.items())]
    if not mine:
        return None
    if metric == "epochs":  # censored: a seed that never reached the threshold is kept, as censored
        times = tuple(r["epochs_to_threshold"] for r in mine)
        horizon = float(max(r["horizon"] for r in mine))
        tte = time_to_event(list(times), horizon)
        hit = tuple(float(v) for v in times if v is not None)
        return Reproduced(tte.median, tte.median_lo, tte.median_hi, tte.n, hit, tte.n - len(hit), times, horizon)
    if metric in mine[0]:
        return _from_values([r.get(metric) for r in mine], bounds=_bounds(metric))
    return None


def reproduced(run: Run, key: str) -> Reproduced | None:
    """actlab's estimate for a published key, from the run's store; None where the run has no such quantity."""
    metric, where = parse_key(key)
    return _training(run, metric, where) if run.kind == "train" else _simulation(run, metric, where)


def _bounds(key: str) -> tuple[float, float] | None:
    return bounds_of(parse_key(key)[0])


def _prediction_interval(values: tuple[float, ...], level: float = 0.95,
                         bounds: tuple[float, float] | None = None) -> tuple[float, float]:
    """Where one more run would fall with probability `level`: mean ± t(n−1)·s·sqrt(1 + 1/n), within bounds."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n < 2:
        return (float(v[0]), float(v[0])) if n else (math.nan, math.nan)
    half = float(sps.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) * math.sqrt(1 + 1 / n))
    lo, hi = float(v.mean()) - half, float(v.mean()) + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return lo, hi


def _g(v: float) -> str:
    return f"{v:.3g}"


def _changed(run: Run, index: int) -> dict[str, list]:
    """The protocol fields this run changed for published entry `index` (path -> [the study's, this run's]),
    as recorded when the study was loaded with `--set` (`StudyConfig.protocol_changes`)."""
    changes = (run.study.get("provenance") or {}).get("protocol_changes") or {}
    return changes.get("published", {}).get(str(index), {})


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).lower() if isinstance(v, bool) else str(v)


def changed_text(changes: dict[str, list]) -> str:
    """'train.epochs = 50, the source's 800; ...'"""
    return "; ".join(f"{k} = {_show(new)}, the source's {_show(old)}" for k, (old, new) in changes.items())


def _time_verdict(value: float, rep: Reproduced, tol: float) -> tuple[str, str]:
    """A single run's published time against the seeds' Kaplan–Meier range of single runs."""
    rng = rep.time_range()
    if value > rep.horizon + tol:
        return "not comparable", (f"past actlab's horizon of {rep.horizon:g}: its runs stop there, so a time "
                                  "beyond it cannot be judged")
    if rep.n < MIN_SEEDS_FOR_RANGE:
        return "too few seeds", (f"{rep.n} seeds give no range of single runs (at least "
                                 f"{MIN_SEEDS_FOR_RANGE} needed)")
    never = rep.n - (0 if rng is None else rng.reached)
    if value >= rep.horizon - tol:  # a source's loop returns its horizon for a run that never got there
        said = f"{never} of {rep.n} seeds never reached it within {rep.horizon:g}"
        return ("consistent" if never else "not consistent"), f"the horizon means never reached; {said}"
    if rng is None:
        return "not consistent", f"none of the {rep.n} seeds reached it within {rep.horizon:g}"
    cover = (rep.n - 1) / (rep.n + 1)
    detail = (f"the Kaplan–Meier 2.5–97.5 % range of single runs from {rep.n} seeds ({rng.reached} reached it "
              f"within {rep.horizon:g}): {rng.describe()}"
              + (f"; with {rep.n} seeds it is the seeds' own range, which holds one more run with probability "
                 f"{cover:.0%}" if cover < 0.95 else ""))
    if rng.contains(value, tol):
        return "consistent", detail
    if rng.open and value > rng.hi:
        return "not consistent", (detail + f"; no seed reached it between {rng.hi:g} and the horizon "
                                  f"{rep.horizon:g}, where {value:g} lies")
    return "not consistent", detail


def _exact_verdict(run: Run, key: str, value: float, rep: Reproduced, tol: float) -> tuple[str, str]:
    """A published number actlab reruns exactly (the source's own initial weights): it must match; the seeds'
    range of single runs of the same arm, where the run has them, is said beside it."""
    if rep.times is not None and value > rep.horizon + tol:
        return "not comparable", f"past actlab's horizon of {rep.horizon:g}: its runs stop there"
    if rep.n != 1:
        return "not measured", f"{rep.n} runs match an exact reproduction; one was expected"
    if rep.times is not None and rep.times[0] is None:
        got = f"never reached within {rep.horizon:g}"
        inside = value >= rep.horizon - tol  # the source's loop returns its horizon for a run that never got there
    else:
        got = f"{(rep.value if rep.times is None else float(rep.times[0])):.6g}"
        inside = abs((rep.value if rep.times is None else float(rep.times[0])) - value) <= tol
    detail = f"actlab's rerun of the source's own run: {got}" + (" (the same)" if inside else "")
    metric, where = parse_key(key)
    if rep.times is not None and where.get("init") == "source":
        others = ",".join(f"{k}={'seeds' if k == 'init' else v}" for k, v in where.items())
        seeds = reproduced(run, f"{metric}@{others}")
        rng = None if seeds is None or seeds.n < MIN_SEEDS_FOR_RANGE else seeds.time_range()
        if rng is not None:
            detail += (f"; single runs from {seeds.n} other seeds range over {rng.describe()} (Kaplan–Meier "
                       "2.5–97.5 %)")
    return ("consistent" if inside else "not consistent"), detail


def compare(run: Run) -> list[Comparison]:
    """Every published number of the run's study beside actlab's estimate, with its verdict."""
    out = []
    for i, p in enumerate(run.study["config"].get("published", [])):
        rep = reproduced(run, p["key"])  # shown even where not comparable: the reader sees both numbers
        value = float(p["value"])
        # the published value's own rounding, and float32's: a printed 0.46 is 0.4600000083 stored
        tol = max((p.get("resolution") or 0.0) / 2, 1e-6 * max(1.0, abs(value)))
        changes = _changed(run, i)
        if not p.get("comparable", True):
            verdict, detail = "not comparable", p.get("why", "")
        elif changes:
            verdict, detail = "not comparable", f"this run changed the source's protocol: {changed_text(changes)}"
        elif rep is None or rep.n == 0:
            verdict, detail = "not measured", "this run has no such cell or quantity"
        elif p.get("exact"):
            verdict, detail = _exact_verdict(run, p["key"], value, rep, tol)
        elif p["single_run"] and rep.times is not None:
            verdict, detail = _time_verdict(value, rep, tol)
        elif p["single_run"]:
            lo, hi = _prediction_interval(rep.per_seed, bounds=_bounds(p["key"]))
            inside = lo - tol <= value <= hi + tol
            verdict = "consistent" if inside else "not consistent"
            detail = (f"95 % prediction interval for one run, from {rep.n} seeds: [{_g(lo)}, {_g(hi)}]" if rep.n > 1
                      else f"actlab's one run: {_g(rep.value)}")
            if not inside:
                detail += f"; published − actlab {'mean ' if rep.n > 1 else ''}= {_g(value - rep.value)}"
        else:
            widen = math.sqrt(1 + rep.n / p["runs"]) if p.get("runs") else 1.0
            lo, hi = rep.value - widen * (rep.value - rep.lo), rep.value + widen * (rep.hi - rep.value)
            if rep.lo > 0:  # a positive quantity (a ratio): widen on the log scale, where its interval is balanced
                lo, hi = rep.value * (rep.lo / rep.value) ** widen, rep.value * (rep.hi / rep.value) ** widen
            inside = math.isfinite(lo) and lo - tol <= value <= hi + tol
            verdict = "consistent" if inside else "not consistent"
            detail = f"actlab's 95 % CI [{_g(rep.lo)}, {_g(rep.hi)}]" + (
                f", widened ×{widen:.2f} for the published mean's own error ({p['runs']} runs): [{_g(lo)}, {_g(hi)}]"
                if widen != 1.0 else "")
            if not inside:
                detail += f"; published / actlab = {_g(value / rep.value)}" if rep.value else ""
        out.append(Comparison(p["quantity"], value, p.get("unit", ""), p["source"], p["single_run"], rep, verdict,
                              detail, p["key"]))
    return out


def study_note(run: Run) -> str:
    """The study's note as a reader of this run should take it: marked as describing the shipped protocol
    where this run changed it (`protocol_note`)."""
    note = run.study["config"].get("note", "")
    caveat = protocol_note(run)
    return note if caveat is None else f"{caveat} The note: {note}" if note else caveat


def protocol_note(run: Run) -> str | None:
    """Where this run changed the source's protocol: a line saying the study's note describes the shipped
    protocol, not this run; None otherwise."""
    changes = ((run.study.get("provenance") or {}).get("protocol_changes") or {}).get("study") or {}
    if not changes:
        return None
    return (f"This run changed the study's protocol ({changed_text(changes).replace('the source', 'the study')}): "
            "the study's note describes the shipped protocol, not this run.")


def direction_notes(run: Run) -> list[str]:
    """Where the source published a quantity at several depths, whether this run's depth trend goes the same
    way: the source's change from its shallowest to its deepest published depth against actlab's paired change
    between the same depths (its 95 % CI), said plainly where they differ, e.g. on other data."""
    if run.kind != "train":
        return []
    by_series: dict[tuple, dict[int, float]] = {}
    for p in run.study["config"].get("published", []):
        metric, where = parse_key(p["key"])
        if "depth" in where:
            rest = tuple(sorted((k, v) for k, v in where.items() if k != "depth"))
            by_series.setdefault((metric, rest), {})[int(where["depth"])] = float(p["value"])
    notes = []
    for (metric, rest), points in by_series.items():
        if len(points) < 2 or metric not in REPLICA_METRICS:
            continue
        d0, d1 = min(points), max(points)
        src = points[d1] - points[d0]
        cells = {d: [c for c in run.done if c.depth == d and all(str(c.model.get(k)) == v for k, v in rest)]
                 for d in (d0, d1)}
        if not cells[d0] or not cells[d1]:
            continue
        a, b = run.replicas(cells[d1][0], metric), run.replicas(cells[d0][0], metric)
        d = np.array([a[s] - b[s] for s in sorted(set(a) & set(b)) if np.isfinite(a[s] - b[s])])
        diff = mean_ci(d)
        label = ", ".join(f"{k} {v}" for k, v in rest) or "this series"
        if diff.n < 2 or not np.isfinite(diff.lo):
            continue
        p = sign_flip_test(d)
        ours = 1 if np.all(d > 0) else -1 if np.all(d < 0) else 0  # every seed the same way
        if p < 0.05 and np.sign(diff.mean) != np.sign(src):
            verdict = "the direction differs here (exact sign-flip p = " + f"{p:.2g})"
        elif p < 0.05:
            verdict = "the same direction here (exact sign-flip p = " + f"{p:.2g})"
        elif ours and ours != np.sign(src):
            verdict = (f"every one of the {diff.n} seeds goes the other way: the direction differs here, though "
                       f"{diff.n} seeds are too few for the exact sign-flip test to confirm it at 0.05 (p = {p:.2g})")
        elif ours:
            verdict = (f"every one of the {diff.n} seeds goes the same way as the source, though {diff.n} seeds are "
                       f"too few for the exact sign-flip test to confirm it at 0.05 (p = {p:.2g})")
        else:
            verdict = f"this run cannot tell the direction (its seeds disagree; exact sign-flip p = {p:.2g})"
        notes.append(f"{label}: the source's {prose_name(metric)} goes from {points[d0]:.3g} at depth {d0} to "
                     f"{points[d1]:.3g} at depth {d1} ({'falls' if src < 0 else 'rises'}); this run's change over the "
                     f"same depths is "
                     f"{diff.mean:+.3f} (95 % CI [{diff.lo:+.3f}, {diff.hi:+.3f}], n = {diff.n} paired seeds): "
                     f"{verdict}.")
    return notes
