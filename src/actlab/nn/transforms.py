"""Activation transforms that make deep vanilla networks trainable: DKS (Martens et al. 2021, "Rapid training
of deep neural networks without skip connections or normalization layers using Deep Kernel Shaping") and
TAT (Zhang et al. 2022, "Deep learning without shortcuts: shaping the kernel with tailored rectifiers").

Both replace φ by φ̂(x) = γ (φ(α x + β) + δ) (TAT for leaky ReLU: a tailored negative slope and a scale), with
the constants solved so that the network's kernel maps meet the method's conditions for the whole depth:
DKS makes every local Q map have Q(1) = 1 and Q′(1) = 1 and C(0) = 0, and bounds the network's C′(1) by ζ
(`c_slope_1_target`, default 1.5); TAT makes C′(1) = 1 and bounds the network's C″(1) by τ
(`c_curve_target`, default 0.3), or for leaky ReLU the network's C(0) by η (`c_val_0_target`, default 0.9).

The constants are solved by DeepMind's reference implementation, the `dks` package (its framework-neutral
`dks.base.activation_transform.get_transformed_activations`, given actlab's torch functions; pinned),
for a vanilla MLP of L hidden layers: the maximal slope function is x^L, the maximal curvature function L·x,
and the subnetwork maximising function L compositions of the local map. The methods' other requirements
are applied by the model (`ModelConfig.transform`): scaled-uniform-orthogonal weights (`init = "suo"`),
zero biases, and each input example rescaled to unit mean square (the package's per-example normalisation
with `homog_mode="off"`: no homogeneous coordinate is appended).

Solving takes seconds per (activation, method, depth) (the package integrates the kernel maps numerically
inside a root finder; deep-rescue needs 24). So a study is validated without
solving (`check`), and the solved constants are kept once per machine in the cache (`actlab.runtime.
cache_dir()`, transforms/), keyed by what the solution depends on: the versions of the package (it solves on
its own definition of φ), NumPy and SciPy (its root finder), the method and its options, the activation and
the depth; a later run, report or test reads them back exactly (JSON keeps a float's every bit) and applies
them as the package does. A file that is not a complete, finite solve for exactly these inputs is ignored.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dks.base import activation_transform
from torch import Tensor

from actlab import runtime
from actlab.catalog.activations import Activation, from_callable
from actlab.errors import ActlabError

TRANSFORMS = ("none", "dks", "tat")
DEFAULTS = {"dks": {"c_slope_1_target": 1.5}, "tat": {"c_curve_target": 0.3, "c_val_0_target": 0.9}}
CONSTANTS = {"input_scale", "input_shift", "output_shift", "output_scale", "negative_slope"}  # what a solve returns
RANGES = {"c_slope_1_target": ("ζ > 1", lambda v: v > 1.0), "c_curve_target": ("τ > 0", lambda v: v > 0.0),
          "c_val_0_target": ("0 ≤ η ≤ 1", lambda v: 0.0 <= v <= 1.0)}
# actlab's catalog name -> the `dks` package's name, for the activations both define the same way (at their
# default parameters: the package's elu is α = 1, softplus β = 1, swish β = 1)
DKS_NAMES = {"tanh": "tanh", "sigmoid": "sigmoid", "softplus": "softplus", "softsign": "softsign", "elu": "elu",
             "selu": "selu", "swish": "swish", "gelu": "gelu_exact", "gelu_tanh": "gelu", "leaky_relu": "leaky_relu",
             "relu": "relu"}


def _check(act: Activation, params: dict[str, float], transform: str, options: dict[str, float]) -> str:
    if transform not in TRANSFORMS[1:]:
        raise ActlabError(f"transform {transform!r} is unknown; allowed: {', '.join(TRANSFORMS)}")
    name = DKS_NAMES.get(act.name)
    if name is None:
        raise ActlabError(f"transform {transform!r} supports {', '.join(DKS_NAMES)}; {act.name!r} is not among them")
    if any(params.get(p.name, p.default) != p.default for p in act.params):  # the solver uses the package's own φ
        raise ActlabError(f"transform {transform!r} takes {act.name!r} at its default parameters only (given "
                          f"{params}); the package defines it so")
    if transform == "tat" and act.name == "relu":
        raise ActlabError("transform 'tat' does not support relu (the TAT paper uses leaky_relu); use leaky_relu")
    unknown = set(options) - set(DEFAULTS[transform])
    if unknown:
        raise ActlabError(f"transform_params {sorted(unknown)} are unknown for {transform!r}; allowed: "
                          f"{', '.join(DEFAULTS[transform])}")
    return name


def check(act: Activation, params: dict[str, float], transform: str, options: dict[str, float], depth: int) -> str:
    """What `transformed` refuses without solving anything (raises ActlabError); the package's name of φ."""
    name = _check(act, params, transform, options)
    if depth < 1:
        raise ActlabError(f"transform {transform!r} needs at least one hidden layer (depth={depth})")
    for key, value in options.items():  # the package's own ranges (it raises on these before solving)
        allowed, ok = RANGES[key]
        if not (math.isfinite(value) and ok(value)):
            raise ActlabError(f"transform_params.{key}={value:g} is out of range for {transform!r}; allowed: {allowed}")
    return name


