"""The explorer: API tests (TestClient), a real server on 127.0.0.1 for live trainings, a client going away,
a bounded load test, and Playwright driving Debian's chromium through the three views."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from actlab.analysis.findings import findings
from actlab.catalog import guide
from actlab.catalog.activations import names
from actlab.catalog.properties import properties
from actlab.report import page as report_page
from actlab.store.results import Run
from actlab.web import create_app, sessions
from conftest import CHROMIUM_ARGS, chromium, serving

WRITE = {"X-Actlab": "1"}  # what the explorer's page sends with every request (writes need it)


@pytest.fixture(scope="module")
def client(smoke_runs, smoke_dir) -> TestClient:
    return TestClient(create_app(smoke_dir, max_trainings=2), base_url="http://127.0.0.1", headers=WRITE)


@pytest.fixture(scope="module")
def server(smoke_runs, smoke_dir):
    """The explorer served by uvicorn on a free port of 127.0.0.1, in a thread; yields its base URL."""
    with serving(create_app(smoke_dir, max_trainings=2)) as base:
        yield base


def events(lines) -> list[tuple[str, dict]]:
    """Parse server-sent events from an iterator of lines."""
    out, event = [], None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            out.append((event, json.loads(line[6:])))
            if event in ("done", "stopped", "error"):
                break
    return out


# ---------------------------------------------------------------------------------------- activations


def test_catalog_lists_every_entry_with_its_parameters_and_a_note(client):
    cat = client.get("/api/activations").json()
    shipped = [n for n in names(include_gated=True) if not n.startswith("gated:")]  # gated:NAME: made on demand
    assert [a["name"] for a in cat] == shipped
    assert set(guide.NOTES) == set(shipped)  # every entry has a when-to-use note
    assert {a["name"] for a in cat if a["kind"] == "gated"} == {"glu", "bilinear", "reglu", "geglu", "swiglu"}
    elu = next(a for a in cat if a["name"] == "elu")
    assert elu["params"] == [{"name": "alpha", "default": 1.0, "low": 0.0, "high": None, "low_open": False,
                              "high_open": False, "doc": "saturation value -alpha for x -> -inf"}]
    leaky = next(a for a in cat if a["name"] == "leaky_relu")["params"][0]
    assert (leaky["high"], leaky["high_open"]) == (1.0, True)  # 0 <= α < 1: the slider stops inside the open end


def test_a_gated_entry_is_drawn_as_its_two_input_function(client):
    r = client.post("/api/activations/curves", json={"items": [{"name": "swiglu"}], "lo": -3, "hi": 3}).json()
    (c,) = r["curves"]
    assert c["kind"] == "gated" and "diagonal" in c["label"] and c["gated"]["gate"] == "swish"
    grid, z = np.array(c["gated"]["grid"]), np.array(c["gated"]["z"], dtype=float)
    ref = (grid / (1 + np.exp(-grid)))[None, :] * grid[:, None]  # rows: the value input b, columns: the gate a
    np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-6)
    x = np.array(r["x"])
    np.testing.assert_allclose(c["y"], x * x / (1 + np.exp(-x)), rtol=1e-6, atol=1e-9)  # the diagonal x·swish(x)
    props = {p["name"]: p["value"] for p in c["gated"]["properties"]}
    assert props["linear_in_value"] is True and props["second_moment"] == pytest.approx(0.355776, abs=1e-5)
    t = client.post("/api/activations/theory", json={"name": "swiglu"})
    assert t.status_code == 400 and "two inputs" in t.text
    live = client.post("/api/live", json={"activation": "swiglu"})
    assert live.status_code in (400, 422) and "models that take gated entries: transformer" in live.text


def test_curves_equal_torch_and_finite_differences(client):
    r = client.post("/api/activations/curves", json={"items": [{"name": "elu", "params": {"alpha": 0.5}},
                                                               {"name": "GELU"}], "lo": -3, "hi": 3, "points": 601})
    assert r.status_code == 200, r.text
    res = r.json()
    x = torch.tensor(res["x"], dtype=torch.float64)
    for c, fn in zip(res["curves"], (lambda t: F.elu(t, alpha=0.5), F.gelu), strict=True):
        np.testing.assert_allclose(c["y"], fn(x).numpy(), atol=1e-7)
        h = 1e-6  # central differences, away from ELU's kink at 0 where the derivative jumps
        fd = ((fn(x + h) - fn(x - h)) / (2 * h)).numpy()
        away = np.abs(x.numpy()) > 1e-3
        np.testing.assert_allclose(np.array(c["dy"])[away], fd[away], atol=1e-6)
    assert res["curves"][1]["name"] == "gelu" and res["curves"][0]["label"] == "elu(alpha=0.5)"
    measured = json.loads(properties("elu", cost=False, alpha=0.5).model_dump_json())
    assert res["curves"][0]["record"] == measured
    assert res["curves"][0]["guidance"]["note"] == guide.NOTES["elu"]
    assert "cost vs ReLU" not in res["curves"][0]["table"]  # not timed here, so not shown as an empty "—" row


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), [
    ("post", "/api/live", {"depth": 99}, 422, "depth: Input should be less than or equal to 6 (given 99)"),
    ("post", "/api/live", {"width": 0}, 422, "width: Input should be greater than or equal to 1"),
    ("post", "/api/live", {"epochs": 10**6}, 422, "epochs"),
    ("post", "/api/live", {"points": 10**7}, 422, "points"),
    ("post", "/api/live", {"seeds": 1000}, 422, "seeds"),
    ("post", "/api/live", {"activation": "relux"}, 400, "activation 'relux' is unknown; did you mean"),
    ("post", "/api/live", {"activation": "os:system"}, 422, "the explorer takes no import paths"),
    ("post", "/api/live", {"activation": "softmax"}, 400, "vector-valued"),
    ("post", "/api/live", {"activation": "elu", "activation_params": {"alpha": -1}}, 400, "alpha=-1.0 is out of range"),
    ("post", "/api/live", {"color": "red"}, 422, "color: Extra inputs are not permitted"),
    ("post", "/api/activations/curves", {"items": [{"name": "nope"}]}, 400, "activation 'nope' is unknown"),
    ("post", "/api/activations/curves", {"items": [{"name": "relu"}] * 7}, 422, "items: List should have at most 6"),
    ("post", "/api/activations/curves", {"items": [{"name": "relu"}], "points": 10**6}, 422, "points"),
    ("post", "/api/activations/curves", {"items": [{"name": "relu"}], "lo": 2, "hi": 1}, 400, "lo=2.0 must be smaller"),
    ("post", "/api/activations/softmax", {"logits": [1.0]}, 422, "logits: List should have at least 2"),
    ("post", "/api/activations/softmax", {"logits": [1, 2], "temperature": 0}, 422, "temperature"),
    ("post", "/api/activations/softmax", {"logits": [1, 1e9]}, 422, "logits.1"),
    ("get", "/api/runs/%2e%2e/%2e%2e", None, 403, "outside the runs root"),
    ("get", "/files/%2e%2e/%2e%2e/etc/passwd", None, 403, "outside the runs root"),
    ("get", "/files/moons/actlab.sqlite", None, 403, "not a figure or report file"),
    ("get", "/api/runs/nowhere", None, 404, "does not exist"),
    ("get", "/api/live/abc/events", None, 404, "no live training 'abc' for this client"),
    ("post", "/api/live", {"arms": [{"activation": "relu"}] * 5}, 422, "arms: List should have at most 4 items"),
    ("post", "/api/live", {"arms": [{"activation": "relu"}, {"activation": "relu", "init": "default"}]}, 400,
     "arms[0] and arms[1] are the same"),
    ("post", "/api/live", {"arms": [{"activation": "relu"}, {"activation": "softmax"}]}, 400,
     "arms[1]: activation 'softmax' is vector-valued"),
    ("post", "/api/live", {"arms": [{"activation": "elu", "activation_params": {"alpha": -1}}]}, 400,
     "arms[0]: elu: parameter alpha=-1.0 is out of range"),
    ("post", "/api/live", {"arms": [{"activation": "relu", "init": "he"}]}, 422, "arms.0.init"),
    ("post", "/api/live", {"train_fraction": 0.95}, 422, "train_fraction"),
    ("post", "/api/live", {"weight_decay": -1}, 422, "weight_decay"),
    ("post", "/api/live", {"features": ["x1", "x1"]}, 422, "features: each feature at most once (given"),
    ("post", "/api/live", {"features": ["x3"]}, 422, "features.0: Input should be 'x1', 'x2'"),
    ("post", "/api/live", {"features": []}, 422, "features: List should have at least 1 item"),
    ("post", "/api/live", {"widths": [8] * 7}, 422, "widths: List should have at most 6 items"),
    ("post", "/api/live", {"widths": [8, 0]}, 422, "widths.1: Input should be greater than or equal to 1"),
    ("post", "/api/live", {"widths": [65]}, 422, "widths.0: Input should be less than or equal to 64"),
    ("post", "/api/live", {"model": "gan", "dataset": "ring", "features": ["x1x2"]}, 400,
     "a GAN's discriminator sees the 2-D samples themselves"),
    ("post", "/api/live/preview", {"dataset": "ring"}, 400, "dataset='ring' with model='classifier'"),
    ("post", "/api/live/preview", {"arms": [{"activation": "softmax"}]}, 400,
     "arms[0]: activation 'softmax' is vector"),
    ("post", "/api/live", {"model": "gan", "dataset": "moons"}, 400, "dataset='moons' with model='gan': a gan learns"),
    ("post", "/api/live", {"dataset": "ring"}, 400, "dataset='ring' with model='classifier'"),
    ("post", "/api/live", {"model": "gan", "dataset": "grid", "arms": [{"activation": "swiglu"}]}, 400,
     "a GAN's discriminator takes an element-wise one"),
])
def test_bad_requests_get_a_4xx_with_a_clear_message(client, method, path, body, status, says):
    r = client.post(path, json=body) if method == "post" else client.get(path)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]


def test_a_symlink_out_of_the_root_is_refused(client, smoke_dir, tmp_path):
    (tmp_path / "secret.html").write_text("secret")
    link = smoke_dir / "escape"
    link.symlink_to(tmp_path, target_is_directory=True)
    try:
        r = client.get("/files/escape/secret.html")
        assert r.status_code == 403 and "outside the runs root" in r.json()["detail"]
    finally:
        link.unlink()


# ---------------------------------------------------------------------------------------------- runs


def test_runs_are_listed_and_read_from_their_stores(client, smoke_runs, smoke_dir):
    listed = {r["path"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(smoke_runs) <= set(listed)
    assert listed["moons"]["kind"] == "train" and listed["xor-speed"]["kind"] == "simulation"
    detail = client.post("/api/runs/moons/report").json()  # builds the report: figures appear
    with Run.open(smoke_dir / "moons") as run:
        assert detail["findings"] == [f.text for f in findings(run)]
    published, results = detail["tables"][0], detail["tables"][1]  # the source's numbers first, then the cells
    assert published["header"][:2] == ["quantity", "published"] and len(published["rows"]) == 4
    assert results["header"][0] == "cell" and len(results["rows"]) == 2
    assert {f["name"] for f in detail["figures"]} >= {"loss_curves", "decision_boundary"}
    png = client.get(detail["figures"][0]["png"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert client.get(detail["report_url"]).status_code == 200
    names = [f["name"] for f in detail["figures"]]
    order = [n for n, _, _ in report_page.TRAINING_FIGURES if n in names]
    assert names == order  # in the report's order, not alphabetical
    if not (smoke_dir / report_page.REPORT_NAME).exists():
        report_page.build_report(smoke_dir)
    detail = client.get("/api/runs/xor-speed").json()
    assert detail["suite"] == smoke_dir.name and client.get(detail["suite_url"]).status_code == 200
    assert [f["name"] for f in detail["figures"]][0] == "activations"


# ---------------------------------------------------------------------------------------------- live


def test_live_training_streams_and_its_loss_falls(client):
    r = client.post("/api/live", json={"dataset": "moons", "epochs": 60, "seeds": 3, "depth": 2, "width": 8,
                                       "optimizer": "adam", "lr": 0.02})
    assert r.status_code == 201, r.text
    sid, token = r.json()["id"], r.json()["token"]
    with client.stream("GET", f"/api/live/{sid}/events?token={token}") as s:
        evs = events(s.iter_lines())
    kinds = [e for e, _ in evs]
    assert kinds[0] == "session" and kinds[1] == "start" and kinds[-1] == "done"
    assert {"epoch", "surface", "probe"} <= set(kinds)
    loss = np.concatenate([np.array(d["loss"], dtype=float) for e, d in evs if e == "epoch"], axis=1)  # (seeds, epochs)
    assert loss.shape == (3, 60) and loss[:, -1].mean() < 0.6 * loss[:, 0].mean()
    surf = [d for e, d in evs if e == "surface"][-1]
    assert np.array(surf["mean"], dtype=float).shape == (1, len(surf["gy"]), len(surf["gx"]))  # one arm
    done = evs[-1][1]
    assert done["n"] == 3 and 0.5 < done["test_acc"] <= 1
    for _ in range(50):  # the worker removes its session as it ends
        if not client.get("/api/live").json()["running"]:
            break
        time.sleep(0.1)
    assert client.get("/api/live", headers={"X-Live-Token": token}).json()["sessions"] == []


def test_a_live_gan_streams_samples_and_mode_counts_as_the_study_runner_would(client):
    """model='gan': the arms are the discriminator's activation; every update carries seed 0's samples per arm and,
    per replica, the modes covered and the high-quality share: the same numbers train_gan gives the same
    population (the live view adds nothing to the protocol)."""
    from actlab import data
    from actlab.nn.models import ModelConfig, build
    from actlab.training.adversarial import train_gan
    from actlab.training.loop import TrainConfig
    from actlab.web.sessions import GAN_POINTS

    body = {"model": "gan", "dataset": "ring", "arms": [{"activation": "relu"}, {"activation": "leaky_relu"}],
            "epochs": 3, "seeds": 2, "depth": 1, "width": 16, "optimizer": "adam", "lr": 0.001, "batch_size": 500}
    evs = _live_events(client, body)
    start = next(d for e, d in evs if e == "start")
    assert start["kind"] == "gan" and len(start["modes"]) == 8
    assert [a["label"] for a in start["arms"]] == ["D relu", "D leaky_relu (alpha=0.2)"]
    gan = [d for e, d in evs if e == "gan"]
    modes = np.concatenate([np.array(d["modes"], dtype=float) for d in gan])  # (epochs, replicas)
    assert modes.shape == (3, 4) and np.array(gan[-1]["samples"], dtype=float).shape == (2, 500, 2)
    ds = data.load("ring", n=GAN_POINTS, seed=0)
    members = [ModelConfig(kind="gan", depth=1, width=16, latent=8, output_activation="tanh",
                           discriminator_activation="relu"), ModelConfig(kind="gan", depth=1, width=16, latent=8,
                                                                         output_activation="tanh")]
    h = train_gan(build(members, (2,), ds.task, ds.n_classes, [0, 1]), ds,
                  TrainConfig(epochs=3, optimizer="adam", lr=0.001, betas=(0.5, 0.999), batch_size=500,
                              eval_train=False))
    ref = np.stack([r.extra_stats["modes_covered"][1][:, 0] for r in h.probes])
    np.testing.assert_array_equal(modes, ref)
    done = evs[-1][1]
    assert done["modes_total"] == 8 and all(0 <= a["lo"] <= a["modes"] <= a["hi"] <= 8 for a in done["arms"])


def _live_events(client, body):
    r = client.post("/api/live", json=body)
    assert r.status_code == 201, r.text
    with client.stream("GET", f"/api/live/{r.json()['id']}/events?token={r.json()['token']}") as s:
        return events(s.iter_lines())


def test_arms_train_side_by_side_exactly_as_each_would_alone(client):
    """Two arms in one population: the same data, seeds and order as each trained alone (float32 tolerance),
    and every per-arm view has one entry per arm."""
    base = {"dataset": "moons", "epochs": 30, "seeds": 3, "depth": 2, "width": 8, "train_fraction": 0.6}
    both = _live_events(client, {**base, "arms": [{"activation": "relu"}, {"activation": "tanh",
                                                                           "init": "xavier_normal"}]})
    alone = _live_events(client, {**base, "activation": "tanh", "init": "xavier_normal"})
    start = both[1][1]
    assert [(a["label"], a["start"], a["stop"]) for a in start["arms"]] == [
        ("relu + default", 0, 3), ("tanh + xavier_normal", 3, 6)]
    assert start["arms"][0]["color"] != start["arms"][1]["color"]
    assert len(start["train"]) == 240 and len(start["test"]) == 160  # 60 % of 400 points train
    assert start["widths"] == [2, 8, 8, 1]

    def losses(evs):
        return np.concatenate([np.array(d["loss"], dtype=float) for e, d in evs if e == "epoch"], axis=1)

    assert losses(both).shape == (6, 30)
    np.testing.assert_allclose(losses(both)[3:], losses(alone), rtol=2e-4)
    surf = [d for e, d in both if e == "surface"][-1]
    ny, nx = len(surf["gy"]), len(surf["gx"])
    assert np.array(surf["mean"], dtype=float).shape == (2, ny, nx)
    assert np.array(surf["first"], dtype=float).shape == (2, ny, nx)
    assert len(surf["hidden"]) == 2 and len(surf["hidden"][0]) == 2  # per arm, per hidden layer
    assert np.array(surf["hidden"][1][0]["points"], dtype=float).shape == (160, 2)
    assert np.array(surf["neurons"]["maps"], dtype=float).shape == (2, 2, 8, 24, 24)  # arm, layer, unit, y, x
    assert [np.array(w, dtype=float).shape for w in surf["weights"][0]] == [(2, 8), (8, 8), (8, 1)]
    assert np.array(surf["trace"]["a1"], dtype=float).shape == (2, 2)  # arm, point
    alone_surf = [d for e, d in alone if e == "surface"][-1]
    np.testing.assert_allclose(np.array(surf["mean"][1], dtype=float), np.array(alone_surf["mean"][0], dtype=float),
                               atol=2e-4)
    probe = [d for e, d in both if e == "probe"][-1]
    assert np.array(probe["grad_norm"], dtype=float).shape == (2, 3)
    done = both[-1][1]
    assert [(a["label"], a["n"]) for a in done["arms"]] == [("relu + default", 3), ("tanh + xavier_normal", 3)]
    assert done["arms"][1]["test_acc"] == pytest.approx(alone[-1][1]["test_acc"], abs=1e-6)


def test_l2_regularisation_shrinks_the_weights(client):
    base = {"dataset": "moons", "epochs": 40, "seeds": 2, "depth": 1, "width": 8, "optimizer": "sgd", "lr": 0.1}

    def norm(body):
        w = [d for e, d in _live_events(client, body) if e == "surface"][-1]["weights"][0]
        return sum(np.abs(np.array(m, dtype=float)).sum() for m in w)

    assert norm({**base, "weight_decay": 0.05}) < 0.8 * norm(base)


def test_at_most_max_trainings_at_once(client):
    """The two slots are held deterministically (sessions registered with the server's manager, never started),
    so no training can finish and free one before the third request, however loaded the machine."""
    from actlab.web.sessions import LiveRequest

    live = client.app.state.live
    # an earlier test's training has sent its last event; its worker thread gives the slot back just after
    assert _wait(lambda: not live.sessions), list(live.sessions)
    held = [live.create(LiveRequest(epochs=5)) for _ in range(2)]
    r = client.post("/api/live", json={"epochs": 5})
    assert r.status_code == 429 and "the most this server allows" in r.json()["detail"]
    live.sessions.pop(held[0].id)
    made = client.post("/api/live", json={"epochs": 5})
    assert made.status_code == 201
    mine = made.json()
    assert client.delete(f"/api/live/{mine['id']}", headers={"X-Live-Token": mine["token"]}).status_code == 200
    live.sessions.clear()


def _wait(pred, timeout=15.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_pause_resume_and_a_client_that_goes_away_stops_its_training(server):
    big = {"dataset": "spirals", "points": 1000, "epochs": 2000, "seeds": 16, "width": 64, "depth": 4}
    made = httpx.post(f"{server}/api/live", json=big, headers=WRITE).json()
    sid, mine = made["id"], {**WRITE, "X-Live-Token": made["token"]}
    with httpx.Client(timeout=30) as c, c.stream("GET", f"{server}/api/live/{sid}/events?token={made['token']}") as s:
        lines = s.iter_lines()
        seen = [line for line in (next(lines) for _ in range(12))]
        assert any(line.startswith("event: epoch") or line.startswith("event: surface") for line in seen)

        def epoch():
            ss = httpx.get(f"{server}/api/live", headers=mine).json()["sessions"]
            return ss[0]["epoch"] if ss else None

        assert httpx.post(f"{server}/api/live/{sid}/pause", headers=WRITE).status_code == 404  # not its owner
        assert httpx.post(f"{server}/api/live/{sid}/pause", headers=mine).json()["state"] == "paused"
        time.sleep(0.5)
        e0 = epoch()
        time.sleep(1.0)
        assert epoch() == e0  # paused: no epoch passes
        assert httpx.post(f"{server}/api/live/{sid}/step", headers=mine).status_code == 200
        assert _wait(lambda: epoch() == e0 + 1)  # one step: exactly one more epoch
        time.sleep(1.0)
        assert epoch() == e0 + 1
        httpx.post(f"{server}/api/live/{sid}/resume", headers=mine)
        assert _wait(lambda: (epoch() or 0) > e0 + 1)
        r = httpx.post(f"{server}/api/live/{sid}/step", headers=mine)  # running: a step makes no sense
        assert r.status_code == 409 and "pause it before stepping" in r.json()["detail"]
    # the stream is closed: the worker stops at its next epoch, long before 2000 epochs
    assert _wait(lambda: httpx.get(f"{server}/api/live").json()["running"] == 0, timeout=20)


def test_bounded_concurrent_load_keeps_the_server_up(server):
    """200 requests, 16 at a time, on 127.0.0.1 only; every answer is a success or a 429, never an error."""
    reqs = [("GET", "/api/health", None), ("GET", "/api/activations", None), ("GET", "/api/runs", None),
            ("POST", "/api/activations/curves", {"items": [{"name": "relu"}], "points": 401}),
            ("POST", "/api/live", {"epochs": 1, "seeds": 1}), ("GET", "/api/runs/moons", None),
            ("GET", "/static/app.js", None), ("POST", "/api/live", {"depth": 50})]

    def one(i: int) -> int:
        method, path, body = reqs[i % len(reqs)]
        with httpx.Client(base_url=server, timeout=60, headers=WRITE) as c:
            r = c.request(method, path, json=body)
            if r.status_code == 201:  # a live session nobody streams: give it back
                c.delete(f"/api/live/{r.json()['id']}", headers={"X-Live-Token": r.json()["token"]})
            return r.status_code

    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(one, range(200)))
    assert time.monotonic() - t0 < 120
    assert set(codes) <= {200, 201, 422, 429} and codes.count(422) == 25  # the depth=50 requests, exactly
    assert httpx.get(f"{server}/api/health").json()["ok"]


# ------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def page(server):
    exe = chromium()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors
        yield pg
        browser.close()


def test_browser_activation_curves(page, server, tmp_path):
    page.goto(f"{server}/#activations?acts=relu,elu&elu.alpha=0.5")
    page.wait_for_function("window.actlab.plots && window.actlab.plots.act && window.actlab.curves.curves.length == 2")
    data = page.evaluate("window.actlab.plots.act.data")  # what uPlot draws: [x, relu, relu', elu, elu']
    x = np.array(data[0])
    np.testing.assert_allclose(data[1], np.maximum(x, 0), atol=1e-7)
    np.testing.assert_allclose(np.array(data[3]), np.where(x > 0, x, 0.5 * np.expm1(x)), atol=1e-7)
    away = np.abs(x) > 1e-9
    np.testing.assert_allclose(np.array(data[4])[away], np.where(x > 0, 1.0, 0.5 * np.exp(x))[away], atol=1e-7)
    page.check("#act-list input[value=gelu]")
    page.wait_for_function("window.actlab.curves.curves.length == 3")
    assert "gelu" in page.evaluate("location.hash") and page.locator("#act-props .card").count() == 3
    legend = page.locator("#act-plot .legend .key")  # names with their line styles, not colour squares
    assert legend.all_inner_texts() == ["relu", "relu′", "elu(alpha=0.5)", "elu(alpha=0.5)′", "gelu", "gelu′"]
    assert page.locator("#act-plot .legend line[stroke-dasharray]").count() == 3  # the derivatives dashed
    box = page.locator("#act-plot .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)  # x = 2.5 on [-5, 5]
    readout = page.inner_text("#act-plot .readout")
    xv = float(readout.split(":")[0].split()[1])
    assert 2.3 < xv < 2.7 and f"relu {float(f'{xv:.3g}'):g}" in readout and "relu′ 1" in readout
    page.screenshot(path=tmp_path / "activations.png")
    assert page.errors == []


def test_browser_gated_entries_are_listed_and_drawn_with_their_heat_map(page, server, tmp_path):
    page.goto(f"{server}/#activations?acts=swiglu,gelu")
    page.wait_for_function("window.actlab.curves && window.actlab.curves.curves.length == 2")
    page.wait_for_selector("#act-props canvas.heat")
    inside = page.evaluate("""(() => { const box = document.querySelector('#act-list').getBoundingClientRect();
      return [...document.querySelectorAll('#act-list label')].filter(l => ['glu', 'bilinear', 'reglu', 'geglu',
        'swiglu'].includes(l.textContent.trim())).map(l => l.getBoundingClientRect().right <= box.right + 1); })()""")
    assert inside == [True] * 5  # every gated entry can be picked, none clipped out of the list
    card = page.locator("#act-props .card").first.inner_text()
    assert "Two-input properties" in card and "x * swish(x) (the diagonal a = b)" in card
    assert "Variance-preserving" not in card  # the diagonal's cautions are not the FFN's
    page.screenshot(path=tmp_path / "gated.png")
    assert page.errors == []


def test_browser_theory_panel_shows_the_mean_field_prediction(page, server, tmp_path):
    from actlab.catalog.theory import meanfield

    page.goto(f"{server}/#activations?acts=tanh&sw2=1.5&sb2=0.05")
    page.wait_for_function("window.actlab.theory && window.actlab.theory.sw2 == 1.5", timeout=60_000)
    ref = meanfield.propagation("tanh", 1.5, 0.05, points=meanfield.COARSE_POINTS)
    table = page.inner_text("#theory-table")
    assert "ordered" in table and f"{ref.chi1:.4f}"[:6] in table and "σ_w² = 1.761" in table
    page.fill("#theory-sw2", "3")
    page.dispatch_event("#theory-sw2", "change")
    page.wait_for_function("window.actlab.theory.sw2 == 3 && window.actlab.theory.prediction.phase == 'chaotic'",
                           timeout=60_000)
    assert "sw2=3" in page.evaluate("location.hash")
    assert page.locator("#theory-chi canvas").count() == 1 and page.locator("#theory-c canvas").count() == 1
    from actlab.catalog import palette

    assert page.evaluate("window.actlab.theoryColor") == palette.activation_color("tanh")  # tanh's, as everywhere
    page.screenshot(path=tmp_path / "theory.png", full_page=True)
    assert page.errors == []


@pytest.mark.parametrize(("logits", "temperature"), [([2.0, 1.0, 0.5, -1.0], 1.0), ([3, 3], 0.1), ([0, 5, -5], 7.5)])
def test_softmax_api_gives_probabilities_and_the_jacobian(client, logits, temperature):
    """p against torch.softmax, J against the closed form (diag(p) − p pᵀ) / T written out independently."""
    r = client.post("/api/activations/softmax", json={"logits": logits, "temperature": temperature})
    assert r.status_code == 200, r.text
    d = r.json()
    z = np.array(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(d["p"], p, rtol=1e-8)
    np.testing.assert_allclose(d["jacobian"], (np.diag(p) - np.outer(p, p)) / temperature, atol=1e-9)
    np.testing.assert_allclose(np.array(d["jacobian"]).sum(axis=1), 0.0, atol=1e-9)
    assert d["argmax"] == int(np.argmax(logits)) and d["entropy"] == pytest.approx(-(p * np.log(p)).sum(), rel=1e-7)


def test_browser_parameter_sliders_span_the_allowed_range_and_redraw(page, server, tmp_path):
    page.goto(f"{server}/#activations?acts=leaky_relu")
    page.wait_for_function("window.actlab.curves && window.actlab.curves.curves.length == 1")
    slider = page.locator("input[aria-label='leaky_relu alpha slider']")
    # its catalog range 0 <= α < 1: the open end itself is not allowed, so the slider stops just inside it
    assert float(slider.get_attribute("min")) == 0.0 and 0.99 <= float(slider.get_attribute("max")) < 1.0
    slider.evaluate("e => { e.value = e.max; e.dispatchEvent(new Event('change')); }")  # its end: accepted
    page.wait_for_function("window.actlab.curves.curves[0].params.alpha > 0.99")
    slider.evaluate("e => { e.value = '0.3'; e.dispatchEvent(new Event('change')); }")
    page.wait_for_function("window.actlab.curves.curves[0].params.alpha == 0.3")
    assert "leaky_relu.alpha=0.3" in page.evaluate("location.hash")
    assert page.input_value("input[name='leaky_relu.alpha']") == "0.3"
    for name in ("elu", "swish"):  # the thumb rests on the default, 1, not on a rounded step's 0.99
        page.goto(f"{server}/#activations?acts={name}")
        page.wait_for_function(f"window.actlab.curves && window.actlab.curves.curves[0].name == '{name}'")
        assert float(page.locator(f"input[aria-label$='slider'][aria-label^='{name}']").input_value()) == 1.0
    page.goto(f"{server}/#activations?acts=relu,gelu,tanh,elu,swish,mish")  # six: the most drawn at once
    page.wait_for_function("window.actlab.curves && window.actlab.curves.curves.length == 6")
    assert page.locator("#act-list input[value=sigmoid]").is_disabled()
    assert "At most 6 at once" in page.inner_text("#act-list")
    assert page.errors == []


def test_browser_selection_guide_shows_the_sources_tables(page, server, tmp_path):
    page.goto(f"{server}/#activations?acts=relu")
    page.wait_for_function("window.actlab.guide")
    page.click("#act-guide summary")
    assert page.locator("#act-guide-body table").count() == 2
    assert page.locator("#act-guide-body ol li").count() == len(guide.FLOWCHART)
    assert "actlab run selu-selfnorm" in page.inner_text("#act-guide-body")
    assert "a convention, not an empirical claim" in page.inner_text("#act-guide-body")
    assert "verdicts (stored runs)" in page.inner_text("#act-guide-body")  # the smoke runs decide claims
    assert page.locator("#act-guide-body .verdict").count() >= 1
    page.wait_for_selector("#act-props .card-claims li")  # relu's card lists the claims naming it
    assert "relu" in page.inner_text("#act-props .card-claims").lower()
    assert page.errors == []


def test_browser_softmax_view_sets_logits_and_temperature(page, server, tmp_path):
    page.goto(f"{server}/#activations?acts=relu&sm=3,1,0&T=0.5")
    page.wait_for_function("window.actlab.softmax && window.actlab.softmax.temperature == 0.5")
    assert page.locator(".sm-bar").count() == 3 and page.locator(".sm-jac tbody tr").count() == 3
    p = page.evaluate("window.actlab.softmax.p")
    z = np.array([3, 1, 0]) / 0.5
    np.testing.assert_allclose(p, np.exp(z) / np.exp(z).sum(), rtol=1e-8)
    page.click("text=+ logit")
    page.wait_for_function("window.actlab.softmax.logits.length == 4")
    assert "sm=3%2C1%2C0%2C0" in page.evaluate("location.hash") or "sm=3,1,0,0" in page.evaluate("location.hash")
    page.locator("#act-softmax").screenshot(path=tmp_path / "softmax.png")
    assert page.errors == []


def test_theory_api_matches_the_theory_module(client):
    from actlab.catalog.theory import meanfield

    r = client.post("/api/activations/theory", json={"name": "tanh", "sb2": 0.05})
    assert r.status_code == 200, r.text
    body = r.json()
    sw2 = (5 / 3) ** 2  # tanh's paired init: LeCun with gain 5/3
    assert body["sw2"] == pytest.approx(meanfield.get("tanh").init_gain() ** 2)
    ref = meanfield.propagation("tanh", body["sw2"], 0.05, points=meanfield.COARSE_POINTS)
    assert body["prediction"]["chi1"] == pytest.approx(ref.chi1) and body["prediction"]["phase"] == ref.phase
    assert body["critical_sw2"] == pytest.approx(meanfield.critical_sw2("tanh", 0.05), rel=1e-6)
    i = body["chi"]["sw2"].index(2.0)
    assert body["chi"]["chi1"][i] == pytest.approx(meanfield.chi1("tanh", 2.0, 0.05), rel=1e-5)
    assert abs(body["sw2"] - sw2) < 0.1
    relu = client.post("/api/activations/theory", json={"name": "relu", "sw2": 2.5, "sb2": 0.1}).json()
    assert relu["prediction"]["q_star"] is None and relu["c_map"] is None and relu["critical_sw2"] == 2.0
    gelu = client.post("/api/activations/theory", json={"name": "gelu"})  # no edge of chaos reached: null, not 500
    assert gelu.status_code == 200 and gelu.json()["critical_sw2"] is None
    assert client.post("/api/activations/theory", json={"name": "softmax"}).status_code == 400
    assert client.post("/api/activations/theory", json={"name": "tanh", "sw2": 0}).status_code == 422
    assert client.post("/api/activations/theory", json={"name": "os:system"}).status_code == 422


def test_browser_every_view_fits_a_phone(page, server, tmp_path):
    """At 390×844 (a phone) each view is one column, the controls above the views, nothing wider than the screen
    (wide tables scroll within themselves); the live training's cards and charts fit too."""
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.goto(f"{server}/#activations?acts=relu,gelu")
        page.wait_for_selector("#act-props .card")
        if not page.evaluate("document.querySelector('#act-guide').open"):  # the page may come with it open
            page.click("#act-guide summary")
        page.wait_for_selector("#act-guide-body table")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        aside, content = (page.locator("#view-activations > aside").bounding_box(),
                          page.locator("#view-activations > .content").bounding_box())
        assert content["y"] >= aside["y"] + aside["height"] - 1 and content["width"] <= 390  # stacked
        page.goto(f"{server}/#live?epochs=8&seeds=2&arms=relu,tanh")
        page.click("#live-start")
        page.wait_for_function("window.actlab.live && window.actlab.live.finished", timeout=60_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for box in page.locator("#live-arms .card, #live-loss").all():
            b = box.bounding_box()
            assert b["x"] >= 0 and b["x"] + b["width"] <= 390
        card, form = page.locator("#live-arms .card").first.bounding_box(), page.locator("#live-form").bounding_box()
        assert card["y"] + card["height"] <= form["y"]  # on a phone the arms come first, then the settings
        page.goto(f"{server}/#runs")
        page.wait_for_selector("#runs-list td")
        page.locator("#runs-list td").first.click()
        page.wait_for_timeout(500)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=tmp_path / "phone.png", full_page=True)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
    assert page.errors == []


def test_live_features_are_what_the_network_sees_and_widths_are_per_layer(client):
    """Playground's input features: on XOR, x₁x₂ alone separates the quadrants and x₁ alone cannot (the label
    does not depend on it); per-layer widths build that network (the start event, the diagram's weights, the
    hidden views say so)."""
    base = {"dataset": "xor", "noise": 0.0, "epochs": 40, "seeds": 2, "optimizer": "adam", "lr": 0.05}
    product = _live_events(client, {**base, "features": ["x1x2"], "widths": [4]})
    alone = _live_events(client, {**base, "features": ["x1"], "widths": [4]})
    assert product[-1][1]["test_acc"] >= 0.95 and alone[-1][1]["test_acc"] <= 0.7
    wide = _live_events(client, {**base, "epochs": 2, "features": ["x1", "x2", "x1^2", "sin_x2"], "widths": [3, 7, 5]})
    start = wide[1][1]
    assert start["widths"] == [4, 3, 7, 5, 1] and start["features"] == ["X₁", "X₂", "X₁²", "sin(X₂)"]
    surf = [d for e, d in wide if e == "surface"][-1]
    assert [np.array(w, dtype=float).shape for w in surf["weights"][0]] == [(4, 3), (3, 7), (7, 5), (5, 1)]
    assert len(surf["hidden"][0]) == 3 and np.array(surf["neurons"]["maps"][0][1], dtype=float).shape == (7, 24, 24)
    # drawn over the plane of the 2-D points whatever the network sees: the box of the training points ± 0.5
    pts = np.array(start["train"], dtype=float)
    assert surf["gx"][0] == pytest.approx(pts[:, 0].min() - 0.5, abs=1e-4)


def test_the_spirals_preset_learns_them_where_the_default_does_not(client):
    """The spirals' preset (less noise, Adam at lr 0.01) is there because the default SGD at lr 0.05 does not learn
    them in 300 epochs: checked on the live view's own training, 2 arms × 2 seeds."""
    base = {"dataset": "spirals", "epochs": 300, "seeds": 2, "arms": [{"activation": "relu"}, {"activation": "tanh"}]}
    preset = _live_events(client, {**base, **sessions.PRESETS["spirals"]})[-1][1]["arms"]
    plain = _live_events(client, {**base, "noise": 0.05, "optimizer": "sgd", "lr": 0.05})[-1][1]["arms"]
    assert min(a["test_acc"] for a in preset) >= 0.9 and max(a["test_acc"] for a in plain) <= 0.8


def test_features_are_their_formulas():
    x = torch.randn(64, 2, dtype=torch.float64)
    got = sessions.featurize(x, list(sessions.FEATURES)).numpy()
    a, b = x[:, 0].numpy(), x[:, 1].numpy()
    np.testing.assert_allclose(got, np.stack([a, b, a * a, b * b, a * b, np.sin(a), np.sin(b)], 1),
                               rtol=1e-15, atol=1e-15)
    assert list(sessions.FEATURES) == list(sessions.Feature.__args__)  # the request admits exactly these


def test_the_preview_is_the_data_the_training_gets(client):
    """What the page draws before Start is what the training then trains on: the same points and labels, arms'
    labels and colours, layer widths; an unset noise is the dataset's own (PRESETS)."""
    body = {"dataset": "spirals", "points": 200, "train_fraction": 0.5, "epochs": 1, "seeds": 1,
            "arms": [{"activation": "relu"}, {"activation": "gelu"}], "widths": [5, 6],
            "features": ["x1", "x2", "x1x2"]}
    p = client.post("/api/live/preview", json=body)
    assert p.status_code == 200, p.text
    p, start = p.json(), _live_events(client, body)[1][1]
    for key in ("train", "train_y", "test", "test_y", "widths", "features"):
        assert p[key] == start[key], key
    assert p["widths"] == [3, 5, 6, 1] and p["noise"] == 0.05
    assert [(a["label"], a["color"]) for a in p["arms"]] == [(a["label"], a["color"]) for a in start["arms"]]
    presets = client.get("/api/live/presets").json()
    assert presets["datasets"]["spirals"] == {"noise": 0.05, "optimizer": "adam", "lr": 0.01}
    assert presets["features"]["x1x2"] == "X₁X₂"
    assert set(presets["datasets"]) == set(sessions.DATASETS) | {"ring", "grid"}
    gan = client.post("/api/live/preview", json={"model": "gan", "dataset": "ring",
                                                "arms": [{"activation": "relu"}, {"activation": "leaky_relu"}]}).json()
    assert gan["kind"] == "gan" and len(gan["modes"]) == 8
    assert [a["label"] for a in gan["arms"]] == ["D relu", "D leaky_relu (alpha=0.2)"]  # as the training names them


def test_live_intervals_stay_inside_an_accuracy_s_bounds(client):
    evs = _live_events(client, {"dataset": "moons", "epochs": 3, "seeds": 2, "depth": 1, "width": 4})
    done = evs[-1][1]
    assert all(0 <= a["lo"] <= a["test_acc"] <= a["hi"] <= 1 for a in done["arms"])


def test_browser_a_gan_trains_live_over_the_modes(page, server, tmp_path):
    page.goto(f"{server}/#live")
    page.select_option("select[name=model]", "gan")  # the GAN's defaults, its datasets, its fields
    assert page.eval_on_selector_all("select[name=dataset] option", "os => os.map(o => o.value)") == ["ring", "grid"]
    assert page.input_value("select[name=optimizer]") == "adam" and not page.is_visible("input[name=noise]")
    page.select_option("select[name=dataset]", "grid")
    page.fill("input[name=epochs]", "3")
    page.click("#layer-remove")  # one hidden layer of the GAN's 64 units, in the generator and the discriminator
    assert page.inner_text("#layer-count") == "1 hidden layer" and page.is_disabled("#layer-remove")
    assert not page.is_visible("#live-features")  # a GAN's discriminator sees the samples themselves
    page.click("#live-start")
    page.wait_for_function("window.actlab.live && window.actlab.live.finished", timeout=90_000)
    assert page.locator("#live-arms canvas.gan").count() == 2
    assert "of 25 modes" in page.inner_text("#live-status")
    assert "Modes covered of 25" in page.inner_text("#live-loss-title")
    assert not page.is_visible("#live-grad")  # the classifier's charts are hidden for a GAN
    pixel = page.evaluate("Array.from(document.querySelector('#live-arms canvas.gan').getContext('2d')"
                          ".getImageData(5, 5, 1, 1).data)")
    assert pixel[3] == 255  # drawn
    assert "model=gan" in page.evaluate("location.hash") and "dataset=grid" in page.evaluate("location.hash")
    assert "widths=64&" in page.evaluate("location.hash")
    page.screenshot(path=tmp_path / "gan.png", full_page=True)
    assert page.errors == []


def test_browser_two_activations_train_side_by_side_live(page, server, tmp_path):
    page.goto(f"{server}/#live?dataset=circles&epochs=120&seeds=3&optimizer=adam&lr=0.02&width=16&arms=relu,tanh")
    assert page.input_value("select[name=dataset]") == "circles"  # the state came from the URL
    assert [page.input_value(f"select[name=arm{i}]") for i in range(3)] == ["relu", "tanh", ""]
    page.click("#live-start")
    page.wait_for_function("window.actlab.live && window.actlab.live.surfaces >= 2", timeout=60_000)
    assert page.evaluate("window.actlab.live.finished") is False  # the views update while it trains
    page.wait_for_function("window.actlab.live && window.actlab.live.finished", timeout=60_000)
    live = page.evaluate("({arms: window.actlab.live.arms.map(a => a.label), train: window.actlab.live.armLoss, "
                         "test: window.actlab.live.armTestLoss, sums: window.actlab.live.surfaceSums})")
    assert live["arms"] == ["relu", "tanh"]
    for train, test, sums in zip(live["train"], live["test"], live["sums"], strict=True):
        assert len(train) == len(test) == 120 and train[-1] < 0.6 * train[0]  # both loss curves fell
        assert len(set(sums)) >= 3  # both surfaces were redrawn as the networks changed
    assert page.locator("#live-arms canvas.surface").count() == 2
    assert page.locator("#live-arms .diagram svg").count() == 2
    assert page.locator("#live-arms .tiles canvas").count() == 2 * 2 * 8  # arms × layers × units
    for i in range(2):  # each surface was drawn in full (an opaque pixel in the middle of the plot)
        pixel = page.evaluate(f"Array.from(document.querySelectorAll('#live-arms canvas.surface')[{i}].getContext('2d')"
                              ".getImageData(160, 140, 1, 1).data)")
        assert pixel[3] > 0
    colours = page.evaluate("window.actlab.live.arms.map(a => a.color)")
    assert colours == ["#D55E00", "#009E73"]  # the palette's relu and tanh, as in the reports
    assert "done" in page.inner_text("#live-status") and "n = 3 seeds each" in page.inner_text("#live-status")
    dead = page.evaluate("[window.actlab.live.deadPlot.scales.y.min, window.actlab.live.deadPlot.scales.y.max]")
    assert dead == [0, 1]  # a fraction's axis, even when every value is 0 (it once spanned 0 to 100)
    # one colour scale in every shaded view: each neuron tile's pixels lie on the surfaces' blue–white–red ramp,
    # the network's edges are red (+) or blue (−), the points in the class colours
    off_ramp = page.evaluate("""(() => {
      const on = (r, g, b) => {
        if (Math.abs(b - 255) < 14) { const p = (r - 70) / 370; return Math.abs(g - (130 + 250 * p)) < 14; }
        if (Math.abs(r - 255) < 14) {
          const p = 0.5 + (255 - g) / 300; return Math.abs(b - (255 - 380 * (p - 0.5))) < 14; }
        return false; };
      let bad = 0, all = 0;
      for (const c of document.querySelectorAll('#live-arms .tiles canvas')) {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let k = 0; k < d.length; k += 4) { all++; if (!on(d[k], d[k + 1], d[k + 2])) bad++; } }
      return [bad, all]; })()""")
    assert off_ramp[1] > 1000 and off_ramp[0] <= 0.01 * off_ramp[1], off_ramp
    strokes = set(page.eval_on_selector_all("#live-arms .diagram line", "ls => ls.map(l => l.getAttribute('stroke'))"))
    assert strokes == {"#b3001b", "#0b3d91"}
    page.screenshot(path=tmp_path / "live.png", full_page=True)
    assert page.errors == []


CLASS_PIXELS = """Array.from(document.querySelectorAll('#live-arms canvas.surface')).map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let k = 0; k < d.length; k += 4)
    if ((d[k] === 0xb3 && d[k + 1] === 0 && d[k + 2] === 0x1b) ||
        (d[k] === 0x0b && d[k + 1] === 0x3d && d[k + 2] === 0x91)) n++;
  return n; })"""


def test_browser_live_draws_the_data_before_start_with_the_controls_on_top(page, server, tmp_path):
    """Playground's feel at 1280×800: the data drawn in every arm's card as soon as the page opens; Start, the epoch
    counter and the status above the fold with each surface and its loss sparkline; a dataset picked brings its
    settings; layers and neurons added with + and −; features checked; then the training fills the same cards."""
    page.set_viewport_size({"width": 1280, "height": 800})
    try:
        page.goto("about:blank")  # a fresh page: the shared one may hold an earlier training and form
        page.goto(f"{server}/#live?arms=relu,tanh,sigmoid,gelu&epochs=40&seeds=2")
        page.wait_for_function("window.actlab.preview && window.actlab.preview.cards.length === 4")
        assert page.evaluate("window.actlab.live") is None  # nothing trained yet
        assert min(page.evaluate(CLASS_PIXELS)) > 200  # the points, in their class colours, in each card
        assert page.inner_text("#live-epoch") == "000,000" and "Press Start" in page.inner_text("#live-status")
        for sel in ("#live-start", "#live-epoch", "#live-status", "#live-arms .card canvas.surface",
                    "#live-arms .card canvas.spark"):
            b = page.locator(sel).first.bounding_box()
            assert b["y"] >= 0 and b["y"] + b["height"] <= 800, sel
        page.screenshot(path=tmp_path / "live-before.png")
        page.select_option("select[name=dataset]", "spirals")  # the spirals' settings: less noise, Adam
        page.wait_for_function("actlab.preview.request.dataset === 'spirals' && actlab.preview.data.noise === 0.05")
        assert page.input_value("select[name=optimizer]") == "adam" and page.input_value("input[name=lr]") == "0.01"
        page.click("#layer-add")
        page.click("[aria-label='more neurons in layer 3']")
        page.wait_for_function("actlab.preview.data.widths.join() === '2,8,8,9,1'")
        assert "widths=8%2C8%2C9" in page.evaluate("location.hash")
        assert page.inner_text("#layer-count") == "3 hidden layers"
        page.check("[aria-label='feature X₁X₂']")
        page.wait_for_function("actlab.preview.data.widths[0] === 3")
        labels = page.eval_on_selector_all("#live-arms .card:first-child .diagram text",
                                           "ts => ts.map(t => t.textContent)")
        assert [t for t in labels if not t.startswith("+")] == ["X₁", "X₂", "X₁X₂"]
        for f in ("X₁", "X₂"):
            page.uncheck(f"[aria-label='feature {f}']")
        page.click("[aria-label='feature X₁X₂']")
        assert page.is_checked("[aria-label='feature X₁X₂']")  # the last feature stays: the network needs an input
        page.check("[aria-label='feature X₁']")
        page.check("[aria-label='feature X₂']")
        page.click("#live-start")
        page.wait_for_function("window.actlab.live && window.actlab.live.finished", timeout=90_000)
        live = page.evaluate("({first: actlab.live.firstFrameMs, frames: actlab.live.frames, "
                             "widths: actlab.live.data.widths})")
        assert live["first"] > 0 and live["frames"] >= 2 and live["widths"] == [3, 8, 8, 9, 1]
        assert page.inner_text("#live-epoch") == "000,040"
        spark = page.evaluate("Array.from(document.querySelector('#live-arms canvas.spark').getContext('2d')"
                              ".getImageData(0, 0, 300, 64).data).filter((v, i) => i % 4 === 3 && v > 0).length")
        assert spark > 100  # the loss sparkline drawn in the card
        assert "test accuracy" in page.locator("#live-arms .arm-now").first.inner_text()
        page.screenshot(path=tmp_path / "live-after.png", full_page=True)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
    assert page.errors == []


def test_browser_live_form_keeps_what_the_user_set_and_says_what_it_refuses(page, server):
    """A link's own settings beat the dataset's preset; the settings survive a visit to another view; a double click
    on Start starts one training; a refused setting is said in the form's words beside Start, its box marked."""
    page.goto("about:blank")
    page.goto(f"{server}/#live?dataset=spirals&optimizer=sgd&lr=0.3&epochs=5&seeds=1&arms=relu,elu:orthogonal")
    page.wait_for_function("window.actlab.preview && window.actlab.preview.cards")
    assert page.input_value("select[name=optimizer]") == "sgd" and page.input_value("input[name=lr]") == "0.3"
    assert page.input_value("input[name=noise]") == "0.05"  # the link set no noise: the spirals' own
    page.click("#tabs a[data-view=activations]")
    page.wait_for_selector("#act-props .card")
    page.click("#tabs a[data-view=live]")
    page.wait_for_function("location.hash.includes('lr=0.3')")
    assert page.input_value("select[name=arm1]") == "elu" and page.input_value("select[name=arm1_init]") == "orthogonal"
    page.fill("input[name=lr]", "0")
    page.dispatch_event("input[name=lr]", "change")
    page.wait_for_function("document.querySelector('#live-status').innerText.startsWith('Cannot train these settings')")
    assert "learning rate" in page.inner_text("#live-status") and page.locator("input[name=lr].bad").count() == 1
    page.fill("input[name=lr]", "0.3")
    page.dispatch_event("input[name=lr]", "change")
    page.wait_for_function("document.querySelector('#live-status').innerText.startsWith('Ready')")
    assert page.locator("#live-form .bad").count() == 0
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/api/live") else None)
    page.dblclick("#live-start")
    page.wait_for_function("window.actlab.live && window.actlab.live.finished", timeout=60_000)
    assert len(posts) == 1  # a double click starts one training
    assert "done" in page.inner_text("#live-status")
    assert [e for e in page.errors if "status of 422" not in e] == []  # the refused lr's answer, said above
    page.errors.clear()  # the page is shared by the tests after this one


def test_browser_says_when_it_waits_for_the_machine(page, server):
    """Updates that come slowly (a busy machine, or a big population: here each epoch takes a while and an update
    comes every 20 epochs) make the status say it is waiting, and for how long, instead of standing still."""
    page.goto("about:blank")
    page.goto(f"{server}/#live?dataset=moons&points=1000&train_pct=75&batch_size=1&seeds=16&widths=64,64,64,64,64,64"
              "&epochs=2000&arms=relu,tanh,gelu,elu")  # seconds per epoch: longer than the wait the page allows
    page.click("#live-start")
    page.wait_for_function("document.querySelector('#live-status').innerText.startsWith('Waiting for the machine')",
                           timeout=30_000)
    assert page.locator("#live-status.waiting").count() == 1 and page.evaluate("actlab.live.waited") >= 1500
    page.click("#live-reset")
    assert page.inner_text("#live-status").startswith("Ready")
    assert page.locator("#live-status.waiting").count() == 0
    assert _wait(lambda: httpx.get(f"{server}/api/live").json()["running"] == 0, timeout=60)  # ends at its epoch's end
    assert page.errors == []


def test_browser_live_pause_and_step(page, server):
    page.goto(f"{server}/#live?dataset=spirals&epochs=2000&seeds=4&width=16&depth=3&arms=relu,gelu:xavier_normal")
    page.click("#live-start")
    page.wait_for_function("window.actlab.live && window.actlab.live.epochs.length > 3", timeout=60_000)
    assert page.is_disabled("#live-step")  # running: nothing to step
    page.click("#live-pause")
    page.wait_for_function("window.actlab.live.paused && !document.querySelector('#live-step').disabled")
    page.wait_for_timeout(800)
    e0, s0 = page.evaluate("[window.actlab.live.epochs.at(-1), window.actlab.live.surfaces]")
    page.click("#live-step")
    page.wait_for_function(f"window.actlab.live.epochs.at(-1) === {e0 + 1} && window.actlab.live.surfaces > {s0}")
    page.wait_for_timeout(800)
    assert page.evaluate("window.actlab.live.epochs.at(-1)") == e0 + 1  # one step, one epoch
    assert "(paused)" in page.inner_text("#live-status")
    page.click("#live-reset")
    assert page.errors == []


def test_browser_opens_a_stored_run(page, server, tmp_path):
    page.goto(f"{server}/#runs?run=xor-speed")
    page.wait_for_function("window.actlab.run && window.actlab.run.name == 'xor-speed'")
    if page.locator("#build-report").count():
        page.click("#build-report")
        page.wait_for_selector("#run-detail figure img", timeout=60_000)
    page.wait_for_function("[...document.querySelectorAll('#run-detail img')].every(i => i.complete && i.naturalWidth "
                           "> 0)")
    assert page.locator("#run-detail figure").count() >= 2
    assert "reached the threshold" in page.inner_text("#run-detail")
    assert "null" not in page.inner_text("#run-detail")  # a run without a note once showed "nullnull"
    page.screenshot(path=tmp_path / "runs.png", full_page=True)
    assert page.errors == []


def test_browser_puts_two_runs_side_by_side(page, server, tmp_path):
    page.goto(f"{server}/#runs?run=moons")
    page.wait_for_function("window.actlab.run && window.actlab.run.name == 'moons'")
    page.click("button[aria-label='compare blobs-depth']")
    page.wait_for_function("window.actlab.runWith && window.actlab.runWith.name == 'blobs-depth'")
    assert "with=blobs-depth" in page.evaluate("location.hash")  # the comparison is in the URL
    cols = page.locator(".run-compare .run-col")
    assert cols.count() == 2
    assert cols.nth(0).locator("h2").inner_text() == "moons" and cols.nth(1).locator("h2").inner_text() == "blobs-depth"
    assert cols.nth(0).locator("li").count() >= 1 and cols.nth(1).locator("li").count() >= 1  # both findings
    page.screenshot(path=tmp_path / "runs-compare.png", full_page=True)
    page.click("#close-compare")
    page.wait_for_function("!location.hash.includes('with=') && !document.querySelector('.run-compare')")
    assert page.locator("#run-detail h2").inner_text() == "moons"
    assert page.errors == []


@pytest.fixture(scope="module")
def compared_root(smoke_runs, smoke_dir, tmp_path_factory):
    """A runs root with two moons runs that differ in the learning rate (a, b) and a suite folder holding both."""
    import shutil

    from actlab.studies.config import load_study
    from actlab.studies.runner import run_study
    from conftest import TINY

    root = tmp_path_factory.mktemp("compared")
    shutil.copytree(smoke_dir / "moons", root / "a")
    run_study(load_study("moons", ["seeds=2", *TINY["moons"], "train.lr=0.2"]), root / "b")
    for name, src in (("moons", "a"), ("moons-fast", "b")):
        shutil.copytree(root / src, root / "suite" / name)
    (root / "suite" / "report.html").write_text("<!DOCTYPE html><title>suite</title>")  # a suite's run writes one
    shutil.copytree(root / "a", root / "kept" / "a")  # a folder a user keeps a run in: no suite report
    return root


def test_two_runs_compare_by_configuration_cells_and_curves(compared_root):
    """What differs (only the learning rate), the cells both ran with each run's score and b − a paired by seed
    (checked against the stores by hand), and the mean curves of both runs per metric."""
    from actlab.analysis.stats import mean_ci, sign_flip_test

    c = TestClient(create_app(compared_root, warm=False), base_url="http://127.0.0.1", headers=WRITE)
    out = c.get("/api/compare", params={"a": "a", "b": "b"})
    assert out.status_code == 200, out.text
    out = out.json()
    assert out["diff"] == [{"path": "train.lr", "a": 0.05, "b": 0.2}] and out["same"] > 20
    with Run.open(compared_root / "a") as ra, Run.open(compared_root / "b") as rb:
        assert [r["cell"] for r in out["shared"]] == [cell.label for cell in ra.cells] and not out["only_a"]
        for row, ca, cb in zip(out["shared"], ra.cells, rb.cells, strict=True):
            xa, xb = ra.replicas(ca, "final_test_acc"), rb.replicas(cb, "final_test_acc")
            assert row["a"]["mean"] == pytest.approx(mean_ci(list(xa.values())).mean)
            d = np.array([xb[k] - xa[k] for k in sorted(xa)])
            assert row["diff"]["mean"] == pytest.approx(d.mean()) and row["diff"]["n"] == len(d)
            assert row["diff"]["p"] == pytest.approx(sign_flip_test(d))
            assert "paired by seed, n = 2" in row["diff"]["text"]
        _, acc = rb.metric(rb.cells[0], "test_acc")
        b0 = next(s for s in out["curves"]["test_acc"]["series"] if s["run"] == "b" and s["cell"] == rb.cells[0].label)
        np.testing.assert_allclose(b0["mean"], acc.mean(0), rtol=1e-6)
    assert set(out["curves"]) == {"train_loss", "test_loss", "test_acc"}
    assert c.get("/api/compare", params={"a": "a", "b": "nope"}).status_code == 404
    assert c.get("/api/compare", params={"a": "a", "b": "suite"}).status_code == 404  # a suite is no run


def test_suites_are_listed_and_open_to_their_overview(compared_root):
    c = TestClient(create_app(compared_root, warm=False), base_url="http://127.0.0.1", headers=WRITE)
    runs = {r["path"]: r for r in c.get("/api/runs").json()["runs"]}
    assert runs["suite"]["kind"] == "suite" and runs["suite"]["studies"] == 2
    assert runs["kept"]["kind"] == "folder" and c.get("/api/runs/kept").json()["kind"] == "folder"
    assert {"a", "b", "suite/moons", "suite/moons-fast"} <= set(runs)
    suite = c.get("/api/runs/suite").json()
    assert suite["kind"] == "suite" and [m["path"] for m in suite["members"]] == ["suite/moons", "suite/moons-fast"]
    assert suite["report_url"] == "/files/suite/report.html"
    sims = c.get("/api/compare", params={"a": "a", "b": "a"}).json()  # a run beside itself: nothing differs, b − a is 0
    assert sims["diff"] == [] and all(r["diff"]["mean"] == 0 for r in sims["shared"])
    with Run.open(compared_root / "suite" / "moons") as run:
        from actlab.analysis.overview import overview
        assert {k: suite["members"][0][k] for k in ("cells", "source", "headline")} == overview(run)
    assert suite["members"][0]["headline"].startswith("best final test accuracy:")  # words, not final_test_acc


def test_browser_compares_two_runs_and_opens_a_suite(page, compared_root, tmp_path):
    with serving(create_app(compared_root, warm=False)) as base:
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 800 if width > 400 else 844})
            page.goto("about:blank")
            page.goto(f"{base}/#runs?run=a&with=b")
            page.wait_for_function("window.actlab.compare && document.querySelectorAll('#run-diff .plot canvas').length"
                                   " === 3", timeout=30_000)
            rows = page.locator("#run-diff table").first.locator("tbody tr")
            assert rows.count() == 1 and rows.first.inner_text().split("\t") == ["train.lr", "0.05", "0.2"]
            assert page.locator("#run-diff mark.a").count() == 1 and page.locator("#run-diff mark.b").count() == 1
            assert page.locator("#run-diff table").nth(1).locator("tbody tr").count() == 2  # the cells both ran
            assert "paired by seed" in page.inner_text("#run-diff")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=tmp_path / f"compare-{width}.png", full_page=True)
            page.click("#runs-list tr[data-path='suite'] td")
            page.wait_for_selector(".suite-table tbody tr")
            assert page.locator(".suite-table tbody tr").count() == 2
            assert "not a run directory" not in page.inner_text("body")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=tmp_path / f"suite-{width}.png", full_page=True)
            assert page.locator(".suite-table a").all_inner_texts() == ["moons", "moons (moons-fast)"]
            page.click(".suite-table a[href*='moons-fast']")
            page.wait_for_function("window.actlab.run && window.actlab.run.path === 'suite/moons-fast'")
        page.set_viewport_size({"width": 1400, "height": 1000})
    assert page.errors == []


