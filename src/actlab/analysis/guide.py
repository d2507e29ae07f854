"""The selection guide, tested: each claim a study declares (`[[claims]]` in its file, fixed before the run) gets a
verdict from the study's store.

A claim names the arm it favours (`better`, model fields such as `activation=selu`), the arm it is claimed better
than (`than`), the metric and the cells (`where`). In each group of finished cells (same context and depth) that
holds one cell of each arm and matches `where`, the two are compared paired over seeds: the difference in the
claimed direction (better − than for a metric where higher is better, than − better where lower is), its 95 %
interval, and the exact sign-flip test. The p-values of every claim and group of one study form one Holm family.
A group's verdict:
- **supported**: the difference is positive and its Holm-adjusted p < 0.05;
- **contradicted**: negative, and its Holm-adjusted p < 0.05;
- **not decided**: otherwise, with the seeds a paired test would need for 80 % power at the observed effect
  (normal approximation, n = ((z₀.₉₇₅ + z₀.₈) · sd / |mean|)², before any multiplicity adjustment).
A claim is supported where every group supports it, contradicted where any group contradicts it, otherwise not
decided; **not run** where the run holds no pair of cells for it. `diverged` and `solved` are 0/1 per seed
(actlab.analysis.recurrent): a replica that diverged is counted, never dropped; the accuracy and loss metrics use
the seeds where both arms finished.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from actlab.analysis import recurrent
from actlab.analysis.stats import Paired, holm, paired_difference, proportion_ci
from actlab.analysis.summary import bounds_of, prose_name
from actlab.catalog.activations import canonical
from actlab.store.results import SERIES_FIELDS, CellData, Run, grid_pairs, run_dirs, show_value
from actlab.store.writer import DB_NAME

ALPHA = 0.05
POWER = 0.8
HIGHER = {"final_test_acc": True, "best_test_acc": True, "final_test_loss": False, "solved": True, "diverged": False,
          "modes_covered": True, "high_quality": True}
VERDICTS = ("supported", "contradicted", "not decided", "not run")


@dataclass
class GroupVerdict:
    """One group of cells' comparison for a claim."""

    where: str
    better: str  # the two cells' series labels
    than: str
    paired: Paired  # of the difference in the claimed direction
    p_holm: float = math.nan
    verdict: str = "not decided"
    needed: int | None = None  # seeds for 80 % power at the observed effect (not decided only)


@dataclass
class ClaimVerdict:
    """A claim's verdict in one run, with its groups."""

    study: str
    run_dir: str
    guide: str
    claim: str
    metric: str
    better: str
    than: str
    groups: list[GroupVerdict] = field(default_factory=list)
    unfinished: int = 0  # cells of the run not (yet) done: its verdict may change
    family: int = 0  # the comparisons of the study's claims, Holm-adjusted together

    @property
    def verdict(self) -> str:
        if not self.groups:
            return "not run"
        kinds = {g.verdict for g in self.groups}
        return "contradicted" if "contradicted" in kinds else "supported" if kinds == {"supported"} else "not decided"

    def sentence(self) -> str:
        """The verdict in words, with every group's numbers."""
        g0 = self.groups[0] if self.groups else None
        arms = (f"{g0.better} over {g0.than}" if g0 is not None and g0.better != g0.than else
                f"{self.better} over {self.than}")  # the series labels, unless they do not tell the arms apart
        head = (f"The guide's \"{self.claim}\" ({self.guide}; {arms} by {prose_name(self.metric)}): "
                f"{self.verdict.upper()}" + (f" so far ({self.unfinished} cell{'s' * (self.unfinished != 1)} of the "
                                             "run not finished)" if self.unfinished else ""))
        if not self.groups:
            return head + " — this run holds no pair of cells for it."
        parts = []
        for g in self.groups:
            d = g.paired.diff
            if g.paired.identical and d.mean == 0:
                parts.append(f"{g.where or 'all cells'}: tied, equal on every one of the {g.paired.n} seeds — "
                             f"{g.verdict}")
                continue
            if bounds_of(self.metric) == (0.0, 1.0):  # an accuracy or a share: in points, as every finding says it
                amount = (f"{100 * d.mean:+.1f} points in the claimed direction (95 % CI [{100 * d.lo:.1f}, "
                          f"{100 * d.hi:.1f}]")
            else:
                amount = f"{d.mean:+.4g} in the claimed direction (95 % CI [{d.lo:.4g}, {d.hi:.4g}]"
            part = (f"{g.where or 'all cells'}: {amount}, n = {g.paired.n}, p = {g.p_holm:.2g} Holm-adjusted over the "
                    f"study's "
                    f"{self.family} claim comparison{'s' * (self.family != 1)}) — {g.verdict}")
            if g.needed is not None:
                part += f", about {g.needed} seeds would decide it at this effect"
            parts.append(part)
        return head + ". " + "; ".join(parts) + "."


