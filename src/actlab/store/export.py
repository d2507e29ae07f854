"""Export a run's store as flat files: one CSV and one Parquet file per table (cells, metrics, replicas,
probes, sim_rows, study; metrics is the long table of every replica's every epoch, expanded from the
store's per-replica history), and the tidy table (`tidy.csv`, `tidy.parquet`: one row per replica, every grid
value in a column of its own, ready for pandas, polars or R)."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from actlab.store.results import Run
from actlab.store.writer import METRIC_COLUMNS, Store

TABLES = ("study", "cells", "metrics", "replicas", "probes", "sim_rows", "artifacts")
METRICS_HEAD = ("cell", "seed", "epoch", *METRIC_COLUMNS)


def export_run(run_dir: str | Path, to: str | Path | None = None) -> list[Path]:
    """Write TABLE.csv and TABLE.parquet for every table into `to` (default RUN_DIR/export); returns the paths."""
    run_dir = Path(run_dir)
    store = Store(run_dir, read_only=True)
    out = Path(to) if to is not None else run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for table in TABLES:
            if table == "metrics":  # the per-replica history BLOBs as a long table: one row per replica and epoch
                cols = list(METRICS_HEAD)
                rows = [r for (key,) in store.db.execute("SELECT key FROM cells ORDER BY idx")
                        for r in store.metric_rows(key)]
            else:
                cur = store.db.execute(f"SELECT * FROM {table}")
                cols = [d[0] for d in cur.description]
                rows = cur.fetchall()
            with open(out / f"{table}.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(cols)
                w.writerows(rows)
            pq.write_table(pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)}), out / f"{table}.parquet")
            written += [out / f"{table}.csv", out / f"{table}.parquet"]
    finally:
        store.close()
    with Run.open(run_dir) as run:
        rows = run.tidy()
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "tidy.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    pq.write_table(pa.table({c: [r.get(c) for r in rows] for c in cols}), out / "tidy.parquet")
    return [*written, out / "tidy.csv", out / "tidy.parquet"]
