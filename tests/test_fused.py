"""The fused CPU kernel (actlab.training.fused) against the torch path: the same protocol, the same numbers
within float32 rounding, for every activation, optimizer and loss it supports; bitwise run to run; and the
populations it cannot train fall back to torch, or are refused with the reason when it was asked for."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from actlab import data
from actlab.errors import ActlabError
from actlab.nn import ModelConfig, build
from actlab.training import fused
from actlab.training.fused import activations as kernel_forms
from actlab.training.fused import codegen, kernel
from actlab.training.loop import TrainConfig, train

pytestmark = pytest.mark.skipif(not fused.available(), reason="numba is not installed")
njit_inline = kernel.njit(inline="always")  # how a kernel form is compiled


@pytest.fixture(scope="module")
def moons():
    return data.load("moons", n=160)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def both(ds, members, seeds, **train_opts):
    """The same population trained by torch and by the kernel: (torch history, fused history, torch model,
    fused model)."""
    out = []
    for engine in ("torch", "fused"):
        model = build(members, ds.input_shape, ds.task, ds.n_classes, seeds)
        h = train(model, ds, TrainConfig(device="cpu", engine=engine, **train_opts))
        assert h.engine == engine
        out.append((h, model))
    (ht, mt), (hf, mf) = out
    return ht, hf, mt, mf


def assert_same(ht, hf, mt, mf, rtol=2e-4, atol=2e-5):
    for name in ("batch_loss", "batch_acc", "test_loss", "test_acc", "train_loss", "train_acc"):
        a, b = getattr(ht, name), getattr(hf, name)
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=name)
    np.testing.assert_array_equal(hf.diverged_epoch, ht.diverged_epoch)
    for (name, pt), pf in zip(mt.named_parameters(), mf.parameters(), strict=True):
        np.testing.assert_allclose(pf.detach().numpy(), pt.detach().numpy(), rtol=rtol, atol=10 * atol, err_msg=name)


@pytest.mark.parametrize(("seeds", "widths", "path"), [(16, [2], "mixed"), (3, [8, 8], "generic")],
                         ids=["blocks-of-one-activation", "lanes-of-several"])
def test_every_activation_matches_the_torch_path(moons, seeds, widths, path):
    """Every activation of the kernel's table at once, with its default parameters, and with a non-default one
    where it has one. 16 seeds each fill whole blocks, one activation per block: the generated (unrolled)
    kernels train the activations they know (those with a branch-free form), the generic kernel the others. 3 seeds
    each mix activations inside a block (the generic kernel's lane-by-lane path)."""
    names = list(kernel_forms.FORMS)
    members = [ModelConfig(widths=widths, activation=a) for a in names]
    members += [ModelConfig(widths=widths, activation=a, activation_params=p)
                for a, p in (("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 0.5}), ("celu", {"alpha": 2.0}),
                             ("softplus", {"beta": 2.0}), ("swish", {"beta": 1.5}))]
    model = build(members, moons.input_shape, moons.task, moons.n_classes, list(range(seeds)))
    assert fused.FusedPopulation(model, TrainConfig(), moons.task, moons.n_classes).path == path
    ht, hf, mt, mf = both(moons, members, list(range(seeds)), epochs=4, batch_size=32, lr=0.1, probe_epochs=[0, "last"])
    assert_same(ht, hf, mt, mf)
    for rt, rf in zip(ht.probes, hf.probes, strict=True):  # probes read the kernel's weights, copied back
        for key in rt.weight_stats:
            np.testing.assert_allclose(rf.weight_stats[key], rt.weight_stats[key], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("opts", [
    {"optimizer": "sgd"},
    {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-3},
    {"optimizer": "sgd", "momentum": 0.8, "nesterov": True, "schedule": "cosine"},
    {"optimizer": "adam", "lr": 0.01, "weight_decay": 1e-3},
    {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.05, "betas": (0.8, 0.99), "schedule": "warmup_cosine",
     "warmup_epochs": 2},
    {"optimizer": "sgd", "batch_size": "full", "lr": 0.5},
    {"optimizer": "sgd", "loss": "mse"},
], ids=["sgd", "momentum-l2", "nesterov-cosine", "adam-l2", "adamw-warmup", "full-batch", "mse"])
def test_every_optimizer_and_schedule_matches(moons, opts):
    """On moons' 2-8-8-1 with 16 seeds per activation: the generated kernels."""
    members = [ModelConfig(widths=[8, 8], activation="tanh"), ModelConfig(widths=[8, 8], activation="relu")]
    model = build(members, moons.input_shape, moons.task, moons.n_classes, list(range(16)))
    assert fused.FusedPopulation(model, TrainConfig(), moons.task, moons.n_classes).path == "generated"
    ht, hf, mt, mf = both(moons, members, list(range(16)), **{"epochs": 5, "batch_size": 32, "lr": 0.1, **opts})
    assert_same(ht, hf, mt, mf)


def test_the_generic_kernel_trains_what_the_generated_ones_do_not(moons):
    """20 seeds per activation leave blocks holding two activations: the generic kernel, the same numbers."""
    members = [ModelConfig(widths=[8, 8], activation="tanh"), ModelConfig(widths=[8, 8], activation="relu")]
    model = build(members, moons.input_shape, moons.task, moons.n_classes, list(range(20)))
    assert fused.FusedPopulation(model, TrainConfig(), moons.task, moons.n_classes).path == "mixed"
    ht, hf, mt, mf = both(moons, members, list(range(20)), epochs=5, batch_size=32, lr=0.1, optimizer="adam")
    assert_same(ht, hf, mt, mf)


def test_vectorisable_exp_and_log1p_are_accurate():
    """The generated kernels' own exp and log1p (no libm calls, so the lane loop vectorises) against float64."""
    from numba import njit

    @njit
    def run(x):
        e, lg = np.empty_like(x), np.empty_like(x)
        for i in range(x.shape[0]):
            e[i] = kernel._vexp(x[i])
            lg[i] = kernel._vlog1p(min(max(x[i], np.float32(0.0)), np.float32(1.0)))
        return e, lg

    x = np.linspace(-87, 88, 400_001).astype(np.float32)
    e, lg = run(x)
    ref = np.exp(x.astype(np.float64))
    assert np.max(np.abs(e - ref) / ref) < 4e-7  # a few float32 ulps
    assert np.max(np.abs(lg - np.log1p(np.clip(x, 0, 1).astype(np.float64)))) < 2e-7


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_multiclass_losses_match(digits, loss):
    members = [ModelConfig(widths=[12], activation="gelu")]
    ht, hf, mt, mf = both(digits, members, list(range(5)), epochs=3, batch_size=64, optimizer="adam", lr=0.01,
                          loss=loss, eval_train=False)
    assert_same(ht, hf, mt, mf)


@pytest.mark.parametrize("seeds", [16, 18], ids=["generated", "generic"])
def test_divergent_replicas_are_frozen_alike(moons, seeds):
    """Replicas 1 and 5 overflow on their first steps (weights × 1e30): the same ones, at the same epoch, are
    zeroed and NaN from then on in both paths, and the others go on alike."""
    members = [ModelConfig(widths=[8, 8], activation="relu", init="kaiming_normal")]
    out = []
    for engine in ("torch", "fused"):
        model = build(members, moons.input_shape, moons.task, moons.n_classes, list(range(seeds)))
        with torch.no_grad():
            for layer in model.weight_layers():
                layer.weight[[1, 5]] *= 1e30
        out.append((train(model, moons, TrainConfig(epochs=4, batch_size=32, lr=0.1, loss="mse", device="cpu",
                                                    engine=engine)), model))
    (ht, mt), (hf, mf) = out
    assert hf.engine == "fused" and ht.diverged_epoch.tolist()[:6] == [0, 1, 0, 0, 0, 1]
    assert_same(ht, hf, mt, mf)
    np.testing.assert_array_equal(np.isnan(hf.test_loss), np.isnan(ht.test_loss))
    for pf in mf.parameters():
        assert float(pf.detach()[[1, 5]].abs().sum()) == 0.0 and torch.isfinite(pf).all()


def test_bitwise_the_same_run_to_run(moons):
    members = [ModelConfig(widths=[8, 8], activation="gelu")]
    runs = []
    for _ in range(2):
        model = build(members, moons.input_shape, moons.task, moons.n_classes, list(range(20)))
        runs.append((train(model, moons, TrainConfig(epochs=3, batch_size=32, device="cpu", engine="fused")), model))
    (h1, m1), (h2, m2) = runs
    assert np.array_equal(h1.test_loss, h2.test_loss) and np.array_equal(h1.batch_loss, h2.batch_loss)
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters(), strict=True))


def test_the_data_order_is_the_seeds_own(moons):
    """The kernel's permutations are rng.permutations' (the hash and the stable sort): the equivalence
    contract's data order."""
    from actlab import rng

    model = build(ModelConfig(widths=[4]), moons.input_shape, moons.task, moons.n_classes, [3, 17, 2**31 + 5])
    fp = fused.FusedPopulation(model, TrainConfig(), moons.task, moons.n_classes)
    got = fp.order(7, 120)[:3]
    want = rng.permutations([3, 17, 2**31 + 5], rng.stream_id("order", 7), 120).numpy()
    np.testing.assert_array_equal(got, want)
    # the bucket sort against torch's stable argsort over sizes around its bucket counts (1 to 4,097 points)
    seeds = list(range(0, 4000, 7))
    for n in (1, 2, 3, 63, 64, 65, 300, 1000, 4097):
        stream = rng.stream_id("order", n)
        keys = rng._seed_keys(seeds, stream, "cpu").numpy().astype(np.uint64)
        got = codegen.data_order()._permutations(keys, n)
        np.testing.assert_array_equal(got, rng.permutations(seeds, stream, n).numpy())


def test_what_the_kernel_cannot_train_falls_back_or_is_refused(moons, digits):
    prelu = build(ModelConfig(widths=[4], activation="prelu"), moons.input_shape, moons.task, moons.n_classes, [0])
    assert train(prelu, moons, TrainConfig(epochs=1, device="cpu")).engine == "torch"  # auto falls back
    with pytest.raises(ActlabError, match="train.engine='fused' cannot train this population: activation prelu"):
        train(prelu, moons, TrainConfig(epochs=1, device="cpu", engine="fused"))
    conv = build(ModelConfig(kind="convnet", depth=1, width=4, activation="relu"), digits.input_shape, digits.task,
                 digits.n_classes, [0])
    with pytest.raises(ActlabError, match="PopConvNet"):
        train(conv, digits, TrainConfig(epochs=1, device="cpu", engine="fused"))
    wide = build(ModelConfig(widths=[32]), moons.input_shape, moons.task, moons.n_classes, [0])
    assert train(wide, moons, TrainConfig(epochs=1, device="cpu")).engine == "torch"  # auto: measured slower
    small = build(ModelConfig(widths=[8, 8]), moons.input_shape, moons.task, moons.n_classes, [0, 1])
    assert train(small, moons, TrainConfig(epochs=1, device="cpu")).engine == "torch"  # auto: too little work
    assert "example-passes" in fused.slower(small, 300, 800)  # 2 × 800 × 300: torch is done in seconds
    big = build(ModelConfig(widths=[8, 8]), moons.input_shape, moons.task, moons.n_classes, list(range(420)))
    assert fused.slower(big, 300, 800) is None  # 420 × 800 × 300 ≥ 10⁸: the kernel repays its compilation
    assert train(small, moons, TrainConfig(epochs=1, device="cpu", engine="fused")).engine == "fused"
    # 300 seeds per activation: 18 blocks of each and one block holding both, on the generic kernel; auto keeps
    # the kernel (16 generic lanes), and would leave it to torch past 512 generic lanes
    pair = [ModelConfig(widths=[8, 8], activation="tanh"), ModelConfig(widths=[8, 8], activation="relu")]
    fp = fused.FusedPopulation(build(pair, moons.input_shape, moons.task, moons.n_classes, list(range(300))),
                               TrainConfig(), moons.task, moons.n_classes)
    assert fp.path == "mixed" and len(fp.generic_blocks) == 1 and fused.slower_population(fp) is None
    fp.generic_blocks = np.arange(33)
    assert "528 replicas on the generic kernel" in fused.slower_population(fp)


def test_a_run_records_which_engine_trained_each_cell(smoke_runs, tmp_path):
    from actlab.store.results import Run
    from actlab.studies.config import load_study
    from actlab.studies.runner import run_study

    with Run.open(smoke_runs["moons"].run_dir) as run:
        assert {c.device for c in run.cells} == {"cpu"}  # 2-8-8-1 at 2 seeds, auto: too little work for the kernel
    summary = run_study(load_study("moons", ["train.epochs=2", "seeds=3", "train.engine=fused"]), tmp_path / "f")
    with Run.open(summary.run_dir) as run:
        assert {c.device for c in run.cells} == {"cpu (fused kernel)"}
    with Run.open(smoke_runs["activation-zoo"].run_dir) as run:
        assert {c.device for c in run.cells if c.status == "done"} == {"cpu"}  # MNIST-1D's 40 inputs: torch


def test_the_decision_surface_by_the_kernel_is_torch_s(moons):
    """A population the kernel trained draws its surface with the kernel's forward pass: the same surface as
    torch's forward pass of the same weights, chunked or not."""
    from actlab.training import probes

    members = [ModelConfig(widths=[8, 8], activation="tanh"), ModelConfig(widths=[8, 8], activation="relu")]
    model = build(members, moons.input_shape, moons.task, moons.n_classes, list(range(16)))
    train(model, moons, TrainConfig(epochs=3, batch_size=32, lr=0.1, device="cpu", engine="fused"))
    forward = fused.surface_forward(model, TrainConfig(), moons.task, moons.n_classes)
    assert forward is not None
    want = probes.decision_surface(model, moons.x_train, step=0.1, groups=2, keep=3)
    for chunk in (None, 37):
        got = probes.decision_surface(model, moons.x_train, step=0.1, groups=2, keep=3, chunk=chunk, forward=forward)
        np.testing.assert_allclose(got.mean, want.mean, atol=2e-6)
        np.testing.assert_allclose(got.kept, want.kept, atol=2e-6)
        assert np.mean(got.agreement != want.agreement) < 0.01  # a point on the 0.5 line may round either way
    mixed = build(members, moons.input_shape, moons.task, moons.n_classes, list(range(3)))  # generic kernel
    assert fused.surface_forward(mixed, TrainConfig(), moons.task, moons.n_classes) is None


def test_every_element_wise_catalog_entry_has_a_kernel_form_or_a_reason():
    """The kernel's table is keyed by catalog name: an element-wise entry without a form must be listed as
    torch-only with the reason, so no activation falls back to torch silently; vector-valued entries have none."""
    from actlab.catalog import activations as catalog

    elementwise = [n for n in catalog.names(include_vector=False)]
    missing = [n for n in elementwise if n not in kernel_forms.FORMS and n not in kernel_forms.TORCH_ONLY]
    assert missing == [], f"element-wise entries with no kernel form and no reason: {missing}"
    assert all(kernel_forms.TORCH_ONLY[n] for n in kernel_forms.TORCH_ONLY)
    assert set(kernel_forms.FORMS) <= set(elementwise)  # keyed by catalog names, nothing else
    assert all(f.exact is not None for f in kernel_forms.FORMS.values())


@njit_inline
def bent_exact(z, p):
    r = math.sqrt(z * z + np.float32(1.0))
    return (r - np.float32(1.0)) / np.float32(2.0) + z, z / (np.float32(2.0) * r) + np.float32(1.0)


@njit_inline
def bent_branch_free(z, p):
    r = math.sqrt(z * z + np.float32(1.0))
    return (r - np.float32(1.0)) / np.float32(2.0) + z, z / (np.float32(2.0) * r) + np.float32(1.0)


def test_an_activation_joins_the_kernel_by_one_entry_keyed_by_its_name(moons, monkeypatch):
    """A new catalog activation (bent identity) trains on torch, saying why, until its forms are entered under
    its name; then the kernel trains it, with torch's numbers."""
    from actlab.catalog import activations as catalog

    monkeypatch.setattr(catalog, "_REGISTRY", dict(catalog._REGISTRY))
    monkeypatch.setattr(catalog, "_KEYS", dict(catalog._KEYS))
    catalog.register(catalog.from_callable(lambda x: (torch.sqrt(x * x + 1) - 1) / 2 + x, name="bent_identity"))
    members = [ModelConfig(widths=[4], activation="bent_identity")]
    model = build(members, moons.input_shape, moons.task, moons.n_classes, list(range(16)))
    why = fused.unsupported(model, moons, TrainConfig(), torch.device("cpu"))
    assert why == ("activation bent_identity (not in the kernel's table: no kernel form in "
                   "actlab.training.fused.activations)")
    monkeypatch.setitem(kernel_forms.FORMS, "bent_identity", kernel_forms.KernelForm("bent_identity"))  # undone after
    kernel_forms.form("bent_identity")(bent_exact)  # the entry: its exact form ...
    kernel_forms.form("bent_identity", branch_free=True)(bent_branch_free)  # ... and its branch-free form
    assert fused.unsupported(model, moons, TrainConfig(), torch.device("cpu")) is None
    assert fused.FusedPopulation(model, TrainConfig(), moons.task, moons.n_classes).path == "generated"
    assert_same(*both(moons, members, list(range(16)), epochs=3, batch_size=32, lr=0.1))


def test_a_form_the_generated_code_cannot_import_is_refused_with_its_name():
    def local(z, p):
        return z, z

    with pytest.raises(ValueError, match="must be defined at the top level"):
        codegen._import(njit_inline(local), "F0")


def test_auto_records_why_a_population_trained_on_torch(tmp_path):
    """engine "auto" on torch: the reason is kept with the cells (the store) and shown in the report's cells table."""
    from actlab.report.tables import cells_table
    from actlab.store.results import Run
    from actlab.studies.config import load_study
    from actlab.studies.runner import run_study

    summary = run_study(load_study("moons", ["train.epochs=1", "seeds=2", 'grid.activation=["prelu"]']), tmp_path / "p")
    with Run.open(summary.run_dir) as run:
        notes = {c.engine_note for c in run.cells}
        assert notes == {"activation prelu (not in the kernel's table: its slope α is learnable, and the kernel's "
                         "parameters are weights and biases only)"}
        assert "not the fused kernel: activation prelu" in cells_table(run).rows[0][6]
    summary = run_study(load_study("moons", ["train.epochs=1", "seeds=2", "train.engine=torch"]), tmp_path / "t")
    with Run.open(summary.run_dir) as run:
        assert {c.engine_note for c in run.cells} == {None}  # asked for torch: nothing to explain


def test_the_first_compile_of_a_kernel_is_said_before_it_starts(moons, tmp_path, monkeypatch):
    """A kernel numba has not compiled on this machine is announced (it takes tens of seconds, once); a kernel it
    has compiled before is not."""
    monkeypatch.setenv("ACTLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(codegen, "_LOADED", {})
    heard: list[str] = []
    model = build(ModelConfig(widths=[2]), moons.input_shape, moons.task, moons.n_classes, list(range(16)))
    fp = fused.FusedPopulation(model, TrainConfig(), moons.task, moons.n_classes, heard.append)
    assert fp.path == "generated"
    assert heard == [f"compiling the CPU kernel for 2-2-1 relu (bce) with numba, once on this machine (tens of "
                     f"seconds; kept in {tmp_path / 'kernels'})"]
    train(model, moons, TrainConfig(epochs=1, device="cpu", engine="fused"))  # compiles, and numba keeps it
    monkeypatch.setattr(codegen, "_LOADED", {})
    heard.clear()
    fused.FusedPopulation(model, TrainConfig(), moons.task, moons.n_classes, heard.append)
    assert heard == []


def test_another_function_under_a_catalog_name_is_not_trained_with_the_catalog_s_form(moons):
    """The kernel's forms compute the catalog's entries: an entry with the same name and another function (a
    copy of tanh computing sin) trains on torch, and engine "fused" says why."""
    import dataclasses

    from actlab.catalog.activations import get

    impostor = dataclasses.replace(get("tanh"), fn=lambda x: torch.sin(x), module_factory=lambda: torch.nn.Identity())
    model = build([ModelConfig(widths=[4], activation=impostor)], moons.input_shape, moons.task, moons.n_classes,
                  list(range(16)))
    why = fused.unsupported(model, moons, TrainConfig(), torch.device("cpu"))
    assert why is not None and "is not the catalog's entry of that name" in why
    genuine = build([ModelConfig(widths=[4], activation="tanh")], moons.input_shape, moons.task, moons.n_classes, [0])
    assert fused.unsupported(genuine, moons, TrainConfig(), torch.device("cpu")) is None