# ------------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize(("host", "warns"), [("127.0.0.1", False), ("127.0.0.2", True)])  # both loopback
def test_serve_command(smoke_dir, host, warns):
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "actlab", "serve", "--host", host, "--port", str(port), "--runs",
                             str(smoke_dir)], stderr=subprocess.PIPE, text=True)
    try:
        assert _wait(lambda: _up(f"http://{host}:{port}/api/health"), timeout=30)
        assert httpx.get(f"http://{host}:{port}/").text.count("actlab explorer") >= 1
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert f"actlab explorer on http://{host}:{port}/" in err
    assert ("warning:" in err) == warns


def test_ctrl_c_stops_a_server_that_streams_a_live_training(tmp_path):
    """Ctrl-C while a page streams a long training: the streams end, the training stops at its epoch's end and the
    server exits within seconds, with no traceback (it used to wait on the open stream for ever, and a worker
    killed inside PyTorch aborted the process)."""
    import signal
    import subprocess
    import sys
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "actlab", "serve", "--port", str(port), "--runs", str(tmp_path)],
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait(lambda: _up(f"{base}/api/health"), timeout=30)
        made = httpx.post(f"{base}/api/live", headers=WRITE, json={
            "points": 1000, "batch_size": 1, "seeds": 8, "widths": [64, 64, 64], "epochs": 2000}).json()

        def stream() -> None:
            try:
                with httpx.stream("GET", f"{base}/api/live/{made['id']}/events?token={made['token']}", timeout=60) as r:
                    for _ in r.iter_lines():
                        pass
            except httpx.HTTPError:
                pass

        threading.Thread(target=stream, daemon=True).start()
        assert _wait(lambda: httpx.get(f"{base}/api/live").json()["running"] == 1)
        time.sleep(2)  # mid-epoch
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - t0 < 20 and proc.returncode in (0, 130), (proc.returncode, err[-800:])
    assert "Traceback" not in err and "terminate called" not in err and "ERROR" not in err, err[-800:]


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_one_damaged_store_is_listed_as_unreadable_and_the_others_still_show(smoke_runs, tmp_path):
    """Four damaged entries under a runs root beside a good run: a folder named actlab.sqlite, a store whose
    study provenance or configuration is not JSON, a non-numeric replica value, and a folder link leading out of
    the root whose store links back in. The list still answers (each bad one with its reason), their detail
    pages are 4xx, and the command line says one error line for each, with no traceback."""
    import shutil
    import sqlite3

    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(smoke_runs["xor-speed"].run_dir, root / "good")
    (root / "folder" / "actlab.sqlite").mkdir(parents=True)
    for name, sql in (("provenance", "UPDATE study SET provenance = 'not json'"),
                      ("config", "UPDATE study SET config = '{'"),
                      ("replicas", None)):
        shutil.copytree(smoke_runs["moons"].run_dir, root / name)
        with sqlite3.connect(root / name / "actlab.sqlite") as con:
            con.execute(sql or "UPDATE replicas SET final_test_acc = 'x'")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "actlab.sqlite").symlink_to(root / "good" / "actlab.sqlite")
    (root / "link").symlink_to(outside)
    client = TestClient(create_app(root, max_trainings=1), base_url="http://127.0.0.1", headers=WRITE)
    r = client.get("/api/runs")
    assert r.status_code == 200
    listed = {x["path"]: x for x in r.json()["runs"]}
    assert listed["good"]["kind"] == "simulation"
    for bad in ("folder", "provenance", "config"):
        assert listed[bad]["kind"] == "unreadable" and listed[bad]["error"], bad
    assert "not JSON" in listed["provenance"]["error"] and "not a file" in listed["folder"]["error"]
    for bad in ("folder", "provenance", "config", "replicas", "link"):
        got = client.get(f"/api/runs/{bad}")
        assert 400 <= got.status_code < 500, (bad, got.status_code, got.text)
    for bad in ("folder", "provenance", "config", "replicas"):
        for cmd in (("report", str(root / bad), "--out", str(tmp_path / "r")), ("export", str(root / bad), "--out",
                                                                                  str(tmp_path / "e"))):
            p = subprocess.run([sys.executable, "-m", "actlab", *cmd], capture_output=True, text=True, timeout=300)
            assert "Traceback" not in p.stderr, (bad, cmd[0], p.stderr[-800:])
            if bad != "replicas" or cmd[0] == "report":  # export copies a non-numeric value as it is
                assert p.returncode in (1, 2) and p.stderr.count("error:") == 1, (bad, cmd[0], p.stderr[-800:])
