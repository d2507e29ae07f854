"""Statistics for reported numbers: every mean comes with its n and a 95 % confidence interval.

- `mean_ci`: the mean of the finite values (diverged replicas are NaN and excluded, and n says so) with a
  Student-t interval, or a bootstrap one (BCa, scipy's `bootstrap`, seeded explicitly) on request.
  Bounded quantities (accuracies, fractions) pass `bounds`: the interval is then intersected with them,
  which keeps its coverage exactly (the true mean lies inside the bounds) and never reports 1.13 or −0.01.
  A value identical on every seed is said so ("1.000 on all 10 seeds"), not given a zero-width interval.
- `paired_difference`: the comparison of two cells over the seeds they share (the paired design: replica k
  of every cell uses seed k). The mean difference with its CI, a paired test, and the effect size Cohen's
  d_z = mean(d) / sd(d). The default test is the exact sign-flip permutation test (`sign_flip_test`): all
  2ⁿ sign assignments up to n = 20, a seeded Monte Carlo beyond, so no p-value falls below what n seeds
  can show (2/2ⁿ); the paired t and Wilcoxon's signed-rank test remain as options.
- `proportion_ci`: a proportion k/n with its exact (Clopper–Pearson) interval.
- `time_to_event`: censored times (a threshold never reached is censored at the last epoch, never dropped):
  the fraction that reached it (Clopper–Pearson), the Kaplan–Meier median with its interval, and the
  restricted mean time.
- `holm`: Holm's step-down adjustment of a family of p-values, for findings that make several comparisons.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

from actlab.errors import ActlabError

CI_METHODS = ("t", "bootstrap")
TESTS = ("permutation", "t", "wilcoxon")
EXACT_MAX_N = 20  # sign-flip tests enumerate all 2ⁿ assignments up to this n; Monte Carlo beyond
MC_RESAMPLES = 99_999  # Monte Carlo sign-flip resamples beyond EXACT_MAX_N (seeded)
SAME = 1e-6  # differences whose spread is below this (relative) are float32 rounding of one value: no spread


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95 % CI (Student t unless `method` says bootstrap) and the number of values behind it."""

    mean: float
    lo: float
    hi: float
    n: int
    method: str = "t"

    @property
    def constant(self) -> bool:
        """Every one of n ≥ 2 values was the same: there is no spread to make an interval from."""
        return self.n >= 2 and self.lo == self.hi == self.mean

    def format(self, spec: str = ".4g", with_n: bool = True) -> str:
        """'mean [lo, hi] (n = k)' with each number in `spec`; no interval where there is none; 'v on all k
        seeds' for a value every seed gave. with_n=False leaves n out (a table that has an n column)."""
        n = f" (n = {self.n})" if with_n else ""
        if self.n == 0:
            return "— (n = 0)" if with_n else "—"
        if self.constant:
            return f"{self.mean:{spec}} on all {self.n} seeds" if with_n else f"{self.mean:{spec}} on every seed"
        if self.n == 1 or not np.isfinite(self.lo):
            return f"{self.mean:{spec}}{n}"
        return f"{self.mean:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]{n}"

    def __str__(self) -> str:
        return self.format()


def _finite(values: np.ndarray | list[float]) -> np.ndarray:
    v = np.asarray([np.nan if x is None else x for x in np.ravel(np.asarray(values, dtype=object))], dtype=float)
    return v[np.isfinite(v)]


