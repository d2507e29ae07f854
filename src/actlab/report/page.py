"""The HTML report of a run directory: figures, tables, findings and provenance, built from the store alone.

`build_report(run_dir)` writes `report.html` into the run directory, and every figure as PNG and SVG under
`figures/` beside it. The page is self-contained: figures are embedded as PNG data URIs, styles are inline,
nothing is fetched, so it opens offline and can be mailed. A suite's directory (the quick tour) gets one
page with a section per member study (each member also gets its own report in its own directory).

Key choices: figures come from `actlab.report.figures.training`, `actlab.report.figures.twod` and
`actlab.report.figures.simulations`, the findings from `actlab.analysis.findings`, the numbers from
`actlab.analysis.summary` and `actlab.analysis.stats`; this module only lays them out (jinja2, autoescaped).
Every mean is shown with its 95 % CI and n.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.figure import Figure

from actlab import __version__
from actlab.analysis import guide
from actlab.analysis.findings import Finding, findings
from actlab.analysis.overview import overview
from actlab.analysis.published import study_note
from actlab.errors import ActlabError
from actlab.report.figures import catalog as catalog_figures
from actlab.report.figures import generative as generative_figures
from actlab.report.figures import language as language_figures
from actlab.report.figures import recurrent as recurrent_figures
from actlab.report.figures import simulations as simfigures
from actlab.report.figures import theory as theory_figures
from actlab.report.figures import training as figures
from actlab.report.figures import twod as figures2d
from actlab.report.figures.common import finish
from actlab.report.tables import (
    Table,
    cells_table,
    depth_tables,
    pruned,
    published_table,
    results_table,
    simulation_tables,
)
from actlab.store.results import Run, suite_members
from actlab.store.writer import DB_NAME

REPORT_NAME = "report.html"
FIGURE_DIR = "figures"
DPI = 110

TRAINING_FIGURES: list[tuple[str, str, Callable[[Run], Figure | None]]] = [
    ("activations", "The study's activations: function (solid) and derivative (dashed), each in its own colour.",
     figures.activations_figure),
    ("dataset", "The data: training points filled, test points hollow.", figures2d.stored_dataset_figure),
    ("loss_curves", "Loss per epoch for every cell: mean over seeds with a 95 % band.", figures.loss_figure),
    ("bits_per_character", "Validation bits per character per epoch for every arm: mean over seeds with a 95 % band.",
     language_figures.bpc_figure),
    ("ranking", "Each arm against the reference arm, paired over seeds (95 % CI), and actlab's order beside the "
     "published one with Kendall's τ.", language_figures.ranking_figure),
    ("transformer_probes", "The transformer's probes at the last probe epoch: attention entropy per head, the residual "
     "stream's RMS per block.", language_figures.transformer_probes_figure),
    ("gan_samples", "Each generator's samples over the mixture's modes (first seed; grey discs: 3σ).",
     generative_figures.gan_samples_figure),
    ("gan_coverage", "Modes covered and high-quality share after every epoch, per arm: mean and 95 % band over seeds.",
     generative_figures.gan_coverage_figure),
    ("elbo_terms", "The test negative ELBO split into reconstruction and KL, per arm (95 % CI of the total).",
     generative_figures.vae_terms_figure),
    ("score_vs_length", "Final test score against the sequence length, per arm: mean and 95 % CI over seeds (the "
     "adding problem: MSE, with guessing's 1/6 dashed).", recurrent_figures.score_vs_length_figure),
    ("time_gradient", "Gradient through time: ‖∂ℓ/∂h_t‖ of the first layer against the step, per arm, at the first "
     "and last probe epochs, with mean-field theory's per-step gain (dotted) where it gives one.",
     recurrent_figures.time_gradient_figure),
    ("gates", "Each slot of a recurrent cell (gates, candidate, cell) at the last probe: saturated fraction (solid) "
     "and dead fraction (hatched), per arm, over the seeds that did not diverge.", recurrent_figures.gates_figure),
    ("accuracy_vs_depth", "Final test accuracy against depth, mean and 95 % CI over seeds.",
     figures.accuracy_depth_figure),
    ("trainability", "Test accuracy over σ_w² and depth with mean-field theory's trainable depth 6 ξ_c drawn over "
     "it (Schoenholz et al. 2017); the dashed line is the accuracy the findings call trained.",
     theory_figures.trainability_figure),
    ("gradient_mean", "Gradient average per epoch (cnn-depth source): per batch, the mean over parameter tensors of "
     "each tensor's mean |gradient|.", figures.grad_mean_figure),
    ("gradient_per_layer", "Weight-gradient norm per layer (log scale) at the probe epochs.",
     figures.gradient_layers_figure),
    ("dead_saturated", "Dead and saturated fractions per hidden layer at the probe epochs.",
     figures.dead_saturated_figure),
    ("forward_variance", "Pre-activation second moment per hidden layer at initialisation, measured (bands) and "
     "predicted by mean-field theory from layer 1 (dotted).", theory_figures.forward_variance_figure),
    ("decision_boundary", "Decision boundaries with each cell's test accuracy.", figures2d.decision_figure),
    ("decision_consensus", "Where the seeds agree on the decision, and where they split.",
     figures2d.consensus_figure),
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
    own_page: str = ""  # on a suite's page: the link to this study's own report
    claims: list[dict[str, str]] = field(default_factory=list)  # the guide's claims it decides, with verdicts
    where: str = ""  # its run directory relative to the page being rendered ('.' on its own page)
    overview: dict[str, str] = field(default_factory=dict)  # cells, the source's numbers, headline: a suite's row

    def table_anchor(self, i: int) -> str:
        return f"{self.anchor}-table-{i + 1}"

    @property
    def anchor(self) -> str:
        return "study-" + "".join(ch if ch.isalnum() else "-" for ch in self.name)


def caption_of(fn: Callable, name: str) -> str:
    """A figure function's caption: the first paragraph of its docstring, on one line."""
    first = (fn.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(first.split()) or name.replace("_", " ")


def _save(fig: Figure, folder: Path, name: str, caption: str) -> ReportFigure:
    """PNG and SVG into `folder` (temporary names renamed into place); the PNG also as a data URI."""
    folder.mkdir(parents=True, exist_ok=True)
    finish(fig)
    paths = {}
    for ext in ("png", "svg"):
        tmp, final = _fresh_temp(folder, f".{name}.", f".tmp.{ext}"), folder / f"{name}.{ext}"
        try:
            fig.savefig(tmp, dpi=DPI, format=ext)
            fig.set_layout_engine("none")  # the layout the PNG computed holds for the SVG: solved once, not twice
            tmp.replace(final)
        finally:
            tmp.unlink(missing_ok=True)  # a failed write leaves no temporary file behind
        paths[ext] = final
    uri = "data:image/png;base64," + base64.b64encode(paths["png"].read_bytes()).decode("ascii")
    return ReportFigure(name, caption, paths["png"], paths["svg"], uri)


# --------------------------------------------------------------------------------------------- sections


def _provenance(run: Run) -> dict[str, Any]:
    """What the study was run with (versions, code revision and whether its tree was dirty, machine, command)
    and the data each cell trained on, as text rows for the page."""
    prov = {k: v if isinstance(v, str) else json.dumps(v) for k, v in run.study["provenance"].items()}
    if "code_dirty" in prov:
        prov["code_dirty"] = {"true": "yes: uncommitted changes in actlab's source", "false": "no",
                              "null": "unknown (not a git checkout)"}[prov["code_dirty"]]
    for i, ds in enumerate(run.datasets()):
        prov[f"data{'' if len(run.datasets()) == 1 else f' {i + 1}'}"] = json.dumps(ds)
    return prov


def study_section(run_dir: str | Path, ci: str = "t") -> Section:
    """One study's section from its store; its figures are saved under RUN_DIR/figures. `ci` is the method of
    the tables' and findings' intervals (t or bootstrap); curves' bands are Student t."""
    with Run.open(run_dir) as run:
        cfg = run.study["config"]
        sec = Section(run.name, Path(run_dir), cfg.get("description", ""), study_note(run), run.kind,
                      len(run.seeds), findings(run, ci), provenance=_provenance(run),
                      config=json.dumps(cfg, indent=2), cells=cells_table(run),
                      claims=[{"guide": cv.guide, "claim": cv.claim, "verdict": cv.verdict, "sentence": cv.sentence()}
                              for cv in guide.claim_verdicts(run)])
        sec.overview = overview(run)
        folder = Path(run_dir) / FIGURE_DIR
        published = [t for t in (published_table(run),) if t is not None]
        if run.kind == "train":
            sec.tables = [pruned(t) for t in (*published, results_table(run, ci), *depth_tables(run, ci))]
            specs = [(name, caption, partial(fn, run)) for name, caption, fn in TRAINING_FIGURES]
        else:
            rows = run.sim_rows()
            sec.tables = [pruned(t) for t in (*published, *simulation_tables(run))]
            sim = cfg["simulation"]["name"]
            specs = []
            acts = list(dict.fromkeys(r["activation"] for r in rows if "activation" in r))
            if acts:
                specs.append(("activations", "The simulation's activations: function (solid) and derivative (dashed), "
                                             "each in its own colour.",
                              partial(catalog_figures.activation_figure, [(a, {}) for a in acts]) if len(acts) <= 4 else
                              partial(catalog_figures.catalog_figure, acts)))
            if rows:
                specs += [(name, caption_of(fn, name), partial(fn, rows, cfg.get("published", [])))
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


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("actlab.report", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


LONG_TABLE = (12, 8)  # a table longer than the sum shows its first and last rows; the whole of it is collapsed
CI_LABELS = {"t": "Student t over seeds",
             "bootstrap": "BCa bootstrap over seeds, 9,999 resamples, seed 0; Student t where n is too small for it, "
                          "and for curves' bands and the simulation summary table"}


def render(sections: list[Section], title: str, note: str = "", ci: str = "t", page_dir: Path | None = None,
           remark: dict[str, Any] | None = None) -> str:
    """The page's HTML for these sections. Paths on the page are relative to `page_dir`, the folder the page is
    written to (a report moved with its run directories, or shared, names no folder of the machine that made it).
    `remark`: the seeds' closing remark tested across the sections (`guide.spread_verdict`), a row of the guide's
    table."""
    for s in sections:
        s.where = _relative(s.run_dir, page_dir)
    return _ENV.get_template("report.html.j2").render(
        title=title, note=note, sections=sections, version=__version__, ci_label=CI_LABELS[ci], long_table=LONG_TABLE,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), remark=remark)


def _relative(folder: Path, page_dir: Path | None) -> str:
    """`folder` as the page refers to it: relative to the page's folder ('.' for its own)."""
    if page_dir is None:
        return folder.name or "."
    return Path(os.path.relpath(Path(folder).resolve(), Path(page_dir).resolve())).as_posix()


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
        page_dir = (Path(out) if out is not None else run_dir / REPORT_NAME).parent
        for m in members:
            sec = study_section(m, ci)
            _write(m / REPORT_NAME, render([sec], f"actlab report: {sec.name}", ci=ci, page_dir=m))
            sec.own_page = Path(os.path.relpath(m / REPORT_NAME, page_dir)).as_posix()
            sections.append(sec)
        title = f"actlab report: {run_dir.name} ({len(sections)} studies)"
        note = "Each study also has its own report.html in its run directory."
    everything = guide.scan_spreads(run_dir, max_depth=1, among=None)
    remark = (guide.spread_verdict(guide.scan_spreads(run_dir, max_depth=1), everything)
              if len(sections) > 1 and everything else None)
    path = Path(out) if out is not None else run_dir / REPORT_NAME
    _write(path, render(sections, title, note + f" Built in {time.perf_counter() - t0:.1f} s from the stores.", ci,
                        page_dir=path.parent, remark=remark))
    return path


def _fresh_temp(folder: Path, prefix: str, suffix: str) -> Path:
    """A new, empty regular file in `folder` (created exclusively, so no existing name or link is reused or
    followed): where a file is written before it is renamed into place."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:  # mkstemp makes it 0600; the report is the user's to share: the mode any new file of theirs gets
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(name)


def _umask() -> int:
    """The process's umask (read by setting it and back: the only portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_temp(path.parent, f".{path.name}.", ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write leaves no temporary file behind
