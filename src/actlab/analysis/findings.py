"""Findings: short generated sentences that say what a stored run's numbers show, never typed by hand.

Each `Finding` keeps, beside its text, every number the text states (`numbers`: name, value, format), so a
test can recompute each from the store and find it, formatted, in the text. Comparisons are paired over the
seeds both cells share (`stats.paired_difference`, the exact sign-flip permutation test); the p-values of one
study form one family, Holm-adjusted (`stats.holm`). A difference is called one only when its adjusted p is
below 0.05; otherwise the sentence says the data do not support a difference, with the interval that shows
why, or that every seed favours one side but n seeds are too few for the test (its floor is 2/2ⁿ).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from actlab.analysis import predictions, summary
from actlab.analysis.published import direction_notes, source_ratios
from actlab.analysis.stats import (
    EXACT_MAX_N,
    MC_RESAMPLES,
    Estimate,
    Paired,
    holm,
    mean_ci,
    paired_difference,
    proportion_ci,
    time_to_event,
)
from actlab.errors import ActlabError
from actlab.store.results import CellData, Run

ALPHA = 0.05
_FIELD = re.compile(r"\{(\w+)\}")
MAX_TIES = 5  # cells named as tied with the best; past that, how many more
MAX_PAIRS = 3  # series per comparison group compared pairwise; past that, the best vs the runner-up and the worst


@dataclass(frozen=True)
class Stats:
    """How the findings estimate: the CI method of every mean and paired difference (t or bootstrap)."""

    ci: str = "t"

    def mean(self, values: Any, bounds: tuple[float, float] | None = None) -> Estimate:
        return mean_ci(values, method=self.ci, bounds=bounds)

    def paired(self, a: dict[int, float], b: dict[int, float]) -> Paired:
        return paired_difference(a, b, ci=self.ci)


@dataclass
class Finding:
    """One sentence and the numbers it states, each (name, value, format spec)."""

    text: str
    numbers: list[tuple[str, float, str]] = field(default_factory=list)
    paired: Paired | None = None
    p_index: int | None = None  # position in the study's family of p-values (Holm)


def _fmt(value: float, spec: str) -> str:
    return format(value, spec)


class _Text:
    """Builds a sentence while recording each number placed in it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.numbers: list[tuple[str, float, str]] = []

    def __call__(self, text: str = "", **nums: tuple[float, str]) -> _Text:
        """Append `text`, whose {name} fields are filled from nums = name=(value, spec)."""
        shown = {k: _fmt(v, s) for k, (v, s) in nums.items()}
        # Only {name} fields named in nums are filled: labels may hold braces of their own ({'noise': 0.3}).
        self.parts.append(_FIELD.sub(lambda m: shown.get(m.group(1), m.group(0)), text))
        self.numbers += [(k, v, s) for k, (v, s) in nums.items()]
        return self

    def finding(self, **kw: Any) -> Finding:
        return Finding("".join(self.parts), self.numbers, **kw)


def _comparison(t: _Text, what: str, a: str, b: str, pr: Paired, scale: float, unit: str, spec: str) -> None:
    """The body of a paired comparison; the verdict (after Holm) is written by `_verdict`."""
    d = pr.diff
    if pr.n < 2:
        t(f"{what}: too few seeds with both values to compare {a} with {b} (n = {{n}}).", n=(pr.n, "d"))
        return
    if pr.identical and (d.mean == 0 or pr.test != "permutation"):
        t(f"{what}: {a} − {b} = {{d}}{unit} in every one of the {{n}} paired seeds.", d=(d.mean * scale, spec),
          n=(pr.n, "d"))
        return
    if pr.identical:  # the same non-zero difference on every seed: still only n seeds' worth of evidence
        t(f"{what}: {a} − {b} = {{d}}{unit} in every one of the {{n}} paired seeds (", d=(d.mean * scale, spec),
          n=(pr.n, "d"))
    else:
        t(f"{what}: {a} − {b} = {{d}}{unit} (95 % CI [{{lo}}, {{hi}}], n = {{n}} paired seeds, ",
          d=(d.mean * scale, spec), lo=(d.lo * scale, spec), hi=(d.hi * scale, spec), n=(pr.n, "d"))
    if pr.test == "permutation":
        t("exact sign-flip test" if pr.n <= EXACT_MAX_N else
          f"sign-flip test, {MC_RESAMPLES:,} Monte Carlo resamples (seed 0)")
        t(", p = {p}", p=(pr.p, ".2g"))
    else:
        t(f"paired {'t' if pr.test == 't' else 'Wilcoxon W'} = {{tstat}}, p = {{p}}", tstat=(pr.statistic, ".3g"),
          p=(pr.p, ".2g"))


