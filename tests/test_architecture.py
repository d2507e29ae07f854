"""The package's shape: layers that follow the pipeline, no import cycles, imports at module level, a light
`import actlab`, and values resolved once (the grid's expansion, an import-path activation and its gain)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actlab.catalog import activations
from actlab.studies.config import expand, load_study

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"
RUFF = Path(sys.executable).parent / "ruff"
# Imports inside functions are allowed only to defer an optional dependency.
DEFERRED_OK = {"ray", "pandas", "polars"}  # optional dependencies
# seconds to import on a 2-core machine, needed by few calls: imported on first use so that `actlab --help`, a
# mistyped option or a study's validation answers without them (the figures: benchmarks/RESULTS.md)
SLOW_TO_IMPORT = {"sklearn", "scipy.signal"}
CLI_DEFERRED = {"actlab.report", "actlab.web", "actlab.store.export"}  # the command line's report, server, exporter


def _lint(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    if not LINT.exists():
        pytest.fail("lint-imports is missing: install the test extras (pip install -e '.[test]')")
    return subprocess.run([str(LINT), "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env)


def test_import_contracts_hold():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Layers follow the pipeline KEPT" in r.stdout
    assert "No import cycles between the modules of any package KEPT" in r.stdout
    assert "The store only writes and reads: nothing from training or the models KEPT" in r.stdout
    assert "Only the report draws: nothing below it imports matplotlib KEPT" in r.stdout
    for inside in ("analysis", "the fused kernel", "studies", "the command line"):
        assert f"Layers inside {inside} KEPT" in r.stdout
    assert "0 broken" in r.stdout


def test_activation_names_are_looked_up_only_where_they_enter():
    """A name becomes a catalog entry where it enters (the command line, a request, a study file through the
    configuration's typed field, a simulation's parameters, a name read back from a store); the models, the
    training loop, the fused kernel and the store receive entries and look nothing up."""
    lookup = re.compile(r"\b(catalog|activations)\.get\(|from actlab\.catalog(\.activations)? import [^\n]*\bget\b")
    where = {str(p.relative_to(ROOT / "src" / "actlab")) for p in (ROOT / "src" / "actlab").rglob("*.py")
             if lookup.search(p.read_text(encoding="utf-8"))}
    below = [w for w in where if w.split("/")[0] in ("nn", "training", "store", "data")]
    assert below == [], f"name lookups below the boundary: {below}"
    assert where - {w for w in where if w.startswith("catalog/")} <= {
        "cli/commands.py", "web/sessions.py", "web/routes/activations.py", "report/figures/catalog.py",
        "report/figures/theory.py", "report/figures/simulations.py", "studies/simulations.py",
        "analysis/simulations.py", "analysis/predictions.py", "analysis/language.py"}, sorted(where)


def test_a_configuration_holds_the_entry_and_writes_back_its_name_as_given():
    """The entry is held; the name is written back as it was given (cell keys and stored configurations are
    what they were before the field held the entry), and the entry equals any spelling of its name."""
    import pickle

    from actlab.catalog.activations import Activation
    from actlab.nn.models import ModelConfig

    cfg = ModelConfig(activation="LeakyReLU", output_activation="sigmoid")
    assert isinstance(cfg.activation, Activation) and cfg.activation.name == "leaky_relu"
    assert cfg.activation == "LeakyReLU" and cfg.activation == "leaky_relu" and str(cfg.activation) == "leaky_relu"
    assert cfg.model_dump()["activation"] == "LeakyReLU"
    assert pickle.loads(pickle.dumps(cfg)).model_dump()["activation"] == "LeakyReLU"
    assert cfg.model_dump(mode="json")["output_activation"] == "sigmoid"
    assert ModelConfig().activation.name == "relu"  # the default is an entry too
    assert ModelConfig(**cfg.model_dump()) == cfg


def test_the_store_names_the_fields_a_population_may_mix():
    """The store reads names only (it imports nothing from nn): its series fields are the models' MIXABLE ones
    and the output activation, and the model's kind (a GRU beside an LSTM is a series), kept equal here."""
    from actlab.nn.models import MIXABLE, RECURRENT
    from actlab.store.results import RECURRENT_KINDS, SERIES_FIELDS

    assert (*MIXABLE, "output_activation", "kind") == SERIES_FIELDS
    assert RECURRENT == RECURRENT_KINDS