def mean_ci(values: np.ndarray | list[float], level: float = 0.95, method: Literal["t", "bootstrap"] = "t",
            resamples: int = 9999, seed: int = 0, bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean of the finite values (None and NaN dropped) and its `level` confidence interval.

    method "t": Student t with n − 1 degrees of freedom. "bootstrap": BCa over `resamples` resamples drawn
    from a generator seeded with `seed`, so the same values give the same interval. `bounds` (lo, hi): the
    quantity cannot leave them (an accuracy, a fraction), so the interval is intersected with them; since
    the true mean lies inside, the coverage is unchanged.
    """
    est = _mean_ci(values, level, method, resamples, seed)
    if bounds is None or not np.isfinite(est.lo):
        return est
    return Estimate(est.mean, max(est.lo, bounds[0]), min(est.hi, bounds[1]), est.n, est.method)


def _mean_ci(values: np.ndarray | list[float], level: float, method: str, resamples: int, seed: int) -> Estimate:
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
                      level: float = 0.95, test: Literal["permutation", "t", "wilcoxon"] = "permutation",
                      ci: Literal["t", "bootstrap"] = "t", bounds: tuple[float, float] | None = None) -> Paired:
    """Paired comparison of a and b: dicts seed -> value (matched by seed), or equal-length arrays (matched
    by position). Pairs where either value is missing or not finite are dropped; n counts the rest. The
    test is the exact sign-flip permutation test by default (its statistic is the mean difference). `bounds`:
    the range the difference cannot leave (two 0/1 outcomes: [-1, 1]); its interval is clipped to it."""
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
    est = mean_ci(d, level, ci, bounds=bounds)
    n = len(d)
    if n < 2:
        return Paired(est, math.nan, math.nan, test, math.nan, n, kept)
    sd = float(d.std(ddof=1))
    if sd <= SAME * max(1.0, abs(float(d.mean()))):  # every seed moved by the same amount (float32 noise aside)
        est = Estimate(est.mean, est.mean, est.mean, n, est.method)
        same = abs(float(d.mean())) <= SAME
        if test == "permutation":  # no spread, but n seeds still bound what a test can show: p = 2/2ⁿ, or 1
            effect = 0.0 if same else math.copysign(math.inf, d[0])
            return Paired(est, float(d.mean()), 1.0 if same else sign_flip_test(d), test, effect, n, kept)
        return Paired(est, math.nan, 1.0 if same else 0.0, test, 0.0 if same else math.copysign(math.inf, d[0]),
                      n, kept)
    if test == "permutation":
        return Paired(est, float(d.mean()), sign_flip_test(d), test, float(d.mean()) / sd, n, kept)
    if test == "t":
        res = sps.ttest_rel(x[keep], y[keep])
    else:
        res = sps.wilcoxon(d) if np.any(d != 0) else None
        if res is None:
            return Paired(est, math.nan, 1.0, test, 0.0, n, kept)
    return Paired(est, float(res.statistic), float(res.pvalue), test, float(d.mean()) / sd, n, kept)


def sign_flip_test(d: np.ndarray | list[float], resamples: int = MC_RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip permutation test of mean(d) = 0.

    Under the null each difference is as likely to have either sign, so p is the fraction of the 2ⁿ sign
    assignments whose |Σ ±|dᵢ|| is at least the observed |Σ dᵢ| (a relative tolerance of 1e-9 counts ties
    of float rounding as ties). Exact for n ≤ EXACT_MAX_N; beyond, (1 + hits) / (1 + resamples) over
    `resamples` random assignments from a generator seeded with `seed`. The smallest possible p is 2/2ⁿ."""
    a = np.abs(np.asarray(d, dtype=float))
    n = len(a)
    if n == 0:
        return math.nan
    observed = abs(float(np.sum(d)))
    tol = 1e-9 * max(observed, float(a.sum()), 1e-300)
    if n <= EXACT_MAX_N:
        hits, total, chunk = 0, 1 << n, 1 << 16
        bits = 1 << np.arange(n, dtype=np.int64)
        for start in range(0, total, chunk):
            codes = np.arange(start, min(start + chunk, total), dtype=np.int64)
            signs = np.where((codes[:, None] & bits) != 0, -1.0, 1.0)  # (chunk, n)
            hits += int(np.count_nonzero(np.abs(signs @ a) >= observed - tol))
        return hits / total
    gen = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, 1 << 14):
        k = min(1 << 14, resamples - start)
        signs = np.where(gen.random((k, n)) < 0.5, -1.0, 1.0)
        hits += int(np.count_nonzero(np.abs(signs @ a) >= observed - tol))
    return (1 + hits) / (1 + resamples)


@dataclass(frozen=True)
class Proportion:
    """k of n with its exact (Clopper–Pearson) 95 % interval."""

    k: int
    n: int
    p: float
    lo: float
    hi: float

    def format(self, spec: str = ".2f") -> str:
        if self.n == 0:
            return "— (n = 0)"
        return f"{self.k} of {self.n} ({self.p:{spec}}, 95 % CI [{self.lo:{spec}}, {self.hi:{spec}}])"


