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
    assert only_sims.overrides.get("moons", []) == [] and "simulation.params.width=8" in only_sims.overrides["selu-selfnorm"]
    with pytest.raises(ActlabError, match="no member of suite 'tour' has that field"):
        load_study("tour", ["simulation.params.nope=1"])


def test_a_fault_in_one_cell_is_recorded_there_and_the_others_run(tmp_path):
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
        group_cells = false
        [train]
        epochs = 2
        [grid]
        activation = ["flaky_act:act", "relu"]
    """))
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
    assert r.returncode == 2 and "[cell grid.model=" in r.stderr and "grid.activation='rleu']" in r.stderr, r.stderr


def test_an_unreadable_store_does_not_break_the_explorers_run_list(tmp_path):
    from fastapi.testclient import TestClient

    from actlab.web import create_app

    run_study(load_study("gelu-approx"), tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "actlab.sqlite").write_bytes(b"garbage" * 100)
    with TestClient(create_app(tmp_path)) as client:
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
