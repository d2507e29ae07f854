"""Synthetic sequence tasks with a known horizon, for recurrent nets.

The adding problem, in the form Le et al. 2015 and Arjovsky et al. 2016 use (Hochreiter & Schmidhuber 1997's
original, their experiment 4, differs: values in [−1, 1], the first marker among the first ten steps, the target
0.5 + (X₁ + X₂)/4): each example is T steps of two features, a value drawn U(0, 1) and a marker that is 1 at exactly two
steps, one drawn uniformly from the first half of the sequence and one from the second half, 0 elsewhere. The
target is the sum of the two marked values. Always predicting 1 (the target's mean) scores the target's variance,
Var(u₁ + u₂) = 2/12 = 1/6 ≈ 0.167 MSE: a model that does not carry the first value across at least T/2 steps
cannot do much better, so "learned" and "did not" are unambiguous. Inputs are (2, T), signals of two channels
over T steps: a recurrent model reads one step at a time; an MLP or ConvNet takes them too.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from actlab.data.record import Dataset, Seed, from_numpy

GUESS_MSE = 1 / 6  # the MSE of always predicting the mean target, 1: Var(U + U') for independent U(0, 1)


def adding_arrays(n: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2, steps) float32 inputs and (n,) float32 targets of the adding problem, drawn from `rng`."""
    values = rng.uniform(0.0, 1.0, size=(n, steps))
    half = steps // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, steps, size=n)
    markers = np.zeros((n, steps))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, markers], 1).astype(np.float32), y.astype(np.float32)


def adding(T: Annotated[int, Field(ge=2, le=10_000)] = 50,  # noqa: N803 (T: the problem's own name)
           n: Annotated[int, Field(ge=2, le=1_000_000)] = 6000, test_size: Annotated[float, Field(gt=0, lt=1)] = 1 / 6,
           seed: Seed = 0) -> Dataset:
    """The adding problem at sequence length T: n examples (the last test_size of them held out), from a NumPy
    generator seeded `seed` (the same seed and sizes give the same arrays)."""
    x, y = adding_arrays(n, T, np.random.default_rng(seed))
    n_test = max(1, int(round(n * test_size)))
    return from_numpy("adding", "regression", x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:], (),
                      {"generator": "actlab adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015's form)",
                       "T": T, "n": n, "test_size": test_size, "seed": seed, "guess_mse": GUESS_MSE})
