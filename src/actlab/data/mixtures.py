"""The classic 2-D Gaussian mixtures of GAN mode-collapse studies (Metz et al. 2017, "Unrolled GANs"; Srivastava
et al. 2017, "VEEGAN"): `ring`, 8 modes evenly spaced on a circle of radius 2 with σ = 0.02, and `grid`, 25 modes on
the 5 × 5 grid {−4, −2, 0, 2, 4}² with σ = 0.05, each mode equally likely.

`scale="unit"` (the default) divides every coordinate by the mixture's reach, the largest |coordinate| of a mode
centre plus 3σ, so that every mode's 3σ disc lies inside [−1, 1]²: a generator with a tanh output can reach all of
it, and an identity output sees the same data (the guide's "tanh output" claim is then a fair comparison). σ is
scaled with it. `scale="none"` keeps the published coordinates.

The label of a point is the index of its mode. The mode centres and σ (after scaling) are in the provenance; the
GAN's quality measures (`actlab.analysis.generative`) read them there.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from actlab.data.record import Dataset, Seed, from_numpy

LAYOUTS = {"ring": (2.0, 0.02), "grid": (2.0, 0.05)}  # (spacing or radius, σ) of the published mixtures


def centres(layout: Literal["ring", "grid"]) -> np.ndarray:
    """(K, 2) float64 mode centres in the published coordinates."""
    if layout == "ring":
        t = 2 * np.pi * np.arange(8) / 8
        return 2.0 * np.stack([np.cos(t), np.sin(t)], 1)
    g = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)


def mixture(layout: Literal["ring", "grid"], n: int, test_size: float, seed: int, scale: str) -> Dataset:
    mu = centres(layout)
    sigma = LAYOUTS[layout][1]
    reach = float(np.abs(mu).max() + 3 * sigma) if scale == "unit" else 1.0
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(mu), size=n)
    x = (mu[y] + sigma * rng.standard_normal((n, 2))) / reach
    n_test = max(1, int(round(n * test_size)))
    names = tuple(f"mode{k + 1}" for k in range(len(mu)))
    return from_numpy(layout, "multiclass", x[:-n_test].astype(np.float32), y[:-n_test].astype(np.int64),
                      x[-n_test:].astype(np.float32), y[-n_test:].astype(np.int64), names,
                      {"generator": f"actlab 2-D Gaussian mixture ({layout}: Metz et al. 2017; Srivastava et al. 2017)",
                       "layout": layout, "n": n, "test_size": test_size, "seed": seed, "scale": scale,
                       "modes": (mu / reach).tolist(), "sigma": sigma / reach})


def ring(n: Annotated[int, Field(ge=16, le=1_000_000)] = 10_000,
         test_size: Annotated[float, Field(gt=0, lt=1)] = 0.2, seed: Seed = 0,
         scale: Literal["unit", "none"] = "unit") -> Dataset:
    """8 Gaussians on a ring (radius 2, σ 0.02), n points (the last test_size held out), scaled into [−1, 1]²."""
    return mixture("ring", n, test_size, seed, scale)


def grid(n: Annotated[int, Field(ge=16, le=1_000_000)] = 10_000,
         test_size: Annotated[float, Field(gt=0, lt=1)] = 0.2, seed: Seed = 0,
         scale: Literal["unit", "none"] = "unit") -> Dataset:
    """25 Gaussians on the 5 × 5 grid {−4, …, 4}² (σ 0.05), n points, scaled into [−1, 1]²."""
    return mixture("grid", n, test_size, seed, scale)
