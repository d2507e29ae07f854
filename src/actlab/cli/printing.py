"""What the command line prints: tables that fit the terminal, a catalog entry, mean-field theory, a run's summary
and a suite's overview, and the figures it writes. `actlab.cli.commands` parses and calls; this module shows
what the library returned."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from actlab import jsonsafe
from actlab.analysis.summary import cells_done, verdict_counts
from actlab.analysis.summary import headline as summary_headline
from actlab.catalog import activations, gated
from actlab.catalog import table as catalog
from actlab.catalog.theory import meanfield
from actlab.studies.runner import RunSummary

out = Console(width=None if sys.stdout.isatty() else 200)  # a terminal's own width; piped output keeps whole rows
err = Console(stderr=True)

SHOWN = ("activation", "range", "derivative", "zero-centred", "saturates", "monotonic", "smoothness",
         "dying risk", "χ₁ at init", "cost vs ReLU")  # the terminal table; files carry every column


def fit_table(title: str, cols: list[str], rows: list[list[str]], drop_first: list[str], wide: bool = False,
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


def catalog_table(entries: list[catalog.Entry], wide: bool = False) -> None:
    rows = [[catalog.row(e)[c] for c in SHOWN] for e in entries]
    fit_table("actlab catalog: measured properties", list(SHOWN), rows, wide=wide,
               drop_first=["smoothness", "saturates", "derivative", "χ₁ at init", "dying risk"])
    out.print("zero-centred: |E[φ(z)]| <= 0.1·sqrt(E[φ(z)²]), z ~ N(0, 1); χ₁ at init: mean-field slope of the "
              "correlation map at the paired init, σ_b² = 0 (<1 ordered, >1 chaotic; `actlab theory NAME`); cost: "
              "forward+backward, float32, this machine. Full columns: --format markdown|csv|json.", style="dim")


def slug(label: str) -> str:
    """A file-name form of a label: 'elu(alpha=2)' -> 'elu-alpha=2'; import paths keep only safe characters."""
    label = label.replace("(", "-").replace(")", "").replace(", ", "-")
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in label).strip("_")


def entry(e: catalog.Entry) -> None:
    a = e.activation
    out.rule(f"[bold]{a.label(**e.params)}")
    out.print(a.description)
    out.print(f"formula:  {a.text}")
    out.print(f"LaTeX:    {a.latex}")
    for p in a.params:
        out.print(f"param:    {p.name} = {e.params[p.name]:g} (default {p.default:g}; {p.allowed()}) {p.doc}")
    if a.gated:
        out.print(f"init:     the model's (a transformer draws its projections GPT-2's way)    source: {a.source}")
    else:
        out.print(f"init:     {a.init}, gain {a.init_gain(**e.params):.4g}    source: {a.source}")
    if e.properties is None:
        out.print("vector-valued, output layer only: element-wise properties do not apply")
        return
    if e.gated is not None:
        _gated(e)
    w = max(len(k) for k in catalog.COLUMNS) + 2  # every label's value starts in one column
    for key, value in catalog.row(e).items():
        if key not in ("activation", "formula", "init"):
            out.print(f"{key + ':':<{w}}{value}")
    p = e.properties
    out.print(f"{'φ(0), φ′(0):':<{w}}{p.value_at_zero:.4g}, {p.derivative_at_zero:.4g}")
    out.print(f"{'E[φ′(z)²]:':<{w}}{p.derivative_second_moment:.4f}")
    if p.kinks:
        out.print(f"{'kinks at:':<{w}}{', '.join(f'{k:g}' for k in p.kinks)}")
    if p.maximum:
        out.print(f"{'interior max:':<{w}}{p.maximum.value:.4f} at {p.maximum.x:.4f}")
    if p.cost_ns is not None:
        out.print(f"{'cost:':<{w}}{p.cost_ns:.2f} ns/element forward+backward")


def _gated(e: catalog.Entry) -> None:
    """A gated entry's two-input record, each property with what it means, then its diagonal's heading."""
    g = e.gated
    out.print(f"gated:    φ(a)·b with φ = {g.gate_name} (range {g.gate.range}); two input projections, so only "
              f"{', '.join(activations.GATED_MODELS)} models take it (the FFN slot)")
    out.print("two-input properties, measured with a, b independent N(0, 1):", style="bold")
    for key, meaning in gated.MEANINGS.items():
        v = getattr(g, key)
        shown = ("yes" if v else "no") if isinstance(v, bool) else f"{v:.4f}"
        out.print(f"  {key + ':':<27}{shown:<9}[dim]{escape(meaning)}[/dim]")
    out.print("self-gated diagonal x·φ(x) (both inputs equal), its element-wise properties:", style="bold")


def json_number(v: object) -> object:
    """A float for JSON: an infinite depth scale as the string "inf" (it means: critical), NaN as null."""
    if isinstance(v, float):
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else jsonsafe.number(v)
    return v


def number(v: float | None, err: float = 0.0, digits: int = 5) -> str:
    if v is None:
        return "—"
    if math.isinf(v):
        return "∞"
    if abs(v) < max(err, 1e-12):  # zero within its error or float64 rounding (tanh's c* = -1.1e-16): 0
        v = 0.0
    return f"{v:.{digits}g}" + (f" ± {err:.1g}" if _visible(v, err, digits) else "")


def _visible(v: float, err: float, digits: int) -> bool:
    """Whether an error could move the last digit shown: half a unit of it or more. Quadrature errors far below
    (4e-11 on a 5-digit q*) are float noise that differs from machine to machine, so they are not printed."""
    if err <= 0 or not math.isfinite(err):
        return err > 0
    unit = 10 ** (math.floor(math.log10(abs(v))) - digits + 1) if v else 10.0 ** -digits
    return err >= unit / 2


def theory(r: meanfield.SignalPropagation, crit: float | None, depth: int, ratio: float | None) -> None:
    params = "(" + ", ".join(f"{k}={v:g}" for k, v in r.params.items()) + ")" if r.params else ""
    table = Table(title="mean-field theory: "
                        f"{r.activation}{params}, "
                        f"σ_w² = {r.sw2:g}, σ_b² = {r.sb2:g} ({r.method})", show_header=False)
    table.add_column("quantity")
    table.add_column("value")
    stable = "—" if r.q_stable is None else "stable" if r.q_stable else "unstable"
    rows = [("q* (pre-activation variance the layers approach)", number(r.q_star, r.q_star_err)),
            ("V′(q*) (variance map's slope at q*)", f"{number(r.q_slope)} ({stable})"),
            ("χ₁ = σ_w² E[φ′(√q* z)²]", number(r.chi1, r.chi1_err)),
            ("phase", r.phase or "—"),
            ("c* (correlation the layers approach)", number(r.c_star, r.c_star_err)),
            ("χ_c (correlation map's slope at c*)", number(r.chi_c)),
            ("ξ_q (layers to approach q*)", number(r.xi_q, digits=4)),
            ("ξ_c (layers to approach c*)", number(r.xi_c, digits=4)),
            ("trainable depth ≈ 6 ξ_c (Schoenholz et al. 2017)", number(r.trainable_depth, digits=4)),
            ("backward gain per layer √χ₁", number(r.backward_gain)),
            (f"‖δ₁‖ / ‖δ_L‖ at depth L = {depth} (χ₁^((L−1)/2))", number(ratio, digits=4)),
            (f"edge of chaos at σ_b² = {r.sb2:g}",
             f"σ_w² = {number(crit)}" if crit is not None else "none in (0, 100]")]
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)
    if r.note:
        out.print(r.note)
    plus = "; ± is the quadrature's error" if any("±" in v for _, v in rows) else ""
    out.print(f"Weights N(0, σ_w²/fan_in), biases N(0, σ_b²), infinitely wide layers{plus}. "
              "χ₁ < 1: ordered (inputs merge, gradients vanish); χ₁ > 1: chaotic (gradients explode).", style="dim")


def summary(summary: RunSummary, max_rows: int = 16, wide: bool = False) -> None:
    """The summary the runner returned: a simulation's grouped rows, or a training study's cells; then the
    source's published numbers beside actlab's, with verdicts. Tables fit the terminal unless `wide`."""
    if summary.members:
        overview(summary, wide)
        return
    cells(summary, max_rows, wide)
    if summary.published:
        rows = []
        for c in summary.published:
            rep = c.reproduced
            est = "—" if rep is None or rep.n == 0 else rep.format(c.spec)
            published = f"{c.published:.4g} {c.unit}".strip() + (" (one run)" if c.single_run else " (mean)")
            rows.append([c.quantity, published,
                         est, c.verdict, c.detail])
        fit_table(f"{summary.study}: published beside reproduced",
                   ["quantity", "published", "actlab mean [95 % CI] (n)", "verdict", "compared with"], rows,
                   drop_first=["compared with"], wide=wide)


def overview(summary: RunSummary, wide: bool = False) -> None:
    """A suite's summary: one row per study with its headline, the details in each study's report (and
    `actlab report` / `actlab export` of its run directory)."""
    rows = []
    for m in summary.members:
        states = [r["status"] for r in m.rows] or [o.status for o in m.outcomes]  # the store's: resumed cells too
        rows.append([m.study, cells_done(states), verdict_counts(m.published), headline(m)])
    fit_table(f"{summary.study}: {len(summary.members)} studies (details: {summary.run_dir}/report.html)",
               ["study", "cells", "source's numbers", "headline"], rows, drop_first=["source's numbers"], wide=wide)


def headline(m: RunSummary) -> str:
    """The study's first number a reader wants (actlab.analysis.summary.headline)."""
    return summary_headline(m.rows, m.sims, m.published)


