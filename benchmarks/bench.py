"""actlab's speed and memory benchmarks (DESIGN §7); each measures its baseline in the same run.

    python benchmarks/bench.py moons      # model-epochs/s: population vs one-at-a-time NumPy
    python benchmarks/bench.py blobs      # the same on the blobs-depth workload (full batch)
    python benchmarks/bench.py cnn        # conv GFLOP/s vs this machine's fp32 matmul rate, and vs a per-model loop
    python benchmarks/bench.py memory     # peak RSS of a 10,000-network moons population while training
    python benchmarks/bench.py grouping   # shipped studies with cells in separate vs shared populations
    python benchmarks/bench.py peers      # actlab vs torch.func ensembling vs a per-model loop vs NumPy
    python benchmarks/bench.py userpath   # `actlab run moons` (all diagnostics, store) vs the engine alone:
                                          # wall, peak RSS, store size (ACTLAB_BENCH_SEEDS, default 5000)
    python benchmarks/bench.py scaling    # model-epochs/s against population size (benchmarks/scaling.png)
    python benchmarks/bench.py endtoend   # `actlab run moons` (fused kernel; torch engine) vs seed 000's NumPy
                                          # code ported as written (ACTLAB_BENCH_SEEDS, default 2000)
    python benchmarks/bench.py table      # §3's one table: every workload against every peer and its source's
                                          # own code, `actlab run` whole, the full activation-zoo (peers.png)
    python benchmarks/bench.py live       # the explorer's live view in Chromium: first frame, frames/s and epochs/s
                                          # against the same training headless, quiet and with the CPUs loaded
    python benchmarks/bench.py all

Prints one JSON object per benchmark (machine, date and every figure) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).parent))
from numpy_baseline import train_one  # noqa: E402

from actlab import data  # noqa: E402
from actlab.nn import ModelConfig, build  # noqa: E402
from actlab.report.figures.common import finish  # noqa: E402
from actlab.runtime import tune_malloc  # noqa: E402
from actlab.studies.config import load_study  # noqa: E402
from actlab.studies.runner import run_study  # noqa: E402
from actlab.training.loop import TrainConfig, train  # noqa: E402


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "date": datetime.date.today().isoformat()}


def _population_rate(cfg: ModelConfig, ds, tc: TrainConfig, m: int) -> float:
    """Model-epochs per second of one population of m replicas (after one warm-up epoch)."""
    return _population_run(cfg, ds, tc, m)[0]


def _population_run(cfg: ModelConfig, ds, tc: TrainConfig, m: int) -> tuple[float, str]:
    """(model-epochs per second, the path that trained it: torch or fused) of one population of m replicas,
    after a warm-up epoch (which compiles a kernel if the fused path is taken)."""
    model = build(cfg, ds.input_shape, ds.task, ds.n_classes, list(range(m)))
    train(model, ds, tc.model_copy(update={"epochs": 1}))
    t = time.perf_counter()
    h = train(model, ds, tc)
    return m * tc.epochs / (time.perf_counter() - t), h.engine


def _numpy_rate(sizes, act, ds, epochs, lr, batch, init, out_act, models=3) -> float:
    x, y = ds.x_train.double().numpy(), ds.y_train.double().numpy()
    t = time.perf_counter()
    for seed in range(models):
        train_one(sizes, act, seed, x, y, epochs, lr, batch, init, out_act)
    return models * epochs / (time.perf_counter() - t)


def bench_moons(m: int = 4000, epochs: int = 20) -> dict:
    """2-8-8-1 ReLU, SGD lr 0.05, batch 64 on the 300 moons training points."""
    ds = data.load("moons")
    base = _numpy_rate([2, 8, 8, 1], "relu", ds, 100, 0.05, 64, "he", None)
    tc = TrainConfig(epochs=epochs, batch_size=64, lr=0.05, eval_train=False, device="cpu", engine="torch")
    rates = {mm: _population_rate(ModelConfig(widths=[8, 8], activation="relu"), ds, tc, mm) for mm in (1, 100, 1000,
                                                                                                        m)}
    best = max(rates.values())
    return {"benchmark": "moons", "numpy_model_epochs_per_s": base,
            "population_model_epochs_per_s": {str(k): v for k, v in rates.items()},
            "ratio": best / base, "target_ratio": 100}


def bench_blobs(m: int = 4000, epochs: int = 100) -> dict:
    """8-16-32-16-1 sigmoid on every layer, 0.01·U[0,1) init, MSE, full-batch GD lr 0.1 (400 points)."""
    ds = data.load("blobs8")
    base = _numpy_rate([8, 16, 32, 16, 1], "sigmoid", ds, 300, 0.1, None, "blobs", "sigmoid")
    cfg = ModelConfig(widths=[16, 32, 16], activation="sigmoid", output_activation="sigmoid", init="blobs")
    tc = TrainConfig(epochs=epochs, batch_size=None, lr=0.1, loss="mse", eval_train=False, device="cpu")
    rates = {mm: _population_rate(cfg, ds, tc, mm) for mm in (1, 100, 1000, m)}
    return {"benchmark": "blobs-depth", "numpy_model_epochs_per_s": base,
            "population_model_epochs_per_s": {str(k): v for k, v in rates.items()},
            "ratio": max(rates.values()) / base, "target_ratio": 100}


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
    """This machine's fp32 matrix-multiply rate (torch.mm, all threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def conv_flops_per_image(depth: int, ch: int = 64, hw: int = 32, c_in: int = 3) -> float:
    """Forward conv FLOPs (multiply-adds × 2) of the cnn-depth network on one image."""
    k = 9
    return 2 * hw * hw * k * ch * (c_in + depth * ch)


