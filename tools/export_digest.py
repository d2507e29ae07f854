"""Digest of the shipped studies' smoke-run exports, to check that a refactor changes no number.

    python tools/export_digest.py OUT_DIR > digest.txt     # before the change
    python tools/export_digest.py OUT_DIR2 > digest2.txt   # after; then: diff digest.txt digest2.txt

Runs every shipped study at the test suite's smoke budget (tests/conftest.py TINY, 2 seeds) through the
command line (`actlab run ... --no-report`, then `actlab export`), and prints one SHA-256 per exported
CSV table and artifact array. Columns that are clocks or machine facts (wall time, timestamps, provenance,
file paths) are left out; every number a study computes is in. Cells are identified by their label, so
the digest does not depend on how cell keys are hashed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import TINY  # noqa: E402  the smoke budgets, one definition

VOLATILE = {"started", "finished", "heartbeat", "wall_s", "created", "provenance", "data_provenance", "device", "runs",
            "path", "cell_key"}


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    keep = [i for i, c in enumerate(head) if c not in VOLATILE and c != "key"]
    out = [[r[i] for i in keep] for r in body]  # every table names its cell by label (`cell`), its key apart
    return [[head[i] for i in keep], *sorted(out)]


def digest(run_dir: Path, export_dir: Path) -> dict[str, str]:
    with open(export_dir / "cells.csv", newline="", encoding="utf-8") as f:
        labels = {r["cell_key"]: r["cell"] for r in csv.DictReader(f)}
    out = {}
    for table in sorted(export_dir.glob("*.csv")):
        if table.stem in ("study", "artifacts"):
            continue
        buf = io.StringIO()
        csv.writer(buf).writerows(_rows(table))
        out[table.stem] = hashlib.sha256(buf.getvalue().encode()).hexdigest()[:16]
    for npz in sorted((run_dir / "artifacts").glob("*/*.npz")):
        h = hashlib.sha256()
        with np.load(npz) as z:
            for k in sorted(z.files):
                h.update(k.encode() + z[k].tobytes())
        out[f"artifact {labels[npz.parent.name]} {npz.stem}"] = h.hexdigest()[:16]
    return out


def main(root: str) -> None:
    root_dir = Path(root)
    for name, sets in TINY.items():
        run_dir = root_dir / name
        args = [] if name == "gelu-approx" else ["seeds=2", *sets]
        cmd = ["actlab", "run", name, "--out", str(run_dir), "--no-report"]
        for s in args:
            cmd += ["--set", s]
        subprocess.run(cmd, check=True, capture_output=True)
        subprocess.run(["actlab", "export", str(run_dir)], check=True, capture_output=True)
        for what, h in digest(run_dir, run_dir / "export").items():
            print(f"{name}\t{what}\t{h}")


if __name__ == "__main__":
    main(sys.argv[1])
