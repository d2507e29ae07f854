"""Statistics against independent references: float64 textbook formulas, scipy's distributions, hand-worked
Holm adjustments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from actlab.analysis.stats import (
    column_ci,
    holm,
    mean_ci,
    paired_difference,
    proportion_ci,
    sign_flip_test,
    time_to_event,
)
from actlab.errors import ActlabError


def _t_interval(v):
    v = np.asarray(v, dtype=np.float64)
    n, m, sd = len(v), v.mean(), v.std(ddof=1)
    half = sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return m, m - half, m + half


def test_mean_ci_is_student_t_and_drops_missing_values():
    v = [0.91, 0.88, 0.95, 0.90, np.nan, None, 0.87]
    est = mean_ci(v)
    m, lo, hi = _t_interval([0.91, 0.88, 0.95, 0.90, 0.87])
    assert est.n == 5 and est.method == "t"
    np.testing.assert_allclose([est.mean, est.lo, est.hi], [m, lo, hi], rtol=1e-12)
    assert str(est) == f"{m:.4g} [{lo:.4g}, {hi:.4g}] (n = 5)"
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([1.0]).lo)
    assert (mean_ci([0.5, 0.5, 0.5]).lo, mean_ci([0.5, 0.5, 0.5]).hi) == (0.5, 0.5)


def test_bootstrap_interval_agrees_with_t_on_normal_data_and_is_seeded():
    v = np.random.default_rng(1).normal(3.0, 2.0, 400)
    t, b = mean_ci(v), mean_ci(v, method="bootstrap", resamples=4000)
    assert b.method == "bootstrap" and b.mean == t.mean
    assert b.lo < t.mean < b.hi
    assert abs((b.hi - b.lo) / (t.hi - t.lo) - 1) < 0.1  # the CLT: both widths ≈ 2·1.96·σ/√n
    assert mean_ci(v, method="bootstrap", resamples=500, seed=7) == mean_ci(v, method="bootstrap", resamples=500,
                                                                            seed=7)
    with pytest.raises(ActlabError, match="allowed: t, bootstrap"):
        mean_ci(v, method="jackknife")


def test_column_ci_equals_mean_ci_column_by_column():
    a = np.random.default_rng(0).normal(size=(6, 5))
    a[2, 1] = np.nan
    a[:, 4] = np.nan
    a[1:, 3] = np.nan  # a single finite value: no interval
    mean, lo, hi, n = column_ci(a)
    for j in range(5):
        e = mean_ci(a[:, j])
        assert n[j] == e.n
        np.testing.assert_allclose([mean[j], lo[j], hi[j]], [e.mean, e.lo, e.hi], rtol=1e-12, equal_nan=True)


def test_paired_difference_matches_the_textbook_paired_t():
    a = {0: 0.90, 1: 0.85, 2: 0.93, 3: 0.88, 4: 0.91, 5: float("nan")}
    b = {0: 0.80, 1: 0.84, 2: 0.85, 3: 0.70, 4: 0.90, 6: 0.5}
    pr = paired_difference(a, b, test="t")
    d = np.array([0.10, 0.01, 0.08, 0.18, 0.01])  # seeds 0..4: 5 is NaN, 6 is unpaired
    n, m, sd = 5, d.mean(), d.std(ddof=1)
    t = m / (sd / math.sqrt(n))
    p = 2 * sps.t.sf(abs(t), n - 1)
    assert pr.n == 5 and pr.seeds == (0, 1, 2, 3, 4)
    np.testing.assert_allclose([pr.diff.mean, pr.statistic, pr.p, pr.effect_size], [m, t, p, m / sd], rtol=1e-10)
    np.testing.assert_allclose([pr.diff.lo, pr.diff.hi], _t_interval(d)[1:], rtol=1e-10)
    w = paired_difference(a, b, test="wilcoxon")
    assert w.test == "wilcoxon" and w.p == pytest.approx(sps.wilcoxon(d).pvalue)


def test_paired_difference_without_spread_or_pairs():
    same = paired_difference([0.5, 0.7, 0.9], [0.4, 0.6, 0.8])  # +0.1 in every seed (up to float rounding)
    assert same.identical and same.p == 2 / 2**3 and same.effect_size == math.inf and same.diff.lo == same.diff.hi
    assert paired_difference([0.5, 0.7, 0.9], [0.4, 0.6, 0.8], test="t").p == 0.0  # t has no floor: no test
    equal = paired_difference([0.5, 0.7], [0.5, 0.7])
    assert equal.identical and equal.p == 1.0 and equal.diff.mean == 0.0
    one = paired_difference({0: 1.0, 1: 2.0}, {1: 1.5, 2: 0.0})
    assert one.n == 1 and math.isnan(one.p)
    with pytest.raises(ActlabError, match="equal lengths"):
        paired_difference([1.0, 2.0], [1.0])


def test_holm_by_hand():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> monotone 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, float("nan"), 0.9])
    assert out[0] == pytest.approx(0.4) and math.isnan(out[1]) and out[2] == pytest.approx(0.9)
    assert holm([0.6, 0.7]) == [1.0, 1.0]


# ------------------------------------------------------------------ exact tests, bounds, censoring (#12)


def _enumerated_p(d):
    """The sign-flip p-value by brute enumeration of every sign pattern (the reference)."""
    import itertools

    obs = abs(sum(d))
    hits = sum(abs(sum(s * abs(x) for s, x in zip(signs, d))) >= obs - 1e-12
               for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


@pytest.mark.parametrize("seed", range(4))
def test_sign_flip_p_equals_enumeration(seed):
    d = np.random.default_rng(seed).normal(0.3, 1.0, size=9).round(3)
    assert sign_flip_test(d) == pytest.approx(_enumerated_p(list(d)), abs=1e-12)


def test_sign_flip_p_never_falls_below_its_floor():
    d = np.arange(1.0, 11.0)  # every seed favours one side: the most extreme pattern there is
    assert sign_flip_test(d) == 2 / 2 ** 10
    pr = paired_difference(np.arange(10) + 100.0, np.arange(10) * 0.5)
    assert pr.test == "permutation" and pr.p == 2 / 2 ** 10  # a paired t would give p ~ 1e-9 here
    assert paired_difference(np.arange(10) + 100.0, np.arange(10) * 0.5, test="t").p < 1e-8


def test_sign_flip_monte_carlo_beyond_twenty_is_seeded_and_bounded():
    d = np.random.default_rng(1).normal(0.2, 1.0, size=30)
    p1, p2 = sign_flip_test(d, resamples=4999, seed=3), sign_flip_test(d, resamples=4999, seed=3)
    assert p1 == p2 and 1 / 5000 <= p1 <= 1
    assert sign_flip_test(np.ones(30), resamples=999) == 1 / 1000


def test_bounded_means_stay_inside_their_bounds():
    free = mean_ci([0.9, 1.0, 1.0])
    assert free.hi > 1  # Student t on its own leaves [0, 1]
    bounded = mean_ci([0.9, 1.0, 1.0], bounds=(0.0, 1.0))
    assert bounded.hi == 1.0 and bounded.lo == free.lo and bounded.mean == free.mean
    assert mean_ci([0.0, 0.0, 0.02], bounds=(0.0, 1.0)).lo == 0.0


def test_an_outcome_identical_on_every_seed_is_said_so():
    assert mean_ci([1.0] * 10).format(".3f") == "1.000 on all 10 seeds"
    assert mean_ci([0.5]).format(".3f") == "0.500 (n = 1)"


def test_clopper_pearson_intervals_match_published_values():
    # Clopper & Pearson (1934) exact limits: 0/10 -> [0, 0.3085], 10/10 -> [0.6915, 1], 3/10 -> [0.0667, 0.6525]
    assert proportion_ci(0, 10).hi == pytest.approx(0.30850, abs=1e-4) and proportion_ci(0, 10).lo == 0
    assert proportion_ci(10, 10).lo == pytest.approx(0.69150, abs=1e-4)
    p = proportion_ci(3, 10)
    assert (p.lo, p.hi) == (pytest.approx(0.06674, abs=1e-4), pytest.approx(0.65245, abs=1e-4))


def test_kaplan_meier_median_on_a_hand_worked_example():
    # Events at 3, 5, 7; two seeds censored at 10. S = 4/5, then 4/5·3/4 = 0.6, then 0.6·2/3 = 0.4: median 7.
    t = time_to_event([3, 5, 7, None, None], horizon=10)
    assert t.reached.k == 3 and t.reached.n == 5 and t.median == 7
    assert t.rmst == pytest.approx((3 + 5 + 7 + 10 + 10) / 5)
    assert t.median_lo <= 7 <= t.median_hi
    none = time_to_event([None, None], horizon=50)
    assert none.reached.k == 0 and math.isinf(none.median) and none.rmst == 50


def test_a_median_every_seed_reached_at_once_is_not_called_unreached():
    tied = time_to_event([1040, 1040, 1040], horizon=5000)
    assert tied.median == 1040 and "not reached within" not in tied.format_median()
    assert tied.format_median(unit=" epochs") == "1040 epochs (95 % CI [1040, undefined])"
    spread = time_to_event([100, 200, 300], horizon=5000)
    assert spread.median == 200 and spread.format_median().startswith("200 (95 % CI [100, ")


def test_an_estimate_leaves_n_out_where_a_table_has_an_n_column():
    e = mean_ci([0.9, 0.95, 1.0])
    assert e.format(".3f").endswith("(n = 3)")
    assert e.format(".3f", with_n=False) == f"{e.mean:.3f} [{e.lo:.3f}, {e.hi:.3f}]"
    assert mean_ci([0.5, 0.5]).format(".2f", with_n=False) == "0.50 on every seed"
    assert mean_ci([]).format(with_n=False) == "—"
