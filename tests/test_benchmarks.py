"""The benchmark scripts run (tiny sizes) and their counting is right; timings are never asserted."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import bench  # noqa: E402
from numpy_baseline import train_one  # noqa: E402

from actlab import data  # noqa: E402


def test_conv_flop_count():
    # stem 3->64 and 4 blocks 64->64, 3x3 kernels on 32x32: 2 * positions * k * c_out * c_in, summed
    expected = sum(2 * 32 * 32 * 9 * 64 * c_in for c_in in (3, 64, 64, 64, 64))
    assert bench.conv_flops_per_image(4) == expected


def test_numpy_baseline_learns_moons():
    ds = data.load("moons")
    net = train_one([2, 8, 8, 1], "relu", 0, ds.x_train.double().numpy(), ds.y_train.double().numpy(),
                    epochs=200, lr=0.05, batch=64)
    _, acts = net.forward(ds.x_test.double().numpy())
    assert ((acts[-1][:, 0] > 0.5) == ds.y_test.numpy()).mean() > 0.9  # a real baseline, not a strawman


def test_benchmarks_run_at_tiny_sizes(tmp_path):
    from actlab.nn import ModelConfig
    from actlab.training.loop import TrainConfig

    ds = data.load("moons")
    tc = TrainConfig(epochs=2, batch_size=64, eval_train=False, device="cpu")
    assert bench._population_rate(ModelConfig(widths=[8, 8]), ds, tc, 20) > 0
    assert bench._numpy_rate([2, 8, 8, 1], "relu", ds, 2, 0.05, 64, "he", None, models=1) > 0
    mem = bench.bench_memory(m=50, epochs=1)
    assert mem["peak_rss_mb"] >= mem["rss_after_imports_mb"] > 0 and mem["replicas"] == 50
    user = bench.bench_userpath(seeds=3, sets=("train.epochs=3",))
    assert user["replicas"] == 6 and user["actlab_run_peak_rss_mb"] > 0 and user["sqlite_mb"] > 0
    assert user["ratio"] == user["actlab_run_seconds"] / user["engine_seconds"]
    grouping = bench.bench_grouping(studies=("gelu-approx",))
    assert grouping["studies"]["gelu-approx"]["speedup"] > 0
    scaling = bench.bench_scaling(sizes_m=(16,), epochs=1, out=tmp_path / "scaling.png")
    assert scaling["rows"][0]["fused"] > 0 and scaling["rows"][0]["torch"] > 0 and (tmp_path / "scaling.png").exists()
    end = bench.bench_endtoend(seeds=3, epochs=2, warm=False)
    assert end["torch"]["device"] == ["cpu"] and set(end["torch"]["mean_final_test_acc"]) == {"sigmoid", "relu"}
    assert end["fused_over_source"] == end["fused"]["model_epochs_per_s"] / end["source_model_epochs_per_s"]
    info = bench.machine()
    assert info["cores"] >= 1 and info["torch"].startswith("2.")
