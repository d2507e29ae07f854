"""actlab's speed and memory benchmarks (DESIGN §7); each measures its baseline in the same run.

    python benchmarks/bench.py moons      # model-epochs/s: population vs one-at-a-time NumPy
    python benchmarks/bench.py blobs      # the same on the blobs-depth workload (full batch)
    python benchmarks/bench.py cnn        # conv GFLOP/s vs this machine's fp32 matmul rate, and vs a per-model loop
    python benchmarks/bench.py memory     # peak RSS of a 10,000-network moons population while training
    python benchmarks/bench.py grouping   # shipped studies with cells in separate vs shared populations
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

sys.path.insert(0, str(Path(__file__).parent))
from numpy_baseline import train_one  # noqa: E402

from actlab import data  # noqa: E402
from actlab.nn import ModelConfig, build  # noqa: E402
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
    model = build(cfg, ds.input_shape, ds.task, ds.n_classes, list(range(m)))
    train(model, ds, tc.model_copy(update={"epochs": 1}))
    t = time.perf_counter()
    train(model, ds, tc)
    return m * tc.epochs / (time.perf_counter() - t)


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
    tc = TrainConfig(epochs=epochs, batch_size=64, lr=0.05, eval_train=False, device="cpu")
    rates = {mm: _population_rate(ModelConfig(widths=[8, 8], activation="relu"), ds, tc, mm) for mm in (1, 100, 1000, m)}
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


def main() -> None:
    tune_malloc()  # an entry point: the process-wide allocator setting the CLI applies too
    if len(sys.argv) > 1 and sys.argv[1] == "_memory_child":
        _memory_child(int(sys.argv[2]), int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["moons", "blobs", "cnn", "memory", "grouping", "all"])
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    runs = {"moons": bench_moons, "blobs": bench_blobs, "cnn": bench_cnn, "memory": bench_memory,
            "grouping": bench_grouping}
    names = list(runs) if args.which == "all" else [args.which]
    info = machine()
    for name in names:
        print(json.dumps({**runs[name](), "machine": info}, indent=1), flush=True)


if __name__ == "__main__":
    main()
