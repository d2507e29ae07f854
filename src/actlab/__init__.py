"""actlab: a laboratory for controlled experiments on activation functions.

The public API is small: look activations up, build modules, measure properties; build populations of
networks, train them, probe them (and probe any nn.Module). Data sources live in `actlab.data`.

    >>> import actlab
    >>> layer = actlab.activation("leaky_relu", alpha=0.2)      # an nn.Module
    >>> actlab.properties("swish").minimum                      # measured, not typed
    Extremum(x=-1.27846..., value=-0.27846...)

`import actlab` is light: each public name is imported from its stage's package on first use, so a
module that only needs `actlab.__version__` does not load torch models, the training loop or probes.

The package follows the pipeline, each stage importing only from those before it (an import-linter
contract in pyproject.toml, checked by the test suite): errors, rng, stats, jsonsafe, runtime (shared
leaves) → catalog, data → nn → training → store → studies → report → web → cli.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {  # public name -> module that defines it
    **dict.fromkeys(("Activation", "Param", "activation", "from_callable", "get", "names", "register"),
                    "actlab.catalog.activations"),
    **dict.fromkeys(("Interval", "Properties", "evaluate", "properties"), "actlab.catalog.properties"),
    "gelu_approximation_error": "actlab.catalog.theory.gelu",
    **dict.fromkeys(("SignalPropagation", "propagation", "critical_sw2", "q_iterates", "c_iterates",
                     "weight_gradient_ratio"),
                    "actlab.catalog.theory.meanfield"),
    "ActlabError": "actlab.errors",
    **dict.fromkeys(("ModelConfig", "build"), "actlab.nn.models"),
    "probe": "actlab.training.probes",
    **dict.fromkeys(("TrainConfig", "train"), "actlab.training.loop"),
    "tune_malloc": "actlab.runtime",
}

__all__ = ["Activation", "ActlabError", "Interval", "ModelConfig", "Param", "Properties", "SignalPropagation",
           "TrainConfig", "activation", "build", "c_iterates", "critical_sw2", "evaluate", "from_callable",
           "gelu_approximation_error", "get", "names", "probe", "properties", "propagation", "q_iterates", "register",
           "train", "tune_malloc", "weight_gradient_ratio"]
assert sorted(__all__) == sorted(_EXPORTS)  # one list of names, two spellings: kept equal


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'actlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
