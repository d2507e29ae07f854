"""Seed 001's own PyTorch code (../shared/seeds/001_*.txt), ported as written: the cnn-depth-cpu baseline of
`python benchmarks/bench.py table`.

The source's BasicBlock, Network, train_model and evaluate_model, word for word, with the two numbers the
CPU profile changes made parameters: the input channels (`in_channels`, 3 in the source, 1 for digits) and
the width (`width`, 64 in the source, 16 in cnn-depth-cpu). Its bookkeeping is kept: after every backward
pass the mean |grad| of every parameter tensor is read back with `.item()` (the source's gradient
average), the loss and the correct count are read back per batch, and the epoch's gradient mean is
printed (`verbose=False` keeps it in a list instead, so a benchmark does not time the terminal). The
DataLoaders are the source's: batch 128, shuffle for training, `num_workers=2` (a parameter, so a test
can use 0). Deviations that change the cost, all in the source's favour: the data are a TensorDataset of
ready tensors (digits) instead of torchvision's CIFAR10 with a per-image ToTensor and Normalize; the
loaders are built per network; the per-epoch accuracy prints are left out; the device is the CPU.
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.optim as optim


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, activation='relu'):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        if activation == 'relu':
            self.activation = nn.ReLU()
        else:
            self.activation = nn.Sigmoid()

    def forward(self, x):
        x = self.conv(x)
        x = self.bn(x)
        x = self.activation(x)
        return x


class Network(nn.Module):
    def __init__(self, num_blocks, activation='relu', in_channels=3, width=64):
        super().__init__()
        self.activation = activation

        # initial convolution
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        if activation == 'relu':
            self.activation1 = nn.ReLU()
        else:
            self.activation1 = nn.Sigmoid()

        # basic block
        self.blocks = nn.ModuleList()
        for _ in range(num_blocks):
            self.blocks.append(BasicBlock(width, width, activation))

        # last layer
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.activation1(x)

        for block in self.blocks:
            x = block(x)

        x = self.avg_pool(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x


def train_model(model, train_loader, criterion, optimizer, device, verbose=True, log=None):
    model.train()
    running_loss = 0.0
    correct = 0
    total = 0

    grad_list = []  # list to save gradient

    for inputs, labels in train_loader:
        inputs, labels = inputs.to(device), labels.to(device)

        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        loss.backward()

        # Accumulate per-batch average gradient magnitude
        batch_gradients = []
        for name, param in model.named_parameters():
            if param.grad is not None:
                batch_gradients.append(param.grad.abs().mean().item())

        # Store the average gradient magnitude across all trainable parameters
        if batch_gradients:
            grad_list.append(sum(batch_gradients) / len(batch_gradients))

        optimizer.step()

        running_loss += loss.item()
        _, predicted = outputs.max(1)
        total += labels.size(0)
        correct += predicted.eq(labels).sum().item()

    if grad_list:
        epoch_grad_mean = sum(grad_list) / len(grad_list)
        line = f"Epoch Gradient Mean: {epoch_grad_mean:.6f}"
        print(line) if verbose else (log if log is not None else []).append(line)

    return running_loss / len(train_loader), 100. * correct / total


def evaluate_model(model, test_loader, criterion, device):
    model.eval()
    running_loss = 0.0
    correct = 0
    total = 0

    with torch.no_grad():
        for inputs, labels in test_loader:
            inputs, labels = inputs.to(device), labels.to(device)
            outputs = model(inputs)
            loss = criterion(outputs, labels)

            running_loss += loss.item()
            _, predicted = outputs.max(1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()

    return running_loss / len(test_loader), 100. * correct / total


def train_one(x_train, y_train, x_test, y_test, num_blocks, activation, epochs, num_workers=2, width=16,
              batch_size=128, lr=1e-3):
    """The source's main loop for one network: Adam, CrossEntropyLoss, per epoch train_model then
    evaluate_model, best test accuracy kept. Returns (best test accuracy in %, the gradient-mean lines)."""
    device = torch.device("cpu")
    train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train),
                                               batch_size=batch_size, shuffle=True, num_workers=num_workers)
    test_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_test, y_test),
                                              batch_size=batch_size, shuffle=False, num_workers=num_workers)
    criterion = nn.CrossEntropyLoss()
    model = Network(num_blocks, activation=activation, in_channels=x_train.shape[1], width=width).to(device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    best_test_acc, log = 0, []
    for _epoch in range(epochs):
        train_model(model, train_loader, criterion, optimizer, device, verbose=False, log=log)
        _, test_acc = evaluate_model(model, test_loader, criterion, device)
        best_test_acc = max(best_test_acc, test_acc)
    return best_test_acc, log


def rate(x_train, y_train, x_test, y_test, num_blocks=4, epochs=2, models=2, num_workers=2, width=16) -> float:
    """Model-epochs per second of the source's loop (ReLU and sigmoid networks alternately, `models` in all),
    each epoch a training pass and a test-set evaluation, as the source runs it."""
    t = time.perf_counter()
    for k in range(models):
        torch.manual_seed(k)
        train_one(x_train, y_train, x_test, y_test, num_blocks, ("relu", "sigmoid")[k % 2], epochs, num_workers,
                  width)
    return models * epochs / (time.perf_counter() - t)