def cells(summary: RunSummary, max_rows: int, wide: bool = False) -> None:
    sims = summary.sims
    if sims:
        cols = list(dict.fromkeys(k for row in sims for k in row))
        fit_table(f"{summary.study}  ({summary.run_dir}): mean [95 % CI] over seeds", cols,
                   [[str(row.get(c, "")) for c in cols] for row in sims[:max_rows]], drop_first=cols[:0:-1], wide=wide)
        if len(sims) > max_rows:
            out.print(f"... {len(sims) - max_rows} more rows: actlab export {summary.run_dir}", style="dim")
        if summary.note:
            out.print(summary.note, style="dim")
        return
    sim_rows = any(r["sim_rows"] for r in summary.rows)  # a training study has none: no column of "—"
    names = list(dict.fromkeys(r["score_name"] for r in summary.rows if r.get("score_name")))
    short = {"test accuracy": "test acc", "test MSE": "test MSE"}
    what = " / ".join(short.get(n, n) for n in names) or "test acc"
    cols = ["cell", "status", "n seeds", f"final {what}, mean [95 % CI]",
            "diverged", *(("rows",) if sim_rows else ()), "wall s"]
    rows = []
    for r in summary.rows:
        acc = "—" if r.get("score") is None else r["score"].format(r.get("score_spec", ".3f"), with_n=False)
        rows.append([r["cell"], r["status"] + (f": {r['error']}" if r["error"] else ""), str(r["replicas"]),
                     acc, str(r["diverged"]), *((str(r["sim_rows"] or "—"),) if sim_rows else ()),
                     "—" if r["wall_s"] is None else f"{r['wall_s']:.1f}"])
    fit_table(f"{summary.study}  ({summary.run_dir})", cols, rows, drop_first=["wall s", "rows", "diverged"], wide=wide)
    if summary.note:
        out.print(summary.note, style="dim")


