"""The HTML report of a run directory: figures, tables, findings and provenance, built from the store alone.

`build_report(run_dir)` writes `report.html` into the run directory, and every figure as PNG and SVG under
`figures/` beside it. The page is self-contained: figures are embedded as PNG data URIs, styles are inline,
nothing is fetched, so it opens offline and can be mailed. A suite's directory (the quick tour) gets one
page with a section per member study (each member also gets its own report in its own directory).

Key choices: figures come from `actlab.figures`, `actlab.figures2d` and `actlab.simfigures`, the findings
from `actlab.findings`, the numbers from `actlab.results` and `actlab.stats`; this module only lays them
out (jinja2, autoescaped). Every mean is shown with its 95 % CI and n.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from matplotlib.figure import Figure

from actlab import __version__, figures, figures2d, simfigures
from actlab.errors import ActlabError
from actlab.findings import Finding, findings
from actlab.results import Run, suite_members
from actlab.stats import mean_ci
from actlab.store import DB_NAME

REPORT_NAME = "report.html"
FIGURE_DIR = "figures"
DPI = 110

TRAINING_FIGURES: list[tuple[str, str, Callable[[Run], Figure | None]]] = [
    ("activations", "The study's activations: function (blue) and derivative (red).", figures.activations_figure),
    ("dataset", "The data: training points filled, test points hollow.", figures2d.dataset_figure),
    ("loss_curves", "Loss per epoch for every cell: mean over seeds with a 95 % band.", figures.loss_figure),
    ("accuracy_vs_depth", "Final test accuracy against depth, mean and 95 % CI over seeds.",
     figures.accuracy_depth_figure),
    ("gradient_mean", "Mean |gradient| over all parameters per batch, averaged per epoch.", figures.grad_mean_figure),
    ("gradient_per_layer", "Weight-gradient norm per layer (log scale) at the probe epochs.",
     figures.gradient_layers_figure),
    ("dead_saturated", "Dead and saturated fractions per hidden layer at the probe epochs.",
     figures.dead_saturated_figure),
    ("decision_boundary", "Decision boundaries with each cell's test accuracy.", figures2d.decision_figure),
    ("signal_trace", "Signal trace of the protocol's two far points: mean |z| and |a| per stage.",
     figures2d.signal_trace_figure),
    ("hidden_space", "The test set in hidden space, layers 1 and 2, with the std of all hidden values.",
     figures2d.hidden_figure),
]


@dataclass
class ReportFigure:
    name: str
    caption: str
    png: Path
    svg: Path
    data_uri: str


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """One study's part of a report."""

    name: str
    run_dir: Path
    description: str
    note: str
    kind: str
    seeds: int
    findings: list[Finding]
    tables: list[Table] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    config: str = ""
    cells: Table | None = None
    skipped: list[str] = field(default_factory=list)  # figures that could not be drawn, with the reason

    @property
    def anchor(self) -> str:
        return "study-" + "".join(ch if ch.isalnum() else "-" for ch in self.name)