def _verdict(f: Finding, adjusted: float, a: str, b: str, higher_is: str) -> None:
    """Close a comparison sentence with the Holm-adjusted p and what it means."""
    pr = f.paired
    if pr is None or pr.n < 2:
        return
    if pr.identical and (pr.diff.mean == 0 or pr.test != "permutation"):
        f.text += " The two give identical values." if pr.diff.mean == 0 else \
            " No test is needed: the difference has no spread."
        return
    fmt = _fmt(adjusted, ".2g")
    f.numbers.append(("p_holm", adjusted, ".2g"))
    if math.isfinite(pr.effect_size):
        f.numbers.append(("d_z", pr.effect_size, ".2f"))
    dz = f"d_z = {_fmt(pr.effect_size, '.2f')}" if math.isfinite(pr.effect_size) else "no spread, so no d_z"
    floor = 2 / 2 ** pr.n  # the smallest p a sign-flip test over n seeds can give: every seed on one side
    if adjusted >= ALPHA and pr.test == "permutation" and floor >= ALPHA and pr.p <= floor * (1 + 1e-9):
        winner = a if pr.diff.mean > 0 else b
        f.text += (f", Holm-adjusted p = {fmt}; {dz}). All {pr.n} paired seeds "
                   f"favour {winner}, but {pr.n} seeds are too few for the sign-flip test to call it at the 0.05 "
                   f"level (its smallest possible p is {_fmt(floor, '.2g')}): run more seeds.")
        return
    if adjusted < ALPHA:
        winner = a if pr.diff.mean > 0 else b
        f.text += f", Holm-adjusted p = {fmt}; effect size {dz}). {winner} {higher_is}."
    else:
        f.text += (f", Holm-adjusted p = {fmt}; {dz}). The data do not support a difference between {a} and "
                   f"{b}.")


def _compare(found: list[Finding], verdicts: list, st: Stats, what: str, a: str, b: str, va: dict[int, float],
             vb: dict[int, float], verb: str, scale: float = 1, unit: str = "", spec: str = ".3g",
             t: _Text | None = None) -> None:
    """Add the paired comparison a − b (values by seed) to the findings, after the sentence `t` has begun;
    its verdict is written after the Holm adjustment (`_finish`)."""
    pr = st.paired(va, vb)
    t = t or _Text()
    _comparison(t, what, a, b, pr, scale, unit, spec)
    f = t.finding(paired=pr)
    found.append(f)
    verdicts.append((f, a, b, verb))


def _finish(found: list[Finding], verdicts: list[tuple[Finding, str, str, str]]) -> list[Finding]:
    """Holm-adjust the family of p-values and write each comparison's verdict."""
    tested = [f for f, *_ in verdicts if f.paired is not None and f.paired.n >= 2
              and not (f.paired.identical and (f.paired.diff.mean == 0 or f.paired.test != "permutation"))]
    adjusted = holm([f.paired.p for f in tested])
    adj = {id(f): p for f, p in zip(tested, adjusted, strict=True)}
    for f, a, b, higher in verdicts:
        _verdict(f, adj.get(id(f), math.nan), a, b, higher)
    if tested:
        plural = "s" if len(tested) != 1 else ""
        found.append(Finding(f"p-values are Holm-adjusted over the {len(tested)} paired comparison{plural} above.",
                             [("family", len(tested), "d")]))
    return found


# ----------------------------------------------------------------------------------- training studies


def _acc(run: Run, c: CellData) -> dict[int, float]:
    return run.replicas(c, "final_test_acc")


def _where(c: CellData, depths: bool) -> str:
    return ", ".join(p for p in ((f"depth {c.depth}" if depths else ""), c.context) if p)


def _groups(run: Run) -> dict[tuple[int | None, str], list[CellData]]:
    g: dict[tuple[int | None, str], list[CellData]] = {}
    for c in run.done:
        g.setdefault((c.depth, c.context), []).append(c)
    return g


def _ranked(run: Run, cells: list[CellData]) -> list[tuple[CellData, float]]:
    means = [(c, mean_ci(list(_acc(run, c).values())).mean) for c in cells]
    return sorted(means, key=lambda cm: -np.nan_to_num(cm[1], nan=-1.0))


def _label(c: CellData, many_depths: bool) -> str:
    where = _where(c, many_depths)
    return c.series + (f" ({where})" if where else "")


def _estimate(t: _Text, e: Estimate, spec: str = ".3f") -> None:
    """'m (95 % CI [lo, hi], n = k)', or 'm on all k seeds' when every seed gave the same value."""
    if e.constant:
        t("{m} on all {n} seeds", m=(e.mean, spec), n=(e.n, "d"))
    elif e.n >= 2:
        t("{m} (95 % CI [{lo}, {hi}], n = {n})", m=(e.mean, spec), lo=(e.lo, spec), hi=(e.hi, spec), n=(e.n, "d"))
    else:
        t("{m} (n = {n})", m=(e.mean, spec), n=(e.n, "d"))


