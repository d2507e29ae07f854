"""The run store: one SQLite database per run directory, the single source of truth for reports (DESIGN §6).

Written by one process (the study runner); executors hand results back (`CellResult`, a typed record) and
never write it. WAL mode and a busy timeout let readers (a report, the explorer) read while it is written;
readers open it read-only (`Store(run_dir, read_only=True)`). A cell's results are written
in one transaction that also marks the cell done, so a killed run leaves every cell either complete or
not done at all. Arrays too large for rows (decision surfaces, hidden snapshots) are .npz artifact files,
written to a temporary name and renamed before the transaction that refers to them commits.

Tables:
  study(id=1, name, config, provenance, created)
  cells(key, idx, label, grid_values, config, status, started, finished, heartbeat, error, wall_s, device,
        runs, data_provenance)
  history(cell, seed, epochs, batch_loss, batch_acc, train_loss, train_acc, test_loss, test_acc, grad_mean)
                                      -- one row per replica: each metric's epochs one BLOB of little-endian
                                         float64 (NaN: not recorded), NULL for a metric the cell did not
                                         record; WITHOUT ROWID. Stores made before it hold a row per epoch
                                         in metrics(cell, seed, epoch, <the same seven REAL columns>),
                                         still read (`Store.history`) and, on resume, kept for old cells
  replicas(cell, seed, diverged_epoch, best_test_acc, final_test_acc, final_test_loss, final_train_loss)
  probes(cell, seed, epoch, layer_idx, layer, stat, value)
  artifacts(cell, name, path)
  sim_rows(cell, idx, row)            -- simulations: one JSON row each
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from actlab.errors import ActlabError
from actlab.jsonsafe import number

try:  # POSIX advisory locks; where there are none (Windows) a run directory is not locked
    import fcntl
except ImportError:  # pragma: no cover - not on this platform
    fcntl = None  # type: ignore[assignment]

DB_NAME = "actlab.sqlite"
METRIC_COLUMNS = ("batch_loss", "batch_acc", "train_loss", "train_acc", "test_loss", "test_acc", "grad_mean")
LOCK_NAME = "actlab.lock"  # held by the one process that writes the run directory
SCHEMA = """
CREATE TABLE IF NOT EXISTS study (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT, config TEXT, provenance TEXT,
                                  created REAL);
CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, idx INTEGER, label TEXT, grid_values TEXT, config TEXT,
                                  status TEXT NOT NULL DEFAULT 'pending', started REAL, finished REAL,
                                  heartbeat REAL, error TEXT, wall_s REAL, device TEXT, runs INTEGER DEFAULT 0,
                                  data_provenance TEXT, engine_note TEXT);
