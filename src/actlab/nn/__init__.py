"""Population networks: M independent replicas with a leading replica dimension on every parameter."""

from actlab.nn.layers import PopBatchNorm, PopConv, PopLayerNorm, PopLinear, replica_view
from actlab.nn.models import ModelConfig, PopConvNet, PopMLP, Population, build

__all__ = ["ModelConfig", "PopBatchNorm", "PopConv", "PopConvNet", "PopLayerNorm", "PopLinear", "PopMLP",
           "Population", "build", "replica_view"]
