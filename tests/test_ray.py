"""The Ray executor: a local Ray with 2 CPUs runs a small study; the single writer stores what comes back."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from actlab.store.writer import Store
from actlab.studies.config import load_study
from actlab.studies.runner import run_study

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _final(run_dir) -> dict[str, list[float]]:
    store = Store(run_dir)
    try:
        return {c["label"]: [r[7] for r in store.metric_rows(c["key"])] for c in store.cells()}  # test_loss
    finally:
        store.close()


def test_ray_executor_runs_a_study_like_the_inprocess_one(local_ray, tmp_path):
    sets = ["train.epochs=5", "seeds=3", "grid.activation=[relu,tanh,gelu]"]
    summary = run_study(load_study("moons", sets), tmp_path / "ray", executor="ray")
    assert sorted(o.status for o in summary.outcomes) == ["done"] * 3
    run_study(load_study("moons", sets), tmp_path / "local")
    ray_res, local_res = _final(tmp_path / "ray"), _final(tmp_path / "local")
    assert ray_res.keys() == local_res.keys()
    for label in ray_res:  # Ray tasks use 1 thread: equal up to float summation order
        np.testing.assert_allclose(ray_res[label], local_res[label], rtol=1e-5)
    store = Store(tmp_path / "ray")
    assert all(c["status"] == "done" and c["runs"] == 1 for c in store.cells())
    store.close()


@pytest.mark.parametrize("executor", ["ray", "inprocess"])
def test_a_failing_cell_is_recorded_and_the_others_go_on(local_ray, tmp_path, executor):
    # The second cell asks for more training points than moons has: it fails where it runs (in a Ray worker).
    study = load_study("moons", ["train.epochs=2", "seeds=2", "grid.model=[{activation=\"relu\"}]",
                                 "grid.data.options=[{n=200},{n_train=100000}]"])
    summary = run_study(study, tmp_path / executor, executor=executor)
    status = {o.label: o for o in summary.outcomes}
    assert status["activation=relu, n=200"].status == "done"
    failed = status["activation=relu, n_train=100000"]
    assert failed.status == "failed" and "n_train=100000 is out of range; allowed: 1 to 300" in failed.error
    store = Store(tmp_path / executor)
    assert sorted(c["status"] for c in store.cells()) == ["done", "failed"]
    store.close()


def test_cli_executor_ray(tmp_path):
    r = subprocess.run([sys.executable, "-m", "actlab", "run", "gelu-approx", "--executor", "ray", "--out",
                        str(tmp_path / "g")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "gelu_tanh" in r.stdout and "0.0004732" in r.stdout
