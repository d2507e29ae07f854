"""The `actlab` command: thin typer commands that parse arguments and call library functions; what they print
is `actlab.cli.printing`.

Every `ActlabError` (bad input) is printed as one line `error: ...` on stderr with exit status 2, and no
traceback. Files are written only where a command's options say.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column

from actlab import data
from actlab.analysis import guide as tested
from actlab.catalog import activations, guide
from actlab.catalog import table as catalog
from actlab.catalog.activations import Activation
from actlab.catalog.activations import names as all_names
from actlab.catalog.theory import meanfield
from actlab.catalog.theory.gelu import gelu_approximation_error
from actlab.cli import printing
from actlab.errors import ActlabError
from actlab.runtime import tune_malloc
from actlab.studies.config import StudyConfig, documented, expand, load_study, parse_value
from actlab.studies.library import describe
from actlab.studies.runner import plan_run, run_study

# The report, its figures (matplotlib), the explorer's server and the exporter are imported by the commands that
# use them: together they take seconds to import, and `actlab --help` or a mistyped option should answer at once.

# Help shows a value's type after each option that takes one (<int>, <path>); a flag takes none, and typer's
# "<bool>" beside every flag read as if it wanted a value: flags show no type.
_display_type = typer.core.TyperOption.display_type_rich


def _flag_has_no_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    return None if getattr(self, "is_flag", False) else _display_type(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_has_no_type  # type: ignore[method-assign]

app = typer.Typer(help="actlab: a laboratory for controlled experiments on activation functions.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
acts_app = typer.Typer(help="The activation catalog and its measured properties.", add_completion=False)
app.add_typer(acts_app, name="activations")
data_app = typer.Typer(help="Data sources: the classic experiments' datasets, generated or downloaded.",
                       add_completion=False, no_args_is_help=True)
app.add_typer(data_app, name="data")

out, err = printing.out, printing.err

WideOpt = Annotated[bool, typer.Option("--wide", help="Show every column of the tables, however wide the terminal.")]


ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", metavar="KEY=VALUE",
    help="Parameter as KEY=VALUE (every named activation that has KEY) or NAME.KEY=VALUE.")]


def parse_params(items: list[str] | None, acts: list[Activation]) -> dict[str, dict[str, float]]:
    """`--param` values as {activation name: {key: value}}; each key must belong to a named activation."""
    result: dict[str, dict[str, float]] = {a.name: {} for a in acts}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ActlabError(f"--param {item!r} must look like KEY=VALUE or NAME.KEY=VALUE, e.g. alpha=0.1")
        target, _, key = key.rpartition(".")
        chosen = [activations.get(target)] if target else acts
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
    return [activations.get(n) for n in names]


@acts_app.callback(invoke_without_command=True)
def activations_table(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Option("--name", "-n",
                                                    help="Only these activations (repeatable; import paths "
                                                         "allowed).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json, csv or markdown.")] = "table",
    output: Annotated[Path | None, typer.Option("--file", "--output",
                                                help="Write the json/csv/markdown text to this file.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o",
                                                 help="Write catalog.{json,csv,md} and catalog.png into this "
                                                      "folder.")] = None,
    cost: Annotated[bool, typer.Option(help="Measure forward+backward cost against ReLU on this machine.")] = True,
    param: ParamOpt = None,
    wide: WideOpt = False,
) -> None:
    """Print the measured properties table of the catalog (or of --name activations)."""
    if ctx.invoked_subcommand is not None:
        return
    if fmt not in catalog.FORMATS:
        raise ActlabError(f"--format {fmt!r} is unknown; allowed: {', '.join(catalog.FORMATS)}")
    acts = resolve_names(names) if names else [activations.get(n) for n in all_names()]
    with err.status("measuring", spinner="dots") as status:
        entries = catalog.measure(acts, cost=cost, params=parse_params(param, acts),
                                  progress=lambda i, n, name: status.update(f"measuring {name} ({i + 1} of {n})"
                                                                            + (", timed against ReLU" if cost else "")))
    if out_dir is not None:
        paths = catalog.write(entries, out_dir)
        elementwise = [e.activation for e in entries if not e.activation.vector]
        fig = printing.write_figure("catalog", Path(out_dir) / "catalog.png", elementwise)
        for p in [*paths.values(), fig]:
            err.print(f"wrote {p}")
    if fmt == "table":
        printing.catalog_table(entries, wide)
    elif output is not None:
        output.write_text(catalog.render(entries, fmt), encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(catalog.render(entries, fmt))


@acts_app.command("show")
def show(
    names: Annotated[list[str], typer.Argument(help="Activation names or import paths; several overlay.")],
    param: ParamOpt = None,
    figure: Annotated[Path | None, typer.Option("--figure",
                                                help="Write the figure to this file (.png, .svg, .pdf).")] = None,
    no_figure: Annotated[bool, typer.Option("--no-figure", hidden=True, help="Kept for old scripts: a figure is "
                                            "written only with --figure.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full records as JSON.")] = False,
    cost: Annotated[bool, typer.Option(help="Measure the cost against ReLU.")] = True,
    lo: Annotated[float, typer.Option(help="Left end of the figure's x axis.")] = -5.0,
    hi: Annotated[float, typer.Option(help="Right end of the figure's x axis.")] = 5.0,
) -> None:
    """Print one or several entries in full and draw function (solid) and derivative (dashed) on one axes, each
    activation in its own colour."""
    if not lo < hi:
        raise ActlabError(f"--lo {lo} must be smaller than --hi {hi}")
    acts = resolve_names(names)
    params = parse_params(param, acts)
    entries = catalog.measure(acts, cost=cost, params=params)
    if as_json:
        sys.stdout.write(catalog.to_json(entries) + "\n")
    else:
        for e in entries:
            printing.entry(e)
    curves = [(e.activation, e.params) for e in entries if not e.activation.vector]
    if figure is not None and not no_figure and len(entries) == 1 and entries[0].activation.gated:
        e = entries[0]
        err.print(f"wrote {printing.write_figure('gated', figure, e.activation, e.params, lo, hi)}")
    elif figure is not None and not no_figure and curves:
        err.print(f"wrote {printing.write_figure('activations', figure, curves, lo, hi)}")
    elif curves and not as_json:
        slug = "_".join(printing.slug(e.activation.label(**e.params)) for e in entries)
        err.print(f"figure: add --figure {slug}.png (or .svg, .pdf) to draw them", style="dim", highlight=False)


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
    printing.gelu_errors(results, lo, hi)


@acts_app.command("guide")
def guide_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
              runs: Annotated[Path, typer.Option("--runs", help="Where to look for stored runs whose studies decide "
                                                                "the guide's claims (a runs folder, a suite, a run "
                                                                "directory).")] = Path("runs")) -> None:
    """The sources' selection guide: activations by architecture and by output task, the decision flowchart
    and the rule of thumb, each claim with the shipped study that measures it and, where a stored run of that
    study is found under --runs, its verdict: supported, contradicted or not decided."""
    g = guide.selection_guide()
    g["verdicts"] = tested.by_row(tested.scan(runs)) if runs.exists() else {}
    everything = tested.scan_spreads(runs, among=None) if runs.exists() else []
    g["remark"] = tested.spread_verdict(tested.scan_spreads(runs) if runs.exists() else [], everything)
    g["runs"] = str(runs)
    if as_json:
        sys.stdout.write(json.dumps(g, indent=2, ensure_ascii=False) + "\n")
        return
    printing.guide(g)


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
        sys.stdout.write(json.dumps({k: printing.json_number(v) for k, v in doc.items()}, indent=2) + "\n")
    else:
        printing.theory(r, crit, depth, ratio)
    if figures is not None:
        for kind, args, kwargs in (("theory_maps", (act, sw2, sb2, params, depth), {}),
                                   ("theory_chi", (act, sb2, params), {}),
                                   ("theory_phase", (act, params), {"mark": [(sw2, sb2)]})):
            err.print(f"wrote {printing.write_figure(kind, Path(figures) / f'{kind}.png', *args, **kwargs)}")


@data_app.command("list")
def data_list() -> None:
    """List the data sources with their origin and options."""
    printing.data_sources([(name, src.origin, src.description, data.options(name)[: -len(data.COMMON_OPTIONS)])
                           for name, src in data.SOURCES.items()], data.COMMON_OPTIONS)


@data_app.command("show")
def data_show(
    name: Annotated[str, typer.Argument(help="Data source name.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", metavar="KEY=VALUE",
                                                    help="Option as KEY=VALUE (e.g. noise=0.3, "
                                                         "classes=\\[0,1]).")] = None,
    figure: Annotated[Path | None, typer.Option("--figure",
                                                help="Write a figure of samples to this file (.png, .svg, "
                                                     ".pdf).")] = None,
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
        printing.dataset(ds, summary)
    if figure is not None and not no_figure:
        err.print(f"wrote {printing.write_figure('dataset', figure, ds)}")
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
    """The running study on stderr in two rows, each with its count and time remaining: the cells (moving with the
    epochs of the cells in training, so its ETA is known before the first cell ends) and the cells in training
    (a short label: the grid values that tell them apart) with their epochs. Sized to the terminal: the label is
    cut with … before the bar, the count or the ETA lose anything. Silent when stderr is not a terminal."""

    BAR = 20  # the bar's width in columns
    FIXED = BAR + 9 + 6 + 7 + 5  # bar, count (1234/2000), unit, ETA (0:00:00) and the spaces between the columns

    def __init__(self) -> None:
        label = Column(no_wrap=True, overflow="ellipsis", width=max(10, min(60, err.width - self.FIXED - 1)))
        self.bar = Progress(TextColumn("{task.description}", table_column=label), BarColumn(bar_width=self.BAR),
                            MofNCompleteColumn(), TextColumn("{task.fields[unit]}"), TimeRemainingColumn(),
                            console=err, disable=not sys.stderr.isatty(), transient=True)
        self.cells = self.epochs = None
        self.finished, self.training = 0, 0  # cells done; cells in training

    def start(self, study: str, n_cells: int, already: int) -> None:
        self.bar.start()
        self.finished = already
        self.cells = self.bar.add_task(study, total=n_cells, completed=already, unit="cells")
        self.epochs = self.bar.add_task("", total=None, unit="epochs", visible=False)  # shown when a cell starts
        if already:
            err.print(f"{study}: {already} of {n_cells} cells already done (resuming)")

    def cell(self, label: str, n: int = 1) -> None:
        self.training = n
        self.bar.reset(self.epochs, description=f"  {label}", total=None, visible=True)

    def epoch(self, e: int, total: int) -> None:
        self.bar.update(self.epochs, completed=e, total=max(total, 1))
        self.bar.update(self.cells, completed=self.finished + self.training * e / max(total, 1))

    def cell_done(self, n: int = 1) -> None:
        self.finished += n
        self.bar.update(self.cells, completed=self.finished)

    def done(self) -> None:
        self.bar.stop()

    def note(self, text: str) -> None:
        err.print(escape(text), highlight=False, soft_wrap=True)


@app.command("run")
def run(
    study: Annotated[str | None,
                     typer.Argument(help="Study file, shipped study name, or a run directory to resume. Default: the "
                                         "quick tour.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o",
                                                 help="Run directory (default runs/NAME). An existing one with the "
                                                      "same study resumes.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", "-s", metavar="PATH=VALUE",
                                                   help="Override: path=value, e.g. train.epochs=20 or "
                                                        "grid.activation=\\[relu,gelu].")] = None,
    executor: Annotated[str, typer.Option(help="inprocess or ray.")] = "inprocess",
    address: Annotated[str | None,
                       typer.Option(help="Ray cluster address (with --executor ray); default: start a local "
                                         "Ray.")] = None,
    report: Annotated[bool,
                      typer.Option(help="Write RUN_DIR/report.html (figures, findings, provenance) at the "
                                        "end.")] = True,
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
    printing.summary(summary, wide=wide)
    err.print(f"run directory: {target}  ({time.perf_counter() - t0:.1f} s)")
    if report:
        from actlab.report.page import build_report  # start-up (see the imports above)

        t1 = time.perf_counter()
        with _damaged(target):
            written = build_report(target)
        err.print(f"report: {written}  ({time.perf_counter() - t1:.1f} s)")
    if summary.failed:
        raise typer.Exit(1)


studies_app = typer.Typer(help="The shipped studies: list them, or show one's configuration.", add_completion=False)
app.add_typer(studies_app, name="studies")


@studies_app.callback(invoke_without_command=True)
def studies(ctx: typer.Context) -> None:
    """List the shipped studies."""
    if ctx.invoked_subcommand is not None:
        return
    printing.studies(describe())


@studies_app.command("show")
def studies_show(
    study: Annotated[str, typer.Argument(help="A shipped study's name or a study file.")],
    sets: Annotated[list[str] | None, typer.Option("--set", "-s", metavar="PATH=VALUE",
                                                   help="Override: path=value, as for `actlab run`.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every field, with its default too.")] = False,
) -> None:
    """A study at a glance: what it varies (its grid and cells), what it sets apart from the defaults, its claims
    and published numbers; --all: every field with its value and what it means (units, allowed values)."""
    cfg = load_study(study, sets)
    title = (f"{cfg.name}: resolved configuration ({len(expand(cfg))} cells × {len(cfg.seed_list())} seeds)"
             if cfg.kind != "suite" else f"{cfg.name}: a suite of {len(cfg.include)} studies")
    if every:
        printing.study_config(title, documented(cfg), cfg.note)
        return
    defaults = {path: value for path, value, _ in documented(StudyConfig(name=cfg.name))}
    changed = [(path, value, desc) for path, value, desc in documented(cfg)
               if path not in printing.SUMMARY_APART and defaults.get(path, object()) != value]
    printing.study_summary(title, cfg, changed)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, or a suite's (the quick tour's runs/tour).")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o",
                                                 help="Folder to write report.html into (default RUN_DIR); the page "
                                                      "is self-contained.")] = None,
    ci: Annotated[str,
                  typer.Option(help="Intervals of the tables and findings: t (Student t) or bootstrap (BCa).")] = "t",
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

    with _damaged(run_dir):
        written = build_report(run_dir, None if out_dir is None else out_dir / "report.html", ci)
    err.print(f"wrote {written}")


@app.command("serve")
def serve_cmd(
    host: Annotated[str,
                    typer.Option(help="Address to bind. Anything but 127.0.0.1/localhost exposes the explorer to the "
                                      "network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    runs: Annotated[Path,
                    typer.Option(help="Runs root: the run directories the Runs view shows (and the only files it "
                                      "serves).")] = Path("runs"),
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
    to: Annotated[Path | None, typer.Option("--out", "-o", "--to",
                                            help="Output folder (default RUN_DIR/export).")] = None,
) -> None:
    """Write the run's tables as CSV and Parquet files."""
    from actlab.store.export import export_run  # start-up (see the imports above)

    with _damaged(run_dir):
        paths = export_run(run_dir, to)
    for path in paths:
        err.print(f"wrote {path}")


@contextlib.contextmanager
def _damaged(run_dir: Path) -> Iterator[None]:
    """Reading a store whose contents are not what actlab writes (a value of the wrong type, text that is not
    JSON, a truncated file): one error line naming the run directory, not a traceback."""
    try:
        yield
    except ActlabError:
        raise
    except (ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise ActlabError(f"{run_dir} holds a damaged or foreign store ({type(e).__name__}: {e})") from None


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
        what = f"the store: {e}" if isinstance(e, sqlite3.Error) else (
            f"{e.strerror} ({e.filename})" if e.filename and e.strerror else str(e))
        err.print(f"[bold red]error:[/] {escape(what)}", highlight=False, soft_wrap=True)
        sys.exit(1)