def transformed(act: Activation, params: dict[str, float], transform: str, options: dict[str, float],
                depth: int) -> Activation:
    """φ̂ for a vanilla MLP of `depth` hidden layers, as a catalog entry named e.g. 'tanh+dks(L=50)'."""
    return _transformed(act, tuple(sorted(params.items())), transform, tuple(sorted(options.items())), depth)


@functools.lru_cache(maxsize=64)
def _transformed(base: Activation, params: tuple, transform: str, options: tuple, depth: int) -> Activation:
    opts = dict(options)
    name = check(base, dict(params), transform, opts, depth)
    values = base.resolve(**dict(params))

    def getter(dks_name: str) -> Callable[..., Tensor]:
        if dks_name == "leaky_relu":  # TAT passes its own negative_slope
            return lambda x, negative_slope=values.get("alpha", 0.01): torch.nn.functional.leaky_relu(x, negative_slope)
        return lambda x: base.fn(x, **values)

    def subnet(x: float, r: Callable[[float], float]) -> float:
        for _ in range(depth):
            x = r(x)
        return x

    kwargs: dict[str, Any] = {"method": transform.upper(), "subnet_max_func": subnet}
    if transform == "dks":
        kwargs["dks_params"] = {"c_slope_1_target": opts.get("c_slope_1_target", 1.5)}
        kwargs["max_slope_func"] = lambda x: x ** depth
    else:
        kwargs["tat_params"] = {"c_curve_target": opts.get("c_curve_target", 0.3),
                                "c_val_0_target": opts.get("c_val_0_target", 0.9)}
        kwargs["max_curv_func"] = lambda x: depth * x
    inputs = _inputs(base.name, name, transform, opts, depth)
    constants = _cached(inputs)
    if constants is None:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):  # the solver's trial points overflow, harmlessly
                warnings.simplefilter("ignore", RuntimeWarning)
                solved = activation_transform._get_activations_params([name], **kwargs)[name]
        except (ValueError, RuntimeError, ArithmeticError) as e:  # ArithmeticError: e.g. ζ so large x**L overflows
            raise ActlabError(f"transform {transform!r} of {base.name!r} at depth {depth} has no solution "
                              f"({e})") from None
        constants = {k: float(v) for k, v in solved.items()}
        runtime.keep("transforms", inputs, constants)
    # the package's get_transformed_activations is these two steps: solve for the constants (on the package's
    # own NumPy φ, hence the cache's key), then wrap the given φ (actlab's torch function) with them
    fn = activation_transform._transform_activation(getter(name), constants)
    label = f"{base.label(**values)}+{transform}(L={depth}" + "".join(f", {k}={v:g}" for k, v in opts.items()) + ")"
    return from_callable(lambda x: fn(x), name=label, source=f"dks {transform.upper()} transform of {base.name}")


def pending(act: Activation, params: dict[str, float], transform: str, options: dict[str, float],
            depth: int) -> Path | None:
    """The cache file a solve for these inputs would write, or None when its constants are already kept (so
    two requests that one solve answers name one file); raises as `check` does on what it refuses."""
    inputs = _inputs(act.name, check(act, params, transform, options, depth), transform, options, depth)
    return None if _cached(inputs) is not None else runtime.keyed_file("transforms", inputs)


def _inputs(activation: str, name: str, transform: str, options: dict[str, float], depth: int) -> dict[str, Any]:
    """What a solution depends on: the cache's key (and the record kept beside the constants)."""
    return {"dks": version("dks"), "numpy": np.__version__, "scipy": version("scipy"),  # scipy's root finder
            "method": transform.upper(), "name": name, "activation": activation,
            "options": {**DEFAULTS[transform], **options}, "depth": depth}


def _cached(inputs: dict[str, Any]) -> dict[str, float] | None:
    """The constants kept for exactly these inputs, or None (none kept, or a file unreadable or not ours)."""
    constants = runtime.kept("transforms", inputs)
    if not isinstance(constants, dict):
        return None
    need = {"negative_slope", "output_scale"} if inputs["name"] == "leaky_relu" else {"input_scale", "output_scale"}
    if not need <= set(constants) <= CONSTANTS or not all(isinstance(v, float) and math.isfinite(v)
                                                         for v in constants.values()):
        return None  # not what the package returns: solved afresh
    return constants