def _values(run: Run, c: CellData, metric: str) -> dict[int, float]:
    if metric == "solved":
        return recurrent.solved(run, c)
    if metric == "diverged":
        return recurrent.diverged(run, c)
    div = recurrent.diverged(run, c)  # one divergence rule for findings and claims (a finite blow-up included)
    return {s: math.nan if div.get(s) else v for s, v in run.replicas(c, metric).items()}


def _selector(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in text.split(",") if "=" in p)}


def _field(c: CellData, key: str) -> str:
    if key == "depth":
        return str(c.depth)
    if key == "data":
        return str((c.config.get("data") or {}).get("name"))
    if key.startswith("data."):
        return str(((c.config.get("data") or {}).get("options") or {}).get(key[5:]))
    v = c.model.get(key)
    if key == "gate_activation" and v is None and c.model.get("kind") in ("gru", "lstm"):
        v = "sigmoid"  # the cell's usual gate, not written into its configuration
    if key == "cell_activation" and v is None and c.model.get("kind") == "lstm":
        v = "tanh"
    if key == "discriminator_activation" and v is None and c.model.get("kind") == "gan":
        v = "leaky_relu"  # the GAN's usual discriminator (alpha 0.2), not written into its configuration
    if key == "output_activation" and v is None and c.model.get("kind") == "gan":
        v = "identity"
    if key.endswith("activation") and isinstance(v, str):  # 'Leaky-ReLU' as given is the catalog's leaky_relu
        v = canonical(v)
    return str(v).lower() if isinstance(v, bool) else str(v)  # residual=false, as TOML writes it


def _matches(c: CellData, sel: dict[str, str]) -> bool:
    return all(_field(c, k) == (canonical(v) if k.endswith("activation") else v) for k, v in sel.items())


def claim_verdicts(run: Run) -> list[ClaimVerdict]:
    """Every claim of the run's study with its verdict (module docstring)."""
    claims = run.study["config"].get("claims") or []
    if run.kind != "train" or not claims:
        return []
    out: list[ClaimVerdict] = []
    for spec in claims:
        cv = ClaimVerdict(run.name, str(run.dir), spec["guide"], spec["claim"], spec["metric"], spec["better"],
                          spec["than"])
        better, than, where = _selector(spec["better"]), _selector(spec["than"]), _selector(spec.get("where", ""))
        higher = HIGHER[spec["metric"]]
        for label, cells in _groups(run, {*better, *than}).items():
            cells = [c for c in cells if _matches(c, where)]
            a = [c for c in cells if _matches(c, better)]
            b = [c for c in cells if _matches(c, than)]
            if len(a) != 1 or len(b) != 1 or a[0] is b[0]:
                continue
            va, vb = _values(run, a[0], spec["metric"]), _values(run, b[0], spec["metric"])
            bounds = (-1.0, 1.0) if spec["metric"] in ("solved", "diverged") else None
            pr = paired_difference(va, vb, bounds=bounds) if higher else paired_difference(vb, va, bounds=bounds)
            cv.groups.append(GroupVerdict(label, a[0].series, b[0].series, pr))
        out.append(cv)
    tested = [g for cv in out for g in cv.groups if g.paired.n >= 2 and math.isfinite(g.paired.p)]
    for g, p in zip(tested, holm([g.paired.p for g in tested]), strict=True):
        g.p_holm = p
    unfinished = sum(c.status != "done" for c in run.cells)
    for cv in out:
        cv.family, cv.unfinished = len(tested), unfinished
    for cv in out:
        for g in cv.groups:
            d = g.paired.diff.mean
            if math.isfinite(g.p_holm) and g.p_holm < ALPHA and d != 0:
                g.verdict = "supported" if d > 0 else "contradicted"
            else:
                g.verdict = "not decided"
                g.needed = seeds_needed(g.paired)
    return out


