"""Statistics for reported numbers: every mean comes with its n and a 95 % confidence interval.

- `mean_ci`: the mean of the finite values (diverged replicas are NaN and excluded, and n says so) with a
  Student-t interval, or a bootstrap one (BCa, scipy's `bootstrap`, seeded explicitly) on request.
- `paired_difference`: the comparison of two cells over the seeds they share (the paired design: replica k
  of every cell uses seed k). The mean difference with its CI, a paired test (t, or Wilcoxon's signed-rank
  test), and the effect size Cohen's d_z = mean(d) / sd(d).
- `holm`: Holm's step-down adjustment of a family of p-values, for findings that make several comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

from actlab.errors import ActlabError

CI_METHODS = ("t", "bootstrap")
TESTS = ("t", "wilcoxon")
SAME = 1e-6  # differences whose spread is below this (relative) are float32 rounding of one value: no spread


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95 % CI (Student t unless `method` says bootstrap) and the number of values behind it."""

    mean: float
    lo: float
    hi: float
    n: int
    method: str = "t"

    def format(self, spec: str = ".4g") -> str:
        """'mean [lo, hi] (n = k)' with each number in `spec`; no interval where there is none."""
        if self.n == 0:
            return "— (n = 0)"
        if self.n == 1 or not np.isfinite(self.lo):
            return f"{self.mean:{spec}} (n = {self.n})"
        return f"{self.mean:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}] (n = {self.n})"

    def __str__(self) -> str:
        return self.format()


def _finite(values: np.ndarray | list[float]) -> np.ndarray:
    v = np.asarray([np.nan if x is None else x for x in np.ravel(np.asarray(values, dtype=object))], dtype=float)
    return v[np.isfinite(v)]


def mean_ci(values: np.ndarray | list[float], level: float = 0.95, method: Literal["t", "bootstrap"] = "t",
            resamples: int = 9999, seed: int = 0) -> Estimate:
    """Mean of the finite values (None and NaN dropped) and its `level` confidence interval.

    method "t": Student t with n − 1 degrees of freedom. "bootstrap": BCa over `resamples` resamples drawn
    from a generator seeded with `seed`, so the same values give the same interval.
    """
    if method not in CI_METHODS:
        raise ActlabError(f"CI method {method!r} is unknown; allowed: {', '.join(CI_METHODS)}")
    v = _finite(values)
    n = len(v)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, method)
    m = float(v.mean())
    if n == 1:
        return Estimate(m, math.nan, math.nan, 1, method)
    if np.all(v == v[0]):  # no spread: the interval is the point (t and bootstrap agree)
        return Estimate(m, m, m, n, method)
    if method == "bootstrap":
        res = sps.bootstrap((v,), np.mean, confidence_level=level, n_resamples=resamples, method="BCa",
                            rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(lo) and np.isfinite(hi):
            return Estimate(m, lo, hi, n, method)
        method = "t"  # BCa is undefined for degenerate resamples (tiny n): fall back, and say so in `method`
    half = float(sps.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return Estimate(m, m - half, m + half, n, method)


@dataclass(frozen=True)
class Paired:
    """a − b over the seeds both have: the mean difference with its CI, a paired test and Cohen's d_z."""

    diff: Estimate
    statistic: float  # t (test "t") or W (test "wilcoxon"); NaN where undefined
    p: float  # two-sided; NaN where undefined (n < 2); 0 or 1 when every difference is the same
    test: str
    effect_size: float  # Cohen's d_z = mean(d) / sd(d); ±inf for a constant non-zero difference
    n: int
    seeds: tuple[int, ...] = ()

    @property
    def identical(self) -> bool:
        """Every seed gave exactly the same difference (no spread), so no test is needed or possible."""
        return self.n >= 1 and self.diff.lo == self.diff.hi


def paired_difference(a: dict[int, float] | np.ndarray | list[float], b: dict[int, float] | np.ndarray | list[float],
                      level: float = 0.95, test: Literal["t", "wilcoxon"] = "t",
                      ci: Literal["t", "bootstrap"] = "t") -> Paired:
    """Paired comparison of a and b: dicts seed -> value (matched by seed), or equal-length arrays (matched
    by position). Pairs where either value is missing or not finite are dropped; n counts the rest."""
    if test not in TESTS:
        raise ActlabError(f"paired test {test!r} is unknown; allowed: {', '.join(TESTS)}")
    if isinstance(a, dict) and isinstance(b, dict):
        seeds = sorted(set(a) & set(b))
        x = np.array([np.nan if a[s] is None else a[s] for s in seeds], dtype=float)
        y = np.array([np.nan if b[s] is None else b[s] for s in seeds], dtype=float)
    else:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if x.shape != y.shape:
            raise ActlabError(f"paired values need equal lengths, got {x.shape} and {y.shape}")
        seeds = list(range(len(x)))
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    kept = tuple(s for s, k in zip(seeds, keep, strict=True) if k)
    est = mean_ci(d, level, ci)
    n = len(d)
    if n < 2:
        return Paired(est, math.nan, math.nan, test, math.nan, n, kept)
    sd = float(d.std(ddof=1))
    if sd <= SAME * max(1.0, abs(float(d.mean()))):  # every seed moved by the same amount (float32 noise aside)
        est = Estimate(est.mean, est.mean, est.mean, n, est.method)
        same = abs(float(d.mean())) <= SAME
        return Paired(est, math.nan, 1.0 if same else 0.0, test, 0.0 if same else math.copysign(math.inf, d[0]), n, kept)
    if test == "t":
        res = sps.ttest_rel(x[keep], y[keep])
    else:
        res = sps.wilcoxon(d) if np.any(d != 0) else None
        if res is None:
            return Paired(est, math.nan, 1.0, test, 0.0, n, kept)
    return Paired(est, float(res.statistic), float(res.pvalue), test, float(d.mean()) / sd, n, kept)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count toward the family size)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    idx = [i for i in np.argsort(p, kind="stable") if np.isfinite(p[i])]
    m, running = len(idx), 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def column_ci(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi, n) of each column of `values` (rows are replicas) over its finite entries, Student t:
    the same numbers `mean_ci` gives column by column, vectorised for curves. lo = hi = NaN where n < 2."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    n = ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).sum(0) / n
        var = np.where(ok, (v - mean) ** 2, 0.0).sum(0) / (n - 1)
        half = sps.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * np.sqrt(var / n)
    half = np.where(n >= 2, half, np.nan)
    return mean, mean - half, mean + half, n
