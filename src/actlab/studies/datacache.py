"""Datasets loaded once per run: cells that share a data source and its options share one loaded copy."""

from __future__ import annotations

import json

from actlab import data
from actlab.data.record import Dataset
from actlab.studies.config import StudyConfig


class DataCache:
    """Datasets loaded for one run, by source and options: cells that share data load it once."""

    def __init__(self) -> None:
        self._held: dict[str, Dataset] = {}

    def load(self, cfg: StudyConfig) -> Dataset:
        key = json.dumps([cfg.data.name, cfg.data.options], sort_keys=True)
        if key not in self._held:
            self._held[key] = data.load(cfg.data.name, **cfg.data.options)
        return self._held[key]
