"""The catalog's properties table: one measured row per activation, written as JSON, CSV or Markdown.

The columns follow the classic reference table (range, derivative range, zero-centred, saturates, cost)
and add the measured extras (monotonicity and minimum, smoothness, dying-unit risk, Gaussian moments,
the variance-preserving gain) and mean-field theory's two numbers (`meanfield`): σ_w² at the edge of chaos
for σ_b² = 0, and χ₁ at the paired init (σ_w² = gain²). JSON carries the full records at full precision; CSV and
Markdown carry the display strings.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actlab.catalog.activations import Activation, get, names
from actlab.catalog.gated import GatedProperties, gated_properties
from actlab.catalog.properties import Properties, properties

FORMATS = ("table", "json", "csv", "markdown")


@dataclass(frozen=True)
class Entry:
    """A catalog entry at one parameter setting with its measured properties (None for vector-valued ones; a
    gated entry's are those of its self-gated diagonal x·φ(x), and `gated` holds its two-input record)."""

    activation: Activation
    params: dict[str, float]
    properties: Properties | None
    gated: GatedProperties | None = None


def measure(specs: Sequence[str | Activation] | None = None, *, cost: bool = True,
            params: dict[str, dict[str, Any]] | None = None,
            progress: Callable[[int, int, str], None] | None = None) -> list[Entry]:
    """Measure every activation in `specs` (default: the whole catalog); `params` maps a name to its
    parameters; `progress(i, total, name)` is called before each one."""
    out = []
    todo = list(specs if specs is not None else names())
    for i, spec in enumerate(todo):
        act = get(spec)
        if progress is not None:
            progress(i, len(todo), act.name)
        values = act.resolve(**(params or {}).get(act.name, {}))
        props = None if act.vector else properties(act, cost=cost, **values)
        out.append(Entry(act, values, props, gated_properties(act, **values) if act.gated else None))
    return out


COLUMNS = ("activation", "formula", "range", "derivative", "zero-centred", "saturates", "cost vs ReLU",
           "monotonic", "smoothness", "dying risk", "E[φ(z)]", "E[φ(z)²]", "gain", "init", "edge of chaos σ_w²",
           "χ₁ at init")


def row(e: Entry) -> dict[str, str]:
    """Display strings of one entry, keyed by COLUMNS."""
    a, p = e.activation, e.properties
    out = dict.fromkeys(COLUMNS, "—") | {
        "activation": a.label(**e.params), "formula": a.text,
        "init": f"{a.init} (gain {a.init_gain(**e.params):.3g})",
    }
    if a.gate is not None:  # a gated entry's element-wise record is its diagonal's
        out |= {"formula": f"x * {a.gate.name}(x) (the diagonal a = b)", "init": "the model's"}
    if p is None:  # vector-valued: no element-wise properties
        return out | {"monotonic": "output only (vector-valued)"}
    if p.monotonic:
        mono = p.direction
    else:
        mono = f"no, min {p.minimum.value:.4f} at {p.minimum.x:.4f}" if p.minimum else "no"
    return out | {
        "range": str(p.range),
        "derivative": str(p.derivative_range),
        "zero-centred": f"{'yes' if p.zero_centred else 'no'} ({p.mean:+.3f})",
        "saturates": p.saturates,
        "cost vs ReLU": "—" if p.cost_vs_relu is None else _cost(p.cost_vs_relu, p.cost_spread),
        "monotonic": mono,
        "smoothness": p.smoothness,
        "dying risk": ("no" if not p.dying_risk else "yes (both sides)" if p.zero_gradient == "both"
                       else f"yes ({p.zero_gradient} side)"),
        "E[φ(z)]": f"{p.mean:.4f}",
        "E[φ(z)²]": f"{p.second_moment:.4f}",
        "gain": f"{p.variance_gain:.3f}",
        "edge of chaos σ_w²": "none" if p.critical_sw2 is None else f"{p.critical_sw2:.4g}",
        "χ₁ at init": "— (q grows)" if p.chi1_at_init is None else f"{p.chi1_at_init:.4g}",
    }


def to_json(entries: Sequence[Entry]) -> str:
    """Full records: catalog facts and every measured property, at full precision."""
    docs = []
    for e in entries:
        a = e.activation
        docs.append({
            "name": a.name, "params": e.params, "formula": {"latex": a.latex, "text": a.text},
            "init": {"scheme": a.init, "gain": a.init_gain(**e.params)}, "description": a.description,
            "vector": a.vector, "kind": a.kind, "source": a.source,
            "properties": None if e.properties is None else json.loads(e.properties.model_dump_json()),
            **({"gated": json.loads(e.gated.model_dump_json(exclude={"gate", "diagonal"}))} if e.gated else {}),
        })
    return json.dumps(docs, indent=2, ensure_ascii=False)


def to_csv(entries: Sequence[Entry]) -> str:
    rows = [row(e) for e in entries]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_markdown(entries: Sequence[Entry]) -> str:
    rows = [row(e) for e in entries]
    cols = COLUMNS
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(esc(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def render(entries: Sequence[Entry], fmt: str) -> str:
    """The table as text in `fmt` (json, csv or markdown)."""
    return {"json": to_json, "csv": to_csv, "markdown": to_markdown}[fmt](entries)


def write(entries: Sequence[Entry], out_dir: str | Path) -> dict[str, Path]:
    """Write catalog.json, catalog.csv and catalog.md into `out_dir`; returns the paths by format."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "catalog.json", "csv": out / "catalog.csv", "markdown": out / "catalog.md"}
    for fmt, path in paths.items():
        _write_atomic(path, render(entries, fmt))
    return paths


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary name, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


NOISY = 0.25  # a cost whose per-round ratios spread (interquartile range) more than this, relative, is noisy


def _cost(ratio: float, spread: tuple[float, float] | None) -> str:
    """'1.32× (1.28–1.37)': the median per-round ratio to ReLU with its quartiles; 'noisy' when they spread
    widely (a loaded machine): the number is then not a property of the activation."""
    if spread is None:
        return f"{ratio:.2f}×"
    lo, hi = spread
    text = f"{ratio:.2f}× ({lo:.2f}–{hi:.2f})"
    return text + " noisy" if (hi - lo) > NOISY * ratio else text
