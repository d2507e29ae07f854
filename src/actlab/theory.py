"""`actlab.theory`: what theory predicts before any training, in one import.

The computations live with the catalog (they need an activation, never a network or a training run):
`actlab.catalog.meanfield` holds the mean-field signal propagation of wide random networks (the variance
and correlation maps, their fixed points, χ₁, the depth scales, the edge of chaos, gradient ratios), and
`actlab.catalog.theory` the closed-form facts (the GELU approximations' errors). This module gathers their
public names so that `from actlab.theory import propagation` reads as what it is.
"""

from __future__ import annotations

from actlab.catalog.meanfield import (
    Estimate,
    Kernel,
    SignalPropagation,
    c_iterates,
    chi1,
    critical_sw2,
    propagation,
    q_iterates,
    variance_map,
    weight_gradient_ratio,
)
from actlab.catalog.theory import ApproximationError, gelu_approximation_error

__all__ = ["ApproximationError", "Estimate", "Kernel", "SignalPropagation", "c_iterates", "chi1", "critical_sw2",
           "gelu_approximation_error", "propagation", "q_iterates", "variance_map", "weight_gradient_ratio"]