def _groups(run: Run, arm_fields: set[str]) -> dict[str, list[CellData]]:
    """The run's finished cells grouped by every grid value that neither defines a claim's arms nor goes with an
    activation (SERIES_FIELDS: its init, gain, ...): within a group the two arms differ only in what the claim
    compares. Keyed by the group's label ('depth=64', 'data=adding, T=30'; '' for one group)."""
    out: dict[str, list[CellData]] = {}
    for c in sorted(run.done, key=lambda c: c.index):
        pairs = [(k, v) for k, v in grid_pairs(c.values) if k not in arm_fields and k not in SERIES_FIELDS]
        out.setdefault(", ".join(f"{k}={show_value(v)}" for k, v in pairs), []).append(c)
    return out


def seeds_needed(pr: Paired) -> int | None:
    """Seeds a paired test needs for 80 % power at the observed mean difference and spread (normal
    approximation); None where no effect was seen or its spread is unknown."""
    d, n = pr.diff, pr.n
    if n < 2 or not math.isfinite(d.mean) or d.mean == 0 or not math.isfinite(pr.effect_size) or pr.effect_size == 0:
        return None
    z = sps.norm.ppf(1 - ALPHA / 2) + sps.norm.ppf(POWER)
    return max(2, math.ceil((z / abs(pr.effect_size)) ** 2))


def _over_runs(root: str | Path, max_depth: int, read: Callable[[Run], list]) -> list:
    """`read(run)` of the runs under `root` (a runs folder, a suite, one run directory) that hold a study, one run
    per study (several copies of one study are one setting, not several: the copy with the most finished cells,
    then the newest), concatenated; an unreadable store is skipped (`actlab report` says why)."""
    root = Path(root)
    dirs = [root] if (root / DB_NAME).exists() else run_dirs(root, max_depth)
    best: dict[str, tuple[tuple[int, float], Path]] = {}  # one run per study: the most finished, then the newest
    for d in dirs:
        try:
            with Run.open(d) as run:
                held = run.store.study()
                if held is not None:
                    rank = (len(run.done), float(held.get("created") or 0.0))
                    if held["name"] not in best or rank > best[held["name"]][0]:
                        best[held["name"]] = (rank, d)
        except Exception:  # noqa: BLE001 - an unreadable store is skipped here; `actlab report` says why
            continue
    out: list = []
    for _, d in sorted(best.values(), key=lambda item: str(item[1])):
        with Run.open(d) as run:
            out += read(run)
    return out


def scan(root: str | Path, max_depth: int = 3) -> list[ClaimVerdict]:
    """The claims' verdicts of every finished run under `root` (a runs folder, a suite, one run directory)."""
    return _over_runs(root, max_depth, claim_verdicts)


