"""The `actlab activations` commands run as a user runs them: in a subprocess, asserting on output and exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from actlab.studies.config import expand, load_study
from actlab.studies.runner import group_label


def actlab(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """As piped output: no COLUMNS (the test runner may set one), so tables keep whole rows."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "actlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)


def test_table_prints_every_activation():
    r = actlab("activations", "--no-cost")
    assert r.returncode == 0, r.stderr
    for name in ("sigmoid", "gelu_sigmoid", "hard_swish", "softmax"):
        assert name in r.stdout
    assert "(0, 0.25]" in r.stdout and "no, min -0.2785 at -1.2785" in r.stdout


def test_table_writes_json_csv_markdown_and_figure(tmp_path):
    r = actlab("activations", "--out", str(tmp_path), "--format", "json", "--no-cost")
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    by_name = {d["name"]: d for d in records}
    assert by_name["selu"]["properties"]["second_moment"] == pytest.approx(1.0, abs=1e-6)
    assert by_name["softmax"]["properties"] is None and by_name["softmax"]["vector"]
    assert by_name["relu"]["properties"]["range"]["high"] == "Infinity"  # JSON has no inf literal
    assert json.loads((tmp_path / "catalog.json").read_text()) == records
    csv_lines = (tmp_path / "catalog.csv").read_text().splitlines()
    assert csv_lines[0].startswith("activation,formula,range,derivative") and len(csv_lines) == len(records) + 1
    md = (tmp_path / "catalog.md").read_text()
    assert "| tanh | tanh(x) | (-1, 1) | (0, 1] | yes" in md
    image = mpimg.imread(tmp_path / "catalog.png")
    assert image.shape[0] > 500 and image.shape[1] > 1000


def test_table_with_cost_and_selected_names(tmp_path):
    out = tmp_path / "t.md"
    r = actlab("activations", "-n", "relu", "-n", "gelu", "-f", "markdown", "--file", str(out))
    assert r.returncode == 0, r.stderr
    rows = out.read_text().splitlines()
    assert len(rows) == 4 and rows[2].startswith("| relu |") and "×" in rows[2]


def test_show_prints_entry_and_writes_figure(tmp_path):
    fig = tmp_path / "leaky.png"
    r = actlab("activations", "show", "leaky_relu", "--param", "alpha=0.1", "--figure", str(fig), "--no-cost")
    assert r.returncode == 0, r.stderr
    assert "leaky_relu(alpha=0.1)" in r.stdout and "Maas, Hannun & Ng 2013" in r.stdout
    assert "{0.1, 1}" in r.stdout and "kaiming" in r.stdout
    assert mpimg.imread(fig).shape[2] in (3, 4)
    starts = {line.index(line.split(":", 1)[1].strip()) for line in r.stdout.splitlines()
              if line.split(":")[0] in ("range", "edge of chaos σ_w²", "χ₁ at init", "gain", "monotonic")}
    assert len(starts) == 1  # every value in one column, the longest label's included


def test_show_a_gated_entry_prints_its_two_input_record_and_draws_its_heat_map(tmp_path):
    fig = tmp_path / "swiglu.png"
    r = actlab("activations", "show", "swiglu", "--figure", str(fig), "--no-cost")
    assert r.returncode == 0, r.stderr
    assert "φ = swish" in r.stdout and "only transformer models take it" in r.stdout
    assert "E[f(a, b)²] for a, b independent N(0, 1)" in r.stdout and "second_moment:" in r.stdout
    assert "self-gated diagonal" in r.stdout and mpimg.imread(fig).shape[2] in (3, 4)
    bad = actlab("run", "moons", "--set", "model.activation=swiglu", "--no-report")
    assert bad.returncode == 2 and "models that take gated entries: transformer" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_theory_says_zero_where_the_value_is_zero_and_no_unshown_error():
    r = actlab("theory", "tanh")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("│ c*"))
    assert row.split("│")[2].strip() == "0"  # an odd φ: c* = 0, not float64's -1.1e-16
    assert "±" not in r.stdout  # no error shown, so none promised


