"""Studies: files and the grid, the store and resume (with a real SIGKILL), shipped studies, protocols."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from actlab.errors import ActlabError
from actlab.store.writer import METRIC_COLUMNS, Store
from actlab.studies import library
from actlab.studies.config import apply_sets, expand, load_study, parse_value
from actlab.studies.runner import plan_run, run_study
from conftest import TINY


def actlab(*args: str, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "actlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


# ------------------------------------------------------------------------------------- files and grid


def test_every_shipped_study_validates():
    cells = {name: len(expand(load_study(name))) for name in library.names()}
    assert cells["moons"] == 2 and cells["blobs-depth"] == 8 and cells["cnn-depth"] == 10
    assert cells["activation-zoo"] == 100 and cells["gradient-flow"] == 1 and cells["tour"] == 0
    assert set(load_study("tour").include) <= set(library.names())


def test_grid_expansion_labels_and_paired_keys():
    study = load_study("blobs-depth")
    cells = expand(study)
    assert cells[0].label == "widths=16, activation=sigmoid, output_activation=sigmoid"
    assert cells[7].config.model.widths == [16, 32, 16, 8] and cells[7].config.model.activation == "relu"
    assert cells[7].config.model.init == "blobs"  # the base is kept where the grid is silent
    assert len({c.key for c in cells}) == 8


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("0.5", 0.5), ("true", True), ('"relu"', "relu"), ("relu", "relu"), ("[relu,gelu]", ["relu", "gelu"]),
    ("[1, 2]", [1, 2]), ("[[16], [16, 32]]", [[16], [16, 32]]), ("{activation = \"relu\"}", {"activation": "relu"}),
])
def test_set_values(text, value):
    assert parse_value(text) == value


def test_overrides_reach_the_config():
    study = load_study("moons", ["train.epochs=3", "seeds=2", "grid.activation=[relu,gelu]",
                                 "data.options.noise=0.3"])
    assert study.train.epochs == 3 and study.seed_list() == [0, 1] and study.data.options == {"noise": 0.3}
    cells = expand(study)  # the override replaces moons' model tables, which also set the activation
    assert [c.config.model.activation for c in cells] == ["relu", "gelu"]
    assert [c.config.model.init for c in cells] == ["default"] * 2
    doc = apply_sets({"grid": {"x": [1]}}, ["grid.depth=4"])
    assert doc["grid"] == {"x": [1], "depth": [4]}


BAD_STUDY = textwrap.dedent('''
    name = "bad"
    seeds = 0
    colour = "blue"

    [model]
    depth = -1
    activation = "relu"

    [train]
    optimizer = "rmsprop"
''')


def test_bad_study_file_reports_every_error_at_once(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(BAD_STUDY)
    r = actlab("run", str(f), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    text = " ".join(r.stderr.split())
    assert "study 'bad' has 4 errors" in text
    assert "seeds: Input should be greater than or equal to 1 (given 0)" in text
    assert "colour: unknown key (given 'blue')" in text
    assert "model.depth: Input should be greater than or equal to 0 (given -1)" in text
    assert "train.optimizer: Input should be 'sgd', 'adam' or 'adamw' (given 'rmsprop')" in text


@pytest.mark.parametrize(("args", "message"), [
    (["run", "moons", "--set", "grid.activation=[relu,rleu]"], "model.activation: activation 'rleu' is unknown"),
    (["run", "moons", "--set", "grid.colour=[1]"], "grid key 'colour' is not a field of data, model or train"),
    (["run", "moons", "--set", "train.lr=-1"], "train.lr: Input should be greater than 0 (given -1)"),
    (["run", "moons", "--set", "epochs"], "--set 'epochs' must look like path=value"),
    (["run", "moonz"], "study 'moonz' is neither a file nor a shipped study; did you mean moons?"),
    (["run", "moons", "--set", "grid.dataset=[moons,mooons]"], "data.name: dataset 'mooons' is unknown"),
    (["run", "moons", "--executor", "spark", "--set", "train.epochs=1"], "--executor 'spark' is unknown"),
])
def test_bad_overrides_and_names(tmp_path, args, message):
    r = actlab(*args, "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in " ".join(r.stderr.split()) and "Traceback" not in r.stderr


def test_invalid_toml(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text("name = 'x'\n[train\n")
    r = actlab("run", str(f))
    assert r.returncode == 2 and f"study file {f} is not valid TOML" in " ".join(r.stderr.split())


# ------------------------------------------------------------------------------ store and resume

RESUME_STUDY = textwrap.dedent('''
    name = "resume"
    seeds = 3
    [data]
    name = "moons"
    [model]
    widths = [8, 8]
    [train]
    epochs = 150
    batch_size = 32
    lr = 0.05
    probe_epochs = [150]
    [grid]
    lr = [0.02, 0.05, 0.1, 0.2]
    activation = ["relu", "tanh"]
''')


def _done(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM cells WHERE status = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _metrics(run_dir: Path) -> list[tuple]:
    """(cell label, seed, epoch, test_loss, test_acc, batch_loss) of every replica and epoch, cells in order."""
    store = Store(run_dir, read_only=True)
    try:
        return [(c["label"], *r[1:3], r[7], r[8], r[3]) for c in store.cells() for r in store.metric_rows(c["key"])]
    finally:
        store.close()


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    f = tmp_path / "resume.toml"
    f.write_text(RESUME_STUDY)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "actlab", "run", str(f), "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _done(killed / "actlab.sqlite") < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(killed / "actlab.sqlite") as con:
        before = dict(con.execute("SELECT key, finished FROM cells WHERE status = 'done'").fetchall())
        left = con.execute("SELECT COUNT(*) FROM cells WHERE status != 'done'").fetchone()[0]
    assert len(before) >= 2 and left >= 1, "the kill must land mid-way"
    r = actlab("run", str(killed), "--no-report")  # resume from the run directory alone (the report: test_report)
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(killed / "actlab.sqlite") as con:
        after = dict(con.execute("SELECT key, finished FROM cells WHERE status = 'done'").fetchall())
        runs = dict(con.execute("SELECT key, runs FROM cells").fetchall())
    assert len(after) == 8
    assert all(after[k] == t and runs[k] == 1 for k, t in before.items())  # finished cells not recomputed
    whole = tmp_path / "whole"
    assert actlab("run", str(f), "--out", str(whole), "--no-report").returncode == 0
    assert _metrics(killed) == _metrics(whole)  # the same numbers, bitwise


def test_a_run_directory_refuses_a_different_study(tmp_path):
    run_study(load_study("gelu-approx"), tmp_path / "r")
    with pytest.raises(ActlabError, match="holds a different configuration"):
        run_study(load_study("gelu-approx", ["simulation.params.hi=5.0"]), tmp_path / "r")


def test_run_summary_is_returned_and_readers_cannot_write(tmp_path):
    summary = run_study(load_study("moons", ["train.epochs=2", "seeds=2"]), tmp_path / "m")
    assert [r["cell"].split(",")[0] for r in summary.rows] == ["activation=sigmoid", "activation=relu"]
    assert all(r["status"] == "done" and r["replicas"] == 2 and r["final_test_acc"].n == 2 for r in summary.rows)
    assert summary.sims == []
    reader = Store(tmp_path / "m", read_only=True)
    try:
        assert len(reader.cells()) == 2
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.db.execute("DELETE FROM cells")
    finally:
        reader.close()
    with pytest.raises(ActlabError, match="is not a run directory"):
        Store(tmp_path / "nothing", read_only=True)
    (tmp_path / "new").mkdir()
    sqlite3.connect(tmp_path / "new" / "actlab.sqlite").close()  # a store whose writer has not made its tables yet
    early = Store(tmp_path / "new", read_only=True)
    assert early.study() is None and early.cells() == []
    Store(tmp_path / "new").close()  # the writer makes its tables after the reader opened: the reader sees them
    assert early.history("nope") == ([], dict.fromkeys(METRIC_COLUMNS)) and "history" in early.tables
    early.close()
    sim = run_study(load_study("gelu-approx"), tmp_path / "g")
    assert sim.sims and sim.rows[0]["sim_rows"] == 2


def test_plan_run_names_a_study_or_resumes_a_run_directory(tmp_path):
    study, target = plan_run("moons", None, ["seeds=2"])
    assert study.name == "moons" and target == Path("runs/moons")
    run_study(load_study("gelu-approx"), tmp_path / "g")
    again, where = plan_run(str(tmp_path / "g"))
    assert again.name == "gelu-approx" and where == tmp_path / "g"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ActlabError, match="not a run directory"):
        plan_run(str(tmp_path / "empty"))


def test_studies_show_prints_every_field_with_its_description():
    r = actlab("studies", "show", "moons", "--set", "train.epochs=3")
    assert r.returncode == 0, r.stderr
    assert "moons: resolved configuration (2 cells × 10 seeds)" in r.stdout
    assert "train.epochs" in r.stdout and "passes over the training set" in r.stdout
    assert "model.widths" in r.stdout and "[8, 8]" in r.stdout
    r = actlab("studies", "show", "gradient-flow")
    assert r.returncode == 0 and "simulation.params" in r.stdout and "train.epochs" not in r.stdout
    lead = actlab("studies", "show", "gan-modes")  # the grid first, then what differs from the defaults, claims
    every = actlab("studies", "show", "gan-modes", "--all")
    assert lead.returncode == every.returncode == 0
    text = lead.stdout
    assert text.index("What varies") < text.index("Set apart from the defaults") < text.index("Claim (GAN")
    assert "train.batch_size" in text and "train.momentum" not in text  # a default is not repeated
    assert "train.momentum" in every.stdout and len(text.splitlines()) < len(every.stdout.splitlines()) / 2
    suite = actlab("studies", "show", "guide")
    assert "Members: moons, activation-zoo" in suite.stdout and "gan-modes: seeds=8; train.epochs=60" in suite.stdout
    r = actlab("studies", "show", "moonz")
    assert r.returncode == 2 and "did you mean moons" in r.stderr


def test_every_shipped_study_documents_itself():
    """`documented` (what `studies show` prints) for every shipped study: slots left at their usual choice (a GAN's
    discriminator, an LSTM's gates) are shown as that choice."""
    from actlab.studies import library
    from actlab.studies.config import documented

    for name in library.names():
        rows = dict((path, value) for path, value, _ in documented(load_study(name)))
        if load_study(name).model.kind == "gan":
            assert rows["model.discriminator_activation"] == "leaky_relu"


def test_store_records_provenance_and_artifacts(tmp_path):
    run_study(load_study("moons", ["train.epochs=5", "seeds=2"]), tmp_path / "m")
    store = Store(tmp_path / "m")
    try:
        prov = store.study()["provenance"]
        assert prov["actlab"] and prov["torch"].startswith("2.") and "platform" in prov
        assert prov["code_dirty"] in (True, False, None) and "code_revision" in prov
        cells = store.cells()
        data = cells[0]["data_provenance"]
        assert data["generator"] == "sklearn.datasets.make_moons" and data["n"] == 400 and data["noise"] == 0.18
        assert [c["status"] for c in cells] == ["done", "done"] and all(c["wall_s"] > 0 for c in cells)
        surf = store.artifact(cells[0]["key"], "decision_surface")
        assert surf["p"].shape[0] == 2 and surf["gx"][1] - surf["gx"][0] == pytest.approx(0.025)
        trace = store.artifact(cells[1]["key"], "signal_trace")
        assert set(trace) >= {"points", "z1", "a1", "z2", "a2", "z_out"} and trace["z1"].shape == (2, 2)
        probes = store.query("SELECT COUNT(*) FROM probes WHERE cell = ? AND stat = 'dead_fraction'", (cells[1]["key"],
                                                                                                       ))
        assert probes[0][0] == 2 * 2 * 3  # seeds × probe epochs (0 and 5) × layers (2 hidden + output)
    finally:
        store.close()


def test_export_writes_csv_and_parquet(tmp_path):
    run_study(load_study("moons", ["train.epochs=3", "seeds=2"]), tmp_path / "m")
    r = actlab("export", str(tmp_path / "m"), "-o", str(tmp_path / "x"))
    assert r.returncode == 0, r.stderr
    table = pq.read_table(tmp_path / "x" / "metrics.parquet")
    assert table.num_rows == 2 * 2 * 3 and "test_acc" in table.column_names
    assert (tmp_path / "x" / "metrics.csv").read_text().count("\n") == 13
    assert actlab("export", str(tmp_path)).returncode == 2
    # the tidy table: one row per replica, every grid value in its own column, the final metrics beside
    tidy = pq.read_table(tmp_path / "x" / "tidy.parquet").to_pylist()
    replicas = pq.read_table(tmp_path / "x" / "replicas.parquet").to_pylist()
    assert len(tidy) == len(replicas) == 2 * 2
    assert {"cell", "seed", "model.activation", "model.init", "final_test_acc", "diverged_epoch"} <= set(tidy[0])
    assert sorted((t["model.activation"], t["seed"]) for t in tidy) == [("relu", 0), ("relu", 1), ("sigmoid", 0),
                                                                       ("sigmoid", 1)]
    by_key = {(r["cell_key"], r["seed"]): r["final_test_acc"] for r in replicas}
    cells = {c: k for k, c in sqlite3.connect(tmp_path / "m" / "actlab.sqlite").execute("SELECT key, label FROM cells")}
    assert all(t["final_test_acc"] == by_key[(cells[t["cell"]], t["seed"])] for t in tidy)
    assert all(r["cell"] == {k: c for c, k in cells.items()}[r["cell_key"]] for r in replicas)  # one name everywhere
    assert (tmp_path / "x" / "tidy.csv").read_text().splitlines()[0].startswith(
        "cell,cell_index,cell_key,model.activation")


def test_a_store_from_before_the_history_blobs_reads_the_same(tmp_path):
    """Stores written before each replica's history became one row of BLOBs hold a row per epoch in a
    `metrics` table: readers, export and a resuming writer still work with them, with the same numbers."""
    from actlab.store.results import Run

    run_study(load_study("moons", ["train.epochs=3", "seeds=2"]), tmp_path / "m")
    want = _metrics(tmp_path / "m")
    with Run.open(tmp_path / "m") as run:
        loss = {c.key: run.metric(c, "test_loss") for c in run.cells}
    store = Store(tmp_path / "m")
    with store.transaction() as db:  # the old layout, rebuilt from the new
        db.execute("CREATE TABLE metrics (cell TEXT, seed INTEGER, epoch INTEGER, batch_loss REAL, batch_acc REAL, "
                   "train_loss REAL, train_acc REAL, test_loss REAL, test_acc REAL, grad_mean REAL, "
                   "PRIMARY KEY (cell, seed, epoch)) WITHOUT ROWID")
        for c in store.cells():
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           list(store.metric_rows(c["key"])))
        db.execute("DROP TABLE history")
        # a cell whose every replica diverged at once: the old writer stored its NaN test losses as NULLs
        db.execute("UPDATE metrics SET test_loss = NULL WHERE cell = (SELECT key FROM cells WHERE idx = 0)")
    store.close()
    reader = Store(tmp_path / "m", read_only=True)
    first = reader.cells()[0]
    reader.close()
    want = [(r[0], r[1], r[2], None if r[0] == first["label"] else r[3], *r[4:]) for r in want]
    loss = {k: (sd, np.full_like(v, np.nan) if k == first["key"] else v) for k, (sd, v) in loss.items()}
    for reopen_writer in (False, True):  # a resuming writer adds the (empty) history table beside the rows
        if reopen_writer:
            Store(tmp_path / "m").close()
        assert _metrics(tmp_path / "m") == want
        with Run.open(tmp_path / "m") as run:
            for c in run.cells:
                seeds, values = run.metric(c, "test_loss")
                assert seeds == loss[c.key][0] and np.array_equal(values, loss[c.key][1], equal_nan=True)
                assert np.isnan(run.metric(c, "grad_mean")[1]).all() and run.metric(c, "grad_mean")[1].shape == (2, 3)
    r = actlab("export", str(tmp_path / "m"), "-o", str(tmp_path / "x"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x" / "metrics.csv").read_text().count("\n") == 13


def test_exports_merge_as_a_data_scientist_would(tmp_path):
    """Load the exports with pandas, merge them on `cell`, group by a grid column, plot: every table names a cell
    the same way and carries its grid values; missing is missing; times are timestamps. Run.to_pandas and
    Run.to_polars give the same rows."""
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    import matplotlib

    matplotlib.use("Agg")
    from actlab.store.export import export_run
    from actlab.store.results import Run

    run_study(load_study("moons", ["train.epochs=3", "seeds=2", "grid.activation=[relu,sigmoid]",
                                   "grid.depth=[1,2]"]), tmp_path / "m")
    export_run(tmp_path / "m", tmp_path / "x")
    tidy = pd.read_csv(tmp_path / "x" / "tidy.csv")
    epochs = pd.read_parquet(tmp_path / "x" / "metrics.parquet")
    cells = pd.read_csv(tmp_path / "x" / "cells.csv")
    assert len(tidy) == 4 * 2 and len(epochs) == 4 * 2 * 3
    assert {"activation", "depth", "epoch", "test_loss"} <= set(epochs.columns)
    joined = epochs.merge(tidy[["cell", "seed", "final_test_acc"]], on=["cell", "seed"], validate="many_to_one")
    assert len(joined) == len(epochs)  # every row finds its replica
    last = joined[joined.epoch == 3]
    assert np.allclose(last.test_acc, last.final_test_acc)  # the long table's last epoch is the replica's final
    assert set(epochs.merge(cells[["cell", "status"]], on="cell").status) == {"done"}
    curve = epochs.groupby(["activation", "epoch"])["test_loss"].mean().unstack(0)
    assert curve.shape == (3, 2)
    curve.plot()  # a data scientist's first figure draws
    assert tidy.diverged_epoch.isna().all()  # never diverged: missing, not 0
    assert epochs.grad_mean.isna().all()  # not recorded: missing
    study = pd.read_parquet(tmp_path / "x" / "study.parquet")
    assert str(study.created.dtype).startswith("datetime64") and study.created.dt.tz is not None
    assert pd.read_csv(tmp_path / "x" / "cells.csv", parse_dates=["started"]).started.notna().all()
    with Run.open(tmp_path / "m") as run:
        frame, polar = run.to_pandas(per="epoch"), run.to_polars(per="epoch")
        assert isinstance(polar, pl.DataFrame) and polar.shape == frame.shape == (len(epochs), len(epochs.columns))
        assert run.to_polars().height == len(tidy)
        with pytest.raises(ActlabError, match="per='cell'"):
            run.to_pandas(per="cell")


def test_run_to_frame_gives_the_tidy_table(tmp_path):
    pd = pytest.importorskip("pandas")
    from actlab.store.results import Run

    run_study(load_study("moons", ["train.epochs=2", "seeds=3", "grid.depth=[1,2]", "grid.activation=[relu,tanh]"]),
              tmp_path / "m")
    with Run.open(tmp_path / "m") as run:
        df = run.to_frame()
    assert isinstance(df, pd.DataFrame) and len(df) == 2 * 2 * 3
    means = df.groupby(["activation", "depth"])["final_test_acc"].agg(["mean", "count"])
    assert means["count"].tolist() == [3, 3, 3, 3]
    with Run.open(tmp_path / "m") as run:  # the same numbers as the report's reader
        relu1 = next(c for c in run.cells if c.values == {"activation": "relu", "depth": 1})
        want = np.mean(list(run.replicas(relu1).values()))
    assert means.loc[("relu", 1), "mean"] == pytest.approx(want)
    with Run.open(tmp_path / "m") as run:  # a metric at the last epoch, read alone, is the full read's last column
        for c in run.cells:
            for name in ("batch_loss", "test_acc", "train_loss", "grad_mean"):
                seeds, last = run.final(c, name)
                all_seeds, values = run.metric(c, name)
                assert seeds == all_seeds and len(seeds) == 3
                np.testing.assert_array_equal(last, values[:, -1])
                assert run.final(c, name)[0] == seeds  # from the memo now
        with pytest.raises(ActlabError, match="allowed"):
            run.final(run.cells[0], "nope")


# ------------------------------------------------------------------------------- shipped studies

@pytest.mark.parametrize("name", sorted(TINY))
def test_shipped_study_smoke(smoke_runs, name):
    summary = smoke_runs[name]
    assert summary.failed == 0 and summary.outcomes and all(o.status == "done" for o in summary.outcomes)
    if load_study(name).simulation is not None:
        assert summary.sims


def test_studies_command_and_tiny_cli_run(tmp_path):
    r = actlab("studies")
    assert r.returncode == 0 and "activation-zoo" in r.stdout and "tour" in r.stdout
    r = actlab("run", "moons", "--set", "train.epochs=2", "--set", "seeds=2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "sigmoid" in r.stdout and "n seeds" in r.stdout and (tmp_path / "runs" / "moons" / "actlab.sqlite").exists()
    assert "report: runs/moons/report.html" in r.stderr
    assert (tmp_path / "runs" / "moons" / "figures" / "loss_curves.svg").exists()
    r = actlab("run", "moons", "--set", "train.epochs=2", "--set", "seeds=2", cwd=tmp_path)
    assert r.returncode == 0 and "moons: 2 of 2 cells already done (resuming)" in r.stderr
    store = Store(tmp_path / "runs" / "moons")
    assert [c["runs"] for c in store.cells()] == [1, 1]
    store.close()


# ------------------------------------------------------------------ the protocols, reproduced


def _acc(run_dir: Path) -> dict[str, np.ndarray]:
    store = Store(run_dir)
    try:
        return {c["label"]: np.array([r[0] for r in store.query(
            "SELECT final_test_acc FROM replicas WHERE cell = ? ORDER BY seed", (c["key"],))]) for c in store.cells()}
    finally:
        store.close()


def test_blobs_depth_reproduces_the_original_pattern(tmp_path):
    run_study(load_study("blobs-depth"), tmp_path / "b")
    acc = _acc(tmp_path / "b")
    succeeds = {label: bool(np.all(v == 1.0)) for label, v in acc.items()}
    chance = {label: bool(np.all(v < 0.6)) for label, v in acc.items()}
    assert all(len(v) == 10 for v in acc.values())
    expected_success = {"16, activation=sigmoid": True, "16-32, activation=sigmoid": False,
                        "16-32-16, activation=sigmoid": False, "16-32-16-8, activation=sigmoid": False,
                        "16, activation=relu": True, "16-32, activation=relu": True,
                        "16-32-16, activation=relu": True, "16-32-16-8, activation=relu": False}
    for label in acc:
        key = label.split("widths=")[1].split(", output")[0]
        assert succeeds[label] is expected_success[key], label
        assert chance[label] is (not expected_success[key]), label


def test_moons_sigmoid_clearly_below_relu(tmp_path):
    run_study(load_study("moons"), tmp_path / "m")
    acc = _acc(tmp_path / "m")
    sig, relu = acc["activation=sigmoid, init=lecun_normal, init_gain=1.0"], acc["activation=relu, init=kaiming_normal"]
    assert len(sig) == len(relu) == 10
    diff = relu - sig  # paired by seed
    assert diff.mean() > 0.1 and diff.min() > 0
    assert 0.7 < sig.mean() < 0.9 and relu.mean() > 0.93  # the write-up: ~79 % and ~96 %


def test_cells_differing_in_activation_share_a_population(tmp_path):
    from actlab.studies.populations import populations

    defaults = expand(load_study("blobs-depth-defaults"))
    assert [len(g) for g in populations(defaults)] == [2, 2, 2, 2]  # sigmoid + relu per width
    assert [len(g) for g in populations(defaults, enabled=False)] == [1] * 8
    # the original protocol also swaps the output activation, which changes the head: no sharing
    assert [len(g) for g in populations(expand(load_study("blobs-depth")))] == [1] * 8
    assert [len(g) for g in populations(expand(load_study("cnn-depth-cpu")))] == [1] * 10  # measured slower mixed
    assert [len(g) for g in populations(expand(load_study("activation-zoo")))] == [20] * 5
    sets = ["train.epochs=20", "seeds=3"]
    run_study(load_study("moons", sets), tmp_path / "grouped")
    run_study(load_study("moons", [*sets, "group_cells=false"]), tmp_path / "separate")
    ra, rb = _metrics(tmp_path / "grouped"), _metrics(tmp_path / "separate")
    assert [r[:3] for r in ra] == [r[:3] for r in rb]
    np.testing.assert_allclose([r[3] for r in ra], [r[3] for r in rb], rtol=1e-5)


def test_ctrl_c_stops_cleanly_and_keeps_finished_cells(tmp_path):
    f = tmp_path / "resume.toml"
    f.write_text(RESUME_STUDY.replace("[data]", "group_cells = false\n[data]"))  # one cell per population
    run = tmp_path / "run"
    # Python keeps SIGINT ignored in a child whose parent ignored it (a test run started in the background of a
    # non-interactive shell): the run gets Ctrl-C's default disposition, as in a terminal
    proc = subprocess.Popen([sys.executable, "-m", "actlab", "run", str(f), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while _done(run / "actlab.sqlite") < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert f"finished cells are kept in {run}" in " ".join(stderr.split())
    with sqlite3.connect(run / "actlab.sqlite") as con:
        status = [r[0] for r in con.execute("SELECT status FROM cells")]
    assert status.count("done") >= 2 and "running" not in status  # the interrupted cell is pending again


def test_a_grid_override_replaces_the_grid_key_that_sets_the_same_field():
    """The README's `--set grid.activation=[relu,gelu,swish]` on moons: moons' grid.model tables also set the
    activation (each paired with its init), so the override replaces them and gives exactly its 3 cells (it
    once doubled the grid into 6 cells whose labels hid which activation trained)."""
    study = load_study("moons", ["grid.activation=[relu,gelu,swish]"])
    cells = expand(study)
    assert [c.label for c in cells] == ["activation=relu", "activation=gelu", "activation=swish"]
    assert [c.config.model.activation for c in cells] == ["relu", "gelu", "swish"]
    assert "--set grid.activation replaced the study's grid.model (it also set model.activation)" in study.note
    assert len(expand(load_study("moons"))) == 2  # untouched without the override


def test_grid_keys_of_a_study_file_that_set_the_same_field_are_refused(tmp_path):
    path = tmp_path / "clash.toml"
    path.write_text(textwrap.dedent("""
        name = "clash"
        [data]
        name = "moons"
        [grid]
        activation = ["relu", "tanh"]
        model = [{ activation = "gelu", init = "kaiming_normal" }]
    """))
    with pytest.raises(ActlabError, match=r"grid.activation and grid.model both set model.activation: a cell's "
                                          r"label would show one value while it trains with the other"):
        load_study(path)


def test_declared_deviations_say_what_holds():
    """The notes state what the sources did and what actlab changed, and nothing the data do not support."""
    cpu = load_study("cnn-depth-cpu").note
    assert cpu.index("12 optimisation steps an epoch and 120 in all, against CIFAR-10's 391 and 3,910") < len(cpu)
    assert "360 to test" in cpu and "does not lose accuracy" not in cpu
    assert "one run with seed 42" not in load_study("cnn-depth").note
    assert "never applies it" in load_study("cnn-depth").note
    assert "The tanh arm is actlab's addition" in load_study("xor-speed").note
    for p in load_study("dead-neurons").published:
        assert "the source prints" not in p.quantity and "the source's code, run, prints" in p.quantity
    template = (Path(__file__).resolve().parents[1] / "src/actlab/report/templates/report.html.j2").read_text()
    assert "(paired t)" not in template and "sign-flip" in template


def test_a_run_resumes_when_only_the_study_s_words_changed(tmp_path):
    """A newer actlab may reword a shipped study's note or published quantities: the run directory still resumes
    (the cells are the same), and the stored configuration takes the new words; a changed field is refused."""
    from actlab.store.results import Run
    from actlab.studies.runner import run_study

    study = load_study("gelu-approx")
    run_study(study, tmp_path / "g")
    reworded = load_study({**study.model_dump(mode="json"), "note": "new words", "description": "d"})
    summary = run_study(reworded, tmp_path / "g")
    assert [o.status for o in summary.outcomes] == ["skipped"]
    with Run.open(tmp_path / "g") as run:
        assert run.study["config"]["note"] == "new words"
    changed = load_study({**study.model_dump(mode="json"), "seeds": 2})
    with pytest.raises(ActlabError, match="holds a different configuration"):
        run_study(changed, tmp_path / "g")


def test_cell_keys_are_those_of_earlier_versions_so_old_run_directories_resume():
    """A cell's key is its identity in a store: these were computed by actlab before configurations held the
    catalog entry (and wrote back a name's spelling as given); a change here strands every existing run."""
    assert [c.key for c in expand(load_study("moons"))] == ["ea96531674e28f5e", "913d5eabcbfdd6a3"]
    assert [c.key for c in expand(load_study("ffn-stats"))] == ["07d3a3bdd0199d0c"]
    assert [c.key for c in expand(load_study("blobs-depth"))][:2] == ["e4dd7f3e4295677f", "ea47733c506aaf1d"]
    spelled = [c.key for c in expand(load_study("moons", ["grid.activation=[ReLU,silu,leaky-relu]"]))]
    assert spelled == ["b7f59b9bf4051038", "8f4298c2f96c4084", "e8469f8526ea1908"]
