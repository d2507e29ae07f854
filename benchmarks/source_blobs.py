"""Seed 002's own NumPy code (../shared/seeds/002_*.txt), ported as written: the blobs-depth baseline of
`python benchmarks/bench.py table`.

The source's MLP class (its __init__, sigmoid, forward, sigmoid_derivative, backward, train and predict,
the three notebook cells joined into one class), its synthetic data (np.random.seed(42), two 8-D Gaussian
blobs at ±2, StandardScaler, train_test_split(test_size=0.2, random_state=42)) and its driver. The ReLU
variant is the source's own: its relu and relu_derivative replace sigmoid and sigmoid_derivative
everywhere, the output layer included. The bookkeeping is the source's: the MSE every 100 epochs, and
`train` prints it (`verbose=False` keeps the line in a list instead, so a benchmark does not time the
terminal). What it costs is what the source costs.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


class MLP:
    def __init__(self, layer_sizes: list[int], activation: str = "sigmoid", verbose: bool = True):
        # layer_sizes includes the size of the input layer
        self.layer_sizes = layer_sizes
        self.num_layers = len(self.layer_sizes)
        self.weights = []
        self.biases = []
        self.activation = activation
        self.verbose = verbose
        self.log: list[str] = []

        for layer in range(1, self.num_layers):
            # the 0.01 multiplier is important to keep numbers within scale in this simple example
            self.weights.append(np.random.rand(self.layer_sizes[layer - 1], self.layer_sizes[layer]) * 0.01)
            self.biases.append(np.zeros((1, self.layer_sizes[layer])))

    def sigmoid(self, z):
        return 1 / (1 + np.exp(-z))

    def sigmoid_derivative(self, z):
        return self.sigmoid(z) * (1 - self.sigmoid(z))

    def relu(self, x):
        return np.maximum(0, x)

    def relu_derivative(self, z):
        grad = np.zeros_like(z)
        grad[z > 0] = 1
        return grad

    def act(self, z):
        return self.relu(z) if self.activation == "relu" else self.sigmoid(z)

    def act_derivative(self, z):
        return self.relu_derivative(z) if self.activation == "relu" else self.sigmoid_derivative(z)

    def forward(self, X):
        # X shape: [batch_size, num_features]
        # store activations and values before activations for backpropagation use
        activations = [X]
        pre_activations = []

        for i in range(self.num_layers - 1):
            # @ is matmul
            pre = activations[-1] @ self.weights[i] + self.biases[i]

            pre_activations.append(pre)
            activations.append(self.act(pre))

        return pre_activations, activations

    def backward(self, Y, pre_activations, activations, learning_rate, epoch):
        num_samples = Y.shape[0]

        # compute gradient of loss on the output layer of pre_activations
        # assume it's an MSE loss
        dz = 2 * (activations[-1] - Y) * self.act_derivative(pre_activations[-1])

        for i in range(self.num_layers - 2, -1, -1):
            # shape : (D_(L-1), D_L) = (N, D_(L-1)).T * (N, D_L)
            #    the output shape matches the shape of weights
            dw = (activations[i].T @ dz) / num_samples

            # sum over the first axis, this means sum over all samples, shape is changed from (N, D) to (1, D)
            #  the outcome shape matches the shape of bias
            db = np.sum(dz, axis=0, keepdims=True) / num_samples

            # update dz
            if i > 0:
                # 1. dz is in the front, weight needs to be transposed
                # 2. take the i-1 index of pre_activations (vs i index for activations and weights)
                dz = (dz @ self.weights[i].T) * self.act_derivative(pre_activations[i - 1])

            self.weights[i] -= learning_rate * dw
            self.biases[i] -= learning_rate * db

    def train(self, X, Y, num_epoch, learning_rate):
        for epoch in range(num_epoch):
            pre_activations, activations = self.forward(X)
            self.backward(Y, pre_activations=pre_activations, activations=activations, learning_rate=learning_rate,
                          epoch=epoch)

            if epoch % 100 == 0:
                loss = np.mean((activations[-1] - Y) ** 2)
                line = f"Epoch: {epoch}, loss {loss}"
                print(line) if self.verbose else self.log.append(line)

    def predict(self, X):
        _, activations = self.forward(X)
        return activations[-1]


def make_data():
    """The source's synthetic data, its cell as written."""
    # Generate synthetic data
    np.random.seed(42)
    num_samples = 500
    input_dim = 8
    output_dim = 1

    # create data for two classes, one class with label 0 and one class with label 1
    X1 = np.random.randn(num_samples // 2, input_dim) + np.array([2] * input_dim)
    X2 = np.random.randn(num_samples // 2, input_dim) + np.array([-2] * input_dim)
    X = np.vstack([X1, X2])
    y = np.vstack([np.ones((num_samples // 2, output_dim)), np.zeros((num_samples // 2, output_dim))])

    # Normalize data
    scaler = StandardScaler()
    X = scaler.fit_transform(X)

    # Split into train and test sets
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    return X_train, X_test, y_train, y_test


def run(hidden_dims, activation="sigmoid", num_epoch=1000, verbose=False):
    """The source's driver for one `hidden_dims`: data (which seeds the global RNG with 42), the model, train,
    and the printed test accuracy. Returns the model and that accuracy."""
    X_train, X_test, y_train, y_test = make_data()
    input_dim, output_dim = 8, 1
    layer_sizes = [input_dim, *hidden_dims, output_dim]
    model = MLP(layer_sizes, activation, verbose)
    model.train(X_train, y_train, num_epoch=num_epoch, learning_rate=0.1)

    # Make predictions
    y_pred = model.predict(X_test)
    y_pred = (y_pred > 0.5).astype(int)

    # Evaluate the model
    accuracy = np.mean(y_pred == y_test)
    return model, accuracy


def rate(hidden_dims=(16, 32, 16), activation="sigmoid", num_epoch=300, repeats=3) -> float:
    """Model-epochs per second of the source's training (one network, full batch), the best of `repeats`;
    the data are made before the clock starts."""
    X_train, _, y_train, _ = make_data()
    best = float("inf")
    for _ in range(repeats):
        model = MLP([8, *hidden_dims, 1], activation, verbose=False)
        t = time.perf_counter()
        model.train(X_train, y_train, num_epoch=num_epoch, learning_rate=0.1)
        best = min(best, time.perf_counter() - t)
    return num_epoch / best