def test_an_error_is_printed_only_where_it_could_move_a_shown_digit():
    from actlab.cli.printing import number
    assert number(1.1785, 4e-11) == "1.1785"  # machine-dependent float noise far below the 5th digit
    assert number(1.1785, 6e-5) == "1.1785 ± 6e-05"  # half a unit of the last digit or more: shown
    assert number(1.1785, 1e-5) == "1.1785"
    assert number(-1.1e-16, 1e-12) == "0" and number(0.0, 3e-4) == "0 ± 0.0003"


def test_show_overlays_several_with_targeted_params(tmp_path):
    r = actlab("activations", "show", "elu", "celu", "relu", "-p", "elu.alpha=0.5", "-p", "alpha=2",
               "--json", "--no-cost", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    params = {d["name"]: d["params"] for d in json.loads(r.stdout)}
    assert params == {"elu": {"alpha": 2.0}, "celu": {"alpha": 2.0}, "relu": {}}  # later --param wins
    assert list(tmp_path.iterdir()) == []  # a figure only when asked for: nothing lands in the current folder
    r = actlab("activations", "show", "elu", "celu", "relu", "-p", "elu.alpha=0.5", "-p", "alpha=2", "--no-cost",
               cwd=tmp_path)
    assert "add --figure elu-alpha=2_celu-alpha=2_relu.png" in r.stderr and list(tmp_path.iterdir()) == []


def _in_terminal(*args: str, columns: int = 100, stderr: bool = False, cwd: Path | None = None) -> str:
    """What `actlab ARGS` prints in a terminal `columns` wide (a pseudo-terminal with that window size); with
    `stderr`, what it writes there too (a progress bar: each redraw a line of its own)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    p = subprocess.Popen([sys.executable, "-m", "actlab", *args], stdout=follower,
                         stderr=follower if stderr else subprocess.DEVNULL, cwd=cwd,
                         env={**env, "TERM": "xterm", "NO_COLOR": "1"}, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=300)
    os.close(leader)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    if stderr:  # a live display moves the cursor between redraws: each redraw's rows become lines
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "\n", text)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", text)  # styles and links, not content


def test_tables_fit_the_terminal_and_wide_shows_every_column():
    text = _in_terminal("activations", "--no-cost")
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "left out to fit 100 columns: smoothness" in text and "--wide shows" in text
    assert "no, min -0.2785 at -1.2785" in text  # the columns kept are whole, not folded
    top = next(line for line in text.splitlines() if line.startswith("┏"))
    assert top.count("┳") == 4  # five columns kept
    text = _in_terminal("activations", "--no-cost", "--wide")
    top = next(line for line in text.splitlines() if line.startswith("┏"))
    assert "left out" not in text and top.count("┳") == 9  # all ten columns, folded to fit


BARS = textwrap.dedent("""
    name = "bars"
    seeds = 4
    [data]
    name = "moons"
    [model]
    widths = [8, 8]
    [train]
    epochs = 400
    batch_size = 32
    probe_epochs = [400]
    [grid]
    activation = ["sigmoid", "relu", "tanh", "gelu"]
    init = ["lecun_normal", "kaiming_normal"]
""")


@pytest.mark.parametrize("columns", [80, 100])
def test_the_progress_bar_keeps_its_count_and_eta_at_80_and_100_columns(tmp_path, columns):
    """A long run's two rows in a terminal 80 or 100 wide: the cells with their count and time remaining (moving with
    the epochs of the population in training, so known before the first cell ends), the population's short label
    (what tells its cells apart, cut with … where it must be) with its epochs, count and time remaining; no row
    wider than the terminal, no "epochs 0/1" before any cell starts."""
    (tmp_path / "bars.toml").write_text(BARS)
    text = _in_terminal("run", "bars.toml", "--no-report", "--out", "run", columns=columns, stderr=True, cwd=tmp_path)
    rows = [line.rstrip() for line in text.splitlines() if re.search(r"\d+/\d+ +(cells|epochs)", line)]
    assert rows and max(len(r) for r in rows) <= columns
    cells = [r for r in rows if re.search(r"^bars +━*.* [0-8]/8 +cells +\d:\d\d:\d\d$", r)]
    epochs = [r for r in rows if re.search(r"^  8 cells: sigmoid, relu, .* \d+/400 +epochs +\d:\d\d:\d\d$", r)]
    assert cells and epochs, rows[-6:]
    assert any(re.search(r" [1-7]/8 ", r) for r in cells)  # the count moves while the one population trains
    assert not any("0/1 " in r for r in rows)
    assert any("…" in r for r in epochs)  # the label gives way, the count and the time remaining stay
    if columns == 100:  # the wider terminal shows more of it
        assert any("8 cells: sigmoid, relu, tanh, gelu × lecun_normal" in r for r in epochs)


def test_a_group_of_cells_is_named_by_what_tells_them_apart(tmp_path):
    (tmp_path / "bars.toml").write_text(BARS)
    cells = expand(load_study(tmp_path / "bars.toml"))
    assert group_label(cells) == "8 cells: sigmoid, relu, tanh, gelu × lecun_normal, kaiming_normal"
    assert group_label([cells[0], cells[3]]) == "2 cells: sigmoid/lecun_normal, relu/kaiming_normal"
    assert group_label([cells[0], cells[2]]) == "2 cells: sigmoid, relu"  # init is the same: not named
    assert group_label([cells[5]]) == "tanh · kaiming_normal"


def test_gelu_error():
    r = actlab("activations", "gelu-error", "--json")
    assert r.returncode == 0, r.stderr
    tanh_form = json.loads(r.stdout)[0]
    assert tanh_form["approximation"] == "gelu_tanh"
    assert tanh_form["max_abs_error"] == pytest.approx(4.73e-4, abs=0.01e-4)
    assert tanh_form["at_x"] == pytest.approx(2.70, abs=0.01)
    r = actlab("activations", "gelu-error")
    assert "4.732e-04" in r.stdout and "±2.69" in r.stdout


def test_user_activation_from_import_path(tmp_path):
    (tmp_path / "myacts.py").write_text(textwrap.dedent('''
        import torch

        def scaled_tanh(x, a=1.7159, b=0.6667):
            """LeCun's scaled tanh (LeCun et al. 1998)."""
            return a * torch.tanh(b * x)

        CONSTANT = 3
    '''))
    r = actlab("activations", "show", "myacts:scaled_tanh", "-p", "a=2", "--no-figure", "--no-cost", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "myacts:scaled_tanh(a=2)" in r.stdout and "(-2, 2)" in r.stdout and "LeCun's scaled tanh" in r.stdout
    r = actlab("activations", "-n", "myacts:scaled_tanh", "-n", "tanh", "--no-cost", "-f", "csv", cwd=tmp_path)
    assert r.returncode == 0 and "myacts:scaled_tanh" in r.stdout
    r = actlab("activations", "show", "myacts:CONSTANT", cwd=tmp_path)
    assert r.returncode == 2 and "names a int, which is not callable" in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["activations", "show", "rleu"], "activation 'rleu' is unknown; did you mean"),
    (["activations", "show", "leaky_relu", "--param", "alpha=-0.1"],
     "leaky_relu: parameter alpha='-0.1' is out of range; allowed: 0 <= alpha < 1"),
    (["activations", "show", "relu", "--param", "alpha=0.1"], "no named activation has a parameter 'alpha'"),
    (["activations", "show", "elu", "--param", "alpha"], "must look like KEY=VALUE"),
    (["activations", "show", "elu", "--param", "gelu.alpha=1"], "'gelu' is not among the named activations"),
    (["activations", "show", "nosuchmodule:f"], "cannot import module 'nosuchmodule'"),
    (["activations", "--format", "xml"], "--format 'xml' is unknown; allowed: table, json, csv, markdown"),
    (["activations", "gelu-error", "--lo", "3", "--hi", "1"], "--lo 3.0 must be smaller than --hi 1.0"),
])
def test_bad_input_gives_one_clear_message(args, message):
    r = actlab(*args)
    assert r.returncode == 2
    assert message in " ".join(r.stderr.split())  # rich may wrap long lines
    assert "Traceback" not in r.stderr and r.stderr.strip().startswith("error:")


# ------------------------------------------------------------------------------------- actlab data


def test_data_list():
    r = actlab("data", "list")
    assert r.returncode == 0, r.stderr
    for name in ("moons", "blobs8", "mnist1d", "digits", "cifar10", "fashion_mnist", "spirals"):
        assert name in r.stdout


def test_data_show_summary_and_figure(tmp_path):
    r = actlab("data", "show", "moons", "-p", "noise=0.3", "-p", "n=200", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["n_train"] == 150 and summary["provenance"]["noise"] == 0.3
    assert sum(summary["train_counts"].values()) == 150
    assert list(tmp_path.iterdir()) == []  # no figure unless asked for
    r = actlab("data", "show", "moons", "-p", "noise=0.3", "--figure", "moons.png", cwd=tmp_path)
    assert mpimg.imread(tmp_path / "moons.png").shape[0] > 300
    r = actlab("data", "show", "digits", "-p", "classes=[3,8]", "--figure", str(tmp_path / "d.png"))
    assert r.returncode == 0, r.stderr
    assert "binary" in r.stdout and (tmp_path / "d.png").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["data", "show", "mooons"], "dataset 'mooons' is unknown; did you mean moons?"),
    (["data", "show", "moons", "-p", "noise=-2"],
     "dataset moons: noise=-2: Input should be greater than or equal to 0"),
    (["data", "show", "moons", "-p", "noise"], "--param 'noise' must look like KEY=VALUE"),
    (["data", "show", "cifar10", "-p", "url=http://127.0.0.1:9/c.tar.gz", "-p", "cache_dir=CACHE"],
     "Place the file cifar-10-python.tar.gz (MD5 c58f30108f718f92721af3b95e74349a) at"),
])
def test_data_bad_input(tmp_path, args, message):
    r = actlab(*[a.replace("CACHE", str(tmp_path)) for a in args], cwd=tmp_path)
    assert r.returncode == 2
    assert message in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr


def test_the_selection_guide_names_only_studies_that_ship():
    import re

    from actlab.studies.library import names as shipped_names

    r = actlab("activations", "guide", "--json")
    assert r.returncode == 0, r.stderr
    g = json.loads(r.stdout)
    assert len(g["architectures"]["rows"]) == 9 and len(g["outputs"]["rows"]) == 5 and len(g["rules"]) == 5
    assert g["flowchart"][-1]["question"] == "Otherwise" and "ReLU" in g["flowchart"][-1]["then"]
    studies = {m for row in g["architectures"]["rows"] for m in re.findall(r"actlab run ([\w-]+)", row[-1])}
    assert studies and studies <= set(shipped_names())  # every claim's "measure it" runs as written
    r = actlab("activations", "guide")
    assert r.returncode == 0 and "Decision flowchart" in r.stdout and "Rule of thumb" in r.stdout


def test_help_keeps_bracketed_examples_and_shows_no_type_beside_a_flag():
    r = subprocess.run([sys.executable, "-m", "actlab", "run", "--help"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "100"}, timeout=120)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "grid.activation=[relu,gelu]" in text  # not eaten as rich markup
    assert "<bool>" not in r.stdout and "<path>" in r.stdout  # values keep their type, flags have none
