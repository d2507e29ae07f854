"""Numbers made safe for JSON and SQLite: NaN and ±inf become None (neither format has them).

One helper for every place that hands numbers outward: the store's rows, the explorer's responses and
its live events.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def number(v: Any, sig: int | None = None) -> float | None:
    """`v` as a float, None when it is NaN or infinite; rounded to `sig` significant digits when given."""
    v = float(v)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{sig}g}") if sig is not None else v


def clean(a: Any, sig: int | None = None) -> Any:
    """An array or scalar as nested lists of floats (None for NaN and ±inf), optionally rounded."""
    arr = np.asarray(a, dtype=float)
    flat = [number(v, sig) for v in arr.ravel().tolist()]
    if not arr.ndim:
        return flat[0]
    return np.array(flat, dtype=object).reshape(arr.shape).tolist()
