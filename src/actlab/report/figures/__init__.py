"""The report's figures, one function per figure, each returning a matplotlib Figure (no pyplot): `common`
(colours, titles, panel grids, saving), `catalog` (activations and datasets), `theory` (mean-field maps, the
phase diagram, trainability and forward variance), `training`, `twod` (the 2-D diagnostics) and
`simulations`. `write` draws one of the command line's figures into a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actlab.report.figures import catalog, theory
from actlab.report.figures.common import save

DRAW = {  # the command line's figures, by the name `write` takes
    "catalog": catalog.catalog_figure,  # every element-wise activation, φ and φ′
    "activations": catalog.activation_figure,  # chosen activations overlaid
    "gated": catalog.gated_figure,  # a gated entry: φ(a)·b as a heat map, its gate and its diagonal
    "dataset": catalog.dataset_figure,  # a data source's points, signals or images
    "theory_maps": theory.maps_figure,
    "theory_chi": theory.chi_figure,
    "theory_phase": theory.phase_figure,
}


def write(kind: str, path: str | Path, *args: Any, **kwargs: Any) -> Path:
    """Draw figure `kind` (a key of DRAW) with these arguments into `path`, its format from the suffix."""
    return save(DRAW[kind](*args, **kwargs), path)
