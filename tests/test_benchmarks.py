"""The benchmark scripts run (tiny sizes) and their counting is right; timings are never asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

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
    tf = bench.bench_transformer(m=2, steps=2, d=16, layers=1, heads=2, t=8, batch=2, vocab=11)
    assert set(tf["model_steps_per_s"]) == {"actlab", "torch.func", "per-model loop"}
    assert tf["vs_torch_func"] == tf["model_steps_per_s"]["actlab"] / tf["model_steps_per_s"]["torch.func"] > 0
    rn = bench.bench_recurrent(m=2, steps=2, hidden=8, t=6, batch=4, classes=3)
    assert set(rn["model_steps_per_s"]) | set(rn["failed"]) == {"actlab", "torch.func", "per-model loop"}
    assert rn["vs_per_model_loop"] == rn["model_steps_per_s"]["actlab"] / rn["model_steps_per_s"]["per-model loop"]
    info = bench.machine()
    assert info["cores"] >= 1 and info["torch"].startswith("2.")


def test_the_live_benchmark_reads_the_page_s_counters():
    """bench_live at a tiny size (2 arms, 1 seed, 5 epochs, no loaded pass): a real server and Chromium."""
    live = bench.bench_live(arms=("relu", "tanh"), seeds=1, epochs=5, load=0)["live"]
    assert set(live) == {"workload", "headless", "quiet"}
    q = live["quiet"]
    assert q["frames"] >= 1 and 0 < q["first_frame_s"] <= q["wall_s"] and q["epochs_per_s"] > 0
    assert q["vs_headless"] == q["epochs_per_s"] / live["headless"]["epochs_per_s"]


def test_seed_002_port_is_the_source_and_trains_as_actlab_does():
    """benchmarks/source_blobs.py is seed 002 as written: its data cell is actlab's blobs8, its printed test
    accuracies come out (1.00 and 0.46 for sigmoid at one and two hidden layers, 0.46 for ReLU at four), and
    from the same initial weights its MLP trains to the same weights as actlab's population (float32)."""
    import source_blobs
    import torch

    from actlab.nn import ModelConfig, build
    from actlab.training.loop import TrainConfig, train

    x_train, x_test, y_train, y_test = source_blobs.make_data()
    ds = data.load("blobs8")
    assert np.allclose(ds.x_train.numpy(), x_train, atol=1e-6) and np.array_equal(ds.y_train.numpy(), y_train[:, 0])
    printed = {((16,), "sigmoid"): 1.0, ((16, 32), "sigmoid"): 0.46, ((16, 32, 16), "sigmoid"): 0.46,
               ((16,), "relu"): 1.0, ((16, 32, 16, 8), "relu"): 0.46}
    for (hidden, act), acc in printed.items():
        model, accuracy = source_blobs.run(list(hidden), act)
        assert round(accuracy, 2) == acc and model.log[0].startswith("Epoch: 0, loss ") and len(model.log) == 10

    src = source_blobs.MLP([8, 16, 1], "sigmoid", verbose=False)
    pop = build(ModelConfig(widths=[16], activation="sigmoid", output_activation="sigmoid", init="blobs"),
                ds.input_shape, ds.task, ds.n_classes, [0])
    with torch.no_grad():
        for lin, w, b in zip([*pop.hidden, pop.head], src.weights, src.biases, strict=True):
            lin.weight[0] = torch.from_numpy(w)
            lin.bias[0] = torch.from_numpy(b)
    src.train(x_train, y_train, num_epoch=300, learning_rate=0.1)
    train(pop, ds, TrainConfig(epochs=300, batch_size="full", lr=0.1, loss="mse", engine="torch", device="cpu"))
    for lin, w in zip([*pop.hidden, pop.head], src.weights, strict=True):
        np.testing.assert_allclose(lin.weight[0].detach().double().numpy(), w, rtol=1e-3, atol=1e-5)


