"""Image sources: scikit-learn's digits (ships with it), CIFAR-10 and Fashion-MNIST (downloaded, checked, cached).

Files are parsed without torchvision: CIFAR-10 from the official python-pickle tarball
(cifar-10-python.tar.gz, `cifar-10-batches-py/` inside), Fashion-MNIST from its four gzipped idx files.
The pickles are read with an unpickler that admits only NumPy arrays, so a foreign file cannot run code.
Pixels become float32 in [0, 1] and are then normalised: "half" (mean 0.5, std 0.5 per channel, the
cnn-depth protocol), "unit" (left in [0, 1]) or "standard" (per-channel mean and std of the train split).
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from actlab.data.download import fetch, md5sum
from actlab.data.record import Dataset, Fraction, Seed, from_numpy
from actlab.errors import ActlabError

Normalize = Literal["half", "unit", "standard"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_FILE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))

FASHION_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_FILES = {  # name -> MD5, as published by Zalando Research
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


def _normalize(xtr: np.ndarray, xte: np.ndarray, how: Normalize) -> tuple[np.ndarray, np.ndarray]:
    """Inputs in [0, 1], (N, C, H, W), normalised per channel as `how` says."""
    if how == "unit":
        return xtr, xte
    if how == "half":
        mean, std = 0.5, 0.5
    else:
        mean = xtr.mean(axis=(0, 2, 3), keepdims=True)
        std = xtr.std(axis=(0, 2, 3), keepdims=True) + 1e-8
    return (xtr - mean) / std, (xte - mean) / std


def digits(seed: Seed = 0, test_size: Fraction = 0.2, normalize: Normalize = "half") -> Dataset:
    """scikit-learn's 1,797 8×8 handwritten digits as (1, 8, 8) images, stratified split."""
    from sklearn.datasets import load_digits  # start-up: scikit-learn on first use (see actlab.data.toy)
    from sklearn.model_selection import train_test_split  # start-up

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=test_size, random_state=seed, stratify=d.target)
    xtr, xte = _normalize(xtr, xte, normalize)
    return from_numpy("digits", "multiclass", xtr, ytr, xte, yte, tuple(str(i) for i in range(10)),
                      {"source": "sklearn.datasets.load_digits (UCI ML hand-written digits)", "seed": seed,
                       "test_size": test_size, "normalize": normalize})


# ------------------------------------------------------------------------------------------ CIFAR-10


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and NumPy arrays only; anything else is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"),
               ("_codecs", "encode")}  # how Python 3 writes bytes at pickle protocol 2; harmless

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def parse_cifar10(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(x_train, y_train, x_test, y_test, class names) from the python tarball; images uint8 (N, 3, 32, 32)."""
    path = Path(path)

    def batch(tar: tarfile.TarFile, member: str) -> dict:
        name = f"{CIFAR10_DIR}/{member}"
        try:
            f = tar.extractfile(name)
        except KeyError:
            raise ActlabError(f"{path} is truncated or not the CIFAR-10 python tarball: it has no {name}") from None
        if f is None:
            raise ActlabError(f"{path}: {name} is not a file")
        try:
            return _ArrayUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError, tarfile.TarError, OSError) as e:
            raise ActlabError(f"{path}: {name} cannot be read ({e}); the file is truncated or foreign") from None

    def images(d: dict, member: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            data, labels = np.asarray(d[b"data"], dtype=np.uint8), np.asarray(d[b"labels"], dtype=np.int64)
            return data.reshape(-1, 3, 32, 32), labels
        except (KeyError, ValueError, TypeError):
            raise ActlabError(f"{path}: {member} is not a CIFAR-10 batch (needs 'data' N×3072 and 'labels')") from None

    try:
        with tarfile.open(path, "r:gz") as tar:
            train = [images(batch(tar, m), m) for m in CIFAR10_TRAIN]
            xte, yte = images(batch(tar, "test_batch"), "test_batch")
            meta = batch(tar, "batches.meta")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ActlabError(f"{path} is not a readable gzip tar archive ({e}); it is truncated or foreign") from None
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(b"label_names", []))
    if len(names) != 10:
        raise ActlabError(f"{path}: batches.meta must list 10 label_names, found {len(names)}")
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), xte, yte, names)


def cifar10(cache_dir: str | None = None, normalize: Normalize = "half", url: str = CIFAR10_URL,
            md5: str = CIFAR10_MD5, progress: bool | None = None) -> Dataset:
    """CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test RGB images (3, 32, 32), 10 classes."""
    path = fetch(url, CIFAR10_FILE, md5, cache_dir, progress)
    xtr, ytr, xte, yte, names = parse_cifar10(path)
    xtr, xte = _normalize(xtr.astype(np.float32) / 255.0, xte.astype(np.float32) / 255.0, normalize)
    return from_numpy("cifar10", "multiclass", xtr, ytr, xte, yte, names,
                      {"source": url, "file": str(path), "md5": md5sum(path), "normalize": normalize})


# ------------------------------------------------------------------------------------- Fashion-MNIST


def parse_idx(path: str | Path) -> np.ndarray:
    """An idx file (optionally gzipped) of unsigned bytes as an array of its declared shape."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ActlabError(f"{path} cannot be read as gzip ({e}); it is truncated or foreign") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ActlabError(f"{path} is not an idx file of unsigned bytes (magic 0x0000080N)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ActlabError(f"{path}: idx header is truncated")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise ActlabError(f"{path}: idx data holds {len(raw) - header} bytes, its header declares {shape} = {size}; "
                          "the file is truncated")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def fashion_mnist(cache_dir: str | None = None, normalize: Normalize = "half", mirror: str = FASHION_MIRROR,
                  md5s: dict[str, str] | None = None, progress: bool | None = None) -> Dataset:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000 train / 10,000 test images (1, 28, 28), 10 classes."""
    sums = FASHION_FILES | (md5s or {})
    paths = {name: fetch(mirror + name, name, sums[name], cache_dir, progress) for name in FASHION_FILES}
    xtr = parse_idx(paths["train-images-idx3-ubyte.gz"])
    ytr = parse_idx(paths["train-labels-idx1-ubyte.gz"])
    xte = parse_idx(paths["t10k-images-idx3-ubyte.gz"])
    yte = parse_idx(paths["t10k-labels-idx1-ubyte.gz"])
    if xtr.ndim != 3 or len(xtr) != len(ytr) or xte.ndim != 3 or len(xte) != len(yte):
        raise ActlabError("Fashion-MNIST files disagree: images must be (N, H, W) with one label per image")
    xtr, xte = _normalize(xtr[:, None].astype(np.float32) / 255.0, xte[:, None].astype(np.float32) / 255.0, normalize)
    return from_numpy("fashion_mnist", "multiclass", xtr, ytr.astype(np.int64), xte, yte.astype(np.int64),
                      FASHION_CLASSES, {"source": mirror, "files": {n: sums[n] for n in FASHION_FILES},
                                        "normalize": normalize})
