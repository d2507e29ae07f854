"""The findings' grammar: a sentence that records every number it states (`Text`, `Finding`), the estimates
behind it (`Stats`: the CI method of every mean and paired difference), and paired comparisons whose verdicts
are written after the Holm adjustment of their study's family of p-values (`compare`, then `finish`).

Comparisons are paired over the seeds both cells share (`stats.paired_difference`, the exact sign-flip
permutation test). A difference is called one only when its adjusted p is below 0.05; otherwise the sentence
says the data do not support a difference, with the interval that shows why, or that every seed favours one
side but n seeds are too few for the test (its floor is 2/2ⁿ).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from actlab.analysis.stats import EXACT_MAX_N, MC_RESAMPLES, Estimate, Paired, holm, mean_ci, paired_difference

ALPHA = 0.05
_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Stats:
    """How the findings estimate: the CI method of every mean and paired difference (t or bootstrap)."""

    ci: str = "t"

    def mean(self, values: Any, bounds: tuple[float, float] | None = None) -> Estimate:
        return mean_ci(values, method=self.ci, bounds=bounds)

    def paired(self, a: dict[int, float], b: dict[int, float], bounds: tuple[float, float] | None = None) -> Paired:
        return paired_difference(a, b, ci=self.ci, bounds=bounds)


@dataclass
class Finding:
    """One sentence and the numbers it states, each (name, value, format spec)."""

    text: str
    numbers: list[tuple[str, float, str]] = field(default_factory=list)
    paired: Paired | None = None
    p_index: int | None = None  # position in the study's family of p-values (Holm)


def _fmt(value: float, spec: str) -> str:
    return format(value, spec)


class Text:
    """Builds a sentence while recording each number placed in it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.numbers: list[tuple[str, float, str]] = []

    def __call__(self, text: str = "", **nums: tuple[float, str]) -> Text:
        """Append `text`, whose {name} fields are filled from nums = name=(value, spec)."""
        shown = {k: _fmt(v, s) for k, (v, s) in nums.items()}
        # Only {name} fields named in nums are filled: labels may hold braces of their own ({'noise': 0.3}).
        self.parts.append(_FIELD.sub(lambda m: shown.get(m.group(1), m.group(0)), text))
        self.numbers += [(k, v, s) for k, (v, s) in nums.items()]
        return self

    def finding(self, **kw: Any) -> Finding:
        return Finding("".join(self.parts), self.numbers, **kw)


def comparison(t: Text, what: str, a: str, b: str, pr: Paired, scale: float, unit: str, spec: str) -> None:
    """The body of a paired comparison; the verdict (after Holm) is written by `verdict`."""
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


def verdict(f: Finding, adjusted: float, a: str, b: str, higher_is: str) -> None:
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
    if adjusted >= ALPHA and pr.test == "permutation" and pr.p <= floor * (1 + 1e-9) and adjusted > pr.p:
        winner = a if pr.diff.mean > 0 else b
        f.text += (f", Holm-adjusted p = {fmt}; {dz}). In all {pr.n} paired seeds {winner} {higher_is} (the 95 % "
                   "interval "
                   f"{'excludes' if pr.diff.lo > 0 or pr.diff.hi < 0 else 'includes'} 0), but the smallest p "
                   f"{pr.n} seeds allow, {_fmt(floor, '.2g')}, does not survive Holm's adjustment over this study's "
                   "comparisons: not called at the 0.05 level; run more seeds.")
        return
    if adjusted < ALPHA:
        winner = a if pr.diff.mean > 0 else b
        f.text += f", Holm-adjusted p = {fmt}; effect size {dz}). {winner} {higher_is}."
    else:
        f.text += (f", Holm-adjusted p = {fmt}; {dz}). The data do not support a difference between {a} and "
                   f"{b}.")


def compare(found: list[Finding], verdicts: list, st: Stats, what: str, a: str, b: str, va: dict[int, float],
             vb: dict[int, float], verb: str, scale: float = 1, unit: str = "", spec: str = ".3g",
             t: Text | None = None, lower_better: bool = False, bounds: tuple[float, float] | None = None) -> None:
    """Add the paired comparison a − b (values by seed) to the findings, after the sentence `t` has begun;
    its verdict is written after the Holm adjustment (`finish`). `lower_better` (a loss, an error): the side
    with the smaller values is the one that `verb`; `bounds`: the range of a − b (0/1 outcomes: [-1, 1])."""
    pr = st.paired(va, vb, bounds)
    t = t or Text()
    comparison(t, what, a, b, pr, scale, unit, spec)
    f = t.finding(paired=pr)
    found.append(f)
    verdicts.append((f, b, a, verb) if lower_better else (f, a, b, verb))


def finish(found: list[Finding], verdicts: list[tuple[Finding, str, str, str]]) -> list[Finding]:
    """Holm-adjust the family of p-values and write each comparison's verdict."""
    tested = [f for f, *_ in verdicts if f.paired is not None and f.paired.n >= 2
              and not (f.paired.identical and (f.paired.diff.mean == 0 or f.paired.test != "permutation"))]
    adjusted = holm([f.paired.p for f in tested])
    adj = {id(f): p for f, p in zip(tested, adjusted, strict=True)}
    for f, a, b, higher in verdicts:
        verdict(f, adj.get(id(f), math.nan), a, b, higher)
    if tested:
        plural = "s" if len(tested) != 1 else ""
        found.append(Finding(f"p-values are Holm-adjusted over the {len(tested)} paired comparison{plural} above.",
                             [("family", len(tested), "d")]))
    return found
