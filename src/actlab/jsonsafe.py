"""Numbers made safe for JSON and SQLite: NaN becomes None (neither has it), and ±inf too for JSON.

One helper for every place that hands numbers outward: the store's rows, the explorer's responses and
its live events.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def number(v: Any, sig: int | None = None, keep_inf: bool = False) -> float | None:
    """`v` as a float, None when it is NaN or infinite; rounded to `sig` significant digits when given.
    `keep_inf=True` keeps ±inf (SQLite stores it; JSON cannot) and maps only NaN to None."""
    v = float(v)
    if math.isnan(v) or (math.isinf(v) and not keep_inf):
        return None
    if math.isinf(v):
        return v
    return float(f"{v:.{sig}g}") if sig is not None else v


def clean(a: Any, sig: int | None = None) -> Any:
    """An array or scalar as nested lists of floats (None for NaN and ±inf), optionally rounded."""
    arr = np.asarray(a, dtype=float)
    flat = [number(v, sig) for v in arr.ravel().tolist()]
    if not arr.ndim:
        return flat[0]
    return np.array(flat, dtype=object).reshape(arr.shape).tolist()
