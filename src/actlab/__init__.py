"""actlab: a laboratory for controlled experiments on activation functions.

The public API is small: look activations up, build modules, measure properties; build populations of
networks, train them, probe them (and probe any nn.Module). Data sources live in `actlab.data`.

    >>> import actlab
    >>> layer = actlab.activation("leaky_relu", alpha=0.2)      # an nn.Module
    >>> actlab.properties("swish").minimum                      # measured, not typed
    Extremum(x=-1.27846..., value=-0.27846...)
"""

from actlab.activations import Activation, Param, activation, from_callable, get, names, register
from actlab.errors import ActlabError
from actlab.nn import ModelConfig, build
from actlab.probes import probe
from actlab.properties import Interval, Properties, evaluate, properties
from actlab.theory import gelu_approximation_error
from actlab.training import TrainConfig, train

__version__ = "0.1.0"

__all__ = [
    "Activation", "ActlabError", "Interval", "ModelConfig", "Param", "Properties", "TrainConfig", "activation",
    "build", "evaluate", "from_callable", "gelu_approximation_error", "get", "names", "probe", "properties",
    "register", "train",
]