CREATE TABLE IF NOT EXISTS history (cell TEXT, seed INTEGER, epochs INTEGER, batch_loss BLOB, batch_acc BLOB,
                                    train_loss BLOB, train_acc BLOB, test_loss BLOB, test_acc BLOB, grad_mean BLOB,
                                    PRIMARY KEY (cell, seed)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replicas (cell TEXT, seed INTEGER, diverged_epoch INTEGER, best_test_acc REAL,
                                     final_test_acc REAL, final_test_loss REAL, final_train_loss REAL,
                                     PRIMARY KEY (cell, seed));
CREATE TABLE IF NOT EXISTS probes (cell TEXT, seed INTEGER, epoch INTEGER, layer_idx INTEGER, layer TEXT,
                                   stat TEXT, value REAL);
CREATE INDEX IF NOT EXISTS probes_cell ON probes (cell, stat);
CREATE TABLE IF NOT EXISTS artifacts (cell TEXT, name TEXT, path TEXT, PRIMARY KEY (cell, name));
CREATE TABLE IF NOT EXISTS sim_rows (cell TEXT, idx INTEGER, row TEXT, PRIMARY KEY (cell, idx));
"""


@contextmanager
def writer_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run directory's exclusive writer lock for the block: an OS file lock (flock) on
    RUN_DIR/actlab.lock, released by the OS when the process ends however it ends (SIGKILL included), so a
    stale lock cannot outlive its holder. A second writer gets one ActlabError naming the holder's PID."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise ActlabError(f"{folder} is being written by another actlab process (PID {holder}); wait for it "
                                  "to finish, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _sql(v: Any) -> float | None:
    """A float for SQLite: NaN as NULL (SQLite has no NaN), ±inf kept."""
    return number(v, keep_inf=True)


def _sql_column(a: np.ndarray) -> list:
    """`_sql` over an array at once: nested lists of Python floats, NaN as None, ±inf kept."""
    a = np.asarray(a, dtype=np.float64)
    nan = np.isnan(a)
    if not nan.any():
        return a.tolist()
    out = a.astype(object)
    out[nan] = None
    return out.tolist()


class TrainingRecord(Protocol):
    """What the store reads of a trained population (`actlab.training.loop.History` is one): per replica (rows)
    and epoch (columns) float arrays, NaN where not recorded, and the probe records; the store needs nothing
    else from training, and imports nothing from it."""

    seeds: list[int]
    batch_loss: np.ndarray
    batch_acc: np.ndarray
    train_loss: np.ndarray | None
    train_acc: np.ndarray | None
    test_loss: np.ndarray
    test_acc: np.ndarray
    grad_mean: np.ndarray | None
    diverged_epoch: np.ndarray  # (M,) first epoch with a non-finite loss, 0 = never
    probes: list[Any]  # each with epoch and groups(): [(stats, layer names)] (actlab.training.probes.ProbeRecord)

    @property
    def best_test_acc(self) -> np.ndarray: ...

    @property
    def final_test_acc(self) -> np.ndarray: ...


@dataclass
class CellResult:
    """What one cell produced, handed by an executor to the single writer."""

    wall_s: float  # the cell's share of its population's wall time
    device: str
    history: TrainingRecord | None = None  # a training cell: per-replica, per-epoch metrics and probe records
    rows: list[dict[str, Any]] = field(default_factory=list)  # a simulation cell: one JSON row per quantity
    artifacts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # name -> arrays (an .npz file)
    population: int = 1  # how many cells trained together in this cell's population
    data_provenance: dict[str, Any] | None = None  # the dataset's generator and parameters, or file and MD5
    engine_note: str | None = None  # trained on torch under engine "auto": why the fused kernel did not


def not_a_store(e: sqlite3.Error) -> bool:
    """Whether SQLite says the file is not a database (or a damaged one), rather than that the file system
    refused a read or a write (a full disk, a size limit: the store may be healthy)."""
    return getattr(e, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or \
        "not a database" in str(e) or "malformed" in str(e)


def _json(text: Any, what: str, kind: type) -> Any:
    """A JSON value the store holds, or one ActlabError saying what is unreadable (a damaged or foreign store)."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise ActlabError(f"{what} is not JSON: the store is damaged or not actlab's") from None
    if not isinstance(value, kind):
        raise ActlabError(f"{what} is not a JSON {kind.__name__}: the store is damaged or not actlab's")
    return value


class Store:
    """One run directory's database: `Store(run_dir)` for the writer, `read_only=True` for every reader."""

    def __init__(self, run_dir: str | Path, read_only: bool = False):
        self.dir = Path(run_dir)
        self.path = self.dir / DB_NAME
        self.read_only = read_only
        if read_only:
            self.db = self._open_read_only()
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30.0)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as e:
            self.db.close()
            if not_a_store(e):  # a corrupt or foreign file in the run directory
                raise ActlabError(f"{self.path} is not a readable actlab store ({e}); move it away or choose another "
                                  "--out") from None
            raise OSError(f"{self.path}: the file system refused to write beside the store ({e}; a full disk or "
                          "a file-size limit?); the store itself is unchanged") from None
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.executescript(SCHEMA)
        self.tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(cells)")}
        for col in ("data_provenance", "engine_note"):
            if col not in columns:  # a store written before the column existed
                self.db.execute(f"ALTER TABLE cells ADD COLUMN {col} TEXT")
        self.db.commit()

    def _open_read_only(self) -> sqlite3.Connection:
        """A read-only connection. Where SQLite cannot set up WAL sharing (a read-only folder without the
        -wal/-shm files, so no writer is running there), the file is read as immutable."""
        if not self.path.exists():
            raise ActlabError(f"{self.dir} is not a run directory (no {DB_NAME}); run a study into it first")
        if not self.path.is_file():
            raise ActlabError(f"{self.path} is not a readable actlab store (not a file)")
        uri = self.path.resolve().as_uri()
        # Without a -wal file no writer is at work (SQLite removes it when the last writer closes): a finished
        # store is read as immutable, which writes nothing beside it (a read-only listing of many runs leaves no
        # -wal/-shm). A store whose writer is at work (a -wal), or that holds no study yet (its writer has not
        # made its tables: the reader must see them when it does), is read normally.
        wal = self.path.with_name(self.path.name + "-wal")
        modes = ("?mode=ro", "?mode=ro&immutable=1") if wal.exists() else ("?mode=ro&immutable=1", "?mode=ro")
        error: Exception | None = None
        for mode in modes:
            try:
                db = sqlite3.connect(uri + mode, uri=True, timeout=30.0)
            except sqlite3.Error as e:
                error = e
                continue
            try:
                db.execute("PRAGMA busy_timeout=30000")
                self.tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if "immutable" in mode and "study" not in self.tables and not wal.exists():
                    db.close()  # a store still being created: read it normally, so its tables appear
                    continue
                return db
            except sqlite3.DatabaseError as e:  # locked WAL sharing (retry immutable), or not a database at all
                db.close()
                error = e
        if isinstance(error, sqlite3.Error) and not not_a_store(error):
            raise OSError(f"{self.path}: the file system refused to read the store ({error})")
        raise ActlabError(f"{self.path} is not a readable actlab store ({error})")

    def close(self) -> None:
        self.db.close()

    @property
    def legacy(self) -> bool:
        """A store written before histories became BLOBs: its cells' epochs are rows of a `metrics` table."""
        return "metrics" in self.tables

    def history(self, key: str, names: tuple[str, ...] = METRIC_COLUMNS
                ) -> tuple[list[int], dict[str, np.ndarray | None]]:
        """One cell's per-epoch metrics: (seeds, {name: (seeds, epochs) float64, NaN where not recorded; None
        for a metric the cell did not record}), from the history BLOBs or, in a legacy store, the rows."""
        cols = ", ".join(names)
        if "history" not in self.tables:  # a reader that opened before the writer made its tables: look again
            self.tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = self.db.execute(f"SELECT seed, epochs, {cols} FROM history WHERE cell = ? ORDER BY seed",
                               (key,)).fetchall() if "history" in self.tables else []
        if rows:
            e = max(r[1] for r in rows)
            out: dict[str, np.ndarray | None] = {}
            for j, name in enumerate(names):
                if all(r[2 + j] is None for r in rows):
                    out[name] = None
                    continue
                a = np.full((len(rows), e), np.nan)
                for i, r in enumerate(rows):
                    if r[2 + j] is not None:
                        v = np.frombuffer(r[2 + j], dtype="<f8")
                        a[i, : len(v)] = v
                out[name] = a
            return [int(r[0]) for r in rows], out
        if not self.legacy:
            return [], dict.fromkeys(names)
        return self._legacy_history(key, names)

    def _legacy_history(self, key: str, names: tuple[str, ...]) -> tuple[list[int], dict[str, np.ndarray | None]]:
        """The rows of a legacy `metrics` table, streamed into structured arrays. A NULL there is NaN or not
        recorded alike (the old writer stored NaN as NULL), so a metric with rows is always an array, NaN
        where NULL, as the old reader gave it; None only for a cell without rows."""
        out: dict[str, np.ndarray | None] = {}
        seeds: list[int] = []
        for name in names:
            cur = self.db.execute(f"SELECT seed, epoch, IFNULL({name}, 0.0), {name} IS NULL FROM metrics "
                                  "WHERE cell = ? ORDER BY seed, epoch", (key,))
            rows = np.fromiter(cur, dtype=[("seed", "i8"), ("epoch", "i8"), ("value", "f8"), ("null", "?")])
            if not len(rows):
                out[name] = None
                continue
            u = np.unique(rows["seed"])
            a = np.full((len(u), int(rows["epoch"].max())), np.nan)
            a[np.searchsorted(u, rows["seed"]), rows["epoch"] - 1] = np.where(rows["null"], np.nan, rows["value"])
            out[name], seeds = a, u.tolist()
        return seeds, out

    def metric_rows(self, key: str) -> Iterator[tuple]:
        """One cell's metrics as rows (cell, seed, epoch, then METRIC_COLUMNS; None where not recorded): the
        long table `actlab export` writes as metrics.csv / metrics.parquet."""
        seeds, hist = self.history(key)
        e = max((a.shape[1] for a in hist.values() if a is not None), default=0)
        for i, seed in enumerate(seeds):
            values = [[None] * e if a is None else _sql_column(a[i]) for a in hist.values()]
            for ep in range(e):
                yield (key, seed, ep + 1, *(v[ep] for v in values))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.db:  # commits on success, rolls back on an exception
            yield self.db

    # ------------------------------------------------------------------------------ study and cells

    def study(self) -> dict[str, Any] | None:
        """The study the store holds; None while it holds none (a store still being created)."""
        if self.read_only and "study" not in self.tables:
            return None
        row = self.db.execute("SELECT name, config, provenance, created FROM study WHERE id = 1").fetchone()
        if row is None:
            return None
        held = {"name": row[0], "created": row[3]}
        for part, text in (("config", row[1]), ("provenance", row[2])):
            held[part] = _json(text, f"{self.path}: the study's {part}", dict)
        if not isinstance(row[0], str) or not isinstance(row[3], (int, float)):
            raise ActlabError(f"{self.path} is not a readable actlab store (the study's name or creation time is "
                              "of the wrong type)")
        return held

    def save_study(self, name: str, config: dict[str, Any], provenance: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO study VALUES (1, ?, ?, ?, ?)",
                       (name, json.dumps(config), json.dumps(provenance), time.time()))

    def update_config(self, config: dict[str, Any]) -> None:
        """Replace the stored configuration (its prose changed: a note, a published number), keeping the study's
        name, provenance and creation time."""
        with self.transaction() as db:
            db.execute("UPDATE study SET config = ? WHERE id = 1", (json.dumps(config),))

    def add_cells(self, cells: list[Any]) -> None:
        """Register cells (key, index, label, grid values, config) as pending unless already known."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO cells (key, idx, label, grid_values, config) VALUES (?, ?, ?, ?, ?)",
                [(c.key, c.index, c.label, json.dumps(c.values), c.config.model_dump_json()) for c in cells])

    def status(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, status FROM cells"))

    def cells(self) -> list[dict[str, Any]]:
        if self.read_only and "cells" not in self.tables:
            return []
        have = {r[1] for r in self.db.execute("PRAGMA table_info(cells)")}  # a reader may see an older store
        extra = "".join(f", {c}" if c in have else f", NULL AS {c}" for c in ("data_provenance", "engine_note"))
        cur = self.db.execute("SELECT key, idx, label, grid_values, config, status, started, finished, error, wall_s,"
                              f" device, runs{extra} FROM cells ORDER BY idx")
        cols = [d[0] for d in cur.description]
        out = []
        for row in cur:
            d = dict(zip(cols, row, strict=True))
            where = f"{self.path}: cell {d['key']!r}"
            d["grid_values"] = _json(d["grid_values"], f"{where}, its grid values", dict)
            d["config"] = _json(d["config"], f"{where}, its configuration", dict)
            d["data_provenance"] = (_json(d["data_provenance"], f"{where}, its data provenance", dict)
                                    if d["data_provenance"] else None)
            out.append(d)
        return out

    def mark_running(self, key: str) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute("UPDATE cells SET status = 'running', started = ?, heartbeat = ?, error = NULL, runs = runs + 1"
                       " WHERE key = ?", (now, now, key))

    def mark_failed(self, key: str, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE cells SET status = 'failed', error = ?, finished = ? WHERE key = ?",
                       (error, time.time(), key))

    def reset_running(self) -> None:
        """Cells left 'running' (an interrupted run) back to 'pending': they run again on resume."""
        with self.transaction() as db:
            db.execute("UPDATE cells SET status = 'pending' WHERE status = 'running'")

    # ------------------------------------------------------------------------------------ results

    def write_artifact(self, key: str, name: str, arrays: dict[str, np.ndarray]) -> Path:
        """An .npz file under artifacts/KEY/, written to a temporary name and renamed into place."""
        folder = self.dir / "artifacts" / key
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.npz"
        tmp = folder / f".{name}.tmp.npz"
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, path)
        except OSError as e:  # named: a bare "[Errno 27] File too large" says nothing about where
            raise OSError(e.errno, f"{e.strerror or e} while writing {path}") from None
        finally:
            tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves no temporary file behind
        return path

    def write_results(self, items: list[tuple[str, CellResult]]) -> None:
        """Several cells (one population) in one transaction: a killed run keeps all of them or none, so a
        resumed population is the same population and its numbers are exactly an uninterrupted run's."""
        arts = {key: {name: self.write_artifact(key, name, arrays) for name, arrays in res.artifacts.items()}
                for key, res in items}
        with self.transaction() as db:
            for key, result in items:
                self._write_one(db, key, result, arts[key])

    def _write_one(self, db: sqlite3.Connection, key: str, result: CellResult, arts: dict[str, Path]) -> None:
        """One cell's rows, inside the caller's transaction; marks it done."""
        for table in ("history", "replicas", "probes", "artifacts", "sim_rows", *(("metrics",) if self.legacy else ())):
            db.execute(f"DELETE FROM {table} WHERE cell = ?", (key,))  # a re-run replaces a partial past
        if result.history is not None:
            self._write_history(db, key, result.history)
        for i, row in enumerate(result.rows):
            db.execute("INSERT INTO sim_rows VALUES (?, ?, ?)", (key, i, json.dumps(row)))
        db.executemany("INSERT INTO artifacts VALUES (?, ?, ?)",
                       [(key, n, str(p.relative_to(self.dir))) for n, p in arts.items()])
        prov = None if result.data_provenance is None else json.dumps(result.data_provenance, default=str)
        db.execute("UPDATE cells SET status = 'done', finished = ?, wall_s = ?, device = ?, error = NULL,"
                   " data_provenance = ?, engine_note = ? WHERE key = ?",
                   (time.time(), result.wall_s, result.device, prov, result.engine_note, key))

    @staticmethod
    def _write_history(db: sqlite3.Connection, key: str, h: TrainingRecord) -> None:
        m, e = h.test_loss.shape
        cols = [h.batch_loss, h.batch_acc, h.train_loss, h.train_acc, h.test_loss, h.test_acc, h.grad_mean]
        # one row per replica, each metric's epochs one BLOB of little-endian float64 (NaN: not recorded), NULL
        # for a metric not recorded at all: a row per epoch cost SQLite a B-tree insert per value (a fifth of a
        # 4,000-replica moons run on the fused kernel, 770 MB of store at 10,000 replicas)
        rows = ((key, seed, e,
                 *(None if c is None else np.ascontiguousarray(c[r], dtype="<f8").tobytes() for c in cols))
                for r, seed in enumerate(h.seeds))
        db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        best, final = h.best_test_acc, h.final_test_acc
        final_loss = h.test_loss[:, -1] if e else np.full(m, np.nan)
        final_train = h.train_loss[:, -1] if (h.train_loss is not None and e) else np.full(m, np.nan)
        db.executemany("INSERT INTO replicas VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(key, seed, int(h.diverged_epoch[r]), _sql(best[r]), _sql(final[r]), _sql(final_loss[r]),
                         _sql(final_train[r])) for r, seed in enumerate(h.seeds)])
        prow = ((key, seed, rec.epoch, li, layer, stat, v)
                for rec in h.probes
                for stats, layers in rec.groups()
                for stat, arr in stats.items()
                for r, seed in enumerate(h.seeds)
                for li, (layer, v) in enumerate(zip(layers, _sql_column(arr[r]), strict=True)))
        db.executemany("INSERT INTO probes VALUES (?, ?, ?, ?, ?, ?, ?)", prow)

    # ------------------------------------------------------------------------------------ reading

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()

    def cursor(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        """The rows of a query as a stream (for reading millions of rows without a list of tuples)."""
        return self.db.execute(sql, params)

    def artifact(self, key: str, name: str) -> dict[str, np.ndarray] | None:
        row = self.db.execute("SELECT path FROM artifacts WHERE cell = ? AND name = ?", (key, name)).fetchone()
        if row is None:
            return None
        path = self.dir / row[0]
        if not path.resolve().is_relative_to(self.dir.resolve()):
            raise ActlabError(f"artifact {name!r} of cell {key} points outside its run directory ({row[0]})")
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # moved, deleted or damaged
            raise ActlabError(f"artifact {name!r} of cell {key} is missing or unreadable ({path}: "
                              f"{getattr(e, 'strerror', None) or e})") from None