def test_seed_001_port_is_cnn_depth_cpu_s_network():
    """benchmarks/source_cnn.py's Network with cnn-depth-cpu's numbers (1 channel in, width 8 here) computes
    what actlab's convnet replica computes from the same weights (train mode: BatchNorm on batch statistics),
    and its training loop, run as written, learns digits."""
    import source_cnn
    import torch

    from actlab.nn import ModelConfig, build

    ds = data.load("digits")
    cfg = ModelConfig(kind="convnet", depth=2, width=8, norm="batch", norm_bias=True, init="torch_default",
                      activation="sigmoid")
    pop = build(cfg, ds.input_shape, ds.task, 10, [3])
    net = source_cnn.Network(2, "sigmoid", in_channels=1, width=8)
    convs = [net.conv1, *(b.conv for b in net.blocks)]
    assert len(convs) == len(pop.convs)
    with torch.no_grad():
        for mine, theirs in zip(pop.convs, convs, strict=True):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
        net.fc.weight.copy_(pop.head.weight[0].T)
        net.fc.bias.copy_(pop.head.bias.reshape(-1))
    pop.train()
    x = ds.x_train[:64]
    torch.testing.assert_close(net(x), pop(x)[0], rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    best, log = source_cnn.train_one(ds.x_train, ds.y_train, ds.x_test, ds.y_test, 1, "relu", 3, num_workers=0,
                                     width=16)
    assert best > 20 and len(log) == 3 and log[0].startswith("Epoch Gradient Mean: ")  # chance: 10 %


def test_the_table_benchmark_runs_at_tiny_size(tmp_path):
    res = bench.bench_table(("blobs-depth", "cnn-depth-cpu"), tiny=True, out=tmp_path / "peers.png")
    blobs, cnn = res["workloads"]["blobs-depth"], res["workloads"]["cnn-depth-cpu"]
    assert blobs["fused_not_used"] == "an explicit output activation" and "PopConvNet" in cnn["fused_not_used"]
    for row in (blobs, cnn):
        assert row["torch_engine"] > 0 and row["torch_func"] > 0 and row["per_model_loop"] > 0 and row["source"] > 0
        run = row["actlab_run"]
        assert run["cells_not_done"] == [] and run["replicas"] == 4 and run["model_epochs"] == 8
        assert row["ratios"]["source"] == row["engine"] / row["source"]
    assert (tmp_path / "peers.png").exists() and res["activation_zoo_full"] is None


def test_the_blobs_kernel_probe_trains_as_the_torch_engine():
    """benchmarks/blobs_kernel_probe.py (RESULTS.md: what stops blobs-depth) trains what the torch engine
    trains: same initial weights, three full-batch epochs, the same parameters to float32 rounding; here on a
    small network so that it compiles in seconds, two examples per gradient pass."""
    import blobs_kernel_probe as probe

    from actlab.nn import ModelConfig, build
    from actlab.training import fused
    from actlab.training.loop import TrainConfig, train

    ds = data.load("blobs8")
    cfg = ModelConfig(widths=[4], activation="sigmoid", output_activation="sigmoid", init="blobs")
    tc = TrainConfig(epochs=3, batch_size="full", lr=0.1, loss="mse", eval_train=False, device="cpu", engine="torch")
    model = build(cfg, ds.input_shape, ds.task, ds.n_classes, list(range(32)))

    def blocks() -> np.ndarray:
        fp = fused.FusedPopulation(model, tc, ds.task, ds.n_classes)
        rows = fp.P.transpose(1, 0, 2).reshape(fp.rows, -1)
        return np.ascontiguousarray(rows.reshape(fp.rows, 2, 16).transpose(1, 0, 2))

    p = blocks()
    init = p.copy()
    mod = probe.compiled(probe.source((8, 4, 1), "sigmoid", 2))
    x, yf = ds.x_train.numpy(), ds.y_train.numpy().astype(np.float32)
    loss, hits = np.zeros(32, np.float32), np.zeros(32, np.float32)
    for _ in range(3):
        mod.train(p, x, yf, np.float32(0), np.float32(0.5), 0.1, loss, hits)
    train(model, ds, tc)
    ref = blocks()
    assert np.abs(ref - init).max() > 1e-3 * np.abs(ref).max()  # it trained: the check below is not of the init
    assert np.abs(ref - p).max() <= 1e-5 * np.abs(ref).max()
