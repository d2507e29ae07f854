"""The `actlab` command: thin typer commands that parse arguments and call library functions.

Every `ActlabError` (bad input) is printed as one line `error: ...` on stderr with exit status 2, and no
traceback. Files are written only where a command's options say.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from actlab import data
from actlab import jsonsafe
from actlab.catalog import guide
from actlab.catalog.theory import meanfield
from actlab.catalog import table as catalog
from actlab.catalog.activations import Activation, get
from actlab.catalog.activations import names as all_names
from actlab.catalog.theory.gelu import gelu_approximation_error
from actlab.errors import ActlabError
from actlab.runtime import tune_malloc
from actlab.studies.config import documented, expand, load_study, parse_value
from actlab.studies.runner import RunSummary, plan_run, run_study
from actlab.studies.shipped import describe

# The report, its figures (matplotlib), the explorer's server and the exporter are imported by the commands that
# use them: together they take seconds to import, and `actlab --help` or a mistyped option should answer at once.

app = typer.Typer(help="actlab: a laboratory for controlled experiments on activation functions.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
acts_app = typer.Typer(help="The activation catalog and its measured properties.", add_completion=False)
app.add_typer(acts_app, name="activations")
data_app = typer.Typer(help="Data sources: the classic experiments' datasets, generated or downloaded.",
                       add_completion=False, no_args_is_help=True)
app.add_typer(data_app, name="data")

out = Console(width=None if sys.stdout.isatty() else 200)  # a terminal's own width; piped output keeps whole rows
err = Console(stderr=True)

SHOWN = ("activation", "range", "derivative", "zero-centred", "saturates", "monotonic", "smoothness",
         "dying risk", "χ₁ at init", "cost vs ReLU")  # the terminal table; files carry every column

WideOpt = Annotated[bool, typer.Option("--wide", help="Show every column of the tables, however wide the terminal.")]


def _fit_table(title: str, cols: list[str], rows: list[list[str]], drop_first: list[str], wide: bool = False,
               caption: str | None = None) -> None:
    """Print a table that fits the terminal: when its natural width is more than the console's, columns of
    `drop_first` are left out, in that order, until it fits, and a note names them (`--wide` shows all)."""
    dropped: list[str] = []

    def build(shown: list[str]) -> Table:
        table = Table(title=title, caption=caption)
        for c in shown:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*(v for c, v in zip(cols, r, strict=True) if c in shown))
        return table

    shown = list(cols)
    table = build(shown)
    if not wide:
        for c in drop_first:
            if Measurement.get(out, out.options.update_width(10_000), table).maximum <= out.width or c not in shown:
                continue
            shown.remove(c)
            dropped.append(c)
            table = build(shown)
    out.print(table)
    if dropped:
        out.print(f"left out to fit {out.width} columns: {', '.join(dropped)} (--wide shows them)", style="dim")


ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", help="Parameter as KEY=VALUE (every named activation that has KEY) or NAME.KEY=VALUE.")]


def parse_params(items: list[str] | None, acts: list[Activation]) -> dict[str, dict[str, float]]:
    """`--param` values as {activation name: {key: value}}; each key must belong to a named activation."""
    result: dict[str, dict[str, float]] = {a.name: {} for a in acts}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ActlabError(f"--param {item!r} must look like KEY=VALUE or NAME.KEY=VALUE, e.g. alpha=0.1")
        target, _, key = key.rpartition(".")
        chosen = [get(target)] if target else acts
        if target and chosen[0].name not in result:
            raise ActlabError(f"--param {item!r}: {target!r} is not among the named activations")
        owners = [a for a in chosen if any(p.name == key for p in a.params)]
        if not owners:
            have = "; ".join(f"{a.name}: {', '.join(p.name for p in a.params) or 'none'}" for a in chosen)
            raise ActlabError(f"--param {item!r}: no named activation has a parameter {key!r} (parameters: {have})")
        for a in owners:
            result[a.name][key] = a.params[[p.name for p in a.params].index(key)].check(value, a.name)
    return result


def _current_folder_importable() -> None:
    """Like `python -m`: import paths such as `mymod:fn` find ./mymod.py."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def resolve_names(names: list[str]) -> list[Activation]:
    """Catalog entries for names or import paths; import paths may name modules in the current folder."""
    if any(":" in n for n in names):
        _current_folder_importable()
    return [get(n) for n in names]