def bench_cnn(depth: int = 4, m: int = 2, n: int = 512, batch: int = 128) -> dict:
    """The cnn-depth workload on CPU with CIFAR-10-shaped synthetic data (3×32×32, 10 classes)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    ds = data.record.Dataset("synthetic-cifar", "multiclass", x, y, x[:128], y[:128], tuple(map(str, range(10))))
    cfg = ModelConfig(kind="convnet", depth=depth, width=64, norm="batch", activation="relu")
    tc = TrainConfig(epochs=1, batch_size=batch, optimizer="adam", lr=1e-3, eval_train=False, device="cpu")
    peak = matmul_gflops()
    model = build(cfg, ds.input_shape, ds.task, 10, list(range(m)))
    train(model, ds, tc)  # warm-up
    t = time.perf_counter()
    h = train(model, ds, tc)
    dt = time.perf_counter() - t - 0.0
    eval_images = len(ds.x_test)
    flops = conv_flops_per_image(depth) * m * (3 * n + eval_images)  # train: forward + 2× backward; eval: forward
    pop_gflops = flops / dt / 1e9
    # Baseline: the original notebook style, one model at a time, nn.Sequential and a DataLoader.
    seq_time = _per_model_loop(x, y, depth, m, batch)
    seq_flops = conv_flops_per_image(depth) * m * 3 * n
    return {"benchmark": "cnn-depth (CPU)", "depth": depth, "replicas": m, "train_images": n,
            "matmul_gflops": peak, "population_conv_gflops": pop_gflops, "fraction_of_matmul": pop_gflops / peak,
            "per_model_loop_conv_gflops": seq_flops / seq_time / 1e9,
            "population_s_per_model_epoch": dt / m, "per_model_loop_s_per_model_epoch": seq_time / m,
            "speedup_vs_per_model_loop": (seq_time / m) / (dt / m), "target_fraction": 0.6,
            "final_loss_finite": bool(np.isfinite(h.test_loss).all())}


def _per_model_loop(x, y, depth, models, batch) -> float:
    from torch import nn

    t = time.perf_counter()
    for seed in range(models):
        torch.manual_seed(seed)
        layers = [nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=True)
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
    return time.perf_counter() - t


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that across fork + exec,
    so a child would inherit its parent's peak."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _memory_child(m: int, epochs: int) -> None:
    """Runs in a subprocess: train m moons networks and report peak RSS (and RSS before building)."""
    ds = data.load("moons")
    before = _peak_rss_mb()
    model = build(ModelConfig(widths=[8, 8], activation="relu"), ds.input_shape, ds.task, 2, list(range(m)))
    t = time.perf_counter()
    h = train(model, ds, TrainConfig(epochs=epochs, batch_size=64, lr=0.05, probe_epochs=[epochs], device="cpu"))
    peak = _peak_rss_mb()
    print(json.dumps({"replicas": m, "epochs": epochs, "rss_after_imports_mb": before, "peak_rss_mb": peak,
                      "seconds": time.perf_counter() - t, "mean_final_test_acc": float(np.nanmean(h.final_test_acc))}))


def bench_memory(m: int = 10_000, epochs: int = 10) -> dict:
    out = subprocess.run([sys.executable, __file__, "_memory_child", str(m), str(epochs)], capture_output=True,
                         text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return {"benchmark": "memory", **res, "target_peak_rss_mb": 1024}


def bench_grouping(studies: tuple[str, ...] = ("moons", "blobs-depth-defaults", "cnn-depth-cpu")) -> dict:
    """Whole shipped studies with cells in separate populations vs sharing one (group_cells false / true)."""
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in studies:
            times = {}
            for grouped in (False, True):
                study = load_study(name, [f"group_cells={'true' if grouped else 'false'}"])
                t = time.perf_counter()
                run_study(study, Path(tmp) / f"{name}-{grouped}")
                times["shared" if grouped else "separate"] = time.perf_counter() - t
            out[name] = {**times, "speedup": times["separate"] / times["shared"]}
    return {"benchmark": "population sharing", "studies": out}


# ------------------------------------------------------------------------------ peers, side by side


def _torch_mlp(sizes: list[int] | dict, act: str) -> torch.nn.Module:
    """nn.Sequential of Linear layers with `act` between them; a dict {"depth", "width", "in_channels"} is
    seed 001's Network (stem + Conv-BN-Act blocks + pool + linear, benchmarks/source_cnn.py)."""
    if isinstance(sizes, dict):
        import source_cnn

        return source_cnn.Network(sizes["depth"], act, sizes["in_channels"], sizes["width"])
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU() if act == "relu" else torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


def _inputs(ds, sizes) -> torch.Tensor:
    return ds.x_train if isinstance(sizes, dict) else ds.x_train.flatten(1)


