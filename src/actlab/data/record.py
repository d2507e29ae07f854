"""The one record every data source returns, and the deterministic transforms shared by all sources.

A `Dataset` holds float32 inputs of shape (N, *input_shape) and targets: int64 class indices for binary
and multiclass tasks (0/1 for binary), float32 values for regression. A `next_token` task (a text corpus)
holds int64 token ids (N, T) as inputs and the next tokens (N, T) as targets; its classes are the vocabulary.
Provenance says where the data came
from (generator and its parameters, or the file and its MD5) and which transforms were applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from actlab.errors import ActlabError

Task = Literal["binary", "multiclass", "regression", "next_token"]

# Option types of the sources' signatures; pydantic checks them when `actlab.data.load` is called.
Count = Annotated[int, Field(ge=4, le=1_000_000)]  # number of generated points
NonNegative = Annotated[float, Field(ge=0.0, le=1e6)]
Positive = Annotated[float, Field(gt=0.0, le=1e6)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights for grayscale


@dataclass(frozen=True)
class Dataset:
    """Train/test tensors with what a model needs to know about them."""

    name: str
    task: Task
    x_train: Tensor  # float32, (N_train, *input_shape)
    y_train: Tensor  # int64 class index (binary: 0/1), or float32 for regression
    x_test: Tensor
    y_test: Tensor
    class_names: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes (2 for binary); 0 for regression."""
        return len(self.class_names) if self.task != "regression" else 0

    def class_counts(self, split: Literal["train", "test"] = "train") -> dict[str, int]:
        """How many examples of each class the split holds."""
        y = self.y_train if split == "train" else self.y_test
        counts = torch.bincount(y.reshape(-1), minlength=self.n_classes).tolist()
        return dict(zip(self.class_names, counts, strict=True))

    def summary(self) -> dict[str, Any]:
        """Shapes, task, class balance and provenance as plain data."""
        out: dict[str, Any] = {
            "name": self.name, "task": self.task, "input_shape": list(self.input_shape),
            "n_train": len(self.x_train), "n_test": len(self.x_test), "n_classes": self.n_classes,
            "class_names": list(self.class_names), "provenance": self.provenance,
        }
        if self.task != "regression":
            out["train_counts"] = self.class_counts("train")
            out["test_counts"] = self.class_counts("test")
        return out


def from_numpy(name: str, task: Task, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
               y_test: np.ndarray, class_names: tuple[str, ...], provenance: dict[str, Any]) -> Dataset:
    """A Dataset from NumPy arrays, converting inputs to float32 and labels to int64 (float32 for regression)."""
    ydt = torch.float32 if task == "regression" else torch.int64
    return Dataset(name, task, torch.as_tensor(x_train, dtype=torch.float32),
                   torch.as_tensor(y_train, dtype=ydt), torch.as_tensor(x_test, dtype=torch.float32),
                   torch.as_tensor(y_test, dtype=ydt), class_names, provenance)


def select_classes(ds: Dataset, classes: list[int]) -> Dataset:
    """Keep only `classes` (indices into class_names), relabelled 0..k-1 in the order given."""
    if ds.task == "regression":
        raise ActlabError(f"dataset {ds.name}: classes={classes} needs a classification task, not regression")
    bad = [c for c in classes if not 0 <= c < ds.n_classes]
    if bad or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ActlabError(f"dataset {ds.name}: classes={classes} is not allowed; give at least two distinct "
                          f"class indices from 0 to {ds.n_classes - 1}")
    lut = torch.full((ds.n_classes,), -1, dtype=torch.int64)
    lut[torch.tensor(classes)] = torch.arange(len(classes))
    keep_tr, keep_te = lut[ds.y_train] >= 0, lut[ds.y_test] >= 0
    return replace(ds, task="binary" if len(classes) == 2 else "multiclass",
                   x_train=ds.x_train[keep_tr], y_train=lut[ds.y_train[keep_tr]],
                   x_test=ds.x_test[keep_te], y_test=lut[ds.y_test[keep_te]],
                   class_names=tuple(ds.class_names[c] for c in classes))


def take(ds: Dataset, n_train: int | None, n_test: int | None, seed: int) -> Dataset:
    """The first n examples of a seeded permutation of each split (all when n is None)."""
    def pick(x: Tensor, y: Tensor, n: int | None, split: str, offset: int) -> tuple[Tensor, Tensor]:
        if n is None:
            return x, y
        if not 1 <= n <= len(x):
            raise ActlabError(f"dataset {ds.name}: n_{split}={n} is out of range; allowed: 1 to {len(x)}")
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + offset))[:n]
        idx = idx.sort().values  # keep the source order among the chosen examples
        return x[idx], y[idx]

    xtr, ytr = pick(ds.x_train, ds.y_train, n_train, "train", 0)
    xte, yte = pick(ds.x_test, ds.y_test, n_test, "test", 1)
    return replace(ds, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)


def grayscale(ds: Dataset) -> Dataset:
    """Images (N, 3, H, W) to (N, 1, H, W) with BT.601 luma weights."""
    if len(ds.input_shape) != 3 or ds.input_shape[0] != 3:
        raise ActlabError(f"dataset {ds.name}: grayscale needs RGB images (3, H, W), not shape {ds.input_shape}")
    w = torch.tensor(LUMA).view(1, 3, 1, 1)
    return replace(ds, x_train=(ds.x_train * w).sum(1, keepdim=True), x_test=(ds.x_test * w).sum(1, keepdim=True))


def downsample(ds: Dataset, factor: int) -> Dataset:
    """Average-pool images (N, C, H, W) or signals (N, C, L) by `factor` in each spatial dimension."""
    nd = len(ds.input_shape)
    if nd not in (2, 3):
        raise ActlabError(f"dataset {ds.name}: downsample needs images or signals, not input shape {ds.input_shape}")
    spatial = ds.input_shape[1:]
    if any(s % factor for s in spatial):
        raise ActlabError(f"dataset {ds.name}: downsample={factor} must divide the spatial size {spatial}")
    pool = F.avg_pool2d if nd == 3 else F.avg_pool1d
    return replace(ds, x_train=pool(ds.x_train, factor), x_test=pool(ds.x_test, factor))
