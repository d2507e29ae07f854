"""Export a run's store as flat files that merge: one CSV and one Parquet file per table (study, cells, metrics,
replicas, probes, sim_rows, artifacts) and the tidy table (tidy.csv, tidy.parquet: one row per replica), ready for
pandas, polars or R.

Every table names a cell the same way, by `cell` (its label), `cell_index` and `cell_key` (the store's hash), and
carries the cell's grid values as columns (a table value's fields as KEY.FIELD), so any two of them merge on `cell`
or on `cell_key`. `metrics` is the long tidy table, one row per replica and epoch. Missing is missing: NaN and
"not recorded" are empty cells (null in Parquet), `diverged_epoch` is empty for a replica that never diverged, and
times (`created`, `started`, `finished`, `heartbeat`) are ISO 8601 timestamps in UTC (timestamps in Parquet)."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from actlab.store.results import Run
from actlab.store.writer import Store

TABLES = ("study", "cells", "metrics", "replicas", "probes", "sim_rows", "artifacts")
TIMES = ("created", "started", "finished", "heartbeat")  # Unix seconds in the store
JSON_COLUMNS = ("config", "provenance", "grid_values", "data_provenance", "row")  # kept whole, as JSON text


def _when(v: Any) -> datetime | None:
    return None if v is None else datetime.fromtimestamp(float(v), UTC)


def _missing(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _rows(store: Store, run: Run, table: str) -> list[dict[str, Any]]:
    """The table's rows as dicts, each cell named by `cell_head` and its times as datetimes."""
    heads = {c.key: run.cell_head(c) for c in run.cells} if run.store.study() is not None else {}
    if table == "metrics":
        return run.tidy_epochs()
    cur = store.db.execute(f"SELECT * FROM {table}")
    cols = [d[0] for d in cur.description]
    out = []
    for values in cur.fetchall():
        row = dict(zip(cols, values, strict=True))
        for t in TIMES:
            if t in row:
                row[t] = _when(row[t])
        if table == "cells":  # its key and label are the head's cell_key and cell; the grid is in columns
            head = heads.get(row.pop("key"), {})
            row.pop("label", None), row.pop("idx", None)
            row = {**head, **row}
        elif "cell" in row:
            row = {**heads.get(row.pop("cell"), {}), **row}
        if table == "replicas" and not row.get("diverged_epoch"):
            row["diverged_epoch"] = None  # never diverged: missing, not epoch 0
        out.append({k: _missing(v) for k, v in row.items()})
    return out


def _write(rows: list[dict[str, Any]], path: Path) -> list[Path]:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path.with_suffix(".csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows({k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()} for r in rows)
    arrays = {}
    for c in cols:
        vals = [r.get(c) for r in rows]
        kinds = {type(v) for v in vals if v is not None}
        if len(kinds) > 1 and not kinds <= {int, float}:  # a column of mixed types (grid values): as text
            vals = [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in vals]
        arrays[c] = vals
    pq.write_table(pa.table(arrays), path.with_suffix(".parquet"))
    return [path.with_suffix(".csv"), path.with_suffix(".parquet")]


def export_run(run_dir: str | Path, to: str | Path | None = None) -> list[Path]:
    """Write TABLE.csv and TABLE.parquet for every table, and tidy.csv / tidy.parquet, into `to` (default
    RUN_DIR/export); returns the paths."""
    run_dir = Path(run_dir)
    out = Path(to) if to is not None else run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with Run.open(run_dir) as run:
        for table in TABLES:
            written += _write(_rows(run.store, run, table), out / table)
        written += _write([{k: _missing(v) for k, v in r.items()} for r in run.tidy()], out / "tidy")
    return written