def _highest(run: Run, st: Stats, cells: list[CellData], many_depths: bool) -> Finding:
    """The cell with the highest mean final test accuracy, and every cell tied with it: equal on every paired
    seed, or not separated by the paired sign-flip test (p >= 0.05, unadjusted: a tie is not a finding that
    needs a family correction), or with fewer than two paired seeds to tell them apart."""
    ranked = [c for c, _ in _ranked(run, cells)]
    best = ranked[0]
    t = _Text()
    t(f"Highest mean final test accuracy: {_label(best, many_depths)}: ")
    _estimate(t, st.mean(list(_acc(run, best).values()), bounds=(0.0, 1.0)))
    ties = []
    for c in ranked[1:]:
        pr = st.paired(_acc(run, best), _acc(run, c))
        if pr.n < 2:
            ties.append((c, "too few paired seeds to separate them", pr))
        elif pr.identical and pr.diff.mean == 0:
            ties.append((c, "equal on every seed", pr))
        elif pr.p >= ALPHA:
            at_floor = pr.p <= 2 / 2 ** pr.n * (1 + 1e-9)
            ties.append((c, f"paired difference {pr.diff.mean:.3f}, sign-flip p = {pr.p:.2g}" + (
                f": every seed favours {best.series}, but {pr.n} seeds are too few to separate them" if at_floor else ""),
                pr))
    floors = {2 / 2 ** pr.n for _, _, pr in ties if pr.n >= 2}
    if len(ties) == len(ranked) - 1 > 2 and floors and min(floors) >= ALPHA:  # n too small for any test at all
        n = min(pr.n for _, _, pr in ties)
        t(". With {n} paired seeds no difference can reach p < 0.05 (the exact sign-flip test's smallest p is "
          "{floor}), so the data cannot separate it from any of the other {k} cells; run more seeds",
          n=(n, "d"), floor=(min(floors), ".2g"), k=(len(ties), "d"))
    elif ties:
        shown = ties[:MAX_TIES]
        t(". Tied with it (the data cannot separate them): " + "; ".join(
            f"{_label(c, many_depths)} ({why})" for c, why, _ in shown)
          + (f"; and {len(ties) - len(shown)} more" if len(ties) > len(shown) else ""))
    return t(".").finding()


def training_findings(run: Run, st: Stats = Stats()) -> list[Finding]:
    """Best cell; paired series comparisons per (depth, context); depth trends per series; divergences."""
    found: list[Finding] = []
    verdicts: list[tuple[Finding, str, str, str]] = []
    done = run.done
    if not done:
        return [Finding("No cell has finished yet: there is nothing to report.")]
    many_depths = len(run.depths()) > 1
    found.append(_highest(run, st, done, many_depths))
    for cells in _groups(run).values():
        ranked = [c for c, _ in _ranked(run, cells)]
        if len(ranked) < 2:
            continue
        pairs = list(itertools.combinations(ranked, 2)) if len(ranked) <= MAX_PAIRS else \
            [(ranked[0], ranked[1]), (ranked[0], ranked[-1])]
        for a, b in pairs:
            where = _where(a, many_depths)
            _compare(found, verdicts, st, f"At {where} (final test accuracy)" if where else "Final test accuracy",
                     a.series, b.series, _acc(run, a), _acc(run, b), "is more accurate", 100, " points", ".1f")
    if many_depths:
        for s in run.series():
            for ctx in run.contexts():
                cells = sorted((c for c in done if c.series == s and c.context == ctx), key=lambda c: c.depth)
                if len(cells) < 2:
                    continue
                lo_c, hi_c = cells[0], cells[-1]
                a_est, b_est = (st.mean(list(_acc(run, c).values()), bounds=(0.0, 1.0)) for c in (lo_c, hi_c))
                t = _Text()
                t(f"{s}" + (f" ({ctx})" if ctx else "") + ": final test accuracy {a} at depth {d0} and {b} at depth "
                  "{d1}. ", a=(a_est.mean, ".3f"), b=(b_est.mean, ".3f"), d0=(lo_c.depth, "d"), d1=(hi_c.depth, "d"))
                _compare(found, verdicts, st, "Depth effect", f"depth {hi_c.depth}", f"depth {lo_c.depth}",
                         _acc(run, hi_c), _acc(run, lo_c), "is more accurate", 100, " points", ".1f", t)
    for c in done:
        k = run.diverged(c)
        if k:
            t = _Text()
            t(f"{c.series}" + (f" ({_where(c, many_depths)})" if _where(c, many_depths) else "") +
              ": {k} of {n} replicas diverged (NaN or inf loss); their numbers are excluded, and n says so.",
              k=(k, "d"), n=(len(run.replicas(c)), "d"))
            found.append(t.finding())
    found += _trainability(run)
    _rescue(run, st, found, verdicts)
    found += [Finding(note) for note in direction_notes(run)]
    failed = [c for c in run.cells if c.status != "done"]
    if failed:
        found.append(Finding(f"{len(failed)} cell(s) did not finish ({', '.join(sorted({c.status for c in failed}))});"
                             " they are left out of every number here.", [("unfinished", len(failed), "d")]))
    return _finish(found, verdicts)


