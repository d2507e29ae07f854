"""The run store: one SQLite database per run directory (`writer`, its single writer and its typed input),
every reader of it (`results`: a run's cells, metrics, probes, artifacts and summaries) and `export`."""

from actlab.store.results import Run, run_dirs, suite_members
from actlab.store.writer import DB_NAME, CellResult, Store

__all__ = ["DB_NAME", "CellResult", "Run", "Store", "run_dirs", "suite_members"]
