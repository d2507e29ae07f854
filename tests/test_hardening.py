"""Hardening (#13): one writer per run directory, --set reaching suite members, a fault staying in its cell,
users' activations found in the current folder for `actlab run`, and study names that are not paths."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actlab.errors import ActlabError
from actlab.store.writer import LOCK_NAME, Store
from actlab.studies.config import load_study
from actlab.studies.runner import plan_run, run_dir_name, run_study

ACTLAB = [sys.executable, "-m", "actlab"]


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process that takes the run directory's writer lock and waits."""
    code = textwrap.dedent(f"""
        import sys, time
        from actlab.store.writer import writer_lock
        with writer_lock({str(run_dir)!r}):
            print("held", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_with_the_holders_pid_and_sigkill_frees_the_lock(tmp_path):
    run_dir = tmp_path / "r"
    holder = _hold_lock(run_dir)
    try:
        with pytest.raises(ActlabError, match=rf"being written by another actlab process \(PID {holder.pid}\)"):
            run_study(load_study("gelu-approx"), run_dir)
        r = subprocess.run([*ACTLAB, "run", "gelu-approx", "--out", str(run_dir), "--no-report"], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr
        assert f"PID {holder.pid}" in r.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    summary = run_study(load_study("gelu-approx"), run_dir)  # the OS released the killed holder's lock
    assert summary.failed == 0 and (run_dir / LOCK_NAME).read_text() == str(os.getpid())


def test_two_runs_racing_on_one_directory_leave_one_configuration(tmp_path):
    run_dir = tmp_path / "race"
    cmds = [[*ACTLAB, "run", "moons", "--out", str(run_dir), "--no-report", "--set", "seeds=2", "--set",
             f"train.epochs={e}"] for e in (40, 41)]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 2], results  # one ran; the other was refused (lock or "different configuration")
    store = Store(run_dir, read_only=True)
    try:
        cells = store.cells()
    finally:
        store.close()
    assert len(cells) == 2 and len({c["config"]["train"]["epochs"] for c in cells}) == 1


def test_set_reaches_every_suite_member_and_an_unknown_field_is_an_error():
    suite = load_study("tour", ["seeds=1", "train.epochs=3"])
    for name in suite.include:
        member = load_study(name, suite.overrides[name])
        assert member.seed_list() == [0] and member.train.epochs == 3
    only_sims = load_study("tour", ["simulation.params.width=8"])
    assert only_sims.overrides.get("moons",
                                   []) == [] and "simulation.params.width=8" in only_sims.overrides["selu-selfnorm"]
    with pytest.raises(ActlabError, match="no member of suite 'tour' has that field"):
        load_study("tour", ["simulation.params.nope=1"])


@pytest.mark.parametrize("grouped", [False, True], ids=["apart", "grouped"])
def test_a_fault_in_one_cell_is_recorded_there_and_the_others_run(tmp_path, grouped):
    """Apart, or grouped into one population with relu (the default): the fault fails the flaky cell alone."""
    (tmp_path / "flaky_act.py").write_text(textwrap.dedent("""
        import torch

        def act(x):
            if x.numel() > 100:  # passes actlab's 7-point check, fails on a training batch
                raise RuntimeError("flaky activation broke mid-training")
            return torch.tanh(x)
    """))
    study = tmp_path / "s.toml"
    study.write_text(textwrap.dedent("""
        name = "flaky"
        seeds = 2
        group_cells = GROUPED
        [train]
        epochs = 2
        [grid]
        activation = ["flaky_act:act", "relu"]
    """).replace("GROUPED", str(grouped).lower()))
    r = subprocess.run([*ACTLAB, "run", str(study), "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)  # also: `actlab run` finds ./flaky_act.py
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "flaky activation broke mid-training" in r.stdout
    store = Store(tmp_path / "out", read_only=True)
    try:
        cells = {c["label"]: c for c in store.cells()}
    finally:
        store.close()
    assert cells["activation=flaky_act:act"]["status"] == "failed"
    assert "RuntimeError: flaky activation broke mid-training" in cells["activation=flaky_act:act"]["error"]
    assert cells["activation=relu"]["status"] == "done"
    assert (tmp_path / "out" / "report.html").exists()  # the report is still written, the failure in it
    assert "flaky activation broke mid-training" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize(("name", "folder"), [("../../etc", "etc"), ("my study/v2", "my-study-v2"),
                                              ("moons", "moons"), (".hidden", "hidden")])
def test_study_names_become_safe_folders_under_runs(tmp_path, name, folder):
    assert run_dir_name(name) == folder
    f = tmp_path / "s.toml"
    f.write_text(f'name = "{name}"\nseeds = 1\n[simulation]\nname = "gelu-approx"\n')
    study, target = plan_run(str(f))
    assert study.name == name and target == Path("runs") / folder


@pytest.mark.parametrize("name", ["", "   ", "..", "///"])
def test_an_empty_or_unusable_name_is_refused(name):
    doc = load_study("gelu-approx").model_dump(mode="json") | {"name": name}
    with pytest.raises(ActlabError):
        run_dir_name(load_study(doc).name)


def test_a_corrupt_store_gives_one_clear_error_naming_the_file(tmp_path):
    run_dir = tmp_path / "bad"
    run_dir.mkdir()
    (run_dir / "actlab.sqlite").write_bytes(b"this is not an SQLite database, it is a truncated download" * 20)
    for args in (["report", str(run_dir)], ["export", str(run_dir)], ["run", str(run_dir)]):
        r = subprocess.run([*ACTLAB, *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr, (args, r.stderr)
        assert "is not a readable actlab store" in r.stderr and "actlab.sqlite" in r.stderr
    with pytest.raises(ActlabError, match="not a readable actlab store"):
        run_study(load_study("gelu-approx"), run_dir)


def test_a_file_where_a_folder_should_be_is_one_error_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = subprocess.run([*ACTLAB, "run", "gelu-approx", "--out", str(tmp_path / "afile" / "sub"), "--no-report"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr, r.stderr


def test_bracketed_text_in_an_error_is_printed_as_text(tmp_path):
    r = subprocess.run([*ACTLAB, "run", "moons", "--set", "grid.activation=[relu,rleu]", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "[cell grid.activation='rleu']" in r.stderr, r.stderr


def test_an_unreadable_store_does_not_break_the_explorers_run_list(tmp_path):
    from fastapi.testclient import TestClient

    from actlab.web import create_app

    run_study(load_study("gelu-approx"), tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "actlab.sqlite").write_bytes(b"garbage" * 100)
    with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
        r = client.get("/api/runs")
    assert r.status_code == 200
    runs = {x["path"]: x for x in r.json()["runs"]}
    assert runs["good"]["kind"] == "simulation"
    assert runs["bad"]["kind"] == "unreadable" and "not a readable actlab store" in runs["bad"]["error"]


@pytest.mark.parametrize(("seeds", "says"), [("[]", "an empty list of seeds gives no replicas"),
                                             ("[1,2,1]", "seeds [1] are repeated")])
def test_bad_seed_lists_are_refused_when_the_study_is_loaded(seeds, says):
    with pytest.raises(ActlabError, match=re.escape(says)):
        load_study("moons", [f"seeds={seeds}"])


def test_a_run_that_cannot_fit_in_memory_is_refused_before_anything_trains(tmp_path):
    env = {**os.environ, "ACTLAB_MEMORY_LIMIT": "1G"}  # moons at 5,000 seeds needs ~1.5 GiB (its 800 epochs' history)
    r = subprocess.run([*ACTLAB, "run", "moons", "--set", "seeds=5000", "--out", str(tmp_path / "big")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr, r.stderr
    assert re.search(r"would not fit in 1\.0 GiB \(ACTLAB_MEMORY_LIMIT\).*needs about \d+\.\d GiB for 10000 replicas "
                     r"\(history", r.stderr.replace("\n", " "))
    assert "fewer epochs" in r.stderr
    assert not (tmp_path / "big" / "actlab.sqlite").exists() or Store(tmp_path / "big", read_only=True).study() is None
    r = subprocess.run([*ACTLAB, "run", "moons", "--set", "seeds=5000", "--set", "train.epochs=1", "--no-report",
                        "--out", str(tmp_path / "fits")], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr  # the same population for one epoch fits


def test_the_memory_estimate_follows_what_a_population_holds():
    from actlab.studies.config import expand
    from actlab.studies.datacache import DataCache
    from actlab.studies.memory import memory_estimate, memory_limit
    from actlab.studies.populations import populations

    def est(*sets):
        st = load_study("moons", list(sets))
        group = populations(expand(st), st.group_cells)[0]
        return memory_estimate(group, DataCache().load(st))

    small, big = est("seeds=10"), est("seeds=1000")
    assert big.replicas == 100 * small.replicas == 2000
    assert big.parts["history"] / small.parts["history"] == pytest.approx(100, rel=0.01)  # linear in replicas
    # the surface is evaluated in bounded chunks and keeps 10 seeds per cell: it does not grow with replicas
    assert big.parts["decision surface"] == small.parts["decision surface"] < 2**28
    assert est("seeds=1000", "diagnostics.surface_seeds=100").parts["decision surface"] > big.parts["decision surface"]
    off = est("seeds=1000", "diagnostics.decision_surface=false")
    assert "decision surface" not in off.parts and off.total < big.total
    assert est("seeds=1000", "train.epochs=79").parts["history"] == pytest.approx(big.parts["history"] * 80 / 801)
    assert memory_limit()[0] > 2**30


@pytest.mark.parametrize(("value", "ok"), [("8G", 8 * 2**30), ("512m", 512 * 2**20), ("1000", 1000), ("lots", None)])
def test_actlab_memory_limit_is_read_as_a_size(monkeypatch, value, ok):
    from actlab.studies.memory import memory_limit

    monkeypatch.setenv("ACTLAB_MEMORY_LIMIT", value)
    if ok is None:
        with pytest.raises(ActlabError, match="ACTLAB_MEMORY_LIMIT='lots' is not a size"):
            memory_limit()
    else:
        assert memory_limit() == (ok, "ACTLAB_MEMORY_LIMIT")


def test_depth_zero_runs_end_to_end_and_zero_epochs_is_refused_at_load(tmp_path):
    summary = run_study(load_study("blobs-depth", ["seeds=2", "train.epochs=2", "grid.model.depth=[0,1]"]),
                        tmp_path / "d0")
    assert summary.failed == 0
    from actlab.report.page import build_report

    html = build_report(tmp_path / "d0").read_text()
    assert "depth=0" in html
    with pytest.raises(ActlabError, match=r"train\.epochs: Input should be greater than or equal to 1 \(given 0\)"):
        load_study("moons", ["train.epochs=0"])


def test_a_study_file_that_is_not_utf8_is_one_error_line(tmp_path):
    (tmp_path / "s.toml").write_bytes(b'name = "caf\xe9"\n')
    r = subprocess.run([*ACTLAB, "run", str(tmp_path / "s.toml")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "is not UTF-8 text (byte b'\\xe9' at offset 11)" in r.stderr


def test_a_long_value_is_shown_as_an_excerpt():
    with pytest.raises(ActlabError) as e:
        load_study("moons", ["train.optimizer=" + "x" * 5000])
    assert len(str(e.value)) < 600 and "characters)" in str(e.value)


@pytest.mark.parametrize("fault", ["disk", "sqlite"])
def test_a_full_disk_is_one_error_line_and_keeps_what_was_written(tmp_path, monkeypatch, capsys, fault):
    import errno
    import sqlite3

    from actlab import cli
    from actlab.report import page

    run_study(load_study("gelu-approx"), tmp_path / "r")
    before = (tmp_path / "r" / "actlab.sqlite").read_bytes()

    def full(*_a, **_k):
        if fault == "disk":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(page, "_write", full)
    monkeypatch.setattr(sys, "argv", ["actlab", "report", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as ex:
        cli.main()
    err = capsys.readouterr().err
    assert ex.value.code == 1 and err.count("error:") == 1 and "Traceback" not in err
    assert ("No space left on device" if fault == "disk" else "the store: database or disk is full") in err
    assert (tmp_path / "r" / "actlab.sqlite").read_bytes() == before
    assert not list((tmp_path / "r").glob(".*.tmp*"))


def test_a_long_grid_value_is_shown_as_an_excerpt_in_every_cell_error():
    with pytest.raises(ActlabError) as e:
        load_study("moons", ["grid.activation=" + "x" * 3000])
    assert len(str(e.value)) < 2000 and str(e.value).count("(3002 characters)") == 2  # the name and the cell


def test_a_suite_prints_one_overview_row_per_study(tmp_path):
    (tmp_path / "mini.toml").write_text(textwrap.dedent("""
        name = "mini"
        description = "two studies"
        include = ["gelu-approx", "moons"]
        [overrides]
        moons = ["seeds=2", "train.epochs=2", "diagnostics.decision_surface=false"]
    """))
    r = subprocess.run([*ACTLAB, "run", str(tmp_path / "mini.toml"), "--out", str(tmp_path / "runs"), "--no-report"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("│")]
    assert len(lines) == 2  # one row per study, no per-cell tables
    moons = next(ln for ln in lines if "moons" in ln)
    assert "2 of 2 done" in moons and "best final test accuracy:" in moons and "(n = 2)" in moons
    assert "1 of 1 done" in next(ln for ln in lines if "gelu-approx" in ln)


@pytest.mark.parametrize("name", ["../sibling", "../../../../x", "a/b"])
def test_a_suite_member_named_as_a_path_is_refused_at_load(tmp_path, name):
    """A member's name is a folder inside the suite's: one that names a path would write outside --out."""
    (tmp_path / "member.toml").write_text(f'name = "{name}"\nseeds = 1\n[simulation]\nname = "gelu-approx"\n')
    (tmp_path / "suite.toml").write_text(f'name = "s"\ninclude = ["{tmp_path / "member.toml"}"]\n')
    with pytest.raises(ActlabError, match="a path; its run would be written outside the suite's folder"):
        load_study(tmp_path / "suite.toml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["member.toml", "suite.toml"]


def test_suite_members_that_would_share_a_folder_are_refused(tmp_path):
    for f, n in (("a.toml", "x y"), ("b.toml", "x-y")):
        (tmp_path / f).write_text(f'name = "{n}"\nseeds = 1\n[simulation]\nname = "gelu-approx"\n')
    (tmp_path / "suite.toml").write_text(f'name = "s"\ninclude = ["{tmp_path / "a.toml"}", "{tmp_path / "b.toml"}"]\n')
    with pytest.raises(ActlabError, match="would share the folder 'x-y'"):
        load_study(tmp_path / "suite.toml")


def test_a_file_size_limit_while_resuming_is_a_file_system_fault_and_keeps_the_store(tmp_path):
    """`ulimit -f 20` while resuming: SQLite cannot write its -wal file. One error line naming the store and the
    file system, exit status 1, never "not a readable actlab store ... move it away"; the store is unchanged."""
    import resource

    run_study(load_study("gelu-approx"), tmp_path / "r")
    before = (tmp_path / "r" / "actlab.sqlite").read_bytes()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20 * 512, 20 * 512))

    r = subprocess.run([*ACTLAB, "run", str(tmp_path / "r"), "--no-report"], capture_output=True, text=True,
                       timeout=300, preexec_fn=limit)
    assert r.returncode == 1 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "the file system refused" in r.stderr and str(tmp_path / "r" / "actlab.sqlite") in r.stderr
    assert "move it away" not in r.stderr and "not a readable" not in r.stderr
    assert (tmp_path / "r" / "actlab.sqlite").read_bytes() == before


@pytest.mark.parametrize(("sets", "says"), [
    (["train.epochs=true"], "train.epochs: Input should be a valid integer (given True)"),
    (["seeds=false"], "seeds: Input should be a valid integer"),
    (["grid.activation=[relu,relu]"], 'grid.activation: "relu" repeated; allowed: distinct values'),
    (["train.epoch=3"], "train.epoch: unknown key (given 3); did you mean epochs"),
    (["model.widht=3"], "model.widht: unknown key (given 3); did you mean width, widths, ffn_width?"),
])
def test_booleans_repeats_and_misspelt_keys_are_one_clear_error(sets, says):
    with pytest.raises(ActlabError) as e:
        load_study("moons", sets)
    assert says in str(e.value)


def test_a_report_with_a_missing_artifact_draws_the_rest_and_says_what_is_missing(tmp_path):
    from actlab.report.page import build_report

    run_study(load_study("moons", ["seeds=2", "train.epochs=3"]), tmp_path / "m")
    (victim,) = list((tmp_path / "m" / "artifacts").glob("*/dataset.npz"))[:1]
    victim.unlink()
    page = build_report(tmp_path / "m").read_text()
    assert "Figure not drawn: dataset: artifact &#39;dataset&#39;" in page and "No such file" in page
    assert (tmp_path / "m" / "figures" / "loss_curves.png").exists()


def test_a_read_only_listing_writes_nothing_beside_the_stores(tmp_path):
    from actlab.store.results import Run, run_dirs

    for i in range(3):
        run_study(load_study("gelu-approx"), tmp_path / f"r{i}")
    before = {p.name for d in tmp_path.iterdir() for p in d.iterdir()}
    for d in run_dirs(tmp_path):
        with Run.open(d) as run:
            assert run.name == "gelu-approx" and run.cells
    assert {p.name for d in tmp_path.iterdir() for p in d.iterdir()} == before
    assert not list(tmp_path.glob("*/*-wal")) and not list(tmp_path.glob("*/*-shm"))


def test_a_suite_that_includes_itself_or_names_a_member_like_actlab_s_files_is_refused(tmp_path):
    (tmp_path / "s.toml").write_text(f'name = "s"\ninclude = ["{tmp_path / "s.toml"}"]\n')
    with pytest.raises(ActlabError, match="includes itself"):
        load_study(tmp_path / "s.toml")
    (tmp_path / "m.toml").write_text('name = "figures"\nseeds = 1\n[simulation]\nname = "gelu-approx"\n')
    (tmp_path / "t.toml").write_text(f'name = "t"\ninclude = ["{tmp_path / "m.toml"}"]\n')
    with pytest.raises(ActlabError, match="a name actlab uses for its own files"):
        load_study(tmp_path / "t.toml")


def test_a_truncated_artifact_or_damaged_rows_are_one_error_line_not_a_traceback(tmp_path):
    import shutil
    import sqlite3

    from actlab.report.page import build_report

    run_study(load_study("moons", ["seeds=2", "train.epochs=3"]), tmp_path / "m")
    (victim,) = list((tmp_path / "m" / "artifacts").glob("*/dataset.npz"))[:1]
    victim.write_bytes(victim.read_bytes()[:20])  # truncated: not a zip any more
    page = build_report(tmp_path / "m").read_text()
    assert "Figure not drawn: dataset" in page and (tmp_path / "m" / "figures" / "loss_curves.png").exists()
    run_study(load_study("gelu-approx"), tmp_path / "g")
    shutil.copytree(tmp_path / "g", tmp_path / "bad")
    with sqlite3.connect(tmp_path / "bad" / "actlab.sqlite") as con:
        con.execute("UPDATE sim_rows SET row = '{' WHERE idx = 0")
    for cmd in ("report", "export"):
        r = subprocess.run([*ACTLAB, cmd, str(tmp_path / "bad")], capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr, r.stderr
        assert "damaged or foreign store" in r.stderr
