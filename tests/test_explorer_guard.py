"""The explorer's protections (#13): no code imported from stored runs, writes only from its own page, a Host
check against DNS rebinding, bounded bodies and echoes, links that never lead a write out of the runs root,
and live trainings that only their creator can see or control."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from actlab.catalog.activations import catalog_only, from_import_path, get
from actlab.errors import ActlabError
from actlab.studies.config import load_study
from actlab.studies.runner import run_study
from actlab.web import create_app
from actlab.web.guard import allowed_hosts, hostname

WRITE = {"X-Actlab": "1"}
LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs root with a study whose activation is user code that leaves a mark when it is imported."""
    root = tmp_path_factory.mktemp("runs")
    code = tmp_path_factory.mktemp("code")
    marker = code / "imported.txt"
    (code / "marked_act.py").write_text(textwrap.dedent(f"""
        import pathlib, torch
        pathlib.Path({str(marker)!r}).write_text("imported")
        def act(x):
            return torch.tanh(x)
    """))
    study = code / "user.toml"
    study.write_text(textwrap.dedent("""
        name = "user"
        seeds = 1
        [train]
        epochs = 2
        [grid]
        activation = ["marked_act:act", "relu"]
    """))
    sys.path.insert(0, str(code))
    try:
        run_study(load_study(study), root / "user")
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("marked_act", None)
        from_import_path.cache_clear()
    assert marker.read_text() == "imported"
    marker.unlink()
    run_study(load_study("gelu-approx"), root / "sim")
    return root


@pytest.fixture
def client(runs_root) -> TestClient:
    return TestClient(create_app(runs_root), base_url=LOCAL, headers=WRITE)


def test_building_a_report_imports_no_code_named_in_the_run(runs_root, client):
    code = next(runs_root.parent.glob("code*"))
    sys.path.insert(0, str(code))  # even where the module could be found, it is not imported
    try:
        detail = client.post("/api/runs/user/report")
    finally:
        sys.path.pop(0)
    assert detail.status_code == 200, detail.text
    assert "marked_act" not in sys.modules and not (code / "imported.txt").exists()
    body = detail.json()
    assert "marked_act:act" in body["not_drawn"] and "imports no code" in body["not_drawn"]
    names = {f["name"] for f in body["figures"]}
    assert "activations" not in names and "loss_curves" in names  # the figure that plots user code is the one left out
    html = (runs_root / "user" / "report.html").read_text()
    assert "Figure not drawn: activations: activation &#39;marked_act:act&#39; is not a catalog entry" in html


def test_catalog_only_refuses_import_paths_and_still_finds_catalog_names():
    with catalog_only():
        assert get("ReLU").name == "relu"
        with pytest.raises(ActlabError, match="not a catalog entry"):
            get("os:system")
    assert get("torch:tanh").name == "torch:tanh"  # outside the block, a user's import path works as before


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 403),  # no custom header: what a form or a simple cross-site fetch sends
    ({**WRITE, "Origin": "http://evil.example"}, 403),
    ({**WRITE, "Origin": "http://127.0.0.1"}, 200),  # the explorer's own page
    ({**WRITE, "Origin": "http://127.0.0.1:9999"}, 403),  # another port is another origin
    ({**WRITE, "Origin": ""}, 403),
    ({**WRITE, "Origin": "null"}, 403),
    (WRITE, 200),  # a script or curl: no Origin, but the header a browser page elsewhere cannot send
])
def test_writes_must_be_same_origin(runs_root, headers, status):
    with TestClient(create_app(runs_root), base_url=LOCAL) as c:
        r = c.post("/api/activations/curves", json={"items": [{"name": "relu"}]}, headers=headers)
    assert r.status_code == status, r.text
    if status == 403:
        assert "X-Actlab" in r.json()["detail"] or "Origin" in r.json()["detail"]
        assert not c.post("/api/runs/sim/report", headers=headers).is_success


@pytest.mark.parametrize(("base", "allow", "status"), [
    ("http://evil.example", (), 403),  # a DNS-rebinding page: its own name in Host
    ("http://evil.example", ("evil.example",), 200),
    ("http://anything.lan:8000", ("*",), 200),
    ("http://localhost:8000", (), 200),
    ("http://127.0.0.1:8000", (), 200),
    ("http://[::1]:8000", (), 200),
    ("http://127.0.0.1:8000@evil", (), 403),  # not a host and port
])
def test_the_host_header_must_name_this_server(runs_root, base, allow, status):
    with TestClient(create_app(runs_root, allow_hosts=allow), base_url=base) as c:
        r = c.get("/api/health")
    assert r.status_code == status
    if status == 403:
        assert "--allow-host" in r.json()["detail"]


