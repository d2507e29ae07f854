"""The baseline of the throughput benchmarks: one network at a time in plain NumPy, the original style.

A straightforward implementation of the classic write-ups' MLP: weights as a list of matrices, a forward
pass that keeps every layer's z and a, a hand-written backward pass, and plain SGD, trained on one model
after another. It is deliberately what the notebooks do, not a tuned program.
"""

from __future__ import annotations

import numpy as np


def _act(name: str, z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z)) if name == "sigmoid" else np.maximum(z, 0.0)


def _dact(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return a * (1.0 - a) if name == "sigmoid" else (z > 0).astype(z.dtype)


class NumpyMLP:
    """sizes e.g. [2, 8, 8, 1]; hidden activation `act`; output: sigmoid + BCE, or `out_act` + MSE."""

    def __init__(self, sizes: list[int], act: str, seed: int, init: str = "he", out_act: str | None = None):
        rs = np.random.RandomState(seed)
        self.act, self.out_act = act, out_act
        if init == "blobs":
            self.w = [0.01 * rs.rand(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        else:
            scale = 2.0 if init == "he" else 1.0
            self.w = [rs.randn(a, b) * np.sqrt(scale / a) for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b) for b in sizes[1:]]

    def forward(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        zs, as_ = [], [x]
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            z = as_[-1] @ w + b
            last = i == len(self.w) - 1
            name = (self.out_act or "sigmoid") if last else self.act
            zs.append(z)
            as_.append(_act(name, z))
        return zs, as_

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        zs, as_ = self.forward(x)
        out = as_[-1][:, 0]
        n = len(x)
        if self.out_act is None:  # sigmoid + BCE: dL/dz = p - y
            p = np.clip(out, 1e-7, 1 - 1e-7)
            loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
            delta = ((out - y) / n)[:, None]
        else:  # MSE on the activated output
            loss = np.mean((out - y) ** 2)
            delta = (2 * (out - y) / n)[:, None] * _dact(self.out_act, zs[-1], as_[-1])
        for i in reversed(range(len(self.w))):
            gw, gb = as_[i].T @ delta, delta.sum(0)
            if i > 0:
                delta = (delta @ self.w[i].T) * _dact(self.act, zs[i - 1], as_[i])
            self.w[i] -= lr * gw
            self.b[i] -= lr * gb
        return float(loss)


def train_one(sizes: list[int], act: str, seed: int, x: np.ndarray, y: np.ndarray, epochs: int, lr: float,
              batch: int | None, init: str = "he", out_act: str | None = None) -> NumpyMLP:
    """Train one network with minibatch SGD (reshuffled each epoch) or full batch when batch is None."""
    net = NumpyMLP(sizes, act, seed, init, out_act)
    rs = np.random.RandomState(seed + 1)
    n = len(x)
    for _ in range(epochs):
        if batch is None:
            net.step(x, y, lr)
            continue
        order = rs.permutation(n)
        for s in range(0, n, batch):
            idx = order[s: s + batch]
            net.step(x[idx], y[idx], lr)
    return net
