"""What a numba kernel can do for blobs-depth's full-batch MLP (#16 §2): a probe, not part of actlab.

    python benchmarks/blobs_kernel_probe.py [--lanes 32] [--tile 1] [--replicas 1024] [--act sigmoid]

blobs-depth's network (8-16-32-16-1, activation on every layer including the output, MSE, full-batch SGD
lr 0.1) has 1,168 weights: past what actlab's generated kernels hold (every unit a scalar in one lane loop,
GEN_MAX_WEIGHTS = 150; a prototype of that form for this network had not compiled after 12 minutes). This
probe generates the other form that keeps LLVM's vectoriser working: the replicas of a block in a lane loop
of runtime length (B), every fan-in term unrolled, units and examples looped; `--tile` T examples share one
pass over the gradient rows. It trains the same population as actlab's torch engine from the same initial
weights, reports both rates in one run and the largest parameter difference after the epochs.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from actlab import data
from actlab.nn import ModelConfig, build
from actlab.runtime import tune_malloc, write_text_atomic
from actlab.training import fused
from actlab.training.fused import codegen
from actlab.training.loop import TrainConfig, train


def source(sizes: tuple[int, ...], act: str, tile: int) -> str:
    """A module with train(P, X, Yf, p, thr, lr, loss_out, hit_out): one full-batch SGD epoch of every block
    P[b] (rows, B), activation `act` on every layer, MSE."""
    lay = codegen._layout(sizes)
    n_layers, units = len(lay), list(sizes[1:])
    uoff = [sum(units[:i]) for i in range(n_layers)]
    ind = " " * 16

    def inp(li: int, k: int | str, t: int) -> str:
        return f"X[i0 + {t}, {k}]" if li == 0 else f"A[{t}, {uoff[li - 1]} + {k}, r]"

    body = []
    for t in range(tile):
        for li, (nin, nout, wo, bo) in enumerate(lay):
            terms = " + ".join(f"Pb[{wo + k * nout} + u, r] * {inp(li, k, t)}" for k in range(nin))
            body += [f"{ind}for u in range({nout}):", f"{ind}    for r in range(B):",
                     f"{ind}        a, d = ACT(Pb[{bo} + u, r] + {terms}, p)"]
            if li < n_layers - 1:
                body += [f"{ind}        A[{t}, {uoff[li]} + u, r] = a", f"{ind}        D[{t}, {uoff[li]} + u, r] = d"]
            else:
                y = f"Yf[i0 + {t}]"
                body += [f"{ind}        ST[0, r] += (a - {y}) * (a - {y})",
                         f"{ind}        ST[1, r] += np.float32((a > thr) == ({y} > np.float32(0.5)))",
                         f"{ind}        E[{t}, {uoff[li]} + u, r] = np.float32(2.0) * (a - {y}) * scale * d"]
        for li in range(n_layers - 1, 0, -1):
            nin, nout, wo, _ = lay[li]
            terms = " + ".join(f"Pb[{wo} + k * {nout} + {u}, r] * E[{t}, {uoff[li] + u}, r]" for u in range(nout))
            body += [f"{ind}for k in range({nin}):", f"{ind}    for r in range(B):",
                     f"{ind}        E[{t}, {uoff[li - 1]} + k, r] = ({terms}) * D[{t}, {uoff[li - 1]} + k, r]"]
    for li, (nin, nout, wo, bo) in enumerate(lay):
        bias = " + ".join(f"E[{t}, {uoff[li]} + u, r]" for t in range(tile))
        grad = " + ".join(f"{inp(li, 'k', t)} * E[{t}, {uoff[li]} + u, r]" for t in range(tile))
        body += [f"{ind}for u in range({nout}):", f"{ind}    for r in range(B):", f"{ind}        G[{bo} + u, r] += "
                                                                                  f"{bias}",
                 f"{ind}for k in range({nin}):", f"{ind}    for u in range({nout}):",
                 f"{ind}        for r in range(B):",
                 f"{ind}            G[{wo} + k * {nout} + u, r] += {grad}"]
    rows = lay[-1][3] + lay[-1][1]
    return "\n".join([
        "import numpy as np",
        "from numba import njit, prange",
        f"from actlab.training.fused.activations import {act}_bf as ACT",
        "",
        "",
        "@njit(parallel=True, cache=True, fastmath={'contract'}, error_model='numpy')",
        "def train(P, X, Yf, p, thr, lr, loss_out, hit_out):",
        "    n, B = X.shape[0], P.shape[2]",
        "    scale = np.float32(1.0) / np.float32(n)",
        "    for b in prange(P.shape[0]):",
        "        Pb = P[b]",
        f"        G = np.zeros(({rows}, B), dtype=np.float32)",
        f"        A = np.empty(({tile}, {sum(units)}, B), dtype=np.float32)",
        "        D = np.empty_like(A)",
        "        E = np.empty_like(A)",
        "        ST = np.zeros((2, B), dtype=np.float32)",
        f"        for i0 in range(0, n, {tile}):",
        *body,
        f"        for i in range({rows}):",
        "            for r in range(B):",
        "                Pb[i, r] -= np.float32(lr) * G[i, r]",
        "        for r in range(B):",
        "            loss_out[b * B + r] = ST[0, r] / n",
        "            hit_out[b * B + r] = ST[1, r] / n",
        ""])


def compiled(src: str):
    """The module of `src`, written once under the temporary folder (numba caches its machine code beside it)."""
    folder = Path(tempfile.gettempdir()) / "actlab-blobs-probe"
    folder.mkdir(exist_ok=True)
    key = hashlib.sha256(src.encode()).hexdigest()[:16]
    path = folder / f"probe_{key}.py"
    if not path.exists():  # the name is the content's hash: a file there already holds this source
        write_text_atomic(path, src)
    spec = importlib.util.spec_from_file_location(f"probe_{key}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lanes", type=int, default=32)
    ap.add_argument("--tile", type=int, default=1)
    ap.add_argument("--replicas", type=int, default=1024)
    ap.add_argument("--act", default="sigmoid")
    ap.add_argument("--epochs", type=int, default=20)
    a = ap.parse_args()
    tune_malloc()
    ds = data.load("blobs8")
    sizes = (8, 16, 32, 16, 1)
    m, e, lanes = a.replicas, a.epochs, a.lanes
    if m % lanes or len(ds.x_train) % a.tile:  # the kernel has no remainder loops (and numba no bounds checks)
        ap.error(f"--replicas ({m}) must be a multiple of --lanes ({lanes}) and the {len(ds.x_train)} training "
                 f"points of --tile ({a.tile})")
    cfg = ModelConfig(widths=list(sizes[1:-1]), activation=a.act, output_activation=a.act, init="blobs")
    tc = TrainConfig(epochs=e, batch_size="full", lr=0.1, loss="mse", eval_train=False, device="cpu", engine="torch")
    model = build(cfg, ds.input_shape, ds.task, ds.n_classes, list(range(m)))

    def blocks(fp: fused.FusedPopulation) -> np.ndarray:  # (blocks of `lanes`, rows, lanes) from the kernel's layout
        flat = fp.P.transpose(1, 0, 2).reshape(fp.rows, -1)[:, :m]
        return np.ascontiguousarray(flat.reshape(fp.rows, m // lanes, lanes).transpose(1, 0, 2))

    p = blocks(fused.FusedPopulation(model, tc, ds.task, ds.n_classes))  # the same initial weights
    x, yf = ds.x_train.numpy(), ds.y_train.numpy().astype(np.float32)
    loss, hits = np.zeros(m, np.float32), np.zeros(m, np.float32)
    t = time.perf_counter()
    mod = compiled(source(sizes, a.act, a.tile))
    mod.train(p, x, yf, np.float32(0), np.float32(0.5), 0.1, loss, hits)  # compiles; trains epoch 1
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(e - 1):
        mod.train(p, x, yf, np.float32(0), np.float32(0.5), 0.1, loss, hits)
    probe = m * (e - 1) / (time.perf_counter() - t)
    t = time.perf_counter()
    train(model, ds, tc)
    torch_rate = m * e / (time.perf_counter() - t)
    ref = blocks(fused.FusedPopulation(model, tc, ds.task, ds.n_classes))
    print(json.dumps({"act": a.act, "replicas": m, "lanes": lanes, "tile": a.tile, "epochs": e,
                      "compile_and_first_epoch_s": round(compile_s, 1), "probe_model_epochs_per_s": round(probe),
                      "torch_engine_model_epochs_per_s": round(torch_rate), "ratio": round(probe / torch_rate, 2),
                      "max_rel_param_diff": float(np.abs(ref - p).max() / np.abs(ref).max())}))


if __name__ == "__main__":
    main()
