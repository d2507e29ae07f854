"""Training: one loop for every population (`loop`) and the per-layer diagnostics it records (`probes`)."""

from actlab.train.loop import History, TrainConfig, train
from actlab.train.probes import ProbeRecord, probe

__all__ = ["History", "ProbeRecord", "TrainConfig", "probe", "train"]
