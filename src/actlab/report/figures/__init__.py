"""The report's figures, one function per figure, each returning a matplotlib Figure (no pyplot): `common`
(colours, titles, panel grids, saving), `catalog` (activations and datasets), `training`, `twod` (the 2-D
diagnostics) and `simulations`."""