def write_figure(kind: str, path: str | Path, *args: Any, **kwargs: Any) -> Path:
    """Draw one of the command line's figures into `path` (format from the suffix); `kind` names it
    (`actlab.report.figures.DRAW`). The report's figures are imported here, on first use: with matplotlib they
    take seconds to import, and `actlab --help` or a mistyped option should answer at once."""
    from actlab.report import figures  # start-up: matplotlib, only for a command that draws

    return figures.write(kind, path, *args, **kwargs)


def gelu_errors(results: list[Any], lo: float, hi: float) -> None:
    table = Table(title=f"GELU approximations vs the exact erf form on [{lo:g}, {hi:g}] (float64)")
    for col in ("approximation", "formula", "max |error|", "at x", "mean |error|"):
        table.add_column(col)
    for r in results:
        table.add_row(r.approximation, r.formula, f"{r.max_abs_error:.3e}", f"±{r.at_x:.4f}", f"{r.mean_abs_error:.3e}")
    out.print(table)


def _tested(by: str | None) -> str:
    """'tested by: actlab run moons; …', or the convention as it is."""
    if not by:
        return "no study yet"
    if by.startswith(("a convention", "convention")):
        return escape(by)
    if " " in by.split(",")[0].strip():  # words, not study names
        return "tested across " + escape(by)
    return "tested by " + escape("; ".join(f"actlab run {s.strip()}" for s in by.split(",")))


