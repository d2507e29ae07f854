"""Language-model studies (a next-token task, e.g. character-level Shakespeare): what a transformer study's
numbers show, from its store.

- The metric is the validation loss at the last epoch in **bits per character** (nats per token / ln 2;
  lower is better); accuracy is the share of next characters predicted exactly.
- The **arms** are the cells' FFN activations, or their attention score functions where the study varies those
  (`arm_field`); cells that differ in anything else (a sequence length) form separate groups.
- The **ranking** of a group: every arm's mean with its 95 % CI, and each arm against the reference arm (GELU
  for FFN activations, softmax for score functions), paired over seeds (the same data order and the same draws
  of every shared tensor), with the exact sign-flip test; the p-values of the study form one Holm family.
- The **gated-vs-ungated contrast**: per seed, the mean over the gated arms minus the mean over the ungated
  ones, paired over seeds (Shazeer 2020's claim: every gated FFN ahead of every ungated one). It is the study's
  one primary comparison, fixed before any run (it is what the study asks), so its p is not adjusted; the
  arm-against-reference comparisons are secondary and form the Holm family.
- The **published ordering** (the study's `[[published]]` entries of metric `final_test_loss`, each marked not
  comparable: another task and scale) is compared by its order only: Kendall's τ between actlab's ranking of
  the arm means and the published one, with the exact two-sided p of τ (no ties) and a 95 % interval from
  resampling the seeds (the same seeds for every arm, 2,000 resamples, seed 0). τ is a rank statistic over the
  arms, so its test does not know how uncertain each arm's mean is; the interval does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from actlab.analysis.published import parse_key
from actlab.analysis.statements import Finding, Stats, Text, compare, comparison, finish, verdict
from actlab.analysis.stats import Estimate, Paired
from actlab.catalog import activations
from actlab.errors import ActlabError
from actlab.store.results import CellData, Run, grid_pairs, show_value

LN2 = math.log(2.0)
REFERENCES = {"activation": "gelu", "attention": "softmax"}
TAU_RESAMPLES = 2000


def is_language(run: Run) -> bool:
    """Whether the run trained on a next-token task (its cells' data provenance says so)."""
    return run.kind == "train" and any((c.data_provenance or {}).get("task") == "next_token" for c in run.cells) \
        and all(c.model.get("kind") == "transformer" for c in run.cells)


def bpc(run: Run, c: CellData) -> dict[int, float]:
    """seed -> validation bits per character at the last epoch."""
    return {s: v / LN2 for s, v in run.replicas(c, "final_test_loss").items()}


def arm_field(run: Run) -> str:
    """'attention' where the study's cells differ in their score function, else 'activation'."""
    seen = {c.model.get("attention", "softmax") for c in run.cells}
    return "attention" if len(seen) > 1 else "activation"


def arm_of(c: CellData, fld: str) -> str:
    return str(c.model.get("attention", "softmax")) if fld == "attention" else c.series


def group_of(c: CellData, fld: str) -> str:
    """The cell's grid values other than its arm: its group ('' where there is one)."""
    skip = {"attention"} if fld == "attention" else {"activation", "activation_params"}
    return ", ".join(f"{k}={show_value(v)}" for k, v in grid_pairs(c.values) if k not in skip)


def gated(name: str) -> bool | None:
    """Whether a catalog name is a gated entry (None where the catalog does not know it)."""
    try:
        with activations.catalog_only():
            return activations.get(name).gated
    except ActlabError:
        return None


@dataclass
class Arm:
    label: str
    cell: CellData
    values: dict[int, float]  # seed -> bpc
    estimate: Estimate
    published: float | None = None
    spread: float | None = None  # the published standard deviation over runs, where given


@dataclass
class Ranking:
    """One group's arms ranked by mean validation bits per character (lowest first)."""

    group: str
    field: str
    arms: list[Arm]
    reference: str | None
    published_source: str = ""
    tau: float = math.nan
    tau_p: float = math.nan
    tau_ci: tuple[float, float] = (math.nan, math.nan)
    tau_n: int = 0
    tau_method: str = ""  # 'exact' (no ties in either order) or 'asymptotic'
    versus: dict[str, Paired] = field(default_factory=dict)  # arm -> arm − reference


def published_values(run: Run) -> tuple[dict[str, tuple[float, float | None]], str]:
    """arm -> (the published value of metric final_test_loss, its spread over runs or None), from keys
    'final_test_loss@activation=NAME', and the source they cite."""
    out, source = {}, ""
    for p in run.study["config"].get("published", []):
        metric, where = parse_key(p["key"])
        if metric == "final_test_loss" and len(where) == 1:
            out[next(iter(where.values()))] = (float(p["value"]), p.get("spread"))
            source = source or p.get("source", "")
    return out, source


def rankings(run: Run, st: Stats = Stats()) -> list[Ranking]:
    """The ranking of each group of finished cells (see the module docstring)."""
    fld = arm_field(run)
    groups: dict[str, list[CellData]] = {}
    for c in run.done:
        groups.setdefault(group_of(c, fld), []).append(c)
    pub, source = published_values(run)
    out = []
    for g, cells in groups.items():
        arms = []
        for c in cells:
            v = bpc(run, c)
            value, spread = pub.get(arm_of(c, fld), (None, None))
            arms.append(Arm(arm_of(c, fld), c, v, st.mean(list(v.values()), bounds=(0.0, math.inf)), value, spread))
        arms.sort(key=lambda a: np.nan_to_num(a.estimate.mean, nan=np.inf))
        ref = REFERENCES[fld] if any(a.label == REFERENCES[fld] for a in arms) else None
        r = Ranking(g, fld, arms, ref, source)
        if ref is not None:
            base = next(a for a in arms if a.label == ref)
            r.versus = {a.label: st.paired(a.values, base.values) for a in arms if a is not base}
        _tau(r)
        out.append(r)
    return out


def _tau(r: Ranking) -> None:
    """Kendall's τ between the arms' means and their published values, its exact p and a seed-resampled CI."""
    both = [a for a in r.arms if a.published is not None and np.isfinite(a.estimate.mean)]
    r.tau_n = len(both)
    if len(both) < 3:
        return
    ours = np.array([a.estimate.mean for a in both])
    theirs = np.array([a.published for a in both])
    exact = len(set(theirs)) == len(theirs) and len(set(ours)) == len(ours)
    res = sps.kendalltau(ours, theirs, method="exact" if exact else "asymptotic")
    r.tau, r.tau_p, r.tau_method = float(res.statistic), float(res.pvalue), "exact" if exact else "asymptotic"
    seeds = sorted(set.intersection(*(set(s for s, v in a.values.items() if np.isfinite(v)) for a in both)))
    if len(seeds) < 2:
        return
    table = np.array([[a.values[s] for s in seeds] for a in both])  # (arms, seeds)
    rng = np.random.default_rng(0)
    taus = []
    for _ in range(TAU_RESAMPLES):
        pick = rng.integers(0, len(seeds), len(seeds))
        t = sps.kendalltau(table[:, pick].mean(1), theirs).statistic
        if np.isfinite(t):
            taus.append(t)
    if taus:
        r.tau_ci = (float(np.percentile(taus, 2.5)), float(np.percentile(taus, 97.5)))


def language_findings(run: Run, st: Stats = Stats()) -> list[Finding]:
    """Ranking, paired comparisons against the reference arm, the gated-vs-ungated contrast and the published
    ordering, per group; divergences and unfinished cells."""
    found: list[Finding] = []
    verdicts: list = []
    if not run.done:
        return [Finding("No cell has finished yet: there is nothing to report.")]
    for r in rankings(run, st):
        where = f"At {r.group}: " if r.group else ""
        what = "FFN activation" if r.field == "activation" else "attention score function"
        t = Text()
        t(f"{where}{'v' if where else 'V'}alidation loss by {what}, in bits per character (lower is better; mean [95 "
          "% CI], n seeds): ")
        for i, a in enumerate(r.arms):
            e = a.estimate
            t(("" if i == 0 else "; ") + f"{a.label} {{m{i}}} [{{lo{i}}}, {{hi{i}}}] (n = {{n{i}}})",
              **{f"m{i}": (e.mean, ".3f"), f"lo{i}": (e.lo, ".3f"), f"hi{i}": (e.hi, ".3f"), f"n{i}": (e.n, "d")})
        found.append(t(".").finding())
        for a in r.arms:
            if r.reference is not None and a.label != r.reference:
                base = next(b for b in r.arms if b.label == r.reference)
                what_ = f"{where}{'v' if where else 'V'}alidation bits per character"
                compare(found, verdicts, st, what_, a.label, r.reference, a.values, base.values,
                        "has the higher validation loss", 1, " bits/char", ".3f")
        if r.field == "activation":
            _gated_contrast(r, found, st, where)
        if r.tau_n >= 3:
            found.append(_tau_finding(r, where))
    _unnormalised_relu(run, st, found, verdicts)
    for c in run.done:
        k = run.diverged(c)
        if k:
            t = Text()
            t(f"{c.label}: {{k}} of {{n}} replicas diverged (NaN or inf loss); their numbers are excluded.",
              k=(k, "d"), n=(len(run.replicas(c)), "d"))
            found.append(t.finding())
    failed = [c for c in run.cells if c.status != "done"]
    if failed:
        found.append(Finding(f"{len(failed)} cell(s) did not finish ({', '.join(sorted({c.status for c in failed}))});"
                             " they are left out of every number here.", [("unfinished", len(failed), "d")]))
    return finish(found, verdicts)


def _context(c: CellData) -> int | None:
    """The sequence length a cell trained on (its data's `context` option), if it says."""
    v = (c.config.get("data", {}).get("options", {}) or {}).get("context")
    return int(v) if isinstance(v, int) else None


def _unnormalised_relu(run: Run, st: Stats, found: list[Finding], verdicts: list) -> None:
    """Where a study compares score functions at two or more sequence lengths: does plain ReLU attention (no
    1/n) fall further behind softmax as the sequence grows (Wortsman et al. 2023)? Per seed, (relu − softmax)
    at the longest context minus the same at the shortest, paired over seeds (part of the Holm family)."""
    if arm_field(run) != "attention":
        return
    cells = {(arm_of(c, "attention"), _context(c)): c for c in run.done}
    for n in sorted({n for _, n in cells if n is not None}):  # Wortsman's claim itself: ReLU with vs without 1/n
        if ("relu", n) in cells and ("relu_seqlen", n) in cells:
            t = Text()
            t(f"At context={n}: ReLU attention with and without the 1/n factor (Wortsman et al. 2023: without it, "
              "it degrades). ")
            compare(found, verdicts, st, "Validation bits per character", "relu", "relu_seqlen",
                    bpc(run, cells[("relu", n)]), bpc(run, cells[("relu_seqlen", n)]), "has the higher validation loss",
                    1, " bits/char", ".3f", t)
    lengths = sorted({n for _, n in cells if n is not None})
    if len(lengths) < 2 or not all((a, n) in cells for a in ("relu", "softmax") for n in (lengths[0], lengths[-1])):
        return
    short, long = lengths[0], lengths[-1]

    def gap(n: int) -> dict[int, float]:
        r, s = bpc(run, cells[("relu", n)]), bpc(run, cells[("softmax", n)])
        return {k: r[k] - s[k] for k in set(r) & set(s)}

    t = Text()
    t(f"Plain ReLU attention (no 1/n) against softmax as the context grows from {short} to {long} characters "
      "(Wortsman et al. 2023 report that it degrades without the 1/n factor): the gap relu − softmax in bits per "
      "character, at the longer context minus at the shorter. ")
    compare(found, verdicts, st, "Change of the gap", f"gap at {long}", f"gap at {short}", gap(long), gap(short),
            "is the larger gap", 1, " bits/char", ".3f", t)


def _gated_contrast(r: Ranking, found: list[Finding], st: Stats, where: str) -> None:
    """Per seed, the mean bpc of the gated arms minus that of the ungated arms, paired over seeds."""
    kinds = {a.label: gated(a.cell.model["activation"]) for a in r.arms}
    g = [a for a in r.arms if kinds[a.label]]
    u = [a for a in r.arms if kinds[a.label] is False]
    if not g or not u:
        return
    seeds = sorted(set.intersection(*(set(a.values) for a in g + u)))

    def per_seed(arms: list[Arm]) -> dict[int, float]:
        return {s: float(np.mean([a.values[s] for a in arms])) for s in seeds}

    t = Text()
    outside = [a.label for a in r.arms if r.tau_n and a.published is None]
    t(f"{where}Primary comparison, the mean of the gated FFNs ({', '.join(a.label for a in g)}) against the mean of "
      f"the ungated ones ({', '.join(a.label for a in u)}), per seed"
      + (f"; {', '.join(outside)}, not in the published table, counted by kind" if outside else "") + ". ")
    pr = st.paired(per_seed(g), per_seed(u))
    comparison(t, "Validation bits per character", "gated", "ungated", pr, 1, " bits/char", ".3f")
    f = t.finding(paired=pr)
    verdict(f, pr.p, "gated", "ungated", "has the higher validation loss")
    f.text = re.sub(r", Holm-adjusted p = [^;]*;", ", the one primary test, so not adjusted;", f.text)
    found.append(f)
    # the stronger claim (Shazeer 2020: every gated FFN ahead of every ungated one), read off the arms' means
    worst_gated = max(g, key=lambda a: a.estimate.mean)
    behind = [a for a in u if a.estimate.mean < worst_gated.estimate.mean]
    s = Text()
    if behind:
        s(f"{where}Every gated FFN ahead of every ungated one (Shazeer 2020's stronger claim) does not hold in the "
          f"means here: {worst_gated.label} ({{g}} bits/char) is behind {', '.join(a.label for a in behind)}.",
          g=(worst_gated.estimate.mean, ".3f"))
    else:
        s(f"{where}Every gated FFN's mean is below every ungated one's (the means only; the paired comparisons "
          "above say which differences the seeds resolve).")
    found.append(s.finding())


def _tau_finding(r: Ranking, where: str) -> Finding:
    t = Text()
    t(f"{where}Against the published ordering ({r.published_source or 'the study file'}; its numbers come from "
      "another task and scale, so only their order is compared): Kendall's τ between actlab's ranking and the "
      f"paper's over {{n}} arms = {{tau}} ({r.tau_method} two-sided p = {{p}}", n=(r.tau_n, "d"),
      tau=(r.tau, ".2f"), p=(r.tau_p, ".2g"))
    if np.isfinite(r.tau_ci[0]):
        t("; 95 % interval over resampled seeds [{lo}, {hi}]", lo=(r.tau_ci[0], ".2f"), hi=(r.tau_ci[1], ".2f"))
    t("). ")
    if r.tau_p < 0.05 and r.tau > 0:
        t("The rankings agree beyond chance.")
    elif r.tau_p < 0.05:
        t("The rankings disagree beyond chance: actlab's order runs against the paper's.")
    else:
        t(f"The data do not show agreement with the paper's order beyond chance at {r.tau_n} arms.")
    both = [a for a in r.arms if a.published is not None]
    close = [f"{a.label}/{b.label}" for i, a in enumerate(both) for b in both[i + 1:]
             if a.spread is not None and b.spread is not None
             and abs(a.published - b.published) < max(a.spread, b.spread)]
    if close:
        t(" The paper's own order is not resolved where two means differ by less than their runs' spread ("
          + ", ".join(close) + "); the test takes its order as given, and the interval covers actlab's seeds only.")
    t(" τ is not part of the Holm family of the paired comparisons.")
    return t.finding()
