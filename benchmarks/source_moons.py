"""Seed 000's own NumPy code (../shared/seeds/000_*.txt), ported as written: the baseline of the end-to-end
benchmark (`python benchmarks/bench.py endtoend`).

The source's TwoLayerNet and its training loop, word for word but for the garbled words of the text
(`ahead` is `forward`, `retailer` is `store`, `form` is `shape`, `imply` is `mean`, `most` is `maximum`,
`vary` is `range`): the global NumPy RNG seeded per network, He or Xavier-style init, one shared
permutation per epoch, both networks updated batch by batch, the batch's BCE computed and kept (the
source's bookkeeping: `epoch_loss`, `loss_history`). No plots. What it costs is what the source costs.
"""

from __future__ import annotations

import time

import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-np.clip(z, -500, 500)))


def sigmoid_d(a):
    return a * (1 - a)


def relu(z):
    return np.maximum(0, z)


def relu_d(z):
    return (z > 0).astype(float)


def bce(y, yhat):
    return -np.mean(y * np.log(yhat + 1e-9) + (1 - y) * np.log(1 - yhat + 1e-9))


class TwoLayerNet:
    def __init__(self, activation="relu", seed=0):
        np.random.seed(seed)
        self.act_name = activation
        self.act = relu if activation == "relu" else sigmoid
        self.dact = relu_d if activation == "relu" else sigmoid_d

        # He init for ReLU, Xavier for Sigmoid
        def scale(fan_in):
            return np.sqrt(2 / fan_in) if activation == "relu" else np.sqrt(1 / fan_in)
        self.W1 = np.random.randn(2, 8) * scale(2)
        self.b1 = np.zeros((1, 8))
        self.W2 = np.random.randn(8, 8) * scale(8)
        self.b2 = np.zeros((1, 8))
        self.W3 = np.random.randn(8, 1) * scale(8)
        self.b3 = np.zeros((1, 1))
        self.loss_history = []

    def forward(self, X, store=False):
        z1 = X @ self.W1 + self.b1
        a1 = self.act(z1)
        z2 = a1 @ self.W2 + self.b2
        a2 = self.act(z2)
        z3 = a2 @ self.W3 + self.b3
        out = sigmoid(z3)
        if store:
            self._cache = (X, z1, a1, z2, a2, z3, out)
        return out

    def backward(self, lr=0.05):
        X, z1, a1, z2, a2, z3, out = self._cache
        n = X.shape[0]

        dout = (out - self.y_cache) / n
        dW3 = a2.T @ dout
        db3 = dout.sum(axis=0, keepdims=True)
        da2 = dout @ self.W3.T
        dz2 = da2 * (self.dact(z2) if self.act_name == "relu" else self.dact(a2))
        dW2 = a1.T @ dz2
        db2 = dz2.sum(axis=0, keepdims=True)
        da1 = dz2 @ self.W2.T
        dz1 = da1 * (self.dact(z1) if self.act_name == "relu" else self.dact(a1))
        dW1 = X.T @ dz1
        db1 = dz1.sum(axis=0, keepdims=True)

        for p, g in [(self.W3, dW3), (self.b3, db3), (self.W2, dW2),
                     (self.b2, db2), (self.W1, dW1), (self.b1, db1)]:
            p -= lr * g

    def train_step(self, X, y, lr=0.05):
        self.y_cache = y.reshape(-1, 1)
        out = self.forward(X, store=True)
        loss = bce(self.y_cache, out)
        self.backward(lr)
        return loss


def train_both(X_train, y_train, epochs=800, lr=0.05, batch=64, seed=42):
    """The source's training loop: both networks, same init seed, one permutation per epoch."""
    net_sig = TwoLayerNet("sigmoid", seed=seed)
    net_relu = TwoLayerNet("relu", seed=seed)
    for _epoch in range(epochs):
        idx = np.random.permutation(len(X_train))
        for net in [net_sig, net_relu]:
            epoch_loss = []
            for i in range(0, len(idx), batch):
                b = idx[i:i + batch]
                loss = net.train_step(X_train[b], y_train[b], lr)
                epoch_loss.append(loss)
            net.loss_history.append(np.mean(epoch_loss))
    return net_sig, net_relu


def rate(X_train, y_train, epochs=800, repeats=3) -> float:
    """Model-epochs per second of the source's loop (two networks × epochs), the best of `repeats`."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        train_both(X_train, y_train, epochs)
        best = min(best, time.perf_counter() - t)
    return 2 * epochs / best
