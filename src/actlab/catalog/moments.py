"""Gaussian moments of a function by quadrature, shared by the catalog's entries (the variance-preserving
gain of a user's activation) and the measured properties.

E[f(z)] and E[f(z)²] for z ~ N(0, 1) by Simpson's rule on [-12, 12]: the normal density is below 1e-31
outside, so the truncation is far below float64 rounding for any f growing at most polynomially.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.integrate import simpson
from torch import Tensor

WINDOW = 12.0  # quadrature window [-WINDOW, WINDOW]


def normal_moments(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(E[y], E[y²]) under the standard normal density, Simpson's rule over the grid x."""
    pdf = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    return float(simpson(y * pdf, x=x)), float(simpson(y * y * pdf, x=x))


def gaussian_moments(f: Callable[[Tensor], Tensor]) -> tuple[float, float]:
    """(E[f(z)], E[f(z)²]) for z ~ N(0, 1), by Simpson's rule on [-12, 12] with step 1e-3."""
    x = torch.linspace(-WINDOW, WINDOW, 24001, dtype=torch.float64)
    with torch.no_grad():
        y = f(x)
    return normal_moments(x.numpy(), y.numpy())