def _rescue(run: Run, st: Stats, found: list[Finding], verdicts: list) -> None:
    """Where a study grids model.transform (none, dks, tat) over depth: per activation, at the deepest depth,
    each transform against the plain network, and against the plain network at the shallowest depth (the
    papers' claim: transformed deep vanilla networks train nearly as well as shallow ones, plain ones fail)."""
    cells = [c for c in run.done if c.depth is not None]
    if len({c.model.get("transform", "none") for c in cells}) < 2:
        return
    top, low = max(c.depth for c in cells), min(c.depth for c in cells)
    for act in dict.fromkeys(c.model["activation"] for c in cells):
        at = {(c.model.get("transform", "none"), c.depth): c for c in cells if c.model["activation"] == act}
        plain_deep, plain_shallow = at.get(("none", top)), at.get(("none", low))
        for tr in ("dks", "tat"):
            deep = at.get((tr, top))
            if deep is None:
                continue
            t = _Text()
            if plain_deep is not None:
                _compare(found, verdicts, st, f"{act} at depth {top} (final test accuracy)", tr.upper(), "plain",
                         _acc(run, deep), _acc(run, plain_deep), "is more accurate", 100, " points", ".1f", t)
            if plain_shallow is not None and low < top:
                _compare(found, verdicts, st, f"{act}, {tr.upper()} at depth {top} against plain at depth {low}",
                         f"{tr.upper()} depth {top}", f"plain depth {low}", _acc(run, deep), _acc(run, plain_shallow),
                         "is more accurate", 100, " points", ".1f")
            if plain_deep is not None and plain_shallow is not None and low < top:
                found.append(_rescue_verdict(run, st, act, tr, top, low, deep, plain_deep, plain_shallow))


RESCUE_MARGIN = 0.05  # "nearly as well as shallow": within 5 accuracy points of the plain shallow network


def _rescue_verdict(run: Run, st: Stats, act: str, tr: str, top: int, low: int, deep: CellData,
                    plain_deep: CellData, plain_shallow: CellData) -> Finding:
    """The papers' claim for one activation and method, judged from the paired 95 % CIs (not p-values, which
    three seeds cannot bring below 0.25): rescued (transformed − plain at depth `top` above 0) and nearly as
    good as shallow (transformed at `top` − plain at `low` above −RESCUE_MARGIN)."""
    lift = st.paired(_acc(run, deep), _acc(run, plain_deep)).diff
    gap = st.paired(_acc(run, deep), _acc(run, plain_shallow)).diff
    t = _Text()
    t(f"The papers' claim for {act} with {tr.upper()}: ")
    if not (np.isfinite(lift.lo) and np.isfinite(gap.lo)):
        t("too few paired seeds for an interval.")
        return t.finding()
    rescued, near, far = lift.lo > 0, gap.lo > -RESCUE_MARGIN, gap.hi < -RESCUE_MARGIN
    t("at depth {top} it lifts accuracy by {l} points (95 % CI [{llo}, {lhi}]) over the plain network, and "
      "against the plain network at depth {low} it differs by {g} points ([{glo}, {ghi}]); ", top=(top, "d"),
      low=(low, "d"), l=(100 * lift.mean, ".1f"), llo=(100 * lift.lo, ".1f"), lhi=(100 * lift.hi, ".1f"),
      g=(100 * gap.mean, ".1f"), glo=(100 * gap.lo, ".1f"), ghi=(100 * gap.hi, ".1f"))
    if rescued and near:
        t("so it holds here: rescued, and within {m} points of the shallow network.", m=(100 * RESCUE_MARGIN, ".0f"))
    elif rescued and far:
        t("so it holds in part: rescued, but more than {m} points below the shallow network.",
          m=(100 * RESCUE_MARGIN, ".0f"))
    elif rescued:
        t("rescued; whether it comes within {m} points of the shallow network these seeds do not settle.",
          m=(100 * RESCUE_MARGIN, ".0f"))
    else:
        t("the interval of the lift includes 0, so these seeds do not show a rescue.")
    return t.finding()


