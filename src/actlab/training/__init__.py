"""Training: one loop for every population (`loop`) and the per-layer diagnostics it records (`probes`)."""

from actlab.training.loop import History, TrainConfig, train
from actlab.training.probes import ProbeRecord, probe

__all__ = ["History", "ProbeRecord", "TrainConfig", "probe", "train"]