def test_the_contracts_catch_a_back_up_import_and_a_cycle(tmp_path):
    """The same contract types on a small package that breaks both: the checker is not vacuous."""
    pkg = tmp_path / "pipe"
    (pkg / "low").mkdir(parents=True)
    (pkg / "high").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "__init__.py").write_text("")
    (pkg / "high" / "page.py").write_text("from pipe.low import a\n")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("from pipe.low import b\n")
    (pkg / "low" / "b.py").write_text(textwrap.dedent("""
        def f():
            from pipe.low import a  # an in-function import still counts
            from pipe.high import page  # a back-up import
    """))
    (tmp_path / ".importlinter").write_text(textwrap.dedent("""
        [importlinter]
        root_package = pipe

        [importlinter:contract:layers]
        name = layers
        type = layers
        layers =
            pipe.high
            pipe.low

        [importlinter:contract:cycles]
        name = cycles
        type = acyclic_siblings
        ancestors = pipe
    """))
    r = _lint(tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1
    assert "layers BROKEN" in r.stdout and "pipe.low.b -> pipe.high.page" in r.stdout
    assert "cycles BROKEN" in r.stdout


def test_the_code_passes_the_project_s_lint_rules():
    """ruff with the rule set of pyproject.toml ([tool.ruff.lint]) over the package, the tests, the benchmarks and
    the tools."""
    if not RUFF.exists():
        pytest.fail("ruff is missing: install the test extras (pip install -e '.[test]')")
    r = subprocess.run([str(RUFF), "check", "--no-cache", "src", "tests", "benchmarks", "tools"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_root_holds_no_stray_files():
    """What the root of the repository holds is the project's: no logs or run output committed."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    top = {p.split("/")[0] for p in tracked}
    assert top <= {".ci", ".gitignore", "Makefile", "README.md", "benchmarks", "constraints.txt", "docs",
                   "pyproject.toml", "src", "tests", "tools"}, sorted(top)


def _function_imports() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted((ROOT / "src" / "actlab").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                        found.append((str(path.relative_to(ROOT)), node.lineno, mod or ""))
    return found


def _slow(path: str, module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in SLOW_TO_IMPORT) or (
        path.startswith("src/actlab/cli/") and any(module.startswith(m) for m in CLI_DEFERRED))


def test_imports_sit_at_module_level_except_optional_and_slow_dependencies():
    """In-function imports hid two import cycles once (#11); they remain only for the optional dependencies
    and, to keep the command line quick to answer, for what takes seconds to import and few calls need."""
    found = _function_imports()
    bad = [f for f in found if f[2].split(".")[0] not in DEFERRED_OK and not _slow(f[0], f[2])]
    assert not bad, f"in-function imports (allowed only for {DEFERRED_OK}, {SLOW_TO_IMPORT}, {CLI_DEFERRED}): {bad}"
    for path, line, module in found:  # each deferred one says why
        text = (ROOT / path).read_text().splitlines()[line - 1]
        assert ("optional" if module.split(".")[0] in DEFERRED_OK else "start-up") in text, (path, line)


def test_the_command_line_starts_without_what_few_commands_need():
    code = ("import sys, actlab.cli; print([m for m in ('sklearn', 'scipy.signal', 'matplotlib', 'fastapi', 'pyarrow') "
            "if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_every_source_folder_is_a_package():
    """A folder without __init__.py is a namespace package, which the import contracts do not analyse."""
    folders = {p.parent for p in (ROOT / "src" / "actlab").rglob("*.py")}
    assert [f for f in folders if not (f / "__init__.py").exists()] == []


def test_the_public_train_function_is_never_shadowed_by_a_subpackage():
    code = ("import actlab; actlab.TrainConfig(); import actlab.studies, actlab.training, actlab.web; "
            "print(callable(actlab.train), callable(actlab.probe), actlab.train.__module__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["True", "True", "actlab.training.loop"], r.stderr


def test_import_actlab_is_light():
    code = "import sys, actlab; v = actlab.__version__; print('torch' in sys.modules, 'actlab.training' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-c", "import actlab; print(actlab.get('relu').name, actlab.train.__module__)"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["relu", "actlab.training.loop"], r.stderr


def test_the_grid_is_expanded_once_per_configuration():
    study = load_study("moons", ["train.epochs=2"])  # load_study validates by expanding
    first, second = expand(study), expand(study)
    assert [id(c) for c in first] == [id(c) for c in second]
    changed = load_study("moons", ["train.epochs=3"])
    assert expand(changed)[0].config.train.epochs == 3


def test_a_study_pickles_without_its_cache_and_compares_by_configuration():
    import pickle

    study = load_study("moons")
    again = pickle.loads(pickle.dumps(study))
    assert again == study and again._cells is None and len(expand(again)) == 2
    assert again != load_study("moons", ["seeds=3"])


def test_an_import_path_activation_is_resolved_once_and_its_gain_measured_once(tmp_path, monkeypatch):
    (tmp_path / "once_act.py").write_text("import torch\n\ndef bump(x, k=1.0):\n"
                                          "    return torch.tanh(x) + k * 0.1 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = []
    real = activations.gaussian_moments
    monkeypatch.setattr(activations, "gaussian_moments", lambda f: calls.append(1) or real(f))
    a = activations.get("once_act:bump")
    assert activations.get("once_act:bump") is a
    g = [a.init_gain(), a.init_gain(), a.init_gain(k=2.0), a.init_gain(k=2.0)]
    assert len(calls) == 2 and g[0] == g[1] and g[2] == g[3] != g[0]
    activations.from_import_path.cache_clear()
    sys.modules.pop("once_act", None)