def _save(fig: Figure, folder: Path, name: str, caption: str) -> ReportFigure:
    """PNG and SVG into `folder` (temporary names renamed into place); the PNG also as a data URI."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in ("png", "svg"):
        tmp, final = folder / f".{name}.tmp.{ext}", folder / f"{name}.{ext}"
        fig.savefig(tmp, dpi=DPI, format=ext)
        fig.set_layout_engine("none")  # the layout the PNG computed holds for the SVG: solved once, not twice
        tmp.replace(final)
        paths[ext] = final
    uri = "data:image/png;base64," + base64.b64encode(paths["png"].read_bytes()).decode("ascii")
    return ReportFigure(name, caption, paths["png"], paths["svg"], uri)


def _ci(values: list[float] | np.ndarray, spec: str = ".3f", method: str = "t") -> str:
    return mean_ci(values, method=method).format(spec)


# ---------------------------------------------------------------------------------------------- tables


def results_table(run: Run, ci: str = "t") -> Table:
    """Per cell: status, n, final and best test accuracy, final test loss (95 % CIs), diverged, wall time."""
    rows = []
    for c in run.cells:
        final = list(run.replicas(c, "final_test_acc").values())
        rows.append([c.label, c.status, str(len(final)), _ci(final, method=ci),
                     _ci(list(run.replicas(c, "best_test_acc").values()), method=ci),
                     _ci(list(run.replicas(c, "final_test_loss").values()), ".4g", ci), str(run.diverged(c)),
                     "—" if c.wall_s is None else f"{c.wall_s:.1f}"])
    return Table("Results per cell: mean [95 % CI] over seeds (n = replicas with a finite value)",
                 ["cell", "status", "seeds", "final test acc", "best test acc", "final test loss", "diverged",
                  "wall s"], rows)


def depth_tables(run: Run, ci: str = "t") -> list[Table]:
    """The classic layout: depth rows; per series, final and best accuracy and the gradient mean (when recorded)."""
    if len(run.depths()) < 2:
        return []
    out = []
    for ctx in run.contexts():
        cells = {(c.depth, c.series): c for c in run.done if c.context == ctx}
        grad = any(np.isfinite(run.metric(c, "grad_mean")[1]).any() for c in cells.values())
        header = ["depth"]
        for s in run.series():
            header += [f"{s} final acc", f"{s} best acc"] + ([f"{s} grad mean"] if grad else [])
        rows = []
        for d in run.depths():
            line = [str(d)]
            for s in run.series():
                c = cells.get((d, s))
                if c is None:
                    line += ["—", "—"] + (["—"] if grad else [])
                    continue
                line += [_ci(list(run.replicas(c).values()), method=ci),
                         _ci(list(run.replicas(c, "best_test_acc").values()), method=ci)]
                if grad:
                    _, g = run.metric(c, "grad_mean")
                    line.append(_ci(np.nanmean(g, axis=1) if g.size else [], ".3g", ci))
            rows.append(line)
        title = "By depth" + (f" ({ctx})" if ctx else "") + ": mean [95 % CI] over seeds" + \
            ("; grad mean = mean |∂L/∂θ| per batch, averaged over all epochs" if grad else "")
        out.append(Table(title, header, rows))
    return out


def simulation_tables(run: Run) -> list[Table]:
    """Every simulation's rows grouped over seeds (means with CIs), and gradient flow's ratio table."""
    from actlab.study import group_sim_rows

    rows = run.sim_rows()
    grouped = group_sim_rows(rows)
    out = []
    if grouped:
        cols = list(dict.fromkeys(k for r in grouped for k in r))
        out.append(Table("Simulation results: mean [95 % CI] over seeds", cols,
                         [[str(r.get(c, "")) for c in cols] for r in grouped]))
    if run.study["config"]["simulation"]["name"] == "gradient-flow" and rows:
        header, body = simfigures.gradient_flow_table(rows)
        out.append(Table("Gradient ratio ‖first layer‖ / ‖last layer‖: geometric mean [95 % CI] over seeds",
                         header, body))
    return out


def _cells_table(run: Run) -> Table:
    def when(t: float | None) -> str:
        return "—" if t is None else datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    rows = [[c.label, c.key, c.status, when(c.started), when(c.finished),
             "—" if c.wall_s is None else f"{c.wall_s:.2f}", c.device or "—", c.error or ""] for c in run.cells]
    return Table("Cells: wall time per cell (cells trained as one population share its time equally)",
                 ["cell", "key", "status", "started", "finished", "wall s", "device", "error"], rows)


# --------------------------------------------------------------------------------------------- sections


def study_section(run_dir: str | Path, ci: str = "t") -> Section:
    """One study's section from its store; its figures are saved under RUN_DIR/figures. `ci` is the method of
    the tables' and findings' intervals (t or bootstrap); curves' bands are Student t."""
    with Run.open(run_dir) as run:
        cfg = run.study["config"]
        sec = Section(run.name, Path(run_dir), cfg.get("description", ""), cfg.get("note", ""), run.kind,
                      len(run.seeds), findings(run, ci), provenance=run.study["provenance"],
                      config=json.dumps(cfg, indent=2), cells=_cells_table(run))
        folder = Path(run_dir) / FIGURE_DIR
        if run.kind == "train":
            sec.tables = [results_table(run, ci), *depth_tables(run, ci)]
            specs = [(name, caption, partial(fn, run)) for name, caption, fn in TRAINING_FIGURES]
        else:
            rows = run.sim_rows()
            sec.tables = simulation_tables(run)
            sim = cfg["simulation"]["name"]
            specs = []
            acts = list(dict.fromkeys(r["activation"] for r in rows if "activation" in r))
            if acts:
                from actlab import plots

                specs.append(("activations", "The simulation's activations: function (blue) and derivative (red).",
                              partial(plots.activation_figure, [(a, {}) for a in acts]) if len(acts) <= 4 else
                              partial(plots.catalog_figure, acts)))
            if rows:
                specs += [(name, (fn.__doc__ or "").strip().splitlines()[0], partial(fn, rows))
                          for name, fn in simfigures.FIGURES.get(sim, [])]
        for name, caption, draw in specs:
            try:
                fig = draw()
            except ActlabError as e:  # e.g. a user's activation that no longer imports: the rest still reports
                sec.skipped.append(f"{name}: {e}")
                continue
            if fig is not None:
                sec.figures.append(_save(fig, folder, name, caption))
    return sec


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("actlab", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


CI_LABELS = {"t": "Student t over seeds",
             "bootstrap": "BCa bootstrap over seeds, 9,999 resamples, seed 0; Student t where n is too small for it, "
                          "and for curves' bands and the simulation summary table"}


def render(sections: list[Section], title: str, note: str = "", ci: str = "t") -> str:
    """The page's HTML for these sections."""
    return _ENV.get_template("report.html.j2").render(
        title=title, note=note, sections=sections, version=__version__, ci_label=CI_LABELS[ci],
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def build_report(run_dir: str | Path, out: str | Path | None = None, ci: str = "t") -> Path:
    """Write the report of a study's run directory, or of a suite's (one section per member); returns its path.

    `out` defaults to RUN_DIR/report.html. Figures go to figures/ in each study's run directory. `ci`: the
    intervals of tables and findings, "t" (Student t) or "bootstrap" (BCa).
    """
    if ci not in CI_LABELS:
        raise ActlabError(f"--ci {ci!r} is unknown; allowed: {', '.join(CI_LABELS)}")
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    if (run_dir / DB_NAME).exists():
        sections = [study_section(run_dir, ci)]
        title, note = f"actlab report: {sections[0].name}", ""
    else:
        members = suite_members(run_dir)
        if not members:
            raise ActlabError(f"{run_dir} is not a run directory (no {DB_NAME}) nor a suite's (no run directories "
                              "in it); run a study into it first")
        sections = []
        for m in members:
            sec = study_section(m, ci)
            _write(m / REPORT_NAME, render([sec], f"actlab report: {sec.name}", ci=ci))
            sections.append(sec)
        title = f"actlab report: {run_dir.name} ({len(sections)} studies)"
        note = "Each study also has its own report.html in its run directory."
    path = Path(out) if out is not None else run_dir / REPORT_NAME
    _write(path, render(sections, title, note + f" Built in {time.perf_counter() - t0:.1f} s from the stores.", ci))
    return path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
