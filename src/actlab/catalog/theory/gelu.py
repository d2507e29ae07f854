"""Closed-form and numerical facts about activations that need no training.

For now: how far the two GELU approximations stray from the exact erf form. Both errors are even
functions of x (every form satisfies g(x) - g(-x) = x), so each maximum sits at a pair ±x.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel
from scipy.optimize import minimize_scalar

from actlab.catalog.activations import get

GELU_APPROXIMATIONS = ("gelu_tanh", "gelu_sigmoid")


class ApproximationError(BaseModel):
    """Largest |exact − approximation| over a range, and where it occurs (also at −x)."""

    approximation: str
    formula: str
    max_abs_error: float
    at_x: float  # the positive location; the error is even, so −at_x gives the same value
    mean_abs_error: float  # mean over the scanned grid
    lo: float
    hi: float


def gelu_approximation_error(lo: float = -10.0, hi: float = 10.0, step: float = 1e-4) -> list[ApproximationError]:
    """Max and mean |GELU(x) − approx(x)| on [lo, hi] in float64, the max refined to 1e-10 in x."""
    exact = get("gelu")
    x = torch.arange(lo, hi + step / 2, step, dtype=torch.float64)
    out = []
    for name in GELU_APPROXIMATIONS:
        approx = get(name)

        def err(v: torch.Tensor, approx=approx) -> torch.Tensor:
            return (exact(v) - approx(v)).abs()

        e = err(x)
        i = int(e.argmax())
        a, b = float(x[max(i - 1, 0)]), float(x[min(i + 1, len(x) - 1)])
        r = minimize_scalar(lambda v: -float(err(torch.tensor([v], dtype=torch.float64))[0]),
                            bounds=(a, b), method="bounded", options={"xatol": 1e-10})
        out.append(ApproximationError(approximation=name, formula=approx.text, max_abs_error=-float(r.fun),
                                      at_x=abs(float(r.x)), mean_abs_error=float(e.mean()), lo=lo, hi=hi))
    return out
