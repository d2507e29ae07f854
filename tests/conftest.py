"""Shared fixtures: every shipped study run once at a tiny budget (the smoke runs), reused by the study,
report and explorer tests."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from actlab.data.text import SHAKESPEARE_FILE as SHAKESPEARE
from actlab.runtime import cache_dir, tune_malloc
from actlab.studies.config import load_study
from actlab.studies.runner import run_study

tune_malloc()  # the test session is an entry point, like the CLI: the same allocator setting


def _suite_cache() -> Path:
    """A cache of the suite's own (ACTLAB_CACHE, inherited by the CLI subprocesses): DKS/TAT constants are kept
    per machine once solved, and the tests that check the methods' conditions must run the solver, not read a
    file. The compiled kernels, keyed by their own source, are shared with the machine's cache: compiling them
    again would cost minutes and test nothing more."""
    real, suite = cache_dir(), Path(tempfile.mkdtemp(prefix="actlab-suite-cache-"))
    try:
        (real / "kernels").mkdir(parents=True, exist_ok=True)
        (suite / "kernels").symlink_to(real / "kernels", target_is_directory=True)
        if (real / SHAKESPEARE).exists():  # the corpus (5 MB, MD5-checked on every load): fetched once per machine
            (suite / SHAKESPEARE).symlink_to(real / SHAKESPEARE)
    except OSError:  # a machine cache that cannot be written: the suite compiles into its own
        pass
    atexit.register(shutil.rmtree, suite, ignore_errors=True)  # removes the link, not what it points to
    return suite


os.environ["ACTLAB_CACHE"] = str(_suite_cache())

# Each shipped study at a budget of seconds: what a smoke run overrides (2 seeds, except gelu-approx's 1).
TINY = {
    "moons": ["train.epochs=2"], "blobs-depth": ["train.epochs=2"], "blobs-depth-defaults": ["train.epochs=2"],
    "cnn-depth": ["train.epochs=1", "data.name=digits", "model.width=4", "grid.depth=[1]"],
    "cnn-depth-cpu": ["train.epochs=1", "model.width=4", "grid.depth=[1,2]"],
    "activation-zoo": ["train.epochs=1", "grid.depth=[1]", "data.options.n_train=200", "data.options.n_test=100"],
    "gradient-flow": ["simulation.params.depths=[2,3]", "simulation.params.width=16"],  # seeds=2 below
    "dead-neurons": ["simulation.params.n_units=50", "simulation.params.n_samples=100"],
    "dead-neurons-trained": ["simulation.params.epochs=2", "simulation.params.width=8"],
    "selu-selfnorm": ["simulation.params.depth=3", "simulation.params.width=32", "simulation.params.batch=16"],
    "xor-speed": ["simulation.params.epochs=50"],
    "gelu-approx": [], "ffn-stats": ["simulation.params.d_model=16", "simulation.params.d_ff=32"],
    "linear-collapse": ["simulation.params.epochs=5", "simulation.params.depths=[1,3]"],
    "deep-rescue": ["train.epochs=1", "grid.depth=[20,30]", "grid.activation=[tanh,leaky_relu]",
                    "data.options.n_train=200", "data.options.n_test=100"],
    **{name: ["train.epochs=1", "train.epoch_examples=8", "model.width=16", "model.depth=1", "model.heads=2",
              "data.options.n_test=4"] for name in ("transformer-ffn", "transformer-ffn-cpu", "attention-scores")},
    "vit-activations": ["train.epochs=1", "model.width=8", "model.depth=1", "model.heads=2",
                        "data.options.n_train=64", "data.options.n_test=32"],
    "lstm-slots": ["train.epochs=1", "model.width=4", "train.probe_size=16", 'grid.data=[{name="mnist1d", options='
                   '{n_train=100, n_test=50}}, {name="adding", options={T=30, n=120}}]'],
    "residual-depth": ["train.epochs=1", "model.width=8", "grid.depth=[2,4]", "data.options.n_train=200",
                       "data.options.n_test=100", "train.probe_size=32"],
    "rnn-time": ["train.epochs=1", "model.width=4", "data.options.n=120", "grid.data.options.T=[4,6]",
                 "train.probe_size=16"],
    "gan-modes": ["train.epochs=2", "model.width=8", "data.options.n=400", "train.batch_size=100",
                  "train.probe_size=32"],
    "vae-activations": ["train.epochs=1", "model.width=8", "data.options.n_train=100", "data.options.n_test=50",
                        "train.probe_size=16"],
    "edge-of-chaos": ["train.epochs=1", "grid.weight_variance=[1.0,2.0,4.0]", "grid.depth=[2,6]",
                      "data.options.n_train=200", "data.options.n_test=100"],
}


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory) -> Path:
    """A suite-like directory holding one run directory per shipped study, each at its TINY budget."""
    return tmp_path_factory.mktemp("smoke")


@pytest.fixture(scope="session")
def smoke_runs(smoke_dir):
    """{study name: RunSummary} of every shipped study's smoke run, under smoke_dir."""
    out = {}
    for name, sets in TINY.items():
        study = load_study(name, ["seeds=2", *sets] if name != "gelu-approx" else [])
        out[name] = run_study(study, smoke_dir / name)
    return out


def chromium() -> str:
    """Debian's chromium; CI (CI=true) installs it, so there its absence fails instead of skipping."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    return path


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def serving(app) -> Iterator[str]:
    """`app` served by uvicorn on a free port of 127.0.0.1 in a thread; yields its base URL, stops it after."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