def guide(g: dict[str, Any]) -> None:
    """The sources' selection guide: its two tables (the architectures' with each row's verdicts from the stored
    runs found), the decision flowchart, the rule of thumb, then every verdict in words."""
    verdicts = g.get("verdicts", {})
    for key, title in (("architectures", "Hidden and output activations by architecture"),
                       ("outputs", "Output layer by task")):
        table = Table(title=f"{title} ({g['source']})")
        for col in g[key]["header"] + (["verdict"] if key == "architectures" else []):
            table.add_column(col, overflow="fold")
        for row in g[key]["rows"]:
            extra = []
            if key == "architectures":
                found = verdicts.get(row[0], [])
                by_study: dict[str, list[str]] = {}
                for v in found:
                    by_study.setdefault(v["study"], []).append(v["verdict"])
                extra = ["; ".join(f"{s}: " + ", ".join(vs) for s, vs in by_study.items()) if found else
                         "not yet run" if row[4] != "—" else "no study yet"]
            table.add_row(*map(escape, [*row, *extra]))
        out.print(table)
    out.print("[bold]Decision flowchart[/bold] (the first yes decides):")
    for i, step in enumerate(g["flowchart"], 1):
        out.print(f"  {i}. {escape(step['question'])} → {escape(step['then'])}  [dim]({_tested(step.get('tested_by'))})"
                  "[/dim]")
    out.print("[bold]Rule of thumb[/bold]:")
    for rule, tested_by in zip(g["rules"], g.get("rules_tested_by") or [""] * len(g["rules"]), strict=True):
        out.print(f"  - {escape(rule)}  [dim]({_tested(tested_by)})[/dim]")
    out.print(f"  - (the seeds' closing remark) activation choice rarely makes more than a few percentage points of "
              f"difference in final accuracy  [dim]({_tested(g.get('remark_tested_by'))})[/dim]")
    rule_verdicts = verdicts.get("rule of thumb", [])
    if rule_verdicts:
        out.print("  verdicts: " + "; ".join(f"{v['verdict']} ({v['study']})" for v in rule_verdicts))
    remark = g.get("remark")
    if remark and (remark["groups"] or remark.get("all_groups")):
        out.print(f"[bold]The seeds' closing remark[/bold], across the stored runs: {escape(remark['sentence'])}")
    claims = [v for vs in verdicts.values() for v in vs]
    if claims:
        out.print(f"[bold]The claims, decided by the stored runs under {escape(g.get('runs', ''))}[/bold] (paired over "
                  "seeds, exact sign-flip tests, Holm within each study):")
        for v in claims:
            out.print(f"  - {escape(v['sentence'])} [dim]({escape(v['run_dir'])})[/dim]")
    else:
        out.print(f"No stored run under {escape(g.get('runs', ''))} decides a claim yet: run the studies the table "
                  "names (actlab run STUDY), or point --runs at their runs.", style="dim")


