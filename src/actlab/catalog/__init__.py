"""The activation catalog and what is measured from it, with no training: the entries (`activations`), their
Gaussian moments (`moments`), measured properties (`properties`), closed-form facts (`theory`), the
properties table (`table`) and the when-to-use notes (`guide`)."""

from actlab.catalog.activations import (
           Activation,
           ActivationModule,
           Param,
           activation,
           from_callable,
           get,
           names,
           register,
)
from actlab.catalog.properties import Interval, Properties, evaluate, properties
from actlab.catalog.theory.gelu import gelu_approximation_error

__all__ = ["Activation", "ActivationModule", "Interval", "Param", "Properties", "activation", "evaluate",
           "from_callable", "gelu_approximation_error", "get", "names", "properties", "register"]
