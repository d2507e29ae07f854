"""The report: every figure renders for every shipped study's smoke run, every number in the findings is the
store's (recomputed here from raw SQL with textbook formulas), and the page opens in headless Chromium."""

from __future__ import annotations

import html
import itertools
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from actlab.analysis.findings import findings
from actlab.catalog.activations import from_import_path
from actlab.report.page import build_report
from actlab.store.results import Run
from actlab.studies.config import load_study
from actlab.studies.runner import run_study
from conftest import CHROMIUM_ARGS, TINY, chromium

TRAIN_COMMON = {"activations", "loss_curves", "gradient_per_layer", "dead_saturated"}
MOONS_2D = {"dataset", "decision_boundary", "decision_consensus", "signal_trace", "hidden_space"}
EXPECTED = {
    "moons": TRAIN_COMMON | MOONS_2D | {"forward_variance"},
    "blobs-depth": TRAIN_COMMON | {"accuracy_vs_depth"},  # its 0.01·U[0, 1) init has a mean: no theory line
    "blobs-depth-defaults": TRAIN_COMMON | {"accuracy_vs_depth", "forward_variance"},
    "cnn-depth": TRAIN_COMMON | {"gradient_mean"},
    "cnn-depth-cpu": TRAIN_COMMON | {"gradient_mean", "accuracy_vs_depth"},
    "activation-zoo": TRAIN_COMMON,
    "gradient-flow": {"activations", "gradient_flow", "classical"},
    "dead-neurons": {"dead_neurons"},
    "dead-neurons-trained": {"dead_neurons_trained"},
    "selu-selfnorm": {"activations", "selu_selfnorm"},
    "xor-speed": {"activations", "xor_convergence"},
    "gelu-approx": {"gelu_error", "nonmonotonic_minima"},
    "ffn-stats": {"activations", "ffn_stats"},
    "linear-collapse": {"linear_collapse"},
    "edge-of-chaos": {"activations", "loss_curves", "accuracy_vs_depth", "trainability"},
    "deep-rescue": {"activations", "loss_curves", "accuracy_vs_depth"},
    **{name: {"activations", "bits_per_character", "ranking", "transformer_probes", "gradient_per_layer",
              "dead_saturated"} for name in ("transformer-ffn", "transformer-ffn-cpu", "attention-scores")},
    "vit-activations": TRAIN_COMMON | {"transformer_probes"},
    # recurrent: each slot in the gates figure (not dead_saturated), the gradient through time; rnn-time's T axis
    "residual-depth": TRAIN_COMMON | {"accuracy_vs_depth", "forward_variance"},
    "lstm-slots": {"activations", "loss_curves", "gradient_per_layer", "time_gradient", "gates"},
    "rnn-time": {"activations", "loss_curves", "gradient_per_layer", "time_gradient", "gates", "score_vs_length"},
    "gan-modes": {"activations", "dead_saturated", "gan_samples", "gan_coverage"},  # no loss curves: coverage
    "vae-activations": TRAIN_COMMON | {"elbo_terms"},
}


@pytest.fixture(scope="module")
def suite_report(smoke_runs, smoke_dir) -> Path:
    return build_report(smoke_dir)


