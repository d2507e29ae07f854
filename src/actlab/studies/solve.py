"""The DKS/TAT constants of a run, solved before anything trains (seconds each the first time on a machine, then
read from the cache), so a target the depth cannot reach refuses the run as a bad field does."""

from __future__ import annotations

import time
from collections.abc import Callable

from actlab import runtime
from actlab.errors import ActlabError
from actlab.nn import transforms
from actlab.studies.config import Cell


def solve_transforms(cells: list[Cell], note: Callable[[str], None] | None = None) -> None:
    """Solve, before anything trains, the DKS/TAT constants of every cell whose model transforms its
    activation (seconds each the first time on a machine, then read from the cache: actlab.nn.transforms);
    `note` is told beforehand how many need solving, and afterwards how long it took. A target that the
    cell's depth cannot reach refuses the run, as a bad field does, naming the cells."""
    cells = [c for c in cells if c.config.simulation is None and c.config.model.transform != "none"]
    todo = set()
    for cell in cells:
        m = cell.config.model
        try:
            act, params = m.checked_activation()
            todo.add(transforms.pending(act, params, m.transform, m.transform_params, len(m.hidden_widths())))
        except ActlabError:
            pass  # reported below, with its cell
    todo.discard(None)  # already kept
    t0 = time.perf_counter()
    if todo and note is not None:
        note(f"solving {len(todo)} DKS/TAT transform(s) with the dks package before training, seconds each the first "
             f"time on this machine (kept in {runtime.cache_dir() / 'transforms'} for later runs)")
    errors = []
    for cell in cells:
        try:
            cell.config.model.resolved_activation()
        except ActlabError as e:
            errors.append(f"{e} [cell {cell.label}]")
    if errors:
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ActlabError(f"{len(errors)} cell(s) ask for a transform that cannot be solved:\n  - "
                          + "\n  - ".join(errors[:10]) + more)
    if todo and note is not None:
        note(f"solved in {time.perf_counter() - t0:.1f} s")