def _trainability(run: Run) -> list[Finding]:
    """Where a study grids σ_w² and depth: does trainability follow mean-field theory's 6 ξ_c? Each cell is
    judged trained or not from its mean test accuracy; theory's rule (depth ≤ 6 ξ_c at that σ_w²) is scored
    against the best rule that ignores σ_w² (one depth limit for every σ_w², chosen after seeing the data,
    which favours it), with an exact McNemar test on the cells where the two rules disagree."""
    out = []
    for t in predictions.trainability(run):
        agree, judged, over, under = t.agreement()
        if not judged:
            continue
        truth = {(d, j): t.acc[i, j] > t.threshold for i, d in enumerate(t.depths) for j in range(len(t.sw2))
                 if np.isfinite(t.acc[i, j]) and not math.isnan(t.six_xi[j])}
        theory_ok = {key: truth[key] == (key[0] <= t.six_xi[key[1]]) for key in truth}
        best_limit, best_ok = None, None
        for limit in [0, *t.depths]:
            ok = {key: truth[key] == (key[0] <= limit) for key in truth}
            if best_ok is None or sum(ok.values()) > sum(best_ok.values()):
                best_limit, best_ok = limit, ok
        b = sum(theory_ok[k] and not best_ok[k] for k in truth)
        c = sum(best_ok[k] and not theory_ok[k] for k in truth)
        p = float(sps.binomtest(b, b + c).pvalue) if b + c else 1.0
        share = proportion_ci(agree, judged)
        x = _Text()
        x(f"{t.activation}, σ_b² = {t.sb2:.3g}: a cell counts as trained when its mean test accuracy exceeds {{thr}} "
          f"({'chance' if t.chance_known else 'the worst cell'} {{ch}} plus a quarter of the way to the best cell). "
          "In {k} of {n} cells ({p} %, 95 % CI [{lo}, "
          "{hi}] %, exact) trained or not agrees with mean-field theory's depth ≤ 6 ξ_c; ",
          thr=(t.threshold, ".2f"), ch=(t.chance, ".2f"), k=(agree, "d"), n=(judged, "d"),
          p=(100 * share.p, ".0f"), lo=(100 * share.lo, ".0f"), hi=(100 * share.hi, ".0f"))
        x("{o} trained deeper than 6 ξ_c and {u} did not train within it. The best single depth limit that ignores "
          "σ_w² (depth ≤ {lim}, chosen after seeing the data) agrees in {k0} cells. ", o=(over, "d"), u=(under, "d"),
          lim=(best_limit, "d"), k0=(sum(best_ok.values()), "d"))
        beyond = sum(1 for (d, j) in truth if d > t.six_xi[j])
        if over == 0 and beyond:
            x("No cell trained deeper than 6 ξ_c ({nb} cells lie beyond it): as an upper bound on trainable depth, "
              "theory held in every cell. ", nb=(beyond, "d"))
        if b + c == 0:
            x("The two rules never disagree here, so these cells cannot tell whether trainable depth tracks ξ_c.")
        elif agree > sum(best_ok.values()) and p < 0.05:
            x("Trainable depth tracks 6 ξ_c: theory is right in {b} cells where the depth limit is wrong, and wrong "
              "in {c} where it is right (exact McNemar p = {pv}).", b=(b, "d"), c=(c, "d"), pv=(p, ".2g"))
        elif c > b and p < 0.05:
            x("Here one depth limit explains trainability better than 6 ξ_c: theory is right in {b} cells where the "
              "limit is wrong and wrong in {c} where it is right (exact McNemar p = {pv}; the limit was chosen after "
              "seeing the data, which favours it).", b=(b, "d"), c=(c, "d"), pv=(p, ".2g"))
        else:
            x("These cells do not show trainable depth tracking 6 ξ_c better than one depth limit: theory is right "
              "in {b} cells where the limit is wrong and wrong in {c} where it is right (exact McNemar p = {pv}).",
              b=(b, "d"), c=(c, "d"), pv=(p, ".2g"))
        x(" Cells are treated as independent; this p is not part of the Holm family of the paired comparisons.")
        out.append(x.finding())
    return out


# ---------------------------------------------------------------------------------------- simulations


def _by_seed(rows: list[dict], key: str, fn=lambda v: v) -> dict[int, float]:
    return {r["seed"]: (np.nan if r.get(key) is None else fn(float(r[key]))) for r in rows}


