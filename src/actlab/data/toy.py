"""Generated 2-D and 8-D datasets: the moons and blobs-depth protocols, and the Playground-style choices.

`moons` and `blobs8` reproduce the classic experiments' arrays exactly (DESIGN §5). Randomness comes
from local generators (`np.random.RandomState` where the original used the legacy global NumPy RNG, so
the same stream is replayed without touching global state), never from `np.random.seed`.

scikit-learn is imported where a generator uses it, not with the module: importing it takes seconds, and
every `actlab` command imports the data sources (to list or validate them) while few of them load data.
"""

from __future__ import annotations

import numpy as np

from actlab.data.record import Count, Dataset, Fraction, NonNegative, Positive, Seed, from_numpy

BINARY = ("0", "1")


def _finish(name: str, x: np.ndarray, y: np.ndarray, test_size: float, seed: int, standardize: bool,
            provenance: dict) -> Dataset:
    """StandardScaler fitted on all points (as the protocols do), then train_test_split."""
    from sklearn.model_selection import train_test_split  # start-up: scikit-learn on first use (module docstring)
    from sklearn.preprocessing import StandardScaler  # start-up

    if standardize:
        x = StandardScaler().fit_transform(x)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed)
    return from_numpy(name, "binary", xtr, ytr, xte, yte, BINARY,
                      provenance | {"standardize": standardize, "test_size": test_size, "split_seed": seed})


def moons(n: Count = 400, noise: NonNegative = 0.18, seed: Seed = 42, test_size: Fraction = 0.25,
          standardize: bool = True) -> Dataset:
    """make_moons(n, noise, random_state=seed), StandardScaler on all points, split test_size (moons protocol)."""
    from sklearn.datasets import make_moons  # start-up

    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return _finish("moons", x, y, test_size, seed, standardize,
                   {"generator": "sklearn.datasets.make_moons", "n": n, "noise": noise, "seed": seed})


def circles(n: Count = 400, noise: NonNegative = 0.1, factor: Fraction = 0.5, seed: Seed = 42,
            test_size: Fraction = 0.25,
            standardize: bool = True) -> Dataset:
    """Two concentric circles, inner radius `factor` (make_circles); class 1 is the inner circle."""
    from sklearn.datasets import make_circles  # start-up

    x, y = make_circles(n_samples=n, noise=noise, factor=factor, random_state=seed)
    return _finish("circles", x, y, test_size, seed, standardize,
                   {"generator": "sklearn.datasets.make_circles", "n": n, "noise": noise, "factor": factor,
                    "seed": seed})


def xor() -> Dataset:
    """The four XOR points {0,1}² with label x1 XOR x2; train and test are the same four points."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])
    return from_numpy("xor", "binary", x, y, x.copy(), y.copy(), BINARY, {"generator": "the 4 XOR points"})


def xor_noisy(n: Count = 400, noise: NonNegative = 0.1, seed: Seed = 42, test_size: Fraction = 0.25,
              standardize: bool = True) -> Dataset:
    """Playground's XOR: points uniform on [-1, 1]², class 1 where x1·x2 > 0, inputs jittered by N(0, noise²)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    x = x + noise * rng.standard_normal((n, 2))
    return _finish("xor_noisy", x, y, test_size, seed, standardize,
                   {"generator": "actlab xor_noisy", "n": n, "noise": noise, "seed": seed})


def spirals(n: Count = 400, noise: NonNegative = 0.1, turns: Positive = 1.75, seed: Seed = 42,
            test_size: Fraction = 0.25,
            standardize: bool = True) -> Dataset:
    """Two interleaved Archimedean spirals of `turns` turns, n/2 points each, jittered by N(0, noise²)."""
    rng = np.random.default_rng(seed)
    half = n // 2
    t = np.sqrt(rng.uniform(0, 1, size=half)) * turns * 2 * np.pi  # sqrt: even density along the arc
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (turns * 2 * np.pi)
    x = np.concatenate([arm, -arm]) + noise * rng.standard_normal((2 * half, 2))
    y = np.concatenate([np.zeros(half, np.int64), np.ones(half, np.int64)])
    return _finish("spirals", x, y, test_size, seed, standardize,
                   {"generator": "actlab spirals", "n": 2 * half, "noise": noise, "turns": turns, "seed": seed})


def gaussian(n: Count = 400, noise: NonNegative = 1.0, distance: NonNegative = 2.0, seed: Seed = 42,
             test_size: Fraction = 0.25,
             standardize: bool = True) -> Dataset:
    """Two 2-D Gaussian blobs N(±(d, d), noise²·I), n/2 points each; class 1 is the positive blob."""
    rng = np.random.default_rng(seed)
    half = n // 2
    x = np.concatenate([rng.normal(-distance, noise, (half, 2)), rng.normal(distance, noise, (half, 2))])
    y = np.concatenate([np.zeros(half, np.int64), np.ones(half, np.int64)])
    return _finish("gaussian", x, y, test_size, seed, standardize,
                   {"generator": "actlab gaussian", "n": 2 * half, "noise": noise, "distance": distance,
                    "seed": seed})


def blobs8(n_per_class: Count = 250, seed: Seed = 42, test_size: Fraction = 0.2) -> Dataset:
    """The blobs-depth protocol: seed 42, 250 draws from N(+2, I₈) labelled 1, then 250 from N(−2, I₈)
    labelled 0; StandardScaler on all 500; train_test_split(test_size=0.2, random_state=seed)."""
    from sklearn.model_selection import train_test_split  # start-up: scikit-learn on first use (module docstring)
    from sklearn.preprocessing import StandardScaler  # start-up

    rs = np.random.RandomState(seed)  # the legacy stream np.random.seed(42) gives, without global state
    x1 = rs.randn(n_per_class, 8) + 2
    x0 = rs.randn(n_per_class, 8) - 2
    x = StandardScaler().fit_transform(np.vstack([x1, x0]))
    y = np.concatenate([np.ones(n_per_class, np.int64), np.zeros(n_per_class, np.int64)])
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed)
    return from_numpy("blobs8", "binary", xtr, ytr, xte, yte, BINARY,
                      {"generator": "numpy RandomState randn ± 2 (blobs-depth protocol)",
                       "n_per_class": n_per_class, "seed": seed, "test_size": test_size, "standardize": True})