@acts_app.callback(invoke_without_command=True)
def activations_table(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Option("--name", "-n", help="Only these activations (repeatable; import paths allowed).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json, csv or markdown.")] = "table",
    output: Annotated[Path | None, typer.Option("--file", "--output", help="Write the json/csv/markdown text to this file.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Write catalog.{json,csv,md} and catalog.png into this folder.")] = None,
    cost: Annotated[bool, typer.Option(help="Measure forward+backward cost against ReLU on this machine.")] = True,
    param: ParamOpt = None,
    wide: WideOpt = False,
) -> None:
    """Print the measured properties table of the catalog (or of --name activations)."""
    if ctx.invoked_subcommand is not None:
        return
    if fmt not in catalog.FORMATS:
        raise ActlabError(f"--format {fmt!r} is unknown; allowed: {', '.join(catalog.FORMATS)}")
    acts = resolve_names(names) if names else [get(n) for n in all_names()]
    with err.status("measuring", spinner="dots") as status:
        entries = catalog.measure(acts, cost=cost, params=parse_params(param, acts),
                                  progress=lambda i, n, name: status.update(f"measuring {name} ({i + 1} of {n})"
                                                                            + (", timed against ReLU" if cost else "")))
    if out_dir is not None:
        paths = catalog.write(entries, out_dir)
        elementwise = [e.activation for e in entries if not e.activation.vector]
        from actlab.report.figures import catalog as plots  # start-up (see the imports above)
        from actlab.report.figures.common import save  # start-up

        fig = save(plots.catalog_figure(elementwise), Path(out_dir) / "catalog.png")
        for p in [*paths.values(), fig]:
            err.print(f"wrote {p}")
    if fmt == "table":
        _print_table(entries, wide)
    elif output is not None:
        output.write_text(catalog.render(entries, fmt), encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(catalog.render(entries, fmt))


def _print_table(entries: list[catalog.Entry], wide: bool = False) -> None:
    rows = [[catalog.row(e)[c] for c in SHOWN] for e in entries]
    _fit_table("actlab catalog: measured properties", list(SHOWN), rows, wide=wide,
               drop_first=["smoothness", "saturates", "derivative", "χ₁ at init", "dying risk"])
    out.print("zero-centred: |E[φ(z)]| <= 0.1·sqrt(E[φ(z)²]), z ~ N(0, 1); χ₁ at init: mean-field slope of the "
              "correlation map at the paired init, σ_b² = 0 (<1 ordered, >1 chaotic; `actlab theory NAME`); cost: "
              "forward+backward, float32, this machine. Full columns: --format markdown|csv|json.", style="dim")


@acts_app.command("show")
def show(
    names: Annotated[list[str], typer.Argument(help="Activation names or import paths; several overlay.")],
    param: ParamOpt = None,
    figure: Annotated[Path | None, typer.Option("--figure", help="Write the figure to this file (.png, .svg, .pdf).")] = None,
    no_figure: Annotated[bool, typer.Option("--no-figure", hidden=True, help="Kept for old scripts: a figure is "
                                            "written only with --figure.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full records as JSON.")] = False,
    cost: Annotated[bool, typer.Option(help="Measure the cost against ReLU.")] = True,
    lo: Annotated[float, typer.Option(help="Left end of the figure's x axis.")] = -5.0,
    hi: Annotated[float, typer.Option(help="Right end of the figure's x axis.")] = 5.0,
) -> None:
    """Print one or several entries in full and draw function (solid) and derivative (dashed) on one axes, each activation in its own colour."""
    if not lo < hi:
        raise ActlabError(f"--lo {lo} must be smaller than --hi {hi}")
    acts = resolve_names(names)
    params = parse_params(param, acts)
    entries = catalog.measure(acts, cost=cost, params=params)
    if as_json:
        sys.stdout.write(catalog.to_json(entries) + "\n")
    else:
        for e in entries:
            _print_entry(e)
    curves = [(e.activation, e.params) for e in entries if not e.activation.vector]
    if figure is not None and not no_figure and curves:
        from actlab.report.figures import catalog as plots  # start-up (see the imports above)
        from actlab.report.figures.common import save  # start-up

        err.print(f"wrote {save(plots.activation_figure(curves, lo, hi), figure)}")
    elif curves and not as_json:
        slug = "_".join(_slug(e.activation.label(**e.params)) for e in entries)
        err.print(f"figure: add --figure {slug}.png (or .svg, .pdf) to draw them", style="dim", highlight=False)


def _slug(label: str) -> str:
    """A file-name form of a label: 'elu(alpha=2)' -> 'elu-alpha=2'; import paths keep only safe characters."""
    label = label.replace("(", "-").replace(")", "").replace(", ", "-")
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in label).strip("_")