def actlab(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "actlab", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


# ----------------------------------------------------------------------------------------------- figures


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_figure_renders_for_every_smoke_run(suite_report, smoke_dir, name):
    assert set(EXPECTED) == set(TINY)
    folder = smoke_dir / name / "figures"
    assert {p.stem for p in folder.glob("*.png")} == EXPECTED[name]
    for stem in EXPECTED[name]:
        png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert ET.parse(svg).getroot().tag.endswith("svg")
    page = (smoke_dir / name / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(EXPECTED[name])
    assert f'id="study-{name}"' in suite_report.read_text()


def test_grid_surfaces_are_one_image_in_the_svg(suite_report, smoke_dir):
    """The seeds' agreement is a pcolormesh of the surface grid: drawn as a path per grid cell, moons' SVG was
    63 MB and took most of the report's time; rasterized, it is one embedded image per panel."""
    root = ET.parse(smoke_dir / "moons" / "figures" / "decision_consensus.svg").getroot()
    tags = [el.tag.rsplit("}", 1)[-1] for el in root.iter()]
    assert tags.count("image") >= 2 and tags.count("path") < 2000, (tags.count("image"), tags.count("path"))  # 2 cells


def test_the_page_names_no_folder_of_the_machine_and_takes_the_users_umask(suite_report, smoke_dir):
    """Figures' captions and run directories are relative to the page (it can be moved or shared); the report and
    its figures get the mode any new file of the user's gets (mkstemp's 0600 kept them unreadable to others)."""
    page = suite_report.read_text()
    captions = re.findall(r"Files: .*?</figcaption>", page, re.S)
    assert captions and not any(str(smoke_dir) in c for c in captions)
    assert "run directory <code>moons</code>" in page
    own = (smoke_dir / "moons" / "report.html").read_text()
    assert "in\n      <code>figures/</code>" in own and "run directory <code>.</code>" in own
    mask = os.umask(0o022)
    os.umask(mask)
    for f in (suite_report, smoke_dir / "moons" / "report.html", smoke_dir / "moons" / "figures" / "loss_curves.png"):
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, (f, oct(f.stat().st_mode))


def test_suite_report_is_self_contained(suite_report):
    page = suite_report.read_text()
    assert page.count('src="data:image/png;base64,') == sum(map(len, EXPECTED.values()))
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched: it opens offline
    for name in TINY:
        assert f'href="#study-{name}"' in page
    assert "code_revision" in page and "wall s" in page and "torch" in page


def test_the_page_opens_with_the_guide_tested(suite_report, smoke_dir):
    """Every claim of every study on the page, with its verdict and a link to that study's findings."""
    from actlab.analysis import guide
    from actlab.store.results import Run

    page = suite_report.read_text()
    head = page.split('<div class="guide" id="guide">', 1)[1].split("</div>", 1)[0]
    expected = []
    for name in TINY:
        with Run.open(smoke_dir / name) as run:
            expected += [(cv.claim, cv.verdict, name) for cv in guide.claim_verdicts(run)]
    remark = guide.spread_verdict(guide.scan_spreads(smoke_dir, 1), guide.scan_spreads(smoke_dir, 1, among=None))
    assert expected and head.count("<tr><td>") == len(expected) + 1  # the seeds' closing remark, across studies
    for claim, verdict, name in expected:
        assert claim in html.unescape(head) and f'href="#study-{name}-findings"' in head
        assert f'verdict {verdict.replace(" ", "-")}">{verdict}</td>' in head
    assert guide.REMARK in html.unescape(head) and remark["sentence"] in html.unescape(page)


def test_the_suite_page_opens_with_an_overview_and_keeps_a_sticky_navigation(suite_report, smoke_dir):
    """One row per study (cells done, the source's numbers by verdict, its headline, a link), the same headline as
    the command line's summary; a navigation bar that stays on top, one link per study, at every width."""
    from actlab.analysis.published import compare
    from actlab.analysis.summary import cells_done, headline, sim_summary, summary_rows, verdict_counts

    page = html.unescape(suite_report.read_text())
    over = page.split('<div class="overview" id="overview">', 1)[1].split("</div>", 1)[0]
    assert page.index('id="overview"') < page.index('id="guide"')  # it opens the page
    rows = re.findall(r"<tr><td><a href=\"#study-([^\"]+)\">", over)
    assert rows == list(TINY)
    for name in TINY:
        with Run.open(smoke_dir / name) as run:
            sims = sim_summary(run) if run.kind == "simulation" else []
            want = [cells_done([c.status for c in run.cells]), verdict_counts(compare(run)),
                    headline(summary_rows(run), sims, compare(run))]
        assert all(w in over for w in want), (name, want)
    nav = page.split('<nav class="sticky" aria-label="Studies">', 1)[1].split("</nav>", 1)[0]
    assert all(f'href="#study-{name}"' in nav for name in TINY) and "position: sticky" in page


def test_the_suite_page_can_be_navigated(suite_report, smoke_dir):
    """Every in-page link of the contents (side bar, each study's own line, back to the top) lands on an id of
    the page; each study links its own report, which exists; a table longer than 24 rows shows its first and
    last rows with the whole of it collapsed."""
    page = suite_report.read_text()
    ids = set(re.findall(r'id="([^"]+)"', page))
    targets = set(re.findall(r'href="#([^"]+)"', page))
    assert targets and targets <= ids, targets - ids
    assert "top" in targets and sum(f'href="#study-{n}-findings"' in page for n in TINY) == len(TINY)
    own = re.findall(r'href="([^"#][^"]*report\.html)"', page)
    assert len(set(own)) == len(TINY) and all((suite_report.parent / p).exists() for p in own)
    for gap in re.findall(r"… (\d+) more rows \(all (\d+) below", page):
        hidden, total = map(int, gap)
        assert total == hidden + 12 + 8
    from actlab.report.page import Section, render
    from actlab.report.tables import Table

    long = Table("per layer", ["layer", "value"], [[str(i), f"{i / 7:.3f}"] for i in range(1, 251)])
    html = render([Section("s", Path("."), "d", "", "simulation", 2, [], tables=[long])], "t")
    shown = html.split("<details><summary>All 250 rows</summary>")[0]
    assert "… 230 more rows (all 250 below" in shown
    assert "<td>12</td>" in shown and "<td>13</td>" not in shown and "<td>243</td>" in shown
    assert html.count("<td>100</td>") == 1  # the middle rows only in the collapsed table


# ---------------------------------------------------------------------------------------------- findings


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_number_a_finding_states_is_in_its_text(smoke_runs, name):
    with Run.open(smoke_runs[name].run_dir) as run:
        found = findings(run)
    assert found
    for f in found:
        for key, value, spec in f.numbers:
            assert format(value, spec) in f.text, (key, value, f.text)


def _replicas(db: Path, label: str) -> dict[int, float]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT r.seed, r.final_test_acc FROM replicas r JOIN cells c ON r.cell = c.key "
                           "WHERE c.label LIKE ? ORDER BY r.seed", (f"%activation={label}%",)).fetchall()
    finally:
        con.close()
    return dict(rows)


def _numbers(f) -> dict[str, float]:
    return {k: v for k, v, _ in f.numbers}


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("moons") / "m"
    run_study(load_study("moons", ["train.epochs=40", "seeds=5"]), out)
    return out


def test_moons_findings_equal_raw_store_numbers(moons_run):
    db = moons_run / "actlab.sqlite"
    relu, sig = _replicas(db, "relu"), _replicas(db, "sigmoid")
    with Run.open(moons_run) as run:
        found = findings(run)
    best = _numbers(found[0])
    top = max((relu, sig), key=lambda r: np.mean(list(r.values())))
    v = np.array(list(top.values()), dtype=np.float64)
    half = sps.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    np.testing.assert_allclose([best["m"], best["lo"], best["hi"], best["n"]],  # an accuracy's CI stays in [0, 1]
                               [v.mean(), max(0.0, v.mean() - half), min(1.0, v.mean() + half), len(v)], rtol=1e-9)
    cmp = next(f for f in found if f.paired is not None)
    a, b = (relu, sig) if "relu − sigmoid" in cmp.text else (sig, relu)
    d = np.array([a[s] - b[s] for s in sorted(a)], dtype=np.float64)
    got = _numbers(cmp)
    if np.ptp(d) < 1e-6:
        pytest.skip("every seed gave the same difference at this budget; nothing to test")
    half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    np.testing.assert_allclose([got["d"], got["lo"], got["hi"]], 100 * np.array([d.mean(), d.mean() - half,
                                                                              d.mean() + half]), rtol=1e-9)
    # the exact sign-flip p by brute enumeration of every sign pattern (a family of one: Holm leaves it)
    flips = [abs(sum(sg * abs(x) for sg, x in zip(signs, d))) >= abs(d.sum()) - 1e-12
             for signs in itertools.product((1, -1), repeat=len(d))]
    p = sum(flips) / len(flips)
    np.testing.assert_allclose([got["n"], got["p"], got["p_holm"], got["d_z"]],
                               [len(d), p, p, d.mean() / d.std(ddof=1)], rtol=1e-9)


@pytest.mark.parametrize(("shift", "says"), [(0.2, "All 5 paired seeds favour relu, but 5 seeds are too few"),
                                             (0.0, "The data do not support a difference between")])
def test_findings_call_a_difference_only_when_the_data_support_it(moons_run, tmp_path, shift, says):
    import shutil

    run_dir = tmp_path / "m"
    shutil.copytree(moons_run, run_dir)
    noise = [0.03, -0.02, 0.01, -0.04, 0.02]
    con = sqlite3.connect(run_dir / "actlab.sqlite")
    with con:
        for label, add in (("sigmoid", [0.0] * 5), ("relu", [shift + e for e in noise])):
            key = con.execute("SELECT key FROM cells WHERE label LIKE ?", (f"%activation={label}%",)).fetchone()[0]
            for seed in range(5):
                con.execute("UPDATE replicas SET final_test_acc = ? WHERE cell = ? AND seed = ?",
                            (0.7 + add[seed], key, seed))
    con.close()
    with Run.open(run_dir) as run:
        cmp = next(f for f in findings(run) if f.paired is not None)
    assert says in cmp.text
    d = np.array(noise) + shift if "relu − sigmoid" in cmp.text else -(np.array(noise) + shift)
    flips = [abs(sum(sg * abs(x) for sg, x in zip(signs, d))) >= abs(d.sum()) - 1e-12
             for signs in itertools.product((1, -1), repeat=len(d))]
    assert _numbers(cmp)["p"] == pytest.approx(sum(flips) / len(flips), rel=1e-9)  # exact sign-flip, enumerated


def test_simulation_findings_equal_raw_store_rows(smoke_runs):
    def rows(name):
        con = sqlite3.connect(smoke_runs[name].run_dir / "actlab.sqlite")
        try:
            return [json.loads(r[0]) for r in con.execute("SELECT row FROM sim_rows ORDER BY cell, idx")]
        finally:
            con.close()

    with Run.open(smoke_runs["gelu-approx"].run_dir) as run:
        gelu = findings(run)
    for f, r in zip(gelu, rows("gelu-approx"), strict=True):
        assert _numbers(f)["e"] == r["max_abs_error"] and _numbers(f)["x"] == r["at_x"]
    with Run.open(smoke_runs["ffn-stats"].run_dir) as run:
        ffn = findings(run)
    for f in ffn[:3]:
        act = f.text.split(":")[0]
        std = [r["std"] for r in rows("ffn-stats") if r["activation"] == act]
        assert _numbers(f)["s"] == pytest.approx(np.mean(std), rel=1e-12) and _numbers(f)["n"] == len(std)
    with Run.open(smoke_runs["xor-speed"].run_dir) as run:
        xor = findings(run)
    source = [f for f in xor if "the source's own initial weights" in f.text]
    for f in source:  # the rerun of the source's own run: one sentence per activation, its epoch stated
        act = f.text.split(",")[0]
        (r,) = [r for r in rows("xor-speed") if r["activation"] == act and r["init"] == "source"]
        assert r["epochs_to_threshold"] is None or _numbers(f)["e"] == r["epochs_to_threshold"]
    for f in [f for f in xor if f not in source][:3]:
        act = f.text.split(":")[0]
        mine = [r for r in rows("xor-speed") if r["activation"] == act and r["init"] == "seeds"]
        assert _numbers(f)["k"] == sum(r["epochs_to_threshold"] is not None for r in mine)
        assert _numbers(f)["n"] == len(mine)


# -------------------------------------------------------------------------------------------- the page


def test_report_opens_in_chromium_without_errors(suite_report, tmp_path):
    exe = chromium()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(suite_report.as_uri(), wait_until="load")
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
            page.click("header nav a[href='#study-moons']")
            page.screenshot(path=tmp_path / "report.png")
            assert not page.is_visible("aside.toc")  # a narrow screen: the contents stay at the top
            page.set_viewport_size({"width": 1700, "height": 900})
            assert page.is_visible("aside.toc")  # a wide one: a contents bar beside the page
            page.click("aside.toc a[href='#study-gradient-flow-classical']")
            page.wait_for_function("Math.abs(document.getElementById('study-gradient-flow-classical')"
                                   ".getBoundingClientRect().top) < 40")
            page.screenshot(path=tmp_path / "report-wide.png")
        finally:
            browser.close()
    assert errors == []
    assert len(images) == sum(map(len, EXPECTED.values()))
    assert all(done and width > 100 for done, width in images)  # no missing or broken image
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------------------------- the CLI


def test_report_command(smoke_runs, tmp_path):
    r = actlab("report", str(smoke_runs["xor-speed"].run_dir), "--out", str(tmp_path / "pages"))  # a folder
    assert r.returncode == 0, r.stderr
    out = tmp_path / "pages" / "report.html"
    assert out.exists() and "xor-speed" in out.read_text()
    r = actlab("report", str(smoke_runs["xor-speed"].run_dir), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 2 and "--out is a folder (the report is written as FOLDER/report.html)" in r.stderr
    r = actlab("report", str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr
    assert "is not a run directory" in r.stderr


def test_a_figure_that_cannot_be_drawn_is_named_and_the_rest_still_reports(tmp_path, monkeypatch):
    """A study of a user's activation reported after its module is gone: the activation figure is skipped
    with its reason, every other figure and the findings are still there."""
    mod = tmp_path / "gone_act.py"
    mod.write_text("import torch\n\ndef act(x, k=1.0):\n    return torch.tanh(k * x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run_study(load_study("moons", ["train.epochs=2", "seeds=2", "grid.activation=[gone_act:act]",
                                   "diagnostics.decision_surface=false"]), tmp_path / "run")
    mod.unlink()
    sys.modules.pop("gone_act", None)  # a later process: neither the module nor its resolved entry is held
    from_import_path.cache_clear()
    page = build_report(tmp_path / "run").read_text()
    assert "Figure not drawn: activations:" in page and "gone_act" in page
    assert (tmp_path / "run" / "figures" / "loss_curves.png").exists()
    assert "Highest mean final test accuracy" in page


def test_bootstrap_intervals_on_request(moons_run, tmp_path):
    from actlab.analysis.stats import mean_ci

    out = tmp_path / "report.html"
    r = actlab("report", str(moons_run), "--ci", "bootstrap", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "BCa bootstrap over seeds" in page
    with Run.open(moons_run) as run:
        relu = next(c for c in run.cells if c.series == "relu")
        boot = mean_ci(list(run.replicas(relu).values()), method="bootstrap")
        cmp = next(f for f in findings(run, "bootstrap") if f.paired is not None)
    assert boot.method == "bootstrap" and f"{boot.mean:.3f} [{boot.lo:.3f}, {boot.hi:.3f}] (n = 5)" in page
    assert cmp.paired.diff.method == "bootstrap"
    r = actlab("report", str(moons_run), "--ci", "jackknife", "--out", str(tmp_path))
    assert r.returncode == 2 and "--ci 'jackknife' is unknown; allowed: t, bootstrap" in r.stderr


@pytest.mark.parametrize(("relu", "says"), [
    ([0.70] * 5, "(equal on every seed)"),
    ([0.71, 0.69, 0.72, 0.68, 0.70], "sign-flip p ="),
    ([0.90] * 5, "every seed favours relu, but 5 seeds cannot reach p < 0.05 in an exact test (its smallest p is "
                 "0.062); the 95 % interval of the difference, [20.0, 20.0] points, excludes 0"),  # 2/2⁵ > 0.05
])
def test_the_highest_mean_names_every_cell_tied_with_it(moons_run, tmp_path, relu, says):
    import shutil

    run_dir = tmp_path / "m"
    shutil.copytree(moons_run, run_dir)
    con = sqlite3.connect(run_dir / "actlab.sqlite")
    with con:
        for label, values in (("sigmoid", [0.70] * 5), ("relu", relu)):
            key = con.execute("SELECT key FROM cells WHERE label LIKE ?", (f"%activation={label}%",)).fetchone()[0]
            for seed, v in enumerate(values):
                con.execute("UPDATE replicas SET final_test_acc = ? WHERE cell = ? AND seed = ?", (v, key, seed))
    con.close()
    with Run.open(run_dir) as run:
        top = findings(run)[0].text
    assert top.startswith("Highest mean final test accuracy")
    assert "Not separated from it by the exact paired test (p ≥ 0.05)" in top and says in top
    if relu == [0.90] * 5:
        assert "relu" in top.split(":")[1] and "0.900 on all 5 seeds" in top


def test_columns_and_rows_of_only_dashes_are_left_out_with_a_note():
    from actlab.report.tables import Table, pruned

    t = pruned(Table("t", ["cell", "a", "b", "c"], [["r1", "—", "1", "—"], ["r2", "—", "—", "—"], ["r3", "—", "0",
                                                                                                   ""]]))
    assert t.header == ["cell", "b"] and t.rows == [["r1", "1"], ["r3", "0"]]  # a 0 is a value, kept
    assert t.note == ('columns a, c left out: "—" in every row; 1 row of only "—" left out (everything is in '
                      'actlab export)')
    same = pruned(Table("u", ["cell", "x"], [["r1", "2"]]))
    assert same.header == ["cell", "x"] and same.note == ""


def test_forward_variance_draws_each_activation_in_its_colour_on_a_readable_axis(smoke_runs):
    """sigmoid and ReLU were one dark purple (coloured by depth); at few seeds the t band reached 0 and pushed the
    log axis to 1e-315."""
    from actlab.catalog import palette
    from actlab.report.figures.theory import forward_variance_figure

    with Run.open(smoke_runs["moons"].run_dir) as run:
        fig = forward_variance_figure(run)
    lines = {ax.get_title().split(",")[0]: [ln.get_color() for ln in ax.get_lines()
                                            if ln.get_label().startswith("depth")]
             for ax in fig.axes if ax.get_visible() and ax.get_title()}
    assert lines == {"sigmoid": [palette.COLORS["sigmoid"]], "relu": [palette.COLORS["relu"]]}
    for ax in fig.axes:
        if ax.get_visible() and ax.get_title():
            lo, hi = ax.get_ylim()
            assert lo > 1e-6 * hi  # bounded by the data, not by a band's zero


def test_stored_names_read_as_words():
    from actlab.analysis.summary import prose_name

    assert prose_name("final_test_acc") == "final test accuracy" and prose_name("final_test_mse") == "final test MSE"
    assert prose_name("train_accuracy") == "train accuracy"  # a word already whole stays whole
    assert prose_name("epochs_to_threshold") == "epochs to threshold" and prose_name("n") == "n"
