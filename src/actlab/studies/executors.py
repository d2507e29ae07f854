"""Executors: where populations run. Each yields, per population, its cells and their results (or the
error), back to the runner, the store's single writer; no executor writes the store.

- in-process (the default): populations one after another in this process, sharing one data cache;
  any exception in a population (a user's activation that raises, memory, ...) fails its cells only, with
  the error recorded, and the next population runs. A population of several cells that fails is run again
  one cell at a time (the equivalence contract makes a cell alone train as it would in company), so a fault
  fails only the cells that have it;
- Ray: each population a Ray task (1 CPU, and 1 GPU where this machine has one), on a local Ray or a
  cluster; results come back as they finish. Ray gives each task one thread (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from actlab.errors import ActlabError
from actlab.runtime import tune_malloc
from actlab.store.writer import CellResult
from actlab.studies.config import Cell
from actlab.studies.datacache import DataCache
from actlab.studies.populations import EpochCallback, run_population

EXECUTORS = ("inprocess", "ray")
Outcome = tuple[list[Cell], list[CellResult] | Exception]  # one population: its cells, and their results or the error


def inprocess(groups: list[list[Cell]], on_epoch: EpochCallback | None = None,
              before: Callable[[list[Cell]], None] | None = None, datasets: DataCache | None = None,
              note: Callable[[str], None] | None = None) -> Iterator[Outcome]:
    """Populations in this process, in order; `before(cells)` is called just before each one starts.
    `datasets`: a cache already holding the run's data (the memory check loaded it)."""
    datasets = datasets if datasets is not None else DataCache()
    for cells in groups:
        if before is not None:
            before(cells)
        try:
            results = run_population(cells, datasets, on_epoch, note)
        except Exception as e:  # noqa: BLE001 - any fault (a user's activation, memory, ...) stays in its cells
            if len(cells) > 1:  # grouped: each cell alone, so only the cells with the fault fail
                yield from inprocess([[c] for c in cells], on_epoch, None, datasets, note)
                continue
            yield cells, e if isinstance(e, ActlabError) else ActlabError(f"{type(e).__name__}: {e}")
            continue
        yield cells, results


def ray(groups: list[list[Cell]], address: str | None, gpus: float) -> Iterator[Outcome]:
    """Populations as Ray tasks; outcomes in the order they finish."""
    try:
        import ray as ray_mod  # deferred: Ray is an optional dependency (actlab[ray])
    except ImportError:
        raise ActlabError("--executor ray needs Ray: pip install 'actlab[ray]'") from None
    if not ray_mod.is_initialized():  # a cluster at `address`, or a local Ray on this machine's CPUs
        ray_mod.init(address=address, include_dashboard=False, log_to_driver=False)
    remote = ray_mod.remote(num_cpus=1, num_gpus=gpus)(_ray_task)
    pending = {remote.remote([c.model_dump_json() for c in cells]): cells for cells in groups}
    while pending:
        done, _ = ray_mod.wait(list(pending), num_returns=1)
        cells = pending.pop(done[0])
        try:
            results = ray_mod.get(done[0])
        except ray_mod.exceptions.RayTaskError as e:
            if len(cells) > 1:  # grouped: each cell as a task of its own, so only the cells with the fault fail
                pending.update({remote.remote([c.model_dump_json()]): [c] for c in cells})
                continue
            cause = e.cause if isinstance(getattr(e, "cause", None), Exception) else e
            yield cells, cause if isinstance(cause, ActlabError) else ActlabError(f"{type(cause).__name__}: {cause}")
            continue
        yield cells, results


def _ray_task(cells_json: list[str]) -> list[CellResult]:
    tune_malloc()  # a Ray worker is a process of its own: the entry point's allocator setting, applied here
    return run_population([Cell.model_validate_json(c) for c in cells_json])
