"""Statistics for reported numbers: every mean comes with its n and a 95 % confidence interval.

`mean_ci` uses Student's t over the finite values (diverged replicas are NaN and excluded, and n says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95 % CI (Student t) and the number of values behind it."""

    mean: float
    lo: float
    hi: float
    n: int

    def __str__(self) -> str:
        if self.n == 0:
            return "— (n = 0)"
        if self.n == 1:
            return f"{self.mean:.4g} (n = 1)"
        return f"{self.mean:.4g} [{self.lo:.4g}, {self.hi:.4g}] (n = {self.n})"


def mean_ci(values: np.ndarray | list[float], level: float = 0.95) -> Estimate:
    """Mean of the finite values and its `level` confidence interval (Student t, n − 1 degrees of freedom)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    m = float(v.mean())
    if n == 1:
        return Estimate(m, math.nan, math.nan, 1)
    half = float(sps.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return Estimate(m, m - half, m + half, n)