def test_allowed_hosts_follow_the_bound_address():
    assert hostname("[::1]:80") == "::1" and hostname("LocalHost:8000") == "localhost" and hostname("::1") == "::1"
    assert allowed_hosts("127.0.0.1") >= {"127.0.0.1", "localhost", "::1"}
    assert allowed_hosts("192.168.1.5") == {"192.168.1.5"}  # a LAN address answers only its own name
    assert "lab.local" in allowed_hosts("0.0.0.0", ["lab.local:8000"])


def test_an_over_long_body_gets_413_before_parsing(client):
    big = {"items": [{"name": "relu"}], "pad": "x" * 100_000}
    r = client.post("/api/activations/curves", json=big)
    assert r.status_code == 413 and "over the limit" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b"x" * 1000

    r = client.post("/api/live", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_validation_errors_echo_only_an_excerpt(client):
    r = client.post("/api/live", json={"activation": "x" * 5000})
    assert r.status_code == 422 and len(r.json()["detail"]) < 400 and "characters)" in r.json()["detail"]
    r = client.get("/api/runs/" + "a" * 300)  # a path component longer than the file system allows
    assert r.status_code == 404 and len(r.json()["detail"]) < 300
    assert client.get("/files/" + "b" * 5000 + ".png").status_code == 404


def test_a_report_is_never_written_through_a_link_out_of_the_root(runs_root, client, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    figures = runs_root / "sim" / "figures"
    if figures.exists():
        for f in figures.iterdir():
            f.unlink()
        figures.rmdir()
    figures.symlink_to(outside, target_is_directory=True)
    try:
        r = client.post("/api/runs/sim/report")
        assert r.status_code == 403 and "links outside the runs root" in r.json()["detail"]
        assert list(outside.iterdir()) == []
    finally:
        figures.unlink()


def test_a_report_never_writes_through_a_link_on_a_temporary_name(runs_root, client, tmp_path):
    """Temporary files are created fresh (exclusively): a link planted on the old fixed temp names is never
    followed, so nothing outside the runs root is written."""
    victim = tmp_path / "victim"
    victim.write_text("VICTIM")
    figures = runs_root / "sim" / "figures"
    figures.mkdir(exist_ok=True)
    planted = [figures / ".gelu_error.tmp.png", figures / ".gelu_error.tmp.svg", runs_root / "sim" / ".report.html.tmp"]
    for p in planted:
        p.unlink(missing_ok=True)
        p.symlink_to(victim)
    try:
        assert client.post("/api/runs/sim/report").status_code == 200
        assert victim.read_text() == "VICTIM"
        assert not (figures / "gelu_error.png").is_symlink() and not (runs_root / "sim" / "report.html").is_symlink()
    finally:
        for p in planted:
            p.unlink(missing_ok=True)


def test_a_live_training_cannot_be_paused_before_its_stream_opens(client):
    made = client.post("/api/live", json={"epochs": 5}).json()
    mine = {"X-Live-Token": made["token"]}
    try:
        r = client.post(f"/api/live/{made['id']}/resume", headers=mine)
        assert r.status_code == 409 and "open its event stream first" in r.json()["detail"]
        assert client.get("/api/live", headers=mine).json()["sessions"][0]["state"] == "pending"
    finally:
        client.delete(f"/api/live/{made['id']}", headers=mine)


def test_live_trainings_belong_to_their_creator(client):
    made = client.post("/api/live", json={"epochs": 5})
    assert made.status_code == 201
    sid, token = made.json()["id"], made.json()["token"]
    try:
        listed = client.get("/api/live").json()
        assert listed["running"] == 1 and listed["sessions"] == []  # another client sees a count, not the id
        assert [s["id"] for s in client.get("/api/live", headers={"X-Live-Token": token}).json()["sessions"]] == [sid]
        assert client.post(f"/api/live/{sid}/pause").status_code == 404
        assert client.post(f"/api/live/{sid}/pause", headers={"X-Live-Token": "guess"}).status_code == 404
        assert client.get(f"/api/live/{sid}/events").status_code == 404
    finally:
        assert client.delete(f"/api/live/{sid}", headers={"X-Live-Token": token}).status_code == 200
    assert client.get("/api/live").json()["running"] == 0