def by_row(verdicts: list[ClaimVerdict]) -> dict[str, list[dict[str, Any]]]:
    """Guide row -> its claims' verdicts as plain records (the CLI and the explorer render these)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for cv in verdicts:
        out.setdefault(cv.guide, []).append({"study": cv.study, "run_dir": cv.run_dir, "claim": cv.claim,
                                             "verdict": cv.verdict, "sentence": cv.sentence(), "better": cv.better,
                                             "than": cv.than, "unfinished": cv.unfinished})
    return out


# ------------------------------------------------------------------ the seeds' closing remark, across studies

FEW_POINTS = 0.05  # "a few percentage points": five, fixed here before any run is read
RARELY = 0.25  # "rarely": in under a quarter of the settings
# the hidden activations the guide recommends for some architecture (its table's "hidden layers" column, Swish as SiLU
# too, and Mish beside them): the remark is read among these; sigmoid and tanh, which the rule of thumb itself tells
# to avoid in deep hidden layers, are counted apart
RECOMMENDED = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "silu", "mish")
REMARK = ("activation choice rarely makes more than a few percentage points of difference in final accuracy "
          "(the seeds' closing remark)")


@dataclass
class Spread:
    """One group of cells (a study, a context, a depth): its most and least accurate activation by mean final test
    accuracy, their paired difference and how it reads against FEW_POINTS."""

    study: str
    where: str
    best: str
    worst: str
    paired: Paired
    verdict: str  # "larger", "within" or "not decided"


def spreads(run: Run, among: tuple[str, ...] | None = RECOMMENDED) -> list[Spread]:
    """Per group of a classification run's finished cells with two activations or more (of `among`, where given: the
    hidden activation's catalog name): the gap between the most and the least accurate by mean, paired over seeds.
    The two are picked after seeing the data, so the gap is an upper estimate: "within" (its 95 % CI below
    FEW_POINTS) is conservative, "larger" (above) is not."""
    if run.kind != "train" or run.generative or run.regression:
        return []
    groups: dict[tuple, list[CellData]] = {}
    for c in run.done:
        if (c.data_provenance or {}).get("task") in ("binary", "multiclass") and (
                among is None or canonical(str(c.model.get("activation"))) in among):
            groups.setdefault((c.context, c.depth), []).append(c)
    out = []
    for (ctx, depth), cells in groups.items():
        if len({c.series for c in cells}) < 2:
            continue
        acc = {c.key: _values(run, c, "final_test_acc") for c in cells}
        means = {c.key: float(np.nanmean(list(acc[c.key].values()))) if acc[c.key] else math.nan for c in cells}
        ranked = sorted((c for c in cells if math.isfinite(means[c.key])), key=lambda c: -means[c.key])
        if len(ranked) < 2:
            continue
        best, worst = ranked[0], ranked[-1]
        pr = paired_difference(acc[best.key], acc[worst.key], bounds=(-1.0, 1.0))
        d = pr.diff
        verdict = "larger" if d.lo > FEW_POINTS else "within" if d.hi < FEW_POINTS else "not decided"
        where = ", ".join(p for p in (ctx, f"depth {depth}" if len(run.depths()) > 1 else "") if p)
        out.append(Spread(run.name, where, best.series, worst.series, pr, verdict))
    return out


def spread_verdict(items: list[Spread], everything: list[Spread] | None = None) -> dict[str, Any]:
    """The remark's verdict over every group found among the RECOMMENDED activations (`items`): supported where the
    share of groups whose gap is larger than FEW_POINTS has an exact 95 % interval below RARELY, contradicted where
    above it, otherwise not decided. `everything` (sigmoid and tanh included) is counted beside it."""
    larger = [s for s in items if s.verdict == "larger"]
    share = proportion_ci(len(larger), len(items))
    verdict = ("not run" if not items else "supported" if share.hi < RARELY else
               "contradicted" if share.lo > RARELY else "not decided")
    text = (f"The seeds' remark \"{REMARK.split(' (')[0]}\" (read as: among the activations the guide recommends for "
            f"hidden layers ({', '.join(RECOMMENDED)}), a gap over {FEW_POINTS:.0%} between the most and least "
            f"accurate in under {RARELY:.0%} of settings): {verdict.upper()}")
    if items:
        within = sum(s.verdict == "within" for s in items)
        studies = len({s.study for s in items})
        text += (f". Over {len(items)} group{'s' * (len(items) != 1)} of cells in {studies} "
                 f"stud{'ies' if studies != 1 else 'y'}, {len(larger)} gap"
                 f"{'s are' if len(larger) != 1 else ' is'} larger than {FEW_POINTS:.0%} (95 % CI above it; share "
                 f"{share.p:.2f}, exact 95 % CI [{share.lo:.2f}, {share.hi:.2f}]), {within} within it, "
                 f"{len(items) - len(larger) - within} not decided")
        if larger:
            shown = sorted(larger, key=lambda s: -s.paired.diff.mean)[:8]
            text += ". Largest: " + "; ".join(
                f"{s.study}" + (f" ({s.where})" if s.where else "") + f": {s.best} − {s.worst} = "
                f"{100 * s.paired.diff.mean:.1f} points [{100 * s.paired.diff.lo:.1f}, {100 * s.paired.diff.hi:.1f}]"
                for s in shown) + (f"; and {len(larger) - len(shown)} more" if len(larger) > len(shown) else "")
        text += (". Each gap is the most against the least accurate activation by mean, paired over seeds; picking "
                 "the two after seeing the data makes the gap an upper estimate")
    if everything is not None:
        big = sum(s.verdict == "larger" for s in everything)
        text += (f". With sigmoid and tanh counted too: {big} of {len(everything)} groups differ by more than "
                 f"{FEW_POINTS:.0%}")
    text += "."
    return {"guide": "rule of thumb", "claim": REMARK, "verdict": verdict, "sentence": text,
            "groups": len(items), "larger": len(larger), "all_groups": len(everything or [])}


def scan_spreads(root: str | Path, max_depth: int = 3, among: tuple[str, ...] | None = RECOMMENDED) -> list[Spread]:
    """`spreads` of every finished run under `root`."""
    return _over_runs(root, max_depth, lambda run: spreads(run, among))
