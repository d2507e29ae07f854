"""Fuzzing kept in the suite (#13): any study text, any study document and any `--set` list give either a
valid study or one ActlabError, never another exception (hypothesis); the explorer answers every request its
OpenAPI schema allows without a 5xx (schemathesis, on a live server, about a minute)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actlab.errors import ActlabError
from actlab.studies.config import StudyConfig, load_study, parse_value
from conftest import serving

FIELDS = ["name", "seeds", "description", "note", "group_cells", "source", "include", "overrides", "published",
          "train", "model", "data", "grid", "diagnostics", "simulation", "bogus",
          "train.epochs", "train.lr", "train.batch_size", "train.optimizer", "train.momentum", "train.probe_epochs",
          "model.width", "model.depth", "model.widths", "model.activation", "model.activation_params.alpha",
          "model.init", "model.kind", "model.norm", "data.name", "data.options.n", "simulation.name",
          "diagnostics.surface_step", "grid.activation", "grid.model.depth", "grid.train.lr", "grid.seeds",
          "grid.nope", "train.nope.deeper", ".", "..", "grid."]

SCALARS = (st.booleans() | st.integers(-10**15, 10**15) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | st.sampled_from(["relu", "gelu", "moons", "adam", "mlp", "full", "last",
                                                    "gelu-approx", "tour", "pkg.nope:fn", "os:system"]))
VALUES = st.recursive(st.none() | SCALARS, lambda c: st.lists(c, max_size=4) |
                      st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), c, max_size=4), max_leaves=10)
EXAMPLES = int(os.environ.get("ACTLAB_FUZZ_EXAMPLES", "150"))  # more for a longer hunt, e.g. 5000
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_or_one_error(make) -> None:
    try:
        study = make()
    except ActlabError as e:
        assert str(e).strip(), "an ActlabError must say something"
        return
    assert isinstance(study, StudyConfig)


def _nested(doc: dict, path: str, value) -> dict:
    node = doc
    parts = path.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {}) if isinstance(node.get(p, {}), dict) else {}
    node[parts[-1]] = value
    return doc


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(FIELDS), VALUES), max_size=6))
def test_any_study_document_is_a_study_or_one_error(items):
    doc = {"name": "fuzz"}
    for path, value in items:
        _nested(doc, path, value)
    _valid_or_one_error(lambda: load_study(doc))


@SETTINGS
@given(st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")) | st.binary(max_size=200))
def test_any_study_file_is_a_study_or_one_error(tmp_path_factory, content):
    path = Path(tmp_path_factory.mktemp("fuzz")) / "study.toml"
    path.write_bytes(content)  # any text, and any bytes (not UTF-8 among them)
    _valid_or_one_error(lambda: load_study(path))


def test_a_study_of_toml_tables_with_odd_values_is_a_study_or_one_error(tmp_path):
    for body in ['name = "x"\n[grid]\nactivation = "relu"', 'name = "x"\nseeds = 1e400',
                 'name = "x"\n[train]\nepochs = -1',
                 'name = "x"\n[[published]]\nkey = 1', 'name = 3', 'include = ["nope"]\nname = "s"',
                 'name = "x"\n[grid]\n"model.depth" = [0, 1]\n"model.widths" = [[2]]']:
        (tmp_path / "s.toml").write_text(body)
        _valid_or_one_error(lambda: load_study(tmp_path / "s.toml"))


SET_ITEMS = (st.builds(lambda k, v: f"{k}={v}", st.sampled_from(FIELDS) | st.text(max_size=10),
                       st.text(max_size=20) | st.sampled_from(["[relu,gelu]", "[1, [2]]", "{a = 1}", "[", "]", "1e999",
                                                               "nan", "-0", "true", "[relu,{x}]", "\"s\"", ""]))
             | st.text(max_size=30))


@SETTINGS
@given(st.lists(SET_ITEMS, max_size=4))
def test_any_set_list_on_a_study_is_a_study_or_one_error(sets):
    _valid_or_one_error(lambda: load_study("moons", sets))


@settings(max_examples=max(25, EXAMPLES // 6), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SET_ITEMS, min_size=1, max_size=3))
def test_any_set_list_on_a_suite_is_a_study_or_one_error(sets):
    _valid_or_one_error(lambda: load_study("tour", sets))


@SETTINGS
@given(st.text(max_size=40))
def test_parse_value_takes_any_text(text):
    parse_value(text)  # never raises: what is not TOML is a bare string


# ------------------------------------------------------------------------------------------- explorer


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The explorer on a free port of 127.0.0.1 over an empty runs root, in a thread; yields its base URL."""
    from actlab.web import create_app

    with serving(create_app(tmp_path_factory.mktemp("runs"), max_trainings=2)) as base:
        yield base


def test_no_request_the_schema_allows_gets_a_5xx(live_server):
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{live_server}/api/openapi.json")
    failures: list[str] = []
    codes: dict[int, int] = {}
    seen = 0
    t0 = time.monotonic()
    for op in schema.get_all_operations():
        operation = op.ok()
        if "/events" in operation.path:  # a stream that runs a training: covered by test_web
            continue
        strategy = operation.as_strategy()

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case):
            nonlocal seen
            seen += 1
            headers = {**(case.headers or {}), "X-Actlab": "1"}
            case.headers = headers
            response = case.call(base_url=live_server, timeout=30)
            codes[response.status_code] = codes.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")
            if response.status_code == 201 and case.path == "/api/live":  # give a created training back
                made = response.json()
                httpx.delete(f"{live_server}/api/live/{made['id']}",
                             headers={"X-Actlab": "1", "X-Live-Token": made["token"]})

        check()
    print(f"schemathesis: {seen} requests in {time.monotonic() - t0:.0f} s, status codes {sorted(codes.items())}")
    assert seen >= 100 and time.monotonic() - t0 < 180
    assert any(200 <= c < 300 for c in codes) and any(400 <= c < 500 for c in codes)  # both kinds reached
    assert failures == [], failures[:5]
