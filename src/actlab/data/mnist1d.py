"""MNIST-1D (Greydanus 2020; Greydanus & Steinbach 2024), generated offline from its ten templates.

The construction is the reference implementation's (`mnist1d.data.make_dataset` with
`get_dataset_args()`): each of the ten 12-point templates is padded with 36-60 zeros, dilated to 72 points,
scaled, circularly translated, its zeros filled with correlated noise, iid noise added, sheared, and
subsampled to 40 points; 500 examples per class, shuffled, standardised with the global mean and std, and
split 4000 / 1000. We write the generator rather than import the package because the package seeds the
global NumPy and `random` RNGs; a local `np.random.RandomState(seed)` replays the same legacy stream, so
the arrays equal the package's (a test compares them).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field
from scipy.ndimage import gaussian_filter

from actlab.data.record import Dataset, Fraction, NonNegative, Seed, from_numpy
from actlab.errors import ActlabError

TEMPLATES = np.array([  # the ten digit templates, 12 points each, as published
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])


def templates() -> np.ndarray:
    """Templates whitened per row, shifted to start at 0, divided by 6: (10, 12)."""
    x = TEMPLATES - TEMPLATES.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return x / 6.0


def _interpolate(x: np.ndarray, n: int) -> np.ndarray:
    """Linear resampling of x onto n evenly spaced points of [0, 1]."""
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _transform(x: np.ndarray, rs: np.random.RandomState, padding: tuple[int, int], template_len: int,
               scale_coeff: float, max_translation: int, corr_noise_scale: float, iid_noise_scale: float,
               shear_scale: float, final_seq_length: int) -> np.ndarray:
    """One example from one template; the draws happen in the reference implementation's order."""
    lo, hi = padding
    p = lo + int(rs.rand() * (hi - lo + 1))
    x = np.concatenate([x + 1e-8, np.zeros(p)])  # pad
    x = _interpolate(x, template_len + hi)  # dilate
    x = x * (1 + scale_coeff * (rs.rand() - 0.5))  # scale
    k = rs.choice(max_translation)
    x = np.concatenate([x[-k:], x[:-k]])  # translate (circularly)
    mask = x != 0
    x = mask * x + (1 - mask) * gaussian_filter(corr_noise_scale * rs.randn(*x.shape), 2)
    x = x + iid_noise_scale * rs.randn(*x.shape)
    x = x - shear_scale * (rs.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))  # shear
    return _interpolate(x, final_seq_length)


def mnist1d(num_samples: Annotated[int, Field(ge=10, le=200_000)] = 5000, train_split: Fraction = 0.8,
            template_len: Annotated[int, Field(ge=1, le=1000)] = 12,
            padding: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0, le=1000)]] = (36, 60),
            scale_coeff: NonNegative = 0.4, max_translation: Annotated[int, Field(ge=1, le=1000)] = 48,
            corr_noise_scale: NonNegative = 0.25, iid_noise_scale: NonNegative = 2e-2,
            shear_scale: NonNegative = 0.75, final_seq_length: Annotated[int, Field(ge=2, le=10_000)] = 40,
            seed: Seed = 42) -> Dataset:
    """MNIST-1D with the published default arguments: 4000 train / 1000 test signals of shape (1, 40)."""
    if padding[0] > padding[1]:
        raise ActlabError(f"dataset mnist1d: padding={list(padding)} must be [low, high] with low <= high")
    rs = np.random.RandomState(seed)
    tmpl = templates()
    per_class = num_samples // len(tmpl)
    xs, ys = [], []
    for label, t in enumerate(tmpl):
        for _ in range(per_class):
            xs.append(_transform(t, rs, tuple(padding), template_len, scale_coeff, max_translation,
                                 corr_noise_scale, iid_noise_scale, shear_scale, final_seq_length))
            ys.append(label)
    order = rs.permutation(len(ys))
    x, y = np.stack(xs)[order], np.array(ys)[order]
    x = (x - x.mean()) / x.std()
    split = int(len(y) * train_split)
    args = {"num_samples": num_samples, "train_split": train_split, "template_len": template_len,
            "padding": list(padding), "scale_coeff": scale_coeff, "max_translation": max_translation,
            "corr_noise_scale": corr_noise_scale, "iid_noise_scale": iid_noise_scale, "shear_scale": shear_scale,
            "final_seq_length": final_seq_length, "seed": seed}
    return from_numpy("mnist1d", "multiclass", x[:split, None, :], y[:split], x[split:, None, :], y[split:],
                      tuple(str(d) for d in range(10)),
                      {"generator": "MNIST-1D reference construction (Greydanus 2020)", "args": args})