def _print_entry(e: catalog.Entry) -> None:
    a = e.activation
    out.rule(f"[bold]{a.label(**e.params)}")
    out.print(a.description)
    out.print(f"formula:  {a.text}")
    out.print(f"LaTeX:    {a.latex}")
    for p in a.params:
        out.print(f"param:    {p.name} = {e.params[p.name]:g} (default {p.default:g}; {p.allowed()}) {p.doc}")
    out.print(f"init:     {a.init}, gain {a.init_gain(**e.params):.4g}    source: {a.source}")
    if e.properties is None:
        out.print("vector-valued, output layer only: element-wise properties do not apply")
        return
    for key, value in catalog.row(e).items():
        if key not in ("activation", "formula", "init"):
            out.print(f"{key + ':':<14}{value}")
    p = e.properties
    out.print(f"{'φ(0), φ′(0):':<14}{p.value_at_zero:.4g}, {p.derivative_at_zero:.4g}")
    out.print(f"{'E[φ′(z)²]:':<14}{p.derivative_second_moment:.4f}")
    if p.kinks:
        out.print(f"{'kinks at:':<14}{', '.join(f'{k:g}' for k in p.kinks)}")
    if p.maximum:
        out.print(f"{'interior max:':<14}{p.maximum.value:.4f} at {p.maximum.x:.4f}")
    if p.cost_ns is not None:
        out.print(f"{'cost:':<14}{p.cost_ns:.2f} ns/element forward+backward")