def proportion_ci(k: int, n: int, level: float = 0.95) -> Proportion:
    """k successes of n with the exact Clopper–Pearson interval (scipy's binomtest)."""
    if n == 0:
        return Proportion(0, 0, math.nan, math.nan, math.nan)
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return Proportion(k, n, k / n, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class TimeToEvent:
    """Times to an event (e.g. epochs to a loss threshold), right-censored where it never happened."""

    reached: Proportion  # how many reached it, with the exact interval
    median: float  # Kaplan–Meier median; inf where the survival curve never falls to 1/2
    median_lo: float  # its 95 % interval from the log-log bands (Brookmeyer–Crowley); inf: not reached
    median_hi: float
    rmst: float  # restricted mean time: the mean of min(time, horizon), censored seeds at the horizon
    horizon: float
    n: int

    def format_median(self, spec: str = ".0f", unit: str = "") -> str:
        """'1057 epochs (95 % CI [916, 1119])'. A median the survival curve never falls to is 'not reached
        within H'; a limit the data leave open is 'not reached', one the log-log band cannot give (every seed
        at one time, so the curve drops from 1 to 0 at once) is 'undefined'."""
        def show(v: float) -> str:
            return "undefined" if math.isnan(v) else "not reached" if math.isinf(v) else f"{v:{spec}}"

        if self.n == 0:
            return "— (n = 0)"
        if math.isinf(self.median):
            return f"not reached within {self.horizon:g}{unit}"
        return f"{show(self.median)}{unit} (95 % CI [{show(self.median_lo)}, {show(self.median_hi)}])"


def time_to_event(times: list[float | None], horizon: float, level: float = 0.95) -> TimeToEvent:
    """Censored times: None (or a time past `horizon`) is censored at `horizon`; nothing is dropped."""
    t = [None if v is None or not np.isfinite(v) or v > horizon else float(v) for v in times]
    hit = [v for v in t if v is not None]
    n = len(t)
    reached = proportion_ci(len(hit), n, level)
    rmst = float(np.mean([horizon if v is None else v for v in t])) if n else math.nan
    if not hit:
        return TimeToEvent(reached, math.inf, math.inf, math.inf, rmst, horizon, n)
    data = sps.CensoredData(uncensored=hit, right=[horizon] * (n - len(hit)))
    sf = sps.ecdf(data).sf
    with warnings.catch_warnings():  # the log-log band is undefined where S = 1 or 0: those points are NaN, fine
        warnings.filterwarnings("ignore", message="The confidence interval is undefined")
        band = sf.confidence_interval(level, method="log-log")

    def first_at_or_below(x: np.ndarray, probs: np.ndarray) -> float:
        """The first time a curve is at or below 1/2; inf if never; NaN if it is undefined before that."""
        for t, v in zip(x, probs, strict=True):
            if math.isnan(v):
                return math.nan
            if v <= 0.5:
                return float(t)
        return math.inf

    x, s_hat = sf.quantiles, sf.probabilities
    # Where S is exactly 1 the band is S itself; where S is 0 its lower band is 0 (no seed is left).
    low = np.where(np.isnan(band.low.probabilities) & ((s_hat == 0) | (s_hat == 1)), s_hat, band.low.probabilities)
    high = np.where(np.isnan(band.high.probabilities) & (s_hat == 1), 1.0, band.high.probabilities)
    # The lower survival band falls to 1/2 first (the median's lower limit), the upper band last.
    return TimeToEvent(reached, first_at_or_below(x, s_hat), first_at_or_below(x, low), first_at_or_below(x, high),
                       rmst, horizon, n)


@dataclass(frozen=True)
class TimeRange:
    """Where a single run's time to an event falls with probability `level`, from the seeds' Kaplan–Meier
    estimate: from its (1 − level)/2 quantile to its (1 + level)/2 quantile. A quantile is the first time the
    estimated distribution function reaches the probability (the left end of a flat stretch; R's survival
    package takes the midpoint). Where fewer seeds than that reached the event, the upper end is open: a run
    beyond the last time reached would not reach it within the horizon, and the times between the last
    reached and the horizon have estimated probability 0."""

    lo: float
    hi: float  # the upper quantile, or the last time reached where the range is open
    open: bool
    horizon: float
    n: int
    reached: int

    def contains(self, value: float, tol: float = 0.0) -> bool:
        """Whether a run's `value` (≤ the horizon) lies in the range, allowing `tol`."""
        return self.lo - tol <= value <= self.hi + tol

    def describe(self, spec: str = ".0f") -> str:
        end = f"{self.hi:{spec}}" + (f", or not reached within {self.horizon:{spec}}" if self.open else "")
        return f"[{self.lo:{spec}}, {end}]"


def time_range(times: list[float | None], horizon: float, level: float = 0.95) -> TimeRange | None:
    """The range of single runs' times (`TimeRange`) from seeds' times, None (or past the horizon) where a seed
    never reached the event (censored at `horizon`); None when no seed reached it."""
    t = [None if v is None or not np.isfinite(v) or v > horizon else float(v) for v in times]
    hit = sorted(v for v in t if v is not None)
    n = len(t)
    if not hit:
        return None
    cdf = sps.ecdf(sps.CensoredData(uncensored=hit, right=[horizon] * (n - len(hit)))).cdf
    x, f = cdf.quantiles, cdf.probabilities
    lo_p, hi_p = (1 - level) / 2, (1 + level) / 2

    def quantile(p: float) -> float:
        at = np.nonzero(f >= p - 1e-12)[0]
        return float(x[at[0]]) if len(at) else math.nan

    hi = quantile(hi_p)
    return TimeRange(quantile(lo_p), float(hit[-1]) if math.isnan(hi) else hi, math.isnan(hi), horizon, n, len(hit))


def ratio_of_means(a: dict[int, float], b: dict[int, float], level: float = 0.95, resamples: int = 9999,
                   seed: int = 0) -> Estimate:
    """mean(a) / mean(b) over the seeds both have (a ratio of means, as a table of averages reports it), with a
    percentile bootstrap that resamples seeds, keeping each seed's pair together (seeded)."""
    seeds = sorted(s for s in set(a) & set(b) if np.isfinite(a[s]) and np.isfinite(b[s]))
    x, y = np.array([a[s] for s in seeds], dtype=float), np.array([b[s] for s in seeds], dtype=float)
    n = len(seeds)
    if n == 0 or y.mean() == 0:
        return Estimate(math.nan, math.nan, math.nan, n, "paired bootstrap")
    value = float(x.mean() / y.mean())
    if n < 3:
        return Estimate(value, math.nan, math.nan, n, "paired bootstrap")
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = x[idx].mean(1) / y[idx].mean(1)
    lo, hi = np.quantile(boot[np.isfinite(boot)], [0.5 - level / 2, 0.5 + level / 2])
    return Estimate(value, float(lo), float(hi), n, "paired bootstrap")


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