def data_sources(rows: list[tuple[str, str, str, list[str]]], common: tuple[str, ...]) -> None:
    table = Table(title="actlab data sources")
    for col in ("name", "origin", "description", "options"):
        table.add_column(col, overflow="fold")
    for name, origin, description, options in rows:
        table.add_row(name, origin, description, ", ".join(options))
    out.print(table)
    out.print(f"Every source also takes: {', '.join(common)}. Downloads are cached in $ACTLAB_CACHE or "
              "~/.cache/actlab.", style="dim")


def dataset(ds: Any, summary: dict[str, Any]) -> None:
    """One loaded data source: shapes, input statistics, class balance and provenance."""
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


def studies(described: list[tuple[str, str]]) -> None:
    table = Table(title="shipped studies (actlab run NAME; actlab studies show NAME)")
    table.add_column("name")
    table.add_column("description", overflow="fold")
    for name, desc in described:
        table.add_row(name, desc)
    out.print(table)


SUMMARY_APART = ("name", "description", "note", "grid", "claims", "published", "include", "overrides", "source")


def study_summary(title: str, cfg: Any, changed: list[tuple[str, Any, str]]) -> None:
    """`studies show` without --all: the description, the grid (what varies), the fields set apart from the
    defaults with what they mean, the claims and published numbers in words, the note."""
    out.rule(f"[bold]{escape(title)}")
    if cfg.description:
        out.print(escape(cfg.description))
    if cfg.include:
        out.print("[bold]Members[/bold]: " + escape(", ".join(cfg.include)))
        for name, sets in (cfg.overrides or {}).items():
            out.print(f"  {escape(name)}: " + escape("; ".join(sets)))
    elif cfg.grid:
        table = Table(title="What varies (the grid: every combination is a cell)")
        for col in ("field", "values"):
            table.add_column(col, overflow="fold")
        for path, values in cfg.grid.items():
            table.add_row(escape(path), escape(", ".join(json.dumps(v, ensure_ascii=False) for v in values)))
        out.print(table)
    if changed:
        table = Table(title="Set apart from the defaults (actlab studies show NAME --all: every field)")
        for col in ("field", "value", "description"):
            table.add_column(col, overflow="fold")
        for path, value, desc in changed:
            table.add_row(escape(path), escape(json.dumps(value, default=str, ensure_ascii=False)), escape(desc))
        out.print(table)
    for c in cfg.claims:
        where = f", where {escape(c.where)}" if c.where else ""
        out.print(f"[bold]Claim[/bold] ({escape(c.guide)}): {escape(c.claim)} — {escape(c.better)} over "
                  f"{escape(c.than)} by {c.metric.replace('_', ' ')}{where}")
    for pub in cfg.published:
        out.print(f"[bold]Published[/bold]: {escape(pub.quantity)} = {pub.value:g} ({escape(pub.source)})"
                  + ("" if pub.comparable else " — not comparable here"))
    if cfg.note:
        out.print(escape(cfg.note), style="dim")


def study_config(title: str, fields: list[tuple[str, Any, str]], note: str) -> None:
    """A study's resolved configuration: every field, its value as the study file writes it, what it means."""
    table = Table(title=title)
    for col in ("field", "value", "description"):
        table.add_column(col, overflow="fold")
    for path, value, desc in fields:
        table.add_row(path, json.dumps(value, default=str, ensure_ascii=False), desc)
    out.print(table)
    if note:
        out.print(note, style="dim")