@acts_app.command("gelu-error")
def gelu_error(
    lo: Annotated[float, typer.Option(help="Left end of the scanned range.")] = -10.0,
    hi: Annotated[float, typer.Option(help="Right end of the scanned range.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Maximum |exact GELU − approximation| of the tanh and sigmoid forms, and where it occurs."""
    if not lo < hi:
        raise ActlabError(f"--lo {lo} must be smaller than --hi {hi}")
    results = gelu_approximation_error(lo, hi)
    if as_json:
        sys.stdout.write(json.dumps([r.model_dump() for r in results], indent=2) + "\n")
        return
    table = Table(title=f"GELU approximations vs the exact erf form on [{lo:g}, {hi:g}] (float64)")
    for col in ("approximation", "formula", "max |error|", "at x", "mean |error|"):
        table.add_column(col)
    for r in results:
        table.add_row(r.approximation, r.formula, f"{r.max_abs_error:.3e}", f"±{r.at_x:.4f}", f"{r.mean_abs_error:.3e}")
    out.print(table)


@acts_app.command("guide")
def guide_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The sources' selection guide: activations by architecture and by output task, the decision flowchart
    and the rule of thumb, each claim with the shipped study that measures it."""
    g = guide.selection_guide()
    if as_json:
        sys.stdout.write(json.dumps(g, indent=2, ensure_ascii=False) + "\n")
        return
    for key, title in (("architectures", "Hidden and output activations by architecture"),
                       ("outputs", "Output layer by task")):
        table = Table(title=f"{title} ({g['source']})")
        for col in g[key]["header"]:
            table.add_column(col, overflow="fold")
        for row in g[key]["rows"]:
            table.add_row(*map(escape, row))
        out.print(table)
    out.print("[bold]Decision flowchart[/bold] (the first yes decides):")
    for i, step in enumerate(g["flowchart"], 1):
        out.print(f"  {i}. {escape(step['question'])} → {escape(step['then'])}")
    out.print("[bold]Rule of thumb[/bold]:")
    for rule in g["rules"]:
        out.print(f"  - {escape(rule)}")


@app.command("theory")
def theory_cmd(
    name: Annotated[str, typer.Argument(help="An activation name or import path.")],
    sw2: Annotated[float | None, typer.Option("--sw2", help="Weight variance σ_w² (weights N(0, σ_w²/fan_in)); "
                                              "default: the activation's paired init, σ_w² = gain².")] = None,
    sb2: Annotated[float, typer.Option("--sb2", help="Bias variance σ_b².")] = 0.0,
    param: ParamOpt = None,
    depth: Annotated[int, typer.Option(min=1, max=10_000, help="Depth L for the predicted gradient ratio and the "
                                                               "figures' layer iterates.")] = 20,
    figures: Annotated[Path | None, typer.Option("--figures", help="Write theory_maps, theory_chi and theory_phase "
                                                                   "(.png) into this folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prediction as JSON.")] = False,
) -> None:
    """Mean-field theory of a wide random network with this activation: the variance fixed point q*, χ₁,
    the phase (ordered / critical / chaotic), c*, the depth scales ξ_q and ξ_c, and the edge of chaos."""
    act = resolve_names([name])[0]
    params = parse_params(param, [act])[act.name]
    if sw2 is None:
        sw2 = act.init_gain(**params) ** 2
    r = meanfield.propagation(act, sw2, sb2, params)
    crit = meanfield.critical_sw2(act, sb2, params)
    ratio = r.gradient_ratio(depth)
    if as_json:
        doc = {**r.model_dump(), "critical_sw2": crit, "depth": depth, "gradient_ratio": ratio}
        sys.stdout.write(json.dumps({k: _json_number(v) for k, v in doc.items()}, indent=2) + "\n")
    else:
        _print_theory(r, crit, depth, ratio)
    if figures is not None:
        from actlab.report.figures import theory as theory_plots  # start-up (see the imports above)
        from actlab.report.figures.common import save  # start-up

        for fname, draw in (("theory_maps", lambda: theory_plots.maps_figure(act, sw2, sb2, params, depth)),
                            ("theory_chi", lambda: theory_plots.chi_figure(act, sb2, params)),
                            ("theory_phase", lambda: theory_plots.phase_figure(act, params, mark=[(sw2, sb2)]))):
            err.print(f"wrote {save(draw(), Path(figures) / f'{fname}.png')}")


def _json_number(v: object) -> object:
    """A float for JSON: an infinite depth scale as the string "inf" (it means: critical), NaN as null."""
    if isinstance(v, float):
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else jsonsafe.number(v)
    return v


def _num(v: float | None, err: float = 0.0, digits: int = 5) -> str:
    if v is None:
        return "—"
    if math.isinf(v):
        return "∞"
    return f"{v:.{digits}g}" + (f" ± {err:.1g}" if err >= 1e-12 else "")


def _print_theory(r: meanfield.SignalPropagation, crit: float | None, depth: int, ratio: float | None) -> None:
    table = Table(title=f"mean-field theory: {r.activation}{'(' + ', '.join(f'{k}={v:g}' for k, v in r.params.items()) + ')' if r.params else ''}, "
                        f"σ_w² = {r.sw2:g}, σ_b² = {r.sb2:g} ({r.method})", show_header=False)
    table.add_column("quantity")
    table.add_column("value")
    stable = "—" if r.q_stable is None else "stable" if r.q_stable else "unstable"
    rows = [("q* (pre-activation variance the layers approach)", _num(r.q_star, r.q_star_err)),
            ("V′(q*) (variance map's slope at q*)", f"{_num(r.q_slope)} ({stable})"),
            ("χ₁ = σ_w² E[φ′(√q* z)²]", _num(r.chi1, r.chi1_err)),
            ("phase", r.phase or "—"),
            ("c* (correlation the layers approach)", _num(r.c_star, r.c_star_err)),
            ("χ_c (correlation map's slope at c*)", _num(r.chi_c)),
            ("ξ_q (layers to approach q*)", _num(r.xi_q, digits=4)),
            ("ξ_c (layers to approach c*)", _num(r.xi_c, digits=4)),
            ("trainable depth ≈ 6 ξ_c (Schoenholz et al. 2017)", _num(r.trainable_depth, digits=4)),
            ("backward gain per layer √χ₁", _num(r.backward_gain)),
            (f"‖δ₁‖ / ‖δ_L‖ at depth L = {depth} (χ₁^((L−1)/2))", _num(ratio, digits=4)),
            (f"edge of chaos at σ_b² = {r.sb2:g}", f"σ_w² = {_num(crit)}" if crit is not None else "none in (0, 100]")]
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)
    if r.note:
        out.print(r.note)
    out.print("Weights N(0, σ_w²/fan_in), biases N(0, σ_b²), infinitely wide layers; ± is the quadrature's error. "
              "χ₁ < 1: ordered (inputs merge, gradients vanish); χ₁ > 1: chaotic (gradients explode).", style="dim")


@data_app.command("list")
def data_list() -> None:
    """List the data sources with their origin and options."""
    table = Table(title="actlab data sources")
    for col in ("name", "origin", "description", "options"):
        table.add_column(col, overflow="fold")
    for name, src in data.SOURCES.items():
        table.add_row(name, src.origin, src.description, ", ".join(data.options(name)[: -len(data.COMMON_OPTIONS)]))
    out.print(table)
    out.print(f"Every source also takes: {', '.join(data.COMMON_OPTIONS)}. Downloads are cached in "
              f"$ACTLAB_CACHE or ~/.cache/actlab.", style="dim")


@data_app.command("show")
def data_show(
    name: Annotated[str, typer.Argument(help="Data source name.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Option as KEY=VALUE (e.g. noise=0.3, classes=[0,1]).")] = None,
    figure: Annotated[Path | None, typer.Option("--figure", help="Write a figure of samples to this file (.png, .svg, .pdf).")] = None,
    no_figure: Annotated[bool, typer.Option("--no-figure", hidden=True, help="Kept for old scripts: a figure is "
                                            "written only with --figure.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load a data source and show its shapes, class balance and provenance, with a figure of samples."""
    ds = data.load(name, **_parse_options(param))
    summary = ds.summary()
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        out.rule(f"[bold]{ds.name}")
        out.print(f"task: {ds.task}    input shape: {ds.input_shape}    classes: {ds.n_classes}")
        out.print(f"train: {tuple(ds.x_train.shape)} {ds.x_train.dtype}    test: {tuple(ds.x_test.shape)}")
        out.print(f"input mean {ds.x_train.mean():.4f}, std {ds.x_train.std():.4f}, "
                  f"range [{ds.x_train.min():.3f}, {ds.x_train.max():.3f}] (train)")
        if ds.task != "regression":
            table = Table(title="class balance")
            for col in ("class", "train", "test"):
                table.add_column(col)
            for cls in ds.class_names:
                table.add_row(cls, str(summary["train_counts"][cls]), str(summary["test_counts"][cls]))
            out.print(table)
        out.print(f"provenance: {json.dumps(ds.provenance)}")
    if figure is not None and not no_figure:
        from actlab.report.figures import catalog as plots  # start-up (see the imports above)
        from actlab.report.figures.common import save  # start-up

        err.print(f"wrote {save(plots.dataset_figure(ds), figure)}")
    elif not as_json:
        err.print(f"figure: add --figure {ds.name}.png (or .svg, .pdf) to draw samples", style="dim", highlight=False)


def _parse_options(items: list[str] | None) -> dict[str, object]:
    """KEY=VALUE pairs, each VALUE read like a study file's `--set` value (numbers, lists, true/false, text)."""
    opts: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ActlabError(f"--param {item!r} must look like KEY=VALUE, e.g. noise=0.3 or classes=[0,1]")
        opts[key] = parse_value(value)
    return opts


# ----------------------------------------------------------------------------------------- studies


class _Progress:
    """Cells and epochs of the running study on stderr with an ETA; silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=err, disable=not sys.stderr.isatty(), transient=True)
        self.cells = self.epochs = None

    def start(self, study: str, n_cells: int, already: int) -> None:
        self.bar.start()
        self.cells = self.bar.add_task(f"{study}: cells", total=n_cells, completed=already)
        self.epochs = self.bar.add_task("epochs", total=1)
        if already:
            err.print(f"{study}: {already} of {n_cells} cells already done (resuming)")

    def cell(self, label: str) -> None:
        self.bar.update(self.epochs, description=f"  {label}", completed=0)

    def epoch(self, e: int, total: int) -> None:
        self.bar.update(self.epochs, completed=e, total=max(total, 1))

    def cell_done(self, n: int = 1) -> None:
        self.bar.advance(self.cells, n)

    def done(self) -> None:
        self.bar.stop()

    def note(self, text: str) -> None:
        err.print(escape(text), highlight=False, soft_wrap=True)


def _print_summary(summary: RunSummary, max_rows: int = 16, wide: bool = False) -> None:
    """The summary the runner returned: a simulation's grouped rows, or a training study's cells; then the
    source's published numbers beside actlab's, with verdicts. Tables fit the terminal unless `wide`."""
    if summary.members:
        _print_overview(summary, wide)
        return
    _print_cells(summary, max_rows, wide)
    if summary.published:
        rows = []
        for c in summary.published:
            rep = c.reproduced
            est = "—" if rep is None or rep.n == 0 else rep.format()
            rows.append([c.quantity, f"{c.published:.4g} {c.unit}".strip() + (" (one run)" if c.single_run else " (mean)"),
                         est, c.verdict, c.detail])
        _fit_table(f"{summary.study}: published beside reproduced",
                   ["quantity", "published", "actlab mean [95% CI] (n)", "verdict", "compared with"], rows,
                   drop_first=["compared with"], wide=wide)


def _print_overview(summary: RunSummary, wide: bool = False) -> None:
    """A suite's summary: one row per study with its headline, the details in each study's report (and
    `actlab report` / `actlab export` of its run directory)."""
    rows = []
    for m in summary.members:
        states = [r["status"] for r in m.rows] or [o.status for o in m.outcomes]  # the store's: resumed cells too
        failed = states.count("failed")
        cells = f"{states.count('done')} of {len(states)} done" + (f", {failed} failed" if failed else "")
        verdicts: dict[str, int] = {}
        for c in m.published:
            verdicts[c.verdict] = verdicts.get(c.verdict, 0) + 1
        source = ", ".join(f"{n} {v}" for v, n in verdicts.items()) or "—"
        rows.append([m.study, cells, source, _headline(m)])
    _fit_table(f"{summary.study}: {len(summary.members)} studies (details: {summary.run_dir}/report.html)",
               ["study", "cells", "source's numbers", "headline"], rows, drop_first=["source's numbers"], wide=wide)


def _headline(m: RunSummary) -> str:
    """The study's first number a reader wants: the best cell's accuracy, or a source comparison."""
    scored = [r for r in m.rows if r.get("final_test_acc") is not None and r["final_test_acc"].n]
    if scored:
        best = max(scored, key=lambda r: r["final_test_acc"].mean)
        return f"best final test acc: {best['cell']} {best['final_test_acc'].format('.3f', with_n=False)}" + \
            f" (n = {best['final_test_acc'].n})"
    if m.published:
        c = m.published[0]
        rep = "—" if c.reproduced is None or c.reproduced.n == 0 else c.reproduced.format(".3g")
        return f"{c.quantity}: {rep} ({c.verdict} with {c.published:.3g})"
    return f"{len(m.sims)} result rows" if m.sims else "—"


def _print_cells(summary: RunSummary, max_rows: int, wide: bool = False) -> None:
    sims = summary.sims
    if sims:
        cols = list(dict.fromkeys(k for row in sims for k in row))
        _fit_table(f"{summary.study}  ({summary.run_dir}): mean [95% CI] over seeds", cols,
                   [[str(row.get(c, "")) for c in cols] for row in sims[:max_rows]], drop_first=cols[:0:-1], wide=wide)
        if len(sims) > max_rows:
            out.print(f"... {len(sims) - max_rows} more rows: actlab export {summary.run_dir}", style="dim")
        if summary.note:
            out.print(summary.note, style="dim")
        return
    sim_rows = any(r["sim_rows"] for r in summary.rows)  # a training study has none: no column of "—"
    cols = ["cell", "status", "n seeds", "final test acc, mean [95% CI]", "diverged", *(("rows",) if sim_rows else ()),
            "wall s"]
    rows = []
    for r in summary.rows:
        acc = "—" if r["final_test_acc"] is None else r["final_test_acc"].format(".4g", with_n=False)
        rows.append([r["cell"], r["status"] + (f": {r['error']}" if r["error"] else ""), str(r["replicas"]),
                     acc, str(r["diverged"]), *((str(r["sim_rows"] or "—"),) if sim_rows else ()),
                     "—" if r["wall_s"] is None else f"{r['wall_s']:.1f}"])
    _fit_table(f"{summary.study}  ({summary.run_dir})", cols, rows, drop_first=["wall s", "rows", "diverged"], wide=wide)
    if summary.note:
        out.print(summary.note, style="dim")


@app.command("run")
def run(
    study: Annotated[str | None, typer.Argument(help="Study file, shipped study name, or a run directory to resume. Default: the quick tour.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default runs/NAME). An existing one with the same study resumes.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override: path=value, e.g. train.epochs=20 or grid.activation=[relu,gelu].")] = None,
    executor: Annotated[str, typer.Option(help="inprocess or ray.")] = "inprocess",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --executor ray); default: start a local Ray.")] = None,
    report: Annotated[bool, typer.Option(help="Write RUN_DIR/report.html (figures, findings, provenance) at the end.")] = True,
    wide: WideOpt = False,
) -> None:
    """Run a study (or resume one): every cell, its seeds as one population, results to the run's store."""
    _current_folder_importable()  # a study's activation may be `mymod:fn` in the current folder
    cfg, target = plan_run(study, out_dir, sets)
    t0 = time.perf_counter()
    try:
        summary = run_study(cfg, target, executor=executor, address=address, progress=_Progress())
    except KeyboardInterrupt:
        err.print(f"interrupted: finished cells are kept in {target}; run `actlab run {target}` to resume")
        raise typer.Exit(130) from None
    _print_summary(summary, wide=wide)
    err.print(f"run directory: {target}  ({time.perf_counter() - t0:.1f} s)")
    if report:
        from actlab.report.page import build_report  # start-up (see the imports above)

        t1 = time.perf_counter()
        err.print(f"report: {build_report(target)}  ({time.perf_counter() - t1:.1f} s)")
    if summary.failed:
        raise typer.Exit(1)


studies_app = typer.Typer(help="The shipped studies: list them, or show one's configuration.", add_completion=False)
app.add_typer(studies_app, name="studies")


@studies_app.callback(invoke_without_command=True)
def studies(ctx: typer.Context) -> None:
    """List the shipped studies."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="shipped studies (actlab run NAME; actlab studies show NAME)")
    table.add_column("name")
    table.add_column("description", overflow="fold")
    for name, desc in describe():
        table.add_row(name, desc)
    out.print(table)


@studies_app.command("show")
def studies_show(
    study: Annotated[str, typer.Argument(help="A shipped study's name or a study file.")],
    sets: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override: path=value, as for `actlab run`.")] = None,
) -> None:
    """A study's resolved configuration: every field with its value and what it means (units, allowed values)."""
    cfg = load_study(study, sets)
    table = Table(title=f"{cfg.name}: resolved configuration ({len(expand(cfg))} cells × {len(cfg.seed_list())} "
                        "seeds)" if cfg.kind != "suite" else f"{cfg.name}: a suite of {len(cfg.include)} studies")
    for col in ("field", "value", "description"):
        table.add_column(col, overflow="fold")
    for path, value, desc in documented(cfg):
        table.add_row(path, json.dumps(value, default=str, ensure_ascii=False), desc)
    out.print(table)
    if cfg.note:
        out.print(cfg.note, style="dim")


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, or a suite's (the quick tour's runs/tour).")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Folder to write report.html into (default RUN_DIR); the page is self-contained.")] = None,
    ci: Annotated[str, typer.Option(help="Intervals of the tables and findings: t (Student t) or bootstrap (BCa).")] = "t",
) -> None:
    """Write the run's HTML report: figures (also PNG and SVG in figures/), findings, tables, provenance."""
    if out_dir is not None and out_dir.suffix.lower() in (".html", ".htm"):
        raise ActlabError(f"--out {out_dir} names a file; --out is a folder (the report is written as "
                          f"FOLDER/report.html), e.g. --out {out_dir.parent}")
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise ActlabError(f"--out {out_dir} is a file; --out is a folder to write report.html into")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    from actlab.report.page import build_report  # start-up (see the imports above)

    err.print(f"wrote {build_report(run_dir, None if out_dir is None else out_dir / 'report.html', ci)}")


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to bind. Anything but 127.0.0.1/localhost exposes the explorer to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    runs: Annotated[Path, typer.Option(help="Runs root: the run directories the Runs view shows (and the only files it serves).")] = Path("runs"),
    max_trainings: Annotated[int, typer.Option(min=1, max=16, help="Live trainings allowed at once.")] = 2,
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="A Host name the explorer answers besides the bound address and the loopback names "
        "(repeatable; '*' answers any). Other Host headers get 403, which stops DNS-rebinding pages.")] = None,
) -> None:
    """The explorer: activations, live training and stored runs in the browser at http://HOST:PORT/."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[bold yellow]warning:[/] binding {host}: anyone who can reach this machine on port {port} can "
                  "use the explorer (it serves the runs under its root and runs bounded trainings)", highlight=False)
    err.print(f"actlab explorer on http://{'[' + host + ']' if ':' in host else host}:{port}/  (runs root: {runs}; "
              "Ctrl-C stops)")
    from actlab.web import serve  # start-up (see the imports above)

    serve(host, port, runs, max_trainings, allow_host or ())


@app.command("export")
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    to: Annotated[Path | None, typer.Option("--out", "-o", "--to", help="Output folder (default RUN_DIR/export).")] = None,
) -> None:
    """Write the run's tables as CSV and Parquet files."""
    from actlab.store.export import export_run  # start-up (see the imports above)

    for path in export_run(run_dir, to):
        err.print(f"wrote {path}")


def main() -> None:
    """Console entry point: bad input becomes one `error:` line and exit status 2. Applies the process-wide
    allocator tuning (`actlab.runtime.tune_malloc`) before any command runs."""
    tune_malloc()
    try:
        app()
    except ActlabError as e:  # the message is printed as text: brackets in it ([cell ...]) are not markup
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (OSError, sqlite3.Error) as e:  # the file system said no (a file where a folder should be, a full
        # disk, ...), directly or through SQLite ("database or disk is full"); what was written stays written
        what = f"the store: {e}" if isinstance(e, sqlite3.Error) else str(e)
        err.print(f"[bold red]error:[/] {escape(what)}", highlight=False, soft_wrap=True)
        sys.exit(1)