def _gradient_flow(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found, verdicts = [], []
    for depth, r in source_ratios(rows).items():
        t = _Text()
        t("Seed 003's toy at depth {depth}: mean‖g‖ ratio {v}", depth=(depth, "d"), v=(r.mean, ".3g"))
        if np.isfinite(r.lo):
            t(" (95 % CI [{lo}, {hi}], paired bootstrap over seeds", lo=(r.lo, ".3g"), hi=(r.hi, ".3g"))
            t(", n = {n} simulations).", n=(r.n, "d"))
        else:
            t(" (n = {n} simulations).", n=(r.n, "d"))
        found.append(t.finding())
    try:
        predicted = predictions.toy_gradient(rows)
    except ActlabError:  # a user's activation the reader cannot import: no prediction
        predicted = {}
    for depth, (theory, rms) in predicted.items():
        t = _Text()
        t("Mean-field theory for the toy at depth {depth}: root-mean-square ratio (χ_a/χ_b)^(L/2) = {p}; measured "
          "{m}", depth=(depth, "d"), p=(theory, ".3g"), m=(rms.mean, ".3g"))
        if np.isfinite(rms.lo):
            inside = rms.lo <= theory <= rms.hi
            t(" (95 % CI [{lo}, {hi}], paired bootstrap, n = {n}): " + ("theory inside the interval." if inside else
              "theory outside the interval."), lo=(rms.lo, ".3g"), hi=(rms.hi, ".3g"), n=(rms.n, "d"))
        else:
            t(" (n = {n}).", n=(rms.n, "d"))
        found.append(t.finding())
    real = [r for r in rows if r.get("method") == "real"]
    if not real:
        return found, verdicts
    top = max(r["depth"] for r in real)
    g = summary.group([r for r in real if r["depth"] == top], "activation", "init")
    try:
        predicted_real = predictions.real_gradient(real)
    except ActlabError:  # a user's activation the reader cannot import: no prediction
        predicted_real = {}
    for (act, init), rs in g.items():
        e, zero = summary.log_ratio(rs, st.ci), summary.vanished(rs)
        t = _Text()
        t(f"At depth {{depth}} (real backprop), {act} + {init}: ", depth=(top, "d"))
        if e.n:
            t("the first layer's gradient norm is {r}× the last layer's (geometric mean", r=(10 ** e.mean, ".3g"))
            if e.n > 1:
                t(", 95 % CI [{lo}, {hi}]", lo=(10 ** e.lo, ".3g"), hi=(10 ** e.hi, ".3g"))
            t(", n = {n})", n=(e.n, "d"))
        if zero:
            t(("; in " if e.n else "in ") + "{z} of {m} seeds every entry of the first layer's gradient was exactly "
              "0 (it vanished entirely)", z=(zero, "d"), m=(len(rs), "d"))
        t(".")
        p = predicted_real.get((act, init), {}).get(top)
        if p is not None and np.isfinite(p) and e.n > 1 and np.isfinite(e.lo):
            t(" Mean-field theory predicts {p}×: ", p=(10 ** p, ".3g"))
            if e.lo <= p <= e.hi:
                t("inside the interval.")
            else:
                t("outside the interval, by {d} decades (measured {f}× theory). Theory is the infinite-width "
                  "limit; at width {w} and depth {depth} finite-width corrections remain.",
                  d=(e.mean - p, "+.2g"), f=(10 ** (e.mean - p), ".3g"), w=(int(rs[0].get("width", 0)), "d"),
                  depth=(top, "d"))
        found.append(t.finding())
    for ka, kb in itertools.combinations(list(g), 2):
        # log10 of a ratio of exactly 0 (every entry 0) is undefined: such seeds drop out of the pairs, n says so
        la, lb = (_by_seed(g[k], "ratio", lambda v: math.log10(v) if v > 0 else math.nan) for k in (ka, kb))
        _compare(found, verdicts, st, f"log10 ratio at depth {top} (real backprop)", ka[0], kb[0], la, lb,
                 "passes more gradient to the first layer")
    return found, verdicts


def _dead_neurons(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found = []
    for (panel, cond), rs in summary.group(rows, "panel", "condition").items():
        e = st.mean(summary.values(rs, "dead_fraction"), bounds=(0.0, 1.0))
        what = "dead (never positive)" if panel == "bias" or cond == "relu" else "inactive (never above 0)"
        t = _Text()
        t(f"{cond}: {{m}} of the units are {what}" if e.constant else
          f"{cond}: on average {{m}} of the units are {what} (95 % CI [{{lo}}, {{hi}}], n = {{n}})",
          m=(e.mean, ".1%"), lo=(e.lo, ".1%"), hi=(e.hi, ".1%"), n=(e.n, "d"))
        t(" on all {n} seeds." if e.constant else ".", n=(e.n, "d"))
        found.append(t.finding())
    zero, poor = ({r["seed"]: r["dead_units"] for r in rows if r["condition"] == c} for c in ("zero_bias", "poor_init"))
    if zero and poor and zero == poor:
        found.append(Finding("poor_init equals zero_bias on every seed, by construction: the source's code draws the "
                             "'poor init' hidden weights but never uses them, so that condition changes nothing."))
    return found, []


def _dead_neurons_trained(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found, verdicts = [], []
    last = max(r["epoch"] for r in rows)
    per: dict[str, dict[int, float]] = {}
    for (cond,), rs in summary.group([r for r in rows if r["epoch"] == last], "condition").items():
        per[cond] = {s: float(np.mean([r["dead_fraction"] for r in rs if r["seed"] == s]))
                     for s in dict.fromkeys(r["seed"] for r in rs)}
        e = st.mean(list(per[cond].values()), bounds=(0.0, 1.0))
        t = _Text()
        if e.n == 0:  # a replica that diverged has NaN statistics
            t(f"{cond}: after {{ep}} epochs the dead fraction cannot be measured: all {{k}} replicas diverged (NaN "
              "loss); it is measured at initialisation only.",
              ep=(last, "d"), k=(len(per[cond]), "d"))
        else:
            t(f"{cond}: after {{ep}} epochs, {{m}} of the hidden ReLU units are dead on average over layers (95 % "
              "CI [{lo}, {hi}], n = {n}).", ep=(last, "d"), m=(e.mean, ".3f"), lo=(e.lo, ".3f"), hi=(e.hi, ".3f"),
              n=(e.n, "d"))
        found.append(t.finding())
    base = next(iter(per), None)
    for cond in list(per)[1:]:
        _compare(found, verdicts, st, f"Dead fraction after {last} epochs", cond, base, per[cond], per[base],
                 "leaves more units dead", spec=".3f")
    return found, verdicts




def _selu(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    """"Self-normalising" is judged by theory's variance map (`meanfield`): a finite, attracting fixed point
    q* > 0 (|V′(q*)| < 1) is what the word means; a neutral one (ReLU + He: every q is fixed), none (the variance
    grows) or q* = 0 (the signal fades) is not. The measurement is then checked against theory's prediction
    for the last layer's mean and variance, inside their 95 % CIs or not."""
    found = []
    top = max(r["layer"] for r in rows)
    for (act, init), rs in summary.group(rows, "activation", "init").items():
        last = [r for r in rs if r["layer"] == top]
        m, v = st.mean(summary.values(last, "mean")), st.mean(summary.values(last, "variance"), bounds=(0.0, math.inf))
        t = _Text()
        t(f"{act} + {init}, layer {{top}}: measured mean {{m}} and variance {{v}} (95 % CIs [{{mlo}}, {{mhi}}] and "
          "[{vlo}, {vhi}], n = {n}). ", top=(top, "d"), m=(m.mean, ".3g"), mlo=(m.lo, ".3g"), mhi=(m.hi, ".3g"),
          v=(v.mean, ".3g"), vlo=(v.lo, ".3g"), vhi=(v.hi, ".3g"), n=(m.n, "d"))
        try:
            means, variances, r = predictions.selfnorm(act, init, top)
        except ActlabError as e:  # a user's activation the reader cannot import: no prediction
            t(f"No mean-field prediction: {e}.")
            found.append(t.finding())
            continue
        if r.q_star is None:
            t("Mean-field theory: the variance grows without bound (no finite fixed point), so it is not "
              "self-normalising")
        elif r.q_star == 0:
            t("Mean-field theory: the variance fades to 0 (V′(0) = {s}), so it is not self-normalising",
              s=(r.q_slope, ".3g"))
        elif not r.q_stable:
            t("Mean-field theory: q* = {q} is neutral (V′(q*) = {s}): every variance stays where it starts, none is "
              "attracting, so it is not self-normalising", q=(r.q_star, ".4g"), s=(r.q_slope, ".4g"))
        else:
            t("Mean-field theory: the variance map has an attracting fixed point q* = {q} (V′(q*) = {s}, approached "
              "with depth scale ξ_q = {xi} layers), so it is self-normalising in Klambauer et al.'s sense (an "
              "attracting fixed point, wherever it lies; SELU + LeCun puts it at mean 0 and variance 1)",
              q=(r.q_star, ".4g"), s=(r.q_slope, ".3g"), xi=(r.xi_q, ".2g"))
        pm, pv = float(means[-1]), float(variances[-1])
        if math.isfinite(pm) and math.isfinite(pv):
            inside = m.lo <= pm <= m.hi and v.lo <= pv <= v.hi
            t("; it predicts mean {pm} and variance {pv} at layer {top}, " + (
                "both inside the measured CIs." if inside else "not both inside the measured CIs."), pm=(pm, ".3g"),
              pv=(pv, ".3g"), top=(top, "d"))
        else:
            t(".")
        found.append(t.finding())
    return found, []


def _xor(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    """Time to threshold is censored: a seed that never reached it counts at the horizon, never dropped."""
    found, verdicts = [], []
    g = summary.group(rows, "activation")
    restricted: dict[str, dict[int, float]] = {}
    for (act,), rs in g.items():
        horizon = max(r.get("horizon") or 0 for r in rs) or max(len(r.get("loss_curve") or []) for r in rs)
        tte = time_to_event([r["epochs_to_threshold"] for r in rs], horizon)
        restricted[act] = {r["seed"]: float(horizon if r["epochs_to_threshold"] is None else r["epochs_to_threshold"])
                           for r in rs}
        t = _Text()
        t(f"{act}: {{k}} of {{n}} seeds reached the threshold within {{h}} epochs (proportion {{p}}, exact 95 % CI "
          "[{plo}, {phi}])", k=(tte.reached.k, "d"), n=(tte.n, "d"), h=(horizon, "d"), p=(tte.reached.p, ".2f"),
          plo=(tte.reached.lo, ".2f"), phi=(tte.reached.hi, ".2f"))
        if tte.reached.k:
            t("; Kaplan–Meier median " + tte.format_median(unit=" epochs") + "; restricted mean {rm} epochs (seeds "
              "that never reached it count as {h})", rm=(tte.rmst, ".0f"), h=(horizon, "d"))
        t(".")
        found.append(t.finding())
    acts = [a for (a,) in g]
    for a, b in itertools.combinations(acts, 2):
        _compare(found, verdicts, st, "Epochs to threshold, every seed (never reached = the horizon)", a, b,
                 restricted[a], restricted[b], "is slower", unit=" epochs", spec=".0f")
    return found, verdicts


def _gelu(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found = []
    for r in rows:
        t = _Text()
        t(f"{r['approximation']} ({r['formula']}): largest |error| {{e}} at x = ±{{x}} over [{{lo}}, {{hi}}]; mean "
          "|error| {m}.", e=(r["max_abs_error"], ".3e"), x=(r["at_x"], ".4f"), lo=(r["lo"], "g"), hi=(r["hi"], "g"),
          m=(r["mean_abs_error"], ".3e"))
        found.append(t.finding())
    return found, []


def _ffn(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found, verdicts = [], []
    g = summary.group(rows, "activation")
    for (act,), rs in g.items():
        m, s = st.mean(summary.values(rs, "mean")), st.mean(summary.values(rs, "std"))
        t = _Text()
        t(f"{act}: FFN output mean {{m}} (95 % CI [{{mlo}}, {{mhi}}]) and std {{s}} (95 % CI [{{slo}}, {{shi}}]), "
          "n = {n}.", m=(m.mean, ".3g"), mlo=(m.lo, ".3g"), mhi=(m.hi, ".3g"), s=(s.mean, ".3g"), slo=(s.lo, ".3g"),
          shi=(s.hi, ".3g"), n=(m.n, "d"))
        try:
            predicted = predictions.ffn_std(act)
        except ActlabError:  # a user's activation the reader cannot import: no prediction
            predicted = math.nan
        if math.isfinite(predicted):
            t(" Mean-field theory (He-normal weights, pre-activation variance 2) predicts std √(2 E[φ(√2 z)²]) = "
              "{p}" + ((": inside the interval." if s.lo <= predicted <= s.hi else ": outside the interval.")
                       if math.isfinite(s.lo) else " (one run: no interval to hold it against)."),
              p=(predicted, ".3g"))
        found.append(t.finding())
    for a, b in itertools.combinations([a for (a,) in g], 2):
        _compare(found, verdicts, st, "FFN output std", a, b, _by_seed(g[(a,)], "std"), _by_seed(g[(b,)], "std"),
                 "gives the wider output")
    return found, verdicts


EQUIVALENCE_POINTS = 2.0  # linear-collapse: a difference whose whole 95 % CI lies within ± this many points


def _linear_collapse(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found, verdicts = [], []
    g = summary.group(rows, "model", "depth")
    lr = g.get(("logistic regression", 0))
    if lr is None:
        return found, verdicts
    base = _by_seed(lr, "test_acc")
    equivalence: list[Finding] = []
    diffs = [v for (m, _), rs in g.items() if m == "identity" for v in summary.values(rs, "max_abs_diff")]
    if diffs:
        t = _Text()
        t("Over {n} trained identity networks the largest |logit − (x W_eff + b_eff)| on the test set, W_eff the "
          "product of its weight matrices in float64, is {d}" + (": each is one linear map, to float32 rounding."
                                                                  if max(diffs) < 1e-4 else "."),
          n=(len(diffs), "d"), d=(max(diffs), ".2g"))
        found.append(t.finding())
    for (model, depth), rs in g.items():
        if model == "logistic regression":
            continue
        label = f"{model} (depth {depth})"
        va = _by_seed(rs, "test_acc")
        pr = st.paired(va, base)
        t = _Text()
        _compare(found, verdicts, st, "test accuracy", label, "logistic regression", va, base, "is more accurate",
                 scale=100, unit=" points", spec=".2f", t=t)
        if model == "identity" and pr.n >= 2 and np.isfinite(pr.diff.lo):
            inside = pr.diff.lo >= -EQUIVALENCE_POINTS / 100 and pr.diff.hi <= EQUIVALENCE_POINTS / 100
            e = _Text()
            e(f"{label} against logistic regression on this test set: the 95 % CI of the difference over seeds, "
              "[{lo}, {hi}] points, "
              + ("lies inside ±{eq} points: equivalent within that margin." if inside else
                 "reaches past ±{eq} points: not shown equivalent within that margin."),
              lo=(100 * pr.diff.lo, ".2f"), hi=(100 * pr.diff.hi, ".2f"), eq=(EQUIVALENCE_POINTS, "g"))
            equivalence.append(e.finding())
    return found + equivalence, verdicts


SIMULATION_FINDINGS = {"gradient-flow": _gradient_flow, "dead-neurons": _dead_neurons,
                       "dead-neurons-trained": _dead_neurons_trained, "selu-selfnorm": _selu,
                       "xor-speed": _xor, "gelu-approx": _gelu, "ffn-stats": _ffn,
                       "linear-collapse": _linear_collapse}


def findings(run: Run, ci: str = "t") -> list[Finding]:
    """The study's findings, from its store; `ci` is the CI method of every mean and difference (t, bootstrap)."""
    st = Stats(ci)
    if run.kind == "train":
        return training_findings(run, st)
    rows = run.sim_rows()
    name = run.study["config"]["simulation"]["name"]
    if not rows:
        return [Finding("No simulation rows are stored yet: there is nothing to report.")]
    found, verdicts = SIMULATION_FINDINGS[name](rows, st)
    return _finish(found, verdicts)
