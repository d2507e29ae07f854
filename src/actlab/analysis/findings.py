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

import numpy as np
from scipy import stats as sps

from actlab.analysis import generative, guide, language, predictions, recurrent, simulations
from actlab.analysis.published import direction_notes
from actlab.analysis.statements import ALPHA, Finding, Stats, Text, compare, finish
from actlab.analysis.stats import (
    Estimate,
    mean_ci,
    proportion_ci,
)
from actlab.store.results import CellData, Run

MAX_TIES = 5  # cells named as tied with the best; past that, how many more
MAX_PAIRS = 3  # series per comparison group compared pairwise; past that, the best vs the runner-up and the worst


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


def _estimate(t: Text, e: Estimate, spec: str = ".3f") -> None:
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
    t = Text()
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
            floor = 2 / 2 ** pr.n
            d = pr.diff
            interval = (f"the 95 % interval of the difference, [{100 * d.lo:.1f}, {100 * d.hi:.1f}] points, "
                        f"{'excludes' if d.lo > 0 or d.hi < 0 else 'includes'} 0")
            if pr.p <= floor * (1 + 1e-9):  # every seed on one side: the exact test's floor, not the data, decides
                why = (f"every seed favours {best.series}, but {pr.n} seeds cannot reach p < 0.05 in an exact test "
                       f"(its smallest p is {floor:.2g}); {interval}")
            else:
                why = f"paired difference {100 * d.mean:.1f} points, sign-flip p = {pr.p:.2g}; {interval}"
            ties.append((c, why, pr))
    floors = {2 / 2 ** pr.n for _, _, pr in ties if pr.n >= 2}
    if len(ties) == len(ranked) - 1 > 2 and floors and min(floors) >= ALPHA:  # n too small for any test at all
        n = min(pr.n for _, _, pr in ties)
        t(". With {n} paired seeds no difference can reach p < 0.05 (the exact sign-flip test's smallest p is "
          "{floor}), so the data cannot separate it from any of the other {k} cells; run more seeds",
          n=(n, "d"), floor=(min(floors), ".2g"), k=(len(ties), "d"))
    elif ties:
        shown = ties[:MAX_TIES]
        t(". Not separated from it by the exact paired test (p ≥ 0.05): " + "; ".join(
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
            compare(found, verdicts, st, f"At {where} (final test accuracy)" if where else "Final test accuracy",
                     a.series, b.series, _acc(run, a), _acc(run, b), "is more accurate", 100, " points", ".1f")
    if many_depths:
        for s in run.series():
            for ctx in run.contexts():
                cells = sorted((c for c in done if c.series == s and c.context == ctx), key=lambda c: c.depth)
                if len(cells) < 2:
                    continue
                lo_c, hi_c = cells[0], cells[-1]
                a_est, b_est = (st.mean(list(_acc(run, c).values()), bounds=(0.0, 1.0)) for c in (lo_c, hi_c))
                t = Text()
                t(f"{s}" + (f" ({ctx})" if ctx else "") + ": final test accuracy {a} at depth {d0} and {b} at depth "
                  "{d1}. ", a=(a_est.mean, ".3f"), b=(b_est.mean, ".3f"), d0=(lo_c.depth, "d"), d1=(hi_c.depth, "d"))
                compare(found, verdicts, st, "Depth effect", f"depth {hi_c.depth}", f"depth {lo_c.depth}",
                         _acc(run, hi_c), _acc(run, lo_c), "is more accurate", 100, " points", ".1f", t)
    for c in done:
        k = run.diverged(c)
        if k:
            t = Text()
            t(f"{c.series}" + (f" ({_where(c, many_depths)})" if _where(c, many_depths) else "") +
              ": {k} of {n} replicas diverged (NaN or inf loss); their numbers are excluded, and n says so.",
              k=(k, "d"), n=(len(run.replicas(c)), "d"))
            found.append(t.finding())
    found += _trainability(run)
    found += _drift(run, st)
    _rescue(run, st, found, verdicts)
    found += [Finding(note) for note in direction_notes(run)]
    failed = [c for c in run.cells if c.status != "done"]
    if failed:
        found.append(Finding(f"{len(failed)} cell(s) did not finish ({', '.join(sorted({c.status for c in failed}))});"
                             " they are left out of every number here.", [("unfinished", len(failed), "d")]))
    return finish(found, verdicts)


def _drift(run: Run, st: Stats) -> list[Finding]:
    """Where a study grids model.norm: per cell, how far its pre-activations moved during training (Ioffe &
    Szegedy 2015's "internal covariate shift"): the mean over hidden layers of |mean z| and of std z, at the
    first and the last probe epoch, each a mean over seeds with its 95 % CI."""
    if "norm" not in {k.split(".")[-1] for k in run.study["config"].get("grid", {})}:
        return []
    out = []
    for c in run.done:
        epochs = run.probe_epochs(c)
        if len(epochs) < 2:
            continue
        t = Text()
        t(f"{c.series} ({c.context}): pre-activations per hidden layer, averaged over layers, from epoch {{e0}} to "
          "{e1}: |mean z| ", e0=(epochs[0], "d"), e1=(epochs[-1], "d"))
        for i, stat in enumerate(("z_mean", "z_std")):
            ests = []
            for e in (epochs[0], epochs[-1]):
                names, v = run.probe(c, stat, e)
                hidden = [j for j, n in enumerate(names) if n != "output"]
                ests.append(st.mean(np.nanmean(np.abs(v[:, hidden]), axis=1), bounds=(0.0, math.inf)))
            t(("" if not i else "; std z ") + f"{{a{i}}} [{{a{i}lo}}, {{a{i}hi}}] → {{b{i}}} [{{b{i}lo}}, {{b{i}hi}}]",
              **{f"a{i}": (ests[0].mean, ".3g"), f"a{i}lo": (ests[0].lo, ".3g"), f"a{i}hi": (ests[0].hi, ".3g"),
                 f"b{i}": (ests[1].mean, ".3g"), f"b{i}lo": (ests[1].lo, ".3g"), f"b{i}hi": (ests[1].hi, ".3g")})
        t(" (95 % CIs over {n} seeds; BatchNorm's outputs, where it is on).", n=(ests[1].n, "d"))
        out.append(t.finding())
    return out


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
            t = Text()
            if plain_deep is not None:
                compare(found, verdicts, st, f"{act} at depth {top} (final test accuracy)", tr.upper(), "plain",
                         _acc(run, deep), _acc(run, plain_deep), "is more accurate", 100, " points", ".1f", t)
            if plain_shallow is not None and low < top:
                compare(found, verdicts, st, f"{act}, {tr.upper()} at depth {top} against plain at depth {low}",
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
    t = Text()
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
        x = Text()
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


def findings(run: Run, ci: str = "t") -> list[Finding]:
    """The study's findings, from its store; `ci` is the CI method of every mean and difference (t, bootstrap).
    A training study that decides claims of the selection guide ends with their verdicts (actlab.analysis.guide:
    a Holm family of their own)."""
    st = Stats(ci)
    if run.kind == "train":
        found = (generative.generative_findings(run, st) if generative.is_generative(run) else
                 recurrent.recurrent_findings(run, st) if recurrent.is_recurrent(run) else
                 language.language_findings(run, st) if language.is_language(run) else training_findings(run, st))
        return found + [Finding(cv.sentence()) for cv in guide.claim_verdicts(run)]
    rows = run.sim_rows()
    name = run.study["config"]["simulation"]["name"]
    if not rows:
        return [Finding("No simulation rows are stored yet: there is nothing to report.")]
    found, verdicts = simulations.FINDINGS[name](rows, st)
    return finish(found, verdicts)