def _loss(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if kind == "bce":
        return torch.nn.functional.binary_cross_entropy_with_logits(out[..., 0], y.float())
    if kind == "mse":
        return ((torch.sigmoid(out[..., 0]) - y.float()) ** 2).mean()
    return torch.nn.functional.cross_entropy(out.flatten(0, -2), y.flatten())


def _torchfunc_rate(sizes, act, ds, epochs, lr, batch, loss, m, optimizer="sgd") -> float:
    """PyTorch's own model-ensembling recipe (torch.func tutorial): stack_module_state + functional_call +
    vmap(grad), each model with its own shuffle (a per-model sort of random keys; full batch: the shared
    data, no shuffle, as actlab's engine does), SGD or Adam by hand."""
    from torch.func import functional_call, grad, replace_all_batch_norm_modules_, stack_module_state, vmap

    # BatchNorm under vmap: the recipe's documented way, batch statistics only (no running buffers to update)
    models = [replace_all_batch_norm_modules_(_torch_mlp(sizes, act)) for _ in range(m)]
    params, buffers = stack_module_state(models)
    base = replace_all_batch_norm_modules_(_torch_mlp(sizes, act)).to("meta")

    def f(p, b, x, y):
        return _loss(loss, functional_call(base, (p, b), (x,)), y)

    g = vmap(grad(f))
    g_shared = vmap(grad(f), in_dims=(0, 0, None, None))  # full batch: every model sees the same x, y
    x, y = _inputs(ds, sizes), ds.y_train
    n = len(x)
    bs = n if batch is None else batch
    state = {k: (torch.zeros_like(v), torch.zeros_like(v)) for k, v in params.items()}
    step = 0

    def run(k: int) -> None:
        nonlocal step
        for _ in range(k):
            perm = torch.argsort(torch.rand(m, n), dim=1) if bs < n else None  # full batch: no order to draw
            for i in range(0, n, bs):
                if perm is None:
                    grads = g_shared(params, buffers, x, y)
                else:
                    idx = perm[:, i: i + bs]
                    grads = g(params, buffers, x[idx], y[idx])
                step += 1
                with torch.no_grad():
                    for key, p in params.items():
                        if optimizer == "adam":
                            m1, m2 = state[key]
                            m1.mul_(0.9).add_(grads[key], alpha=0.1)
                            m2.mul_(0.999).addcmul_(grads[key], grads[key], value=0.001)
                            p.sub_(lr * (m1 / (1 - 0.9 ** step)) / ((m2 / (1 - 0.999 ** step)).sqrt() + 1e-8))
                        else:
                            p.sub_(lr * grads[key])

    run(1)  # warm-up
    t = time.perf_counter()
    run(epochs)
    return m * epochs / (time.perf_counter() - t)


def _loop_rate(sizes, act, ds, epochs, lr, batch, loss, models=3, optimizer="sgd") -> float:
    """A per-model PyTorch loop, the usual way: nn.Sequential, torch.optim, a DataLoader that shuffles."""
    from torch.utils.data import DataLoader, TensorDataset

    x, y = _inputs(ds, sizes), ds.y_train
    t = time.perf_counter()
    for seed in range(models):
        torch.manual_seed(seed)
        net = _torch_mlp(sizes, act)
        opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(net.parameters(), lr=lr)
        dl = DataLoader(TensorDataset(x, y), batch_size=batch or len(x), shuffle=True)
        for _ in range(epochs):
            for xb, yb in dl:
                opt.zero_grad()
                _loss(loss, net(xb), yb).backward()
                opt.step()
    return models * epochs / (time.perf_counter() - t)


def bench_peers(m: int = 4000) -> dict:
    """model-epochs/s of the same training, measured in this run: actlab's population engine (training only,
    eval_train off), PyTorch's torch.func ensembling recipe at the same population size, a per-model
    PyTorch loop, and one-at-a-time NumPy (the sources' style; binary tasks only). Workloads: moons
    (2-8-8-1 ReLU, BCE, SGD lr 0.05, batch 64), blobs-depth (8-16-32-16-1 sigmoid, MSE, full batch, lr 0.1)
    and activation-zoo's MNIST-1D MLP (40-64-64-10 ReLU, CE, Adam 1e-3, batch 128)."""
    out = {}
    work = {
        "moons": ("moons", [2, 8, 8, 1], "relu", 0.05, 64, "bce", "sgd", ModelConfig(widths=[8, 8], activation="relu"),
                  dict(loss="bce"), 20, ("he", None)),
        "blobs-depth": ("blobs8", [8, 16, 32, 16, 1], "sigmoid", 0.1, None, "mse", "sgd",
                        ModelConfig(widths=[16, 32, 16], activation="sigmoid", output_activation="sigmoid",
                                    init="blobs"), dict(loss="mse"), 50, ("blobs", "sigmoid")),
        "mnist1d-mlp": ("mnist1d", [40, 64, 64, 10], "relu", 1e-3, 128, "ce", "adam",
                        ModelConfig(widths=[64, 64], activation="relu"), dict(loss="ce", optimizer="adam"), 3, None),
    }
    for name, (dname, sizes, act, lr, batch, loss, opt, cfg, tkw, epochs, npinit) in work.items():
        ds = data.load(dname)
        mm = m if name != "mnist1d-mlp" else max(1, m // 10)
        tc = TrainConfig(epochs=epochs, batch_size=batch, lr=lr, eval_train=False, device="cpu", engine="torch", **tkw)
        row = {"replicas": mm,
               "actlab": _population_rate(cfg, ds, tc, mm),
               "torch_func": _torchfunc_rate(sizes, act, ds, epochs, lr, batch, loss, mm, opt),
               "per_model_loop": _loop_rate(sizes, act, ds, max(2, epochs // 5), lr, batch, loss, 2, opt)}
        if npinit is not None:
            row["numpy"] = _numpy_rate(sizes, act, ds, max(20, epochs), lr, batch, npinit[0], npinit[1])
        row["ratios"] = {k: row["actlab"] / v for k, v in row.items() if k not in ("replicas", "actlab")}
        out[name] = row
    return {"benchmark": "peers (model-epochs/s, same run)", "workloads": out}


def _engine_child(seeds: int, sets: list[str]) -> None:
    """Runs in a subprocess: the moons study's population (both cells, every seed) trained by the engine
    alone, with the study's own training configuration (per-epoch test evaluation and its probes included),
    no diagnostics and no store: what `actlab run` adds is measured against this."""
    from actlab.studies.config import expand
    from actlab.studies.datacache import DataCache
    from actlab.studies.populations import populations

    study = load_study("moons", [f"seeds={seeds}", *sets])
    (cells,) = populations(expand(study), study.group_cells)
    cfg = cells[0].config
    t = time.perf_counter()
    ds = DataCache().load(cfg)
    model = build([c.config.model for c in cells], ds.input_shape, ds.task, ds.n_classes, cfg.seed_list())
    train(model, ds, cfg.train)
    print(json.dumps({"seconds": time.perf_counter() - t, "peak_rss_mb": _peak_rss_mb(),
                      "model_epochs": len(cells) * seeds * cfg.train.epochs}))


def bench_userpath(seeds: int | None = None, sets: tuple[str, ...] = ()) -> dict:
    """`actlab run moons --set seeds=N --no-report` (defaults: every diagnostic, the decision surface, the
    store) against the engine alone on the same population, both in fresh processes of this run: wall time,
    peak RSS (the child's VmHWM, read by GNU time's %M where present, else getrusage of the children), and
    the run directory's size."""
    import tempfile

    seeds = seeds or int(os.environ.get("ACTLAB_BENCH_SEEDS", "5000"))
    eng = json.loads(subprocess.run([sys.executable, __file__, "_engine_child", str(seeds), *sets], capture_output=True,
                                    text=True, check=True).stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        epochs = next((int(x.split("=", 1)[1]) for x in sets if x.startswith("train.epochs=")), 800)
        res = _actlab_run(seeds, [x for x in sets if not x.startswith("train.epochs=")], Path(tmp) / "run", epochs)
    wall, peak, store, db = res["seconds"], res["peak_rss_mb"], res["run_dir_bytes"], res["sqlite_bytes"]
    return {"benchmark": "user path: actlab run moons vs the engine alone", "seeds_per_cell": seeds, "sets": sets,
            "replicas": 2 * seeds, "actlab_run_seconds": wall, "engine_seconds": eng["seconds"],
            "ratio": wall / eng["seconds"], "target_ratio": 1.25,
            "actlab_run_model_epochs_per_s": eng["model_epochs"] / wall,
            "engine_model_epochs_per_s": eng["model_epochs"] / eng["seconds"],
            "actlab_run_peak_rss_mb": peak, "engine_peak_rss_mb": eng["peak_rss_mb"], "target_peak_rss_mb": 2048,
            "run_dir_mb": store / 2**20, "sqlite_mb": db / 2**20, "target_store_mb": 1024}


def bench_scaling(sizes_m: tuple[int, ...] = (16, 64, 256, 1024, 4000), epochs: int = 20,
                  out: Path | None = None) -> dict:
    """Model-epochs/s against population size on moons (2-8-8-1 ReLU, BCE, SGD lr 0.05, batch 64, per-epoch
    test evaluation on, train evaluation off), measured in one run: actlab's torch engine, actlab's fused
    kernel, PyTorch's torch.func recipe (no evaluation: it flatters the recipe), and, independent of the
    population size, a per-model PyTorch loop and one-at-a-time NumPy. Writes benchmarks/scaling.png."""
    ds = data.load("moons")
    cfg = ModelConfig(widths=[8, 8], activation="relu", init="kaiming_normal")
    rows = []
    for m in sizes_m:
        row = {"replicas": m}
        for engine in ("torch", "fused"):
            tc = TrainConfig(epochs=epochs, batch_size=64, lr=0.05, loss="bce", eval_train=False, device="cpu",
                             engine=engine)
            row[engine] = _population_rate(cfg, ds, tc, m)
        row["torch_func"] = _torchfunc_rate([2, 8, 8, 1], "relu", ds, epochs, 0.05, 64, "bce", m)
        rows.append(row)
    loop = _loop_rate([2, 8, 8, 1], "relu", ds, 10, 0.05, 64, "bce", 2)
    numpy_rate = _numpy_rate([2, 8, 8, 1], "relu", ds, 50, 0.05, 64, "he", None)
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    ms = [r["replicas"] for r in rows]
    for key, label, style in (("fused", "actlab, fused kernel", "o-"), ("torch", "actlab, torch engine", "s-"),
                              ("torch_func", "torch.func ensembling recipe", "^--")):
        ax.plot(ms, [r[key] for r in rows], style, label=label)
    ax.axhline(loop, color="0.4", ls=":", label="per-model PyTorch loop")
    ax.axhline(numpy_rate, color="0.6", ls="-.", label="one-at-a-time NumPy (the source's style)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("population size (replicas)")
    ax.set_ylabel("model-epochs per second")
    ax.set_title(f"moons 2-8-8-1, {epochs} epochs, one run on this machine ({machine()['date']})", fontsize=9)
    ax.legend(fontsize=8)
    path = out or Path(__file__).with_name("scaling.png")
    finish(fig).savefig(path, dpi=110)
    return {"benchmark": "scaling (moons, model-epochs/s by population size)", "rows": rows,
            "per_model_loop": loop, "numpy": numpy_rate, "figure": str(path.name)}


def _actlab_run(seeds: int, sets: list[str], out: Path, epochs: int | None = 800, study: str = "moons") -> dict:
    """`actlab run STUDY --set seeds=N --no-report [--set ...]` in a fresh process: wall, peak RSS, results.
    The model-epochs are counted from the store (every done cell's replicas × its epochs)."""
    import shutil

    sets = [*sets, *([f"train.epochs={epochs}"] if epochs is not None else [])]
    cmd = [str(Path(sys.executable).parent / "actlab"), "run", study, "--set", f"seeds={seeds}", "--no-report",
           "--out", str(out), *(a for x in sets for a in ("--set", x))]
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    t = time.perf_counter()
    r = subprocess.run([timer, "-f", "%M", *cmd] if timer else cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    from actlab.store.results import Run

    with Run.open(out) as run:
        acc = {c.label if study != "moons" else c.model.get("activation"):
               float(np.mean(list(run.replicas(c).values()))) for c in run.done}
        device = sorted({c.device for c in run.done})
        replicas = sum(len(run.replicas(c)) for c in run.done)
        model_epochs = sum(len(run.replicas(c)) * c.config["train"]["epochs"] for c in run.done)
        failed = [c.label for c in run.cells if c.status != "done"]
    peak = (int(r.stderr.strip().splitlines()[-1]) / 1024 if timer
            else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return {"study": study, "sets": sets, "seconds": wall, "peak_rss_mb": peak, "replicas": replicas,
            "model_epochs": model_epochs, "model_epochs_per_s": model_epochs / wall, "cells_not_done": failed,
            "mean_final_test_acc": acc, "device": device,
            "run_dir_bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
            "sqlite_bytes": (out / "actlab.sqlite").stat().st_size}


def bench_endtoend(seeds: int | None = None, epochs: int = 800, warm: bool = True) -> dict:
    """The user's path end to end against the source's own code, in one run: `actlab run moons --set
    seeds=N --no-report` (every default diagnostic and the store; 2·N replicas × 800 epochs) on engine
    auto (the fused kernel, its kernels compiled by a warm-up run first) and on the torch engine, each a
    fresh process timed whole (imports included), against seed 000's NumPy code ported as written
    (benchmarks/source_moons.py: two networks × 800 epochs, best of 3). `epochs` and `warm` are for tests."""
    import tempfile

    import source_moons

    seeds = seeds or int(os.environ.get("ACTLAB_BENCH_SEEDS", "2000"))
    ds = data.load("moons")
    src = source_moons.rate(ds.x_train.double().numpy(), ds.y_train.double().numpy(), epochs)
    with tempfile.TemporaryDirectory() as tmp:
        if warm:
            _actlab_run(16, ["train.engine=fused"], Path(tmp) / "warm", epochs=2)  # compiles the kernels
        fused_run = _actlab_run(seeds, [], Path(tmp) / "fused", epochs)
        torch_run = _actlab_run(seeds, ["train.engine=torch"], Path(tmp) / "torch", epochs)
    return {"benchmark": "end to end: actlab run moons vs seed 000's NumPy code", "seeds_per_cell": seeds,
            "source_model_epochs_per_s": src, "fused": fused_run, "torch": torch_run,
            "fused_over_source": fused_run["model_epochs_per_s"] / src, "target_over_source": 20,
            "torch_over_source": torch_run["model_epochs_per_s"] / src,
            "fused_over_torch": torch_run["seconds"] / fused_run["seconds"]}


# ------------------------------------------------------------------------------ one table of every ratio


# Each workload of §3: the network (sizes, or seed 001's Network for the CNN), its training as the peers
# run it, actlab's config of the same network, the population sizes of the scaling plot, the study whose
# `actlab run` is timed whole (with the grid narrowed to this network and its seeds), and the source's code.
TABLE = {
    "moons": dict(
        title="moons: 2-8-8-1 ReLU, BCE, SGD lr 0.05, batch 64", data="moons", sizes=[2, 8, 8, 1], act="relu",
        lr=0.05, batch=64, loss="bce", opt="sgd", epochs=40, pops=(16, 256, 4000),
        cfg=ModelConfig(widths=[8, 8], activation="relu", init="kaiming_normal"), tkw=dict(loss="bce"),
        study="moons", run_seeds=2000, run_sets=[], protocol_epochs=800, source="seed 000 (NumPy)"),
    "blobs-depth": dict(
        title="blobs-depth: 8-16-32-16-1 sigmoid, MSE, full batch, lr 0.1", data="blobs8", sizes=[8, 16, 32, 16, 1],
        act="sigmoid", lr=0.1, batch=None, loss="mse", opt="sgd", epochs=50, pops=(16, 256, 4000),
        cfg=ModelConfig(widths=[16, 32, 16], activation="sigmoid", output_activation="sigmoid", init="blobs"),
        tkw=dict(loss="mse"), study="blobs-depth", run_seeds=500, run_sets=["grid.widths=[[16,32,16]]"],
        protocol_epochs=1000, source="seed 002 (NumPy)"),
    "mnist1d-mlp": dict(
        title="activation-zoo's MNIST-1D MLP: 40-64-64-10 ReLU, CE, Adam, batch 128", data="mnist1d",
        sizes=[40, 64, 64, 10], act="relu", lr=1e-3, batch=128, loss="ce", opt="adam", epochs=3, pops=(10, 100, 400),
        cfg=ModelConfig(widths=[64, 64], activation="relu"), tkw=dict(loss="ce", optimizer="adam"),
        study="activation-zoo", run_seeds=400, run_sets=["grid.activation=[relu]", "grid.depth=[2]"],
        protocol_epochs=20, source=None),
    "cnn-depth-cpu": dict(
        title="cnn-depth-cpu: stem + 4 Conv-BN-ReLU blocks, 16 ch, 8x8 digits, Adam, batch 128", data="digits",
        sizes={"depth": 4, "width": 16, "in_channels": 1}, act="relu", lr=1e-3, batch=128, loss="ce", opt="adam",
        epochs=2, pops=(1, 2, 4),
        cfg=ModelConfig(kind="convnet", depth=4, width=16, norm="batch", norm_bias=True, init="torch_default",
                        activation="relu"),
        # grad_stats: the per-batch gradient average that the study and the source's loop compute
        tkw=dict(loss="ce", optimizer="adam", grad_stats=True), study="cnn-depth-cpu", run_seeds=2,
        run_sets=["grid.depth=[4]"],
        protocol_epochs=10, source="seed 001 (PyTorch)"),
}


def _fused_why(cfg: ModelConfig, ds, tc: TrainConfig, m: int, protocol_epochs: int) -> str | None:
    """Why the study's own run (engine auto, its protocol's epochs) would not use the fused kernel for this
    population; None: it would."""
    from actlab.training import fused

    model = build(cfg, ds.input_shape, ds.task, ds.n_classes, list(range(m)))
    return (fused.unsupported(model, ds, tc, torch.device("cpu"))
            or fused.slower(model, len(ds.x_train), protocol_epochs))


def _source_rate(name: str, ds, tiny: bool) -> float | None:
    import source_blobs
    import source_cnn
    import source_moons

    if name == "moons":
        return source_moons.rate(ds.x_train.double().numpy(), ds.y_train.double().numpy(), 2 if tiny else 300)
    if name == "blobs-depth":
        return source_blobs.rate((16, 32, 16), "sigmoid", 2 if tiny else 300)
    if name == "cnn-depth-cpu":
        return source_cnn.rate(ds.x_train, ds.y_train, ds.x_test, ds.y_test, num_blocks=4, epochs=1 if tiny else 2,
                               models=2, num_workers=0 if tiny else 2)
    return None


def bench_table(workloads: tuple[str, ...] = tuple(TABLE), tiny: bool = False, zoo: bool = True,
                out: Path | None = None) -> dict:
    """§3's one table, every figure measured in this run, for each workload: actlab's fused kernel (where the
    study's own run would use it), actlab's torch engine, PyTorch's torch.func ensembling recipe (all three at
    each population size of the plot), a per-model PyTorch loop, the source's own code ported as written
    (seeds 000, 002, 001; activation-zoo has no source), and `actlab run` of the workload's study timed whole
    in a fresh process (imports, every diagnostic, the store), its grid narrowed to this network. Then the full
    activation-zoo study (§2's target: ≤ 2 min). Writes benchmarks/peers.png: rate against population size,
    one panel per workload. `tiny` (tests): one population of 2, one or two epochs, a few seeds."""
    import tempfile

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in workloads:
            w = TABLE[name]
            ds = data.load(w["data"])
            epochs = 1 if tiny else w["epochs"]
            pops = (2,) if tiny else w["pops"]
            tc = TrainConfig(epochs=epochs, batch_size=w["batch"], lr=w["lr"], eval_train=False, device="cpu",
                             **w["tkw"])
            why = _fused_why(w["cfg"], ds, tc, pops[-1], w["protocol_epochs"])
            by_m = []
            for m in pops:
                r = {"replicas": m,
                     "torch_engine": _population_run(w["cfg"], ds, tc.model_copy(update={"engine": "torch"}), m)[0],
                     "torch_func": _torchfunc_rate(w["sizes"], w["act"], ds, epochs, w["lr"], w["batch"], w["loss"], m,
                                                   w["opt"])}
                if why is None:  # the kernel at every size; `auto` says whether the study's run would use it
                    r["fused"] = _population_run(w["cfg"], ds, tc.model_copy(update={"engine": "fused"}), m)[0]
                    r["auto_uses_fused"] = _fused_why(w["cfg"], ds, tc, m, w["protocol_epochs"]) is None
                by_m.append(r)
            row = {"title": w["title"], "replicas": pops[-1], "by_population": by_m, "fused_not_used": why,
                   "torch_engine": by_m[-1]["torch_engine"], "fused": by_m[-1].get("fused"),
                   "torch_func": by_m[-1]["torch_func"],
                   "per_model_loop": _loop_rate(w["sizes"], w["act"], ds, 1 if tiny else max(2, epochs // 4), w["lr"],
                                                w["batch"], w["loss"], 2, w["opt"]),
                   "source": _source_rate(name, ds, tiny), "source_name": w["source"]}
            row["actlab_run"] = _actlab_run(2 if tiny else w["run_seeds"], w["run_sets"], Path(tmp) / name,
                                            2 if tiny else None, w["study"])
            best = row["fused"] or row["torch_engine"]
            row["engine"] = best
            row["ratios"] = {f"{k}": best / row[k] for k in ("torch_func", "per_model_loop", "source") if row[k]}
            row["ratios"].update({f"run_over_{k}": row["actlab_run"]["model_epochs_per_s"] / row[k]
                                  for k in ("per_model_loop", "source") if row[k]})
            rows[name] = row
        full_zoo = (_actlab_run(10, [], Path(tmp) / "zoo", None, "activation-zoo") if zoo and not tiny else None)
    path = out or Path(__file__).with_name("peers.png")
    _table_figure(rows, path)
    return {"benchmark": "peers, one table (model-epochs/s, same run)", "workloads": rows,
            "activation_zoo_full": full_zoo, "activation_zoo_target_s": 120, "figure": path.name}


def _table_figure(rows: dict, path: Path) -> None:
    """One panel per workload: each path's rate against population size, `actlab run` as a star at its
    population, the per-model loop and the source's code as horizontal lines; the same colour per path in
    every panel."""
    series = (("fused", "actlab, fused kernel", "o-", "C0"), ("torch_engine", "actlab, torch engine", "s-", "C1"),
              ("torch_func", "torch.func ensembling recipe", "^--", "C2"))
    fig = Figure(figsize=(10, 7.4), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax, (name, row) in zip(axes, rows.items(), strict=False):
        ms = [r["replicas"] for r in row["by_population"]]
        for key, label, style, colour in series:
            if all(r.get(key) for r in row["by_population"]):
                ax.plot(ms, [r[key] for r in row["by_population"]], style, color=colour, label=label)
        forced = [r for r in row["by_population"] if r.get("fused") and not r.get("auto_uses_fused", True)]
        if forced:  # below auto's work threshold the study's own run would use torch: the kernel forced there
            ax.plot([r["replicas"] for r in forced], [r["fused"] for r in forced], "o", color="white", mec="C0",
                    label="(fused forced: auto would use torch)")
        run = row["actlab_run"]
        ax.plot([run["replicas"]], [run["model_epochs_per_s"]], "*", ms=12, color="C3",
                label=f"actlab run {run['study']}, whole ({run['replicas']} replicas)")
        ax.axhline(row["per_model_loop"], color="0.35", ls=":", label="per-model PyTorch loop")
        if row["source"]:
            ax.axhline(row["source"], color="0.55", ls="-.", label=f"the source's code, {row['source_name']}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ms, [f"{m:,}" for m in ms])
        ax.minorticks_off()
        ax.set_xlabel("population size (replicas)")
        ax.set_ylabel("model-epochs per second")
        ax.set_title(row["title"].split(":")[0] + ": " + row["title"].split(":")[1].split(",")[0].strip(), fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    fig.suptitle(f"model-epochs/s against population size, one run on this machine ({machine()['date']})",
                 fontsize=9)
    finish(fig).savefig(path, dpi=110)


class _GPTBlock(torch.nn.Module):
    """One pre-LayerNorm block of a plain PyTorch transformer (the baselines' model): nn.Linear, SDPA, GELU."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.n1, self.n2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.fc, self.out = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.out(torch.nn.functional.gelu(self.fc(self.n2(x))))


class _GPT(torch.nn.Module):
    def __init__(self, vocab: int, t: int, d: int, layers: int, heads: int):
        super().__init__()
        self.tok, self.pos = torch.nn.Embedding(vocab, d), torch.nn.Parameter(torch.zeros(t, d))
        self.blocks = torch.nn.Sequential(*(_GPTBlock(d, heads) for _ in range(layers)))
        self.norm, self.head = torch.nn.LayerNorm(d), torch.nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.tok(x) + self.pos[: x.shape[1]])))


def _func_recipe(loss, stacked: dict, buffers: dict, opt: torch.optim.Optimizer, xs: torch.Tensor,
                 ys: torch.Tensor):
    """PyTorch's ensembling recipe: vmap over the stacked models of grad(loss), each model's gradient clipped to
    norm 1 inside the vmap (as clip_grad_norm_ does for one model), then one optimizer step on the stack.
    Returns step(i), training on batch i of xs, ys (leading dimension: steps, then models)."""
    from torch.func import grad, vmap

    def clipped(p, b, x, y):
        g = grad(loss)(p, b, x, y)
        norm = torch.sqrt(sum((v * v).sum() for v in g.values()))
        coef = torch.clamp(1.0 / (norm + 1e-6), max=1.0)
        return {k: v * coef for k, v in g.items()}

    vg = vmap(clipped)

    def step(i: int) -> None:
        grads = vg(stacked, buffers, xs[i], ys[i])
        for k, v in stacked.items():
            v.grad = grads[k]
        opt.step()

    return step


def _step_rates(paths: dict, m: int, steps: int, tolerate: bool) -> tuple[dict[str, float], dict[str, str]]:
    """Model-steps per second of each path (steps 0 and 1 warm up, then `steps` timed), and, with `tolerate`,
    the paths torch could not run, with why (reported, not fatal)."""
    rates, failed = {}, {}
    for name, step in paths.items():
        try:
            step(0)
            step(1)  # warm-up
        except Exception as e:  # noqa: BLE001 - a baseline torch cannot run is reported where tolerated
            if not tolerate:
                raise
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            continue
        t0 = time.perf_counter()
        for i in range(2, steps + 2):
            step(i)
        rates[name] = m * steps / (time.perf_counter() - t0)
    return rates, failed


def bench_transformer(m: int = 6, steps: int = 30, d: int = 64, layers: int = 2, heads: int = 4, t: int = 64,
                      batch: int = 8, vocab: int = 83) -> dict:
    """The transformer-ffn-cpu workload (GELU FFN; AdamW; each model's gradient clipped to norm 1; batch 8 windows
    of 64 characters, each model its own batch): model-steps per second of actlab's population, PyTorch's
    torch.func ensembling recipe (stack_module_state + vmap(grad(functional_call)), clipping per model inside
    the vmap) and a per-model loop (torch.optim.AdamW + clip_grad_norm_), at equal population size m."""
    from torch.func import functional_call, stack_module_state

    from actlab.training.loop import clip_per_replica, make_optimizer, replica_losses

    gen = torch.Generator().manual_seed(0)
    xs = torch.randint(0, vocab, (steps + 2, m, batch, t), generator=gen)
    ys = torch.randint(0, vocab, (steps + 2, m, batch, t), generator=gen)
    tc = TrainConfig(optimizer="adamw", lr=2e-3, grad_clip=1.0)
    pop = build(ModelConfig(kind="transformer", activation="gelu", width=d, depth=layers, heads=heads), (t,),
                "next_token", vocab, list(range(m)))
    params = list(pop.parameters())
    opt = make_optimizer(params, tc)

    def actlab_step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        replica_losses(pop(xs[i]), ys[i], "ce").sum().backward()
        clip_per_replica(params, m, 1.0)
        opt.step()

    models = [_GPT(vocab, t, d, layers, heads) for _ in range(m)]
    stacked, buffers = stack_module_state(models)
    base = _GPT(vocab, t, d, layers, heads).to("meta")

    def loss(p, b, x, y):
        out = functional_call(base, (p, b), (x,))
        return torch.nn.functional.cross_entropy(out.reshape(-1, vocab), y.reshape(-1))

    func_step = _func_recipe(loss, stacked, buffers, torch.optim.AdamW(list(stacked.values()), lr=2e-3, fused=True),
                             xs, ys)

    loop_models = [_GPT(vocab, t, d, layers, heads) for _ in range(m)]
    loop_opts = [torch.optim.AdamW(net.parameters(), lr=2e-3) for net in loop_models]

    def loop_step(i: int) -> None:
        for r, (net, o) in enumerate(zip(loop_models, loop_opts, strict=True)):
            o.zero_grad()
            out = net(xs[i, r])
            torch.nn.functional.cross_entropy(out.reshape(-1, vocab), ys[i, r].reshape(-1)).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            o.step()

    rates, _ = _step_rates({"actlab": actlab_step, "torch.func": func_step, "per-model loop": loop_step}, m, steps,
                           tolerate=False)
    return {"bench": "transformer", "m": m, "steps": steps, "model": f"d={d}, {layers} blocks, {heads} heads, "
            f"context {t}, vocab {vocab}, batch {batch}", "model_steps_per_s": rates,
            "vs_torch_func": rates["actlab"] / rates["torch.func"],
            "vs_per_model_loop": rates["actlab"] / rates["per-model loop"]}


class _LSTMNet(torch.nn.Module):
    """torch's nn.LSTM with a linear readout of the last state: the per-model baseline of bench_recurrent."""

    def __init__(self, features: int, hidden: int, classes: int):
        super().__init__()
        self.lstm = torch.nn.LSTM(features, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F)
        return self.head(self.lstm(x)[0][:, -1])


def bench_recurrent(m: int = 30, steps: int = 20, hidden: int = 32, t: int = 40, batch: int = 50,
                    classes: int = 10) -> dict:
    """The lstm-slots workload (one LSTM layer of 32 on MNIST-1D's 40 steps, batch 50, Adam, each model's
    gradient clipped to norm 1, each model its own batch): model-steps per second of actlab's population,
    PyTorch's torch.func recipe (stack_module_state + vmap(grad(functional_call)) over nn.LSTM) and a per-model
    loop over nn.LSTM (cuDNN-free CPU kernels), at equal population size m."""
    from torch.func import functional_call, stack_module_state

    from actlab.training.loop import clip_per_replica, make_optimizer, replica_losses

    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(steps + 2, m, batch, 1, t, generator=gen)
    ys = torch.randint(0, classes, (steps + 2, m, batch), generator=gen)
    tc = TrainConfig(optimizer="adam", lr=1e-2, grad_clip=1.0)
    pop = build(ModelConfig(kind="lstm", width=hidden, depth=1), (1, t), "multiclass", classes, list(range(m)))
    params = list(pop.parameters())
    opt = make_optimizer(params, tc)

    def actlab_step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        replica_losses(pop(xs[i]), ys[i], "ce").sum().backward()
        clip_per_replica(params, m, 1.0)
        opt.step()

    models = [_LSTMNet(1, hidden, classes) for _ in range(m)]
    stacked, buffers = stack_module_state(models)
    base = _LSTMNet(1, hidden, classes).to("meta")

    def loss(p, b, x, y):
        return torch.nn.functional.cross_entropy(functional_call(base, (p, b), (x.transpose(1, 2),)), y)

    func_step = _func_recipe(loss, stacked, buffers, torch.optim.Adam(list(stacked.values()), lr=1e-2, fused=True),
                             xs, ys)

    loop_models = [_LSTMNet(1, hidden, classes) for _ in range(m)]
    loop_opts = [torch.optim.Adam(net.parameters(), lr=1e-2) for net in loop_models]

    def loop_step(i: int) -> None:
        for r, (net, o) in enumerate(zip(loop_models, loop_opts, strict=True)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(net(xs[i, r].transpose(1, 2)), ys[i, r]).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            o.step()

    rates, failed = _step_rates({"actlab": actlab_step, "torch.func": func_step, "per-model loop": loop_step}, m,
                                steps, tolerate=True)
    out = {"bench": "recurrent", "m": m, "steps": steps, "model": f"LSTM {hidden}, {t} steps of 1 feature, "
           f"{classes} classes, batch {batch}", "model_steps_per_s": rates, "failed": failed,
           "vs_per_model_loop": rates["actlab"] / rates["per-model loop"]}
    if "torch.func" in rates:
        out["vs_torch_func"] = rates["actlab"] / rates["torch.func"]
    return out


class _VAENet(torch.nn.Module):
    """A VAE with nn.Linear layers (the per-model baseline of bench_generative): its negative ELBO (Bernoulli)."""

    def __init__(self, d: int, hidden: int, latent: int):
        super().__init__()
        self.enc = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                       torch.nn.ReLU(), torch.nn.Linear(hidden, 2 * latent))
        self.dec = torch.nn.Sequential(torch.nn.Linear(latent, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, d))

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.enc(x).chunk(2, -1)
        out = self.dec(mu + torch.exp(0.5 * logvar) * eps)
        recon = torch.nn.functional.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
        return (recon + 0.5 * (mu * mu + logvar.exp() - 1 - logvar).sum(-1)).mean()


def _mlp(sizes: list[int]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def bench_generative(m: int = 20, steps: int = 20, hidden: int = 128, batch: int = 64) -> dict:
    """The vae-activations and gan-modes workloads, one optimizer step each (Adam; each model its own batch):
    model-steps per second of actlab's population, PyTorch's torch.func recipe (stack_module_state +
    vmap(grad(functional_call))) and a per-model loop over nn.Linear models, at equal population size m.
    VAE: 64 inputs → 128 → 128 → 8-d latent, mirrored decoder, Bernoulli (each model's gradient clipped to norm 1 in
    every path, as the recipe clips). GAN: 8-d noise → 128 → 128 → 2 against 2 → 128 → 128 → 1, one D step then one
    non-saturating G step on the same fake batch (no clipping). actlab's paths draw their noise from the seeds inside
    the step; the baselines get it precomputed."""
    from torch.func import functional_call, grad, stack_module_state, vmap

    from actlab.training import adversarial
    from actlab.training.loop import clip_per_replica, make_optimizer

    gen = torch.Generator().manual_seed(0)
    out: dict = {"bench": "generative", "m": m, "steps": steps}
    # ---- VAE
    xs = torch.rand(steps + 2, m, batch, 64, generator=gen)
    eps = torch.randn(steps + 2, m, batch, 8, generator=gen)
    pop = build(ModelConfig(kind="vae", width=hidden, depth=2, latent=8, likelihood="bernoulli"), (64,),
                "multiclass", 10, list(range(m)))
    params = list(pop.parameters())
    opt = make_optimizer(params, TrainConfig(optimizer="adam", lr=1e-3))

    def vae_actlab(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        pop.at_step(1, i)
        pop(xs[i]).sum(-1).mean(1).sum().backward()
        clip_per_replica(params, m, 1.0)
        opt.step()

    stacked, buffers = stack_module_state([_VAENet(64, hidden, 8) for _ in range(m)])
    base = _VAENet(64, hidden, 8).to("meta")
    vae_func = _func_recipe(lambda p, b, x, e: functional_call(base, (p, b), (x, e)), stacked, buffers,
                            torch.optim.Adam(list(stacked.values()), lr=1e-3, fused=True), xs, eps)
    nets = [_VAENet(64, hidden, 8) for _ in range(m)]
    opts = [torch.optim.Adam(n.parameters(), lr=1e-3) for n in nets]

    def vae_loop(i: int) -> None:
        for r, (net, o) in enumerate(zip(nets, opts, strict=True)):
            o.zero_grad()
            net(xs[i, r], eps[i, r]).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            o.step()

    rates, failed = _step_rates({"actlab": vae_actlab, "torch.func": vae_func, "per-model loop": vae_loop}, m, steps,
                                tolerate=True)
    out["vae"] = {"model_steps_per_s": rates, "failed": failed,
                  "vs_per_model_loop": rates["actlab"] / rates["per-model loop"],
                  **({"vs_torch_func": rates["actlab"] / rates["torch.func"]} if "torch.func" in rates else {})}
    # ---- GAN
    real = torch.randn(steps + 2, m, 256, 2, generator=gen)
    zs = torch.randn(steps + 2, m, 256, 8, generator=gen)
    gan = build(ModelConfig(kind="gan", width=hidden, depth=2, latent=8, output_activation="tanh"), (2,),
                "multiclass", 8, list(range(m)))
    tc = TrainConfig(optimizer="adam", lr=1e-3, betas=(0.5, 0.999))
    g_params, d_params = list(gan.core.generator.parameters()), list(gan.core.discriminator.parameters())
    g_opt, d_opt = make_optimizer(g_params, tc), make_optimizer(d_params, tc)

    def gan_actlab(i: int) -> None:
        fake = gan.generate(gan.noise("gan-z", 1, i, n=256, device=torch.device("cpu")))
        d_loss, _ = adversarial._d_loss(gan, real[i], fake.detach())
        d_opt.zero_grad(set_to_none=True)
        d_loss.sum().backward()
        d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        torch.nn.functional.softplus(-gan.discriminate(fake)).mean(1).sum().backward()
        g_opt.step()

    sp = torch.nn.functional.softplus
    gens = [torch.nn.Sequential(_mlp([8, hidden, hidden, 2]), torch.nn.Tanh()) for _ in range(m)]
    dis = [_mlp([2, hidden, hidden, 1]) for _ in range(m)]
    (pg, _), (pd, _) = stack_module_state(gens), stack_module_state(dis)
    g_base = torch.nn.Sequential(_mlp([8, hidden, hidden, 2]), torch.nn.Tanh()).to("meta")
    d_base = _mlp([2, hidden, hidden, 1]).to("meta")
    bg_one: dict = {}  # no buffers in these MLPs
    bd_one: dict = {}
    fg_opt = torch.optim.Adam(list(pg.values()), lr=1e-3, betas=(0.5, 0.999), fused=True)
    fd_opt = torch.optim.Adam(list(pd.values()), lr=1e-3, betas=(0.5, 0.999), fused=True)

    def d_loss_one(d, x, f):
        return sp(-functional_call(d_base, (d, bd_one), (x,))).mean() + sp(functional_call(d_base, (d, bd_one),
                                                                                           (f,))).mean()

    def g_loss_one(g, d, z):
        return sp(-functional_call(d_base, (d, bd_one), (functional_call(g_base, (g, bg_one), (z,)),))).mean()


    def gan_func(i: int) -> None:
        fake = vmap(lambda g, z: functional_call(g_base, (g, bg_one), (z,)))(pg, zs[i]).detach()
        for k, v in vmap(grad(d_loss_one))(pd, real[i], fake).items():
            pd[k].grad = v
        fd_opt.step()
        for k, v in vmap(grad(g_loss_one))(pg, pd, zs[i]).items():
            pg[k].grad = v
        fg_opt.step()

    g_opts = [torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999)) for g in gens]
    d_opts = [torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999)) for d in dis]

    def gan_loop(i: int) -> None:
        for r in range(m):
            fake = gens[r](zs[i, r])
            d_opts[r].zero_grad()
            (sp(-dis[r](real[i, r])).mean() + sp(dis[r](fake.detach())).mean()).backward()
            d_opts[r].step()
            g_opts[r].zero_grad()
            sp(-dis[r](fake)).mean().backward()
            g_opts[r].step()

    rates, failed = _step_rates({"actlab": gan_actlab, "torch.func": gan_func, "per-model loop": gan_loop}, m, steps,
                                tolerate=True)
    out["gan"] = {"model_steps_per_s": rates, "failed": failed,
                  "vs_per_model_loop": rates["actlab"] / rates["per-model loop"],
                  **({"vs_torch_func": rates["actlab"] / rates["torch.func"]} if "torch.func" in rates else {})}
    return out


def _burn(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def _live_headless(body: dict) -> dict:
    """The live training of `body` run in this process with no page, after the server's own warm-up: the baseline
    of the live view's rate."""
    import threading

    from actlab.web.sessions import LiveRequest, check, train_live, warm_up

    warm_up()  # as the server does at its start: the baseline pays no cold start either
    req = check(LiveRequest(**{k: v for k, v in body.items() if k != "arms"},
                            arms=[{"activation": a} for a in body["arms"]]))
    first: dict[str, float] = {}
    go = threading.Event()
    go.set()
    t0 = time.perf_counter()
    train_live(req, lambda ev, _: first.setdefault(ev, time.perf_counter() - t0), threading.Event(), go)
    wall = time.perf_counter() - t0
    return {"first_surface_s": first["surface"], "wall_s": wall, "epochs_per_s": body["epochs"] / wall}


def bench_live(arms: tuple[str, ...] = ("relu", "tanh", "sigmoid", "gelu"), seeds: int = 4, epochs: int = 300,
               dataset: str = "moons", load: int = 2, chromium: str | None = None) -> dict:
    """The live view as a user sees it: `actlab serve` in its own process, the page in headless Chromium at 1280×800,
    Start clicked; the page's own counters give the first frame (the untrained surfaces of epoch 0 drawn), the
    first epoch drawn, frames drawn per second and epochs per second. The baseline, measured in the same run: the
    same training headless (no server, no page). Then again with `load` processes burning the CPUs (a busy
    machine): the page's longest wait between updates and whether it said it was waiting. Needs Playwright and
    a Chromium (`chromium` or ACTLAB_CHROMIUM)."""
    import socket
    from multiprocessing import Process

    from playwright.sync_api import sync_playwright

    body = {"dataset": dataset, "epochs": epochs, "seeds": seeds, "arms": list(arms)}
    out: dict = {"workload": body, "headless": _live_headless(body)}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "actlab", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(3)  # the server's warm-up (sessions.warm_up) is part of its start, not of a user's first Start
        url = (f"http://127.0.0.1:{port}/#live?dataset={dataset}&epochs={epochs}&seeds={seeds}&arms={','.join(arms)}")
        exe = chromium or os.environ.get("ACTLAB_CHROMIUM") or "/usr/bin/chromium"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=exe if Path(exe).exists() else None)
            for label, burners in (("quiet", 0), ("loaded", load))[:2 if load else 1]:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                t = time.perf_counter()
                page.goto(url)
                page.wait_for_function("window.actlab.preview && window.actlab.preview.cards", timeout=60_000)
                preview_s = time.perf_counter() - t
                procs = [Process(target=_burn, args=(time.time() + 600,), daemon=True) for _ in range(burners)]
                for p in procs:
                    p.start()
                try:
                    page.click("#live-start")
                    page.wait_for_function("window.actlab.live && window.actlab.live.finished", timeout=600_000)
                finally:
                    for p in procs:
                        p.terminate()
                st = page.evaluate("(s => ({firstFrameMs: s.firstFrameMs, firstEpochMs: s.firstEpochMs, "
                                   "doneMs: s.doneMs, frames: s.frames, surfaces: s.surfaces, waited: s.waited, "
                                   "maxGap: s.maxGap, "
                                   "epochs: s.epochs.at(-1)}))(window.actlab.live)")
                done_s = st["doneMs"] / 1000
                out[label] = {"cpu_burners": burners, "preview_s": preview_s,
                              "first_frame_s": st["firstFrameMs"] / 1000,
                              "first_epoch_s": st["firstEpochMs"] / 1000, "wall_s": done_s, "frames": st["frames"],
                              "surfaces": st["surfaces"],
                              "frames_per_s": st["frames"] / max(1e-9, done_s - st["firstFrameMs"] / 1000),
                              "epochs_per_s": st["epochs"] / done_s, "longest_gap_s": st["maxGap"] / 1000,
                              "said_waiting": st["waited"] > 0}
                out[label]["vs_headless"] = out[label]["epochs_per_s"] / out["headless"]["epochs_per_s"]
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    return {"live": out}


def main() -> None:
    tune_malloc()  # an entry point: the process-wide allocator setting the CLI applies too
    if len(sys.argv) > 1 and sys.argv[1] == "_memory_child":
        _memory_child(int(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_engine_child":
        _engine_child(int(sys.argv[2]), sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["moons", "blobs", "cnn", "memory", "grouping", "userpath", "peers", "scaling",
                                      "endtoend", "table", "transformer", "recurrent", "generative", "live", "all"])
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    runs = {"moons": bench_moons, "blobs": bench_blobs, "cnn": bench_cnn, "memory": bench_memory,
            "grouping": bench_grouping, "userpath": bench_userpath, "peers": bench_peers, "scaling": bench_scaling,
            "endtoend": bench_endtoend, "table": bench_table, "transformer": bench_transformer,
            "recurrent": bench_recurrent, "generative": bench_generative, "live": bench_live}
    names = list(runs) if args.which == "all" else [args.which]
    info = machine()
    for name in names:
        print(json.dumps({**runs[name](), "machine": info}, indent=1), flush=True)


if __name__ == "__main__":
    main()
