"""A fused CPU kernel for populations of small dense networks (numba), beside the torch path.

Why: on a population of small MLPs (moons' 2-8-8-1 at 4,000 replicas) the torch path spends its time in
tiny batched GEMMs, a per-replica sort, gathers and element-wise passes over memory. This kernel trains a
block of R = 16 replicas at once with the replicas in the SIMD lanes (weights laid out [row, replica], one
AVX-512 vector per row): the forward, backward and optimizer step of one minibatch for the whole block,
its weights, gradients and optimizer state in L1/L2, before the next block; blocks run in parallel
(numba's prange), each block's arithmetic in a fixed order, so results are bitwise the same run to run
whatever the thread count.

The equivalence contract holds as on the torch path: replica m draws its initial weights (the population's,
copied in) and its data order (`rng.permutations(seed_m, ("order", epoch))`, the same hash computed here)
from its seed alone; its loss is its own batch mean; optimizers are element-wise (torch's formulas: SGD
with momentum, Nesterov and L2; Adam; AdamW); a replica whose loss turns non-finite is zeroed and frozen
at the end of that epoch. Results equal the torch path's within float32 rounding (the order of sums and the
libm differ), checked by tests for every supported activation, optimizer and loss.

Scope (`unsupported` says why anything else falls back to torch): CPU; an MLP population without
normalisation, residuals, input transforms or an explicit output activation, every layer with a bias;
element-wise catalog activations without learnable parameters (prelu and softmax fall back); losses BCE
(binary), CE (multiclass) and MSE (binary or multiclass); no AMP and no per-batch gradient statistics.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys

import numpy as np
import torch

from actlab import rng, runtime
from actlab.nn.models import PopMLP

try:  # numba is a dependency; without it (an odd install) everything runs on the torch path
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

# engine "auto" uses the kernel where benchmarks/RESULTS.md measured it faster than torch: networks at most 16
# units wide, and either every block on a generated kernel (moons' 2-8-8-1: 5.6x at 4,000 replicas, 13x at
# 16-64) or at most 512 replicas (the generic kernel: 2-6x at 16-64 replicas, 0.93x at 4,000; the MNIST-1D
# MLP of width 64: 25x slower)
AUTO_MAX_REPLICAS, AUTO_MAX_WIDTH = 512, 16
# replicas × epochs × training examples below which auto leaves a population to torch: there torch is done
# in seconds, before a kernel met for the first time would have compiled (a generated one 5-45 s per shape, the
# generic one about 30 s on a 2-core machine; once per install).
# A function of the configuration only, never of what is cached: the same config gets the same engine.
AUTO_MIN_WORK = 10**8
R = 16  # replicas per block: one AVX-512 vector of float32 (two AVX2 vectors)
ACTS = ("identity", "relu", "leaky_relu", "relu6", "hard_tanh", "elu", "celu", "selu", "sigmoid", "tanh",
        "softsign", "softplus", "swish", "gelu", "gelu_tanh", "gelu_sigmoid", "mish", "hard_sigmoid", "hard_swish")
CODE = {name: i for i, name in enumerate(ACTS)}
LOSSES = {"bce": 0, "ce": 1, "mse": 2}
SELU_SCALE, SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717


def available() -> bool:
    return numba is not None


def unsupported(model, ds, cfg, device: torch.device) -> str | None:
    """Why the fused kernel cannot train this population (None: it can)."""
    if numba is None:
        return "numba is not installed"
    if device.type != "cpu":
        return f"device {device.type} (the kernel is for CPUs)"
    if not isinstance(model, PopMLP):
        return f"{type(model).__name__} (the kernel trains MLPs)"
    c = model.cfg
    if c.norm != "none" or c.residual or c.transform != "none":
        return "normalisation, residual connections or an input transform"
    if model.out_act is not None:
        return "an explicit output activation"
    if any(layer.bias is None for layer in model.weight_layers()):
        return "a layer without bias"
    for mc, _, _ in model.groups:
        act, _params = mc.resolved_activation()
        if act.name not in CODE:
            return f"activation {act.name} (not in the kernel's table)"
    loss = cfg.resolved_loss(ds.task, False)
    if loss not in LOSSES or ds.task == "regression":
        return f"loss {loss} on a {ds.task} task"
    if cfg.amp or cfg.grad_stats:
        return "AMP or per-batch gradient statistics"
    if ds.x_train.dtype != torch.float32:
        return f"inputs of dtype {ds.x_train.dtype}"
    return None


def slower(model, n: int, epochs: int) -> str | None:
    """Why engine "auto" leaves this (supported) population, trained `epochs` on `n` examples, to torch:
    where the kernel was measured slower, or the work too small to repay compiling it."""
    widest = max(max(lay.in_features, lay.out_features) for lay in model.weight_layers())
    if widest > AUTO_MAX_WIDTH:
        return f"layers {widest} wide (auto uses the kernel up to {AUTO_MAX_WIDTH})"
    work = model.m * epochs * n
    if work < AUTO_MIN_WORK:
        return (f"{model.m} replicas × {epochs} epochs × {n} examples = {work:.2g} example-passes (auto uses the "
                f"kernel from {AUTO_MIN_WORK:.0e}: below, torch finishes before a kernel would compile)")
    return None


def slower_population(fp: FusedPopulation) -> str | None:
    """Why engine "auto" leaves this population to torch once its kernels are known."""
    generic = len(fp.generic_blocks) * R
    if generic > AUTO_MAX_REPLICAS:
        return (f"{generic} replicas on the generic kernel (auto uses it up to {AUTO_MAX_REPLICAS}; the generated "
                "kernels, for any population, need one activation per block of 16 and a binary task)")
    return None


# ------------------------------------------------------------------------------------------- the kernel

if numba is not None:
    _F = numba.float32
    _MASK = np.uint64(0xFFFFFFFF)

    @njit(inline="always")
    def _mix(x):
        x = x ^ (x >> np.uint64(16))
        x = (x * np.uint64(0x7FEB352D)) & _MASK
        x = x ^ (x >> np.uint64(15))
        x = (x * np.uint64(0x846CA68B)) & _MASK
        return x ^ (x >> np.uint64(16))

    @njit
    def _sig(z):
        return np.float32(1.0) / (np.float32(1.0) + math.exp(-z))

    one32, zero32 = np.float32(1.0), np.float32(0.0)

    # Each activation returns (φ(z), φ′(z)) in float32 with torch's conventions at kinks: small functions that
    # LLVM inlines into the row loops below, so a row of R lanes vectorises.
    @njit(inline="always")
    def _identity(z, p):
        return z, one32

    @njit(inline="always")
    def _relu(z, p):
        return (z, one32) if z > zero32 else (zero32, zero32)

    @njit(inline="always")
    def _leaky_relu(z, p):
        return (z, one32) if z > zero32 else (p * z, p)

    @njit(inline="always")
    def _relu6(z, p):  # hardtanh(0, 6): derivative 0 at both ends
        if z <= zero32:
            return zero32, zero32
        if z >= np.float32(6.0):
            return np.float32(6.0), zero32
        return z, one32

    @njit(inline="always")
    def _hard_tanh(z, p):
        if z <= -one32:
            return -one32, zero32
        if z >= one32:
            return one32, zero32
        return z, one32

    @njit(inline="always")
    def _elu(z, p):
        if z > zero32:
            return z, one32
        e = math.exp(z)
        return p * (e - one32), p * e

    @njit(inline="always")
    def _celu(z, p):
        if z > zero32:
            return z, one32
        e = math.exp(z / p)
        return p * (e - one32), e

    @njit(inline="always")
    def _selu(z, p):
        if z > zero32:
            return np.float32(SELU_SCALE) * z, np.float32(SELU_SCALE)
        e = math.exp(z)
        return np.float32(SELU_SCALE * SELU_ALPHA) * (e - one32), np.float32(SELU_SCALE * SELU_ALPHA) * e

    @njit(inline="always")
    def _sigmoid(z, p):
        s = _sig(z)
        return s, s * (one32 - s)

    @njit(inline="always")
    def _tanh(z, p):
        t = math.tanh(z)
        return t, one32 - t * t

    @njit(inline="always")
    def _softsign(z, p):
        d = one32 + abs(z)
        return z / d, one32 / (d * d)

    @njit(inline="always")
    def _softplus(z, p):  # identity above beta·z > 40 (the catalog's threshold)
        bz = p * z
        if bz > np.float32(40.0):
            return z, one32
        e = math.exp(bz)
        return math.log1p(e) / p, e / (e + one32)

    @njit(inline="always")
    def _swish(z, p):
        s = _sig(p * z)
        return z * s, s + p * z * s * (one32 - s)

    @njit(inline="always")
    def _gelu(z, p):
        c = np.float32(0.5) * (one32 + math.erf(z * np.float32(0.7071067811865476)))
        return z * c, c + z * np.float32(0.3989422804014327) * math.exp(np.float32(-0.5) * z * z)

    @njit(inline="always")
    def _gelu_tanh(z, p):
        k = np.float32(0.7978845608028654)
        t = math.tanh(k * (z + np.float32(0.044715) * z * z * z))
        return (np.float32(0.5) * z * (one32 + t),
                np.float32(0.5) * (one32 + t) + np.float32(0.5) * z * (one32 - t * t) * k
                * (one32 + np.float32(3 * 0.044715) * z * z))

    @njit(inline="always")
    def _gelu_sigmoid(z, p):
        s = _sig(np.float32(1.702) * z)
        return z * s, s + np.float32(1.702) * z * s * (one32 - s)

    @njit(inline="always")
    def _mish(z, p):
        ts = math.tanh(math.log1p(math.exp(z)))
        s = _sig(z)
        return z * ts, ts + z * s * (one32 - ts * ts)

    @njit(inline="always")
    def _hard_sigmoid(z, p):
        if z <= np.float32(-3.0):
            return zero32, zero32
        if z >= np.float32(3.0):
            return one32, zero32
        return z / np.float32(6.0) + np.float32(0.5), one32 / np.float32(6.0)

    @njit(inline="always")
    def _hard_swish(z, p):
        if z < np.float32(-3.0):
            return zero32, zero32
        if z > np.float32(3.0):
            return z, one32
        return z * (z + np.float32(3.0)) / np.float32(6.0), z / np.float32(3.0) + np.float32(0.5)

    _FNS = (_identity, _relu, _leaky_relu, _relu6, _hard_tanh, _elu, _celu, _selu, _sigmoid, _tanh, _softsign,
            _softplus, _swish, _gelu, _gelu_tanh, _gelu_sigmoid, _mish, _hard_sigmoid, _hard_swish)  # ACTS order

    @njit(inline="always")
    def _act(code, p, z):
        """(φ(z), φ′(z)) of activation `code` (ACTS order): the lane-by-lane path of mixed blocks."""
        if code == 0:
            return _identity(z, p)
        if code == 1:
            return _relu(z, p)
        if code == 2:
            return _leaky_relu(z, p)
        if code == 3:
            return _relu6(z, p)
        if code == 4:
            return _hard_tanh(z, p)
        if code == 5:
            return _elu(z, p)
        if code == 6:
            return _celu(z, p)
        if code == 7:
            return _selu(z, p)
        if code == 8:
            return _sigmoid(z, p)
        if code == 9:
            return _tanh(z, p)
        if code == 10:
            return _softsign(z, p)
        if code == 11:
            return _softplus(z, p)
        if code == 12:
            return _swish(z, p)
        if code == 13:
            return _gelu(z, p)
        if code == 14:
            return _gelu_tanh(z, p)
        if code == 15:
            return _gelu_sigmoid(z, p)
        if code == 16:
            return _mish(z, p)
        if code == 17:
            return _hard_sigmoid(z, p)
        return _hard_swish(z, p)

    def _make_row(fn):
        @njit(inline="always")
        def row(p, A, D, ai, di):
            for r in range(R):
                a, d = fn(A[ai, r], p)
                A[ai, r] = a
                D[di, r] = d
        return row

    _ROWS = tuple(_make_row(f) for f in _FNS)
    (_r0, _r1, _r2, _r3, _r4, _r5, _r6, _r7, _r8, _r9, _r10, _r11, _r12, _r13, _r14, _r15, _r16, _r17, _r18) = _ROWS

    @njit(inline="always")
    def _act_row(code, p, lcodes, lparams, A, D, ai, di):
        """The activation of one row: one branch per row for a block of one activation (its R lanes in one
        vectorised loop), else lane by lane."""
        if code < 0:
            for r in range(R):
                a, d = _act(lcodes[r], lparams[r], A[ai, r])
                A[ai, r] = a
                D[di, r] = d
        elif code == 0:
            _r0(p, A, D, ai, di)
        elif code == 1:
            _r1(p, A, D, ai, di)
        elif code == 2:
            _r2(p, A, D, ai, di)
        elif code == 3:
            _r3(p, A, D, ai, di)
        elif code == 4:
            _r4(p, A, D, ai, di)
        elif code == 5:
            _r5(p, A, D, ai, di)
        elif code == 6:
            _r6(p, A, D, ai, di)
        elif code == 7:
            _r7(p, A, D, ai, di)
        elif code == 8:
            _r8(p, A, D, ai, di)
        elif code == 9:
            _r9(p, A, D, ai, di)
        elif code == 10:
            _r10(p, A, D, ai, di)
        elif code == 11:
            _r11(p, A, D, ai, di)
        elif code == 12:
            _r12(p, A, D, ai, di)
        elif code == 13:
            _r13(p, A, D, ai, di)
        elif code == 14:
            _r14(p, A, D, ai, di)
        elif code == 15:
            _r15(p, A, D, ai, di)
        elif code == 16:
            _r16(p, A, D, ai, di)
        elif code == 17:
            _r17(p, A, D, ai, di)
        else:
            _r18(p, A, D, ai, di)

    @njit(cache=True)
    def _forward(P, A, D, sizes, woff, boff, aoff, doff, code, p, lcodes, lparams):
        """Forward of one example per lane: A holds the input at aoff[0]; hidden outputs and φ′ go to A and D,
        the output logits to A at aoff[L]. `code` is the block's activation, or -1 for lane codes.

        A call, not inlined: the 19 activations' row loops are then compiled once, not once in training and
        again in evaluation (the generic kernel's first compile went from 120 s to 30 s on a 2-core machine,
        its speed the same within this machine's ±15 % noise)."""
        nl = sizes.shape[0] - 1
        for li in range(nl):
            nin, nout, wo, bo, ai, ao = sizes[li], sizes[li + 1], woff[li], boff[li], aoff[li], aoff[li + 1]
            for u in range(nout):
                for r in range(R):
                    A[ao + u, r] = P[bo + u, r]
            for k in range(nin):
                for u in range(nout):
                    w = wo + k * nout + u
                    for r in range(R):
                        A[ao + u, r] += P[w, r] * A[ai + k, r]
            if li < nl - 1:
                do = doff[li]
                for u in range(nout):
                    _act_row(code, p, lcodes, lparams, A, D, ao + u, do + u)

    @njit(inline="always")
    def _loss(A, ao, K, y, r, loss):
        """(loss, correct) of lane r whose output logits sit at A[ao:ao + K]; y its label."""
        if loss == 1:  # cross-entropy on K logits
            m = A[ao, r]
            best = 0
            for k in range(1, K):
                if A[ao + k, r] > m:
                    m = A[ao + k, r]
                    best = k
            s = np.float32(0.0)
            for k in range(K):
                s += math.exp(A[ao + k, r] - m)
            return math.log(s) + m - A[ao + y, r], best == y
        if K == 1:
            z = A[ao, r]
            yf = np.float32(y)
            hit = (z > np.float32(0.0)) == (y == 1)
            if loss == 0:  # BCE with logits
                return max(z, np.float32(0.0)) - z * yf + math.log1p(math.exp(-abs(z))), hit
            return (z - yf) * (z - yf), hit
        best = 0  # MSE on one-hot targets
        s = np.float32(0.0)
        for k in range(K):
            if A[ao + k, r] > A[ao + best, r]:
                best = k
            t = np.float32(1.0) if k == y else np.float32(0.0)
            s += (A[ao + k, r] - t) * (A[ao + k, r] - t)
        return s / np.float32(K), best == y

    @njit(inline="always")
    def _dloss(A, ao, K, y, r, loss, scale, dz):
        """dℓ/dz of lane r into dz[:K, r], times `scale` (1/batch)."""
        if loss == 1:
            m = A[ao, r]
            for k in range(1, K):
                m = max(m, A[ao + k, r])
            s = np.float32(0.0)
            for k in range(K):
                s += math.exp(A[ao + k, r] - m)
            for k in range(K):
                t = np.float32(1.0) if k == y else np.float32(0.0)
                dz[k, r] = (math.exp(A[ao + k, r] - m) / s - t) * scale
        elif K == 1:
            z = A[ao, r]
            if loss == 0:
                dz[0, r] = (_sig(z) - np.float32(y)) * scale
            else:
                dz[0, r] = np.float32(2.0) * (z - np.float32(y)) * scale
        else:
            for k in range(K):
                t = np.float32(1.0) if k == y else np.float32(0.0)
                dz[k, r] = np.float32(2.0) * (A[ao + k, r] - t) / np.float32(K) * scale

    @njit(parallel=True, cache=True)
    def _permutations(keys, n):
        """(M, n) int32: rng.permutations of range(n) for seed keys (M,) uint64 (stable argsort of the hash).

        A bucket sort: the hashes are uniform, so scattering them (stably) into 2^b ≥ n buckets by their top b
        bits leaves about one per bucket, and an insertion sort of each bucket (strict comparison: equal hashes
        keep index order) finishes the stable sort in about 3n steps, against 4 passes for a radix sort. The
        buckets stop at 2^24: past 16.7 M points each holds n/2^24 on average (still exact, only slower)."""
        m = keys.shape[0]
        out = np.empty((m, n), dtype=np.int32)
        idx = (np.arange(n).astype(np.uint64) * np.uint64(0x9E3779B9)) & _MASK
        b = 1
        while (1 << b) < n and b < 24:
            b += 1
        nbk = 1 << b
        shift = np.uint32(32 - b)
        for i in prange(m):
            key = np.empty(n, dtype=np.uint32)
            key2 = np.empty(n, dtype=np.uint32)
            pos = out[i]
            count = np.zeros(nbk + 1, dtype=np.int32)
            for j in range(n):
                k = np.uint32(_mix(keys[i] ^ idx[j]))
                key[j] = k
                count[(k >> shift) + 1] += 1
            for d in range(nbk):
                count[d + 1] += count[d]
            for j in range(n):  # stable scatter: within a bucket, index order
                d = key[j] >> shift
                c = count[d]
                key2[c] = key[j]
                pos[c] = j
                count[d] = c + 1
            for j in range(1, n):  # insertion sort: buckets are already in order, so this sorts within them
                k = key2[j]
                p = pos[j]
                t = j - 1
                while t >= 0 and key2[t] > k:
                    key2[t + 1] = key2[t]
                    pos[t + 1] = pos[t]
                    t -= 1
                key2[t + 1] = k
                pos[t + 1] = p
        return out

    @njit(cache=True)
    def _update(Pb, S1b, S2b, G, alive, lane0, lr64, t, opt, momentum, nesterov, wd, beta1, beta2, eps):
        """One optimizer step of a block, element-wise, with torch's formulas; dead lanes get no gradient."""
        lr = np.float32(lr64)
        step_size = np.float32(lr64 / (1.0 - beta1 ** t))  # Adam's bias corrections, in float64 as torch
        c2 = np.float32(math.sqrt(1.0 - beta2 ** t))
        decay = np.float32(1.0 - lr64 * wd)  # AdamW's decoupled decay
        b1, b2, wd32 = np.float32(beta1), np.float32(beta2), np.float32(wd)
        for i in range(Pb.shape[0]):
            for r in range(R):
                g = G[i, r] * alive[lane0 + r]
                pv = Pb[i, r]
                if opt == 0:  # SGD (torch: d_p = g + wd·p; buf = μ·buf + d_p; nesterov: d_p + μ·buf)
                    g = g + wd32 * pv
                    if momentum > 0:
                        buf = momentum * S1b[i, r] + g if t > 1 else g
                        S1b[i, r] = buf
                        g = g + momentum * buf if nesterov else buf
                    Pb[i, r] = pv - lr * g
                else:  # Adam (1) or AdamW (2)
                    if opt == 2:
                        pv = pv * decay
                    else:
                        g = g + wd32 * pv
                    m1 = S1b[i, r] + (np.float32(1.0) - b1) * (g - S1b[i, r])
                    v = b2 * S2b[i, r] + (np.float32(1.0) - b2) * g * g
                    S1b[i, r] = m1
                    S2b[i, r] = v
                    Pb[i, r] = pv - step_size * m1 / (math.sqrt(v) / c2 + eps)

    @njit(parallel=True, cache=True)
    def _train_epoch(P, S1, S2, X, Y, order, alive, blocks, sizes, woff, boff, aoff, doff, codes, params, lcodes,
                     lparams, loss, bs, lrs, opt, momentum, nesterov, wd, beta1, beta2, eps, step0, loss_out, hit_out,
                     bad_out):
        """One epoch for every block: P, S1, S2 (blocks, rows, R) parameters and optimizer state, updated in
        place; order (blocks·R, n) the per-replica data order (None-like: an empty array is full batch)."""
        rows = P.shape[1]
        n = X.shape[0]
        nf = sizes[0]
        K = sizes[sizes.shape[0] - 1]
        nl = sizes.shape[0] - 1
        ao = aoff[nl]
        widest = 0
        for li in range(sizes.shape[0]):
            widest = max(widest, sizes[li])
        steps = (n + bs - 1) // bs
        full = order.shape[0] == 0
        for q in prange(blocks.shape[0]):
            b = blocks[q]
            Pb, G = P[b], np.zeros((rows, R), dtype=np.float32)
            A = np.empty((aoff[nl] + K, R), dtype=np.float32)
            D = np.empty((max(doff[nl - 1], 1), R), dtype=np.float32)
            dz = np.empty((widest, R), dtype=np.float32)
            dz2 = np.empty((widest, R), dtype=np.float32)
            lsum = np.zeros(R, dtype=np.float32)
            hits = np.zeros(R, dtype=np.float32)
            bad = np.zeros(R, dtype=np.bool_)
            lane = np.empty(R, dtype=np.int64)
            bl = np.zeros(R, dtype=np.float32)
            for s in range(steps):
                lo = s * bs
                nb = min(bs, n - lo)
                scale = np.float32(1.0) / np.float32(nb)
                G[:, :] = 0.0
                bl[:] = 0.0
                for j in range(nb):
                    for r in range(R):
                        lane[r] = lo + j if full else order[b * R + r, lo + j]
                    for k in range(nf):
                        for r in range(R):
                            A[k, r] = X[lane[r], k]
                    _forward(Pb, A, D, sizes, woff, boff, aoff, doff, codes[b], params[b], lcodes[b], lparams[b])
                    for r in range(R):
                        lv, hit = _loss(A, ao, K, Y[lane[r]], r, loss)
                        bl[r] += lv
                        if hit:
                            hits[r] += 1.0
                        _dloss(A, ao, K, Y[lane[r]], r, loss, scale, dz)
                    # backward, output layer down
                    for li in range(nl - 1, -1, -1):
                        nin, nout, wo, bo, ai = sizes[li], sizes[li + 1], woff[li], boff[li], aoff[li]
                        for k in range(nin):
                            for u in range(nout):
                                w = wo + k * nout + u
                                for r in range(R):
                                    G[w, r] += A[ai + k, r] * dz[u, r]
                        for u in range(nout):
                            for r in range(R):
                                G[bo + u, r] += dz[u, r]
                        if li > 0:
                            do = doff[li - 1]
                            for k in range(nin):
                                for r in range(R):
                                    dz2[k, r] = 0.0
                                for u in range(nout):
                                    w = wo + k * nout + u
                                    for r in range(R):
                                        dz2[k, r] += Pb[w, r] * dz[u, r]
                                for r in range(R):
                                    dz2[k, r] *= D[do + k, r]
                            dz, dz2 = dz2, dz
                for r in range(R):
                    lv = bl[r] / np.float32(nb)
                    if not np.isfinite(lv):
                        bad[r] = True
                    else:
                        lsum[r] += lv * np.float32(nb)
                _update(Pb, S1[b], S2[b], G, alive, b * R, lrs[s], step0 + s + 1, opt, momentum, nesterov, wd,
                        beta1, beta2, eps)
            for r in range(R):
                loss_out[b * R + r] = lsum[r]
                hit_out[b * R + r] = hits[r]
                bad_out[b * R + r] = bad[r]

    @njit(parallel=True, cache=True)
    def _evaluate(P, X, Y, blocks, sizes, woff, boff, aoff, doff, codes, params, lcodes, lparams, loss, loss_out,
                  hit_out):
        """Mean loss and accuracy of every lane of `blocks` on the shared set (X, Y)."""
        n, nf = X.shape[0], sizes[0]
        nl = sizes.shape[0] - 1
        K = sizes[nl]
        ao = aoff[nl]
        for q in prange(blocks.shape[0]):
            b = blocks[q]
            A = np.empty((aoff[nl] + K, R), dtype=np.float32)
            D = np.empty((max(doff[nl - 1], 1), R), dtype=np.float32)
            ls = np.zeros(R, dtype=np.float64)
            hits = np.zeros(R, dtype=np.float64)
            for i in range(n):
                for k in range(nf):
                    for r in range(R):
                        A[k, r] = X[i, k]
                _forward(P[b], A, D, sizes, woff, boff, aoff, doff, codes[b], params[b], lcodes[b], lparams[b])
                for r in range(R):
                    lv, hit = _loss(A, ao, K, Y[i], r, loss)
                    ls[r] += lv
                    if hit:
                        hits[r] += 1.0
            for r in range(R):
                loss_out[b * R + r] = ls[r] / n
                hit_out[b * R + r] = hits[r] / n

    # ---------------------------------------------------------------- branch-free math for generated kernels
    # Generated kernels run one lane per loop iteration with straight-line code, so LLVM vectorises the lane
    # loop; that needs every operation branch-free and without libm calls: exp and log1p are written here
    # (Cody–Waite reduction and a degree-6 polynomial, 2^n from a table; log1p through atanh's series),
    # accurate to a few float32 ulps.
    _POW2 = np.array([2.0 ** k for k in range(-127, 128)], dtype=np.float32)  # n in [-126, 127]

    @njit(inline="always")
    def _vexp(x):
        x = min(max(x, np.float32(-87.0)), np.float32(88.0))
        n = np.floor(x * np.float32(1.4426950408889634) + np.float32(0.5))
        r = x - n * np.float32(0.693145751953125) - n * np.float32(1.428606765330187e-06)
        p = np.float32(1.0) + r * (np.float32(1.0) + r * (np.float32(0.5) + r * (np.float32(0.16666667) + r * (
            np.float32(0.041666668) + r * (np.float32(0.008333334) + r * np.float32(0.0013888889))))))
        return p * _POW2[np.int32(n) + 127]

    @njit(inline="always")
    def _vlog1p(y):
        """log(1 + y) for y in [0, 1]: 2·atanh(y / (2 + y))."""
        s = y / (np.float32(2.0) + y)
        s2 = s * s
        return np.float32(2.0) * s * (np.float32(1.0) + s2 * (np.float32(1 / 3) + s2 * (np.float32(0.2) + s2 * (
            np.float32(1 / 7) + s2 * (np.float32(1 / 9) + s2 * (np.float32(1 / 11) + s2 * np.float32(1 / 13)))))))

    @njit(inline="always")
    def _vsig(z):
        e = _vexp(-abs(z))
        inv = np.float32(1.0) / (np.float32(1.0) + e)
        pos = np.float32(z >= np.float32(0.0))
        return pos * inv + (np.float32(1.0) - pos) * e * inv

    @njit(inline="always")
    def _g_identity(z, p):
        return z, np.float32(1.0)

    @njit(inline="always")
    def _g_relu(z, p):
        return max(z, np.float32(0.0)), np.float32(z > np.float32(0.0))

    @njit(inline="always")
    def _g_leaky_relu(z, p):
        pos = np.float32(z > np.float32(0.0))
        return pos * z + (np.float32(1.0) - pos) * p * z, pos + (np.float32(1.0) - pos) * p

    @njit(inline="always")
    def _g_relu6(z, p):
        return (min(max(z, np.float32(0.0)), np.float32(6.0)),
                np.float32(z > np.float32(0.0)) * np.float32(z < np.float32(6.0)))

    @njit(inline="always")
    def _g_hard_tanh(z, p):
        return (min(max(z, np.float32(-1.0)), np.float32(1.0)),
                np.float32(z > np.float32(-1.0)) * np.float32(z < np.float32(1.0)))

    @njit(inline="always")
    def _g_hard_sigmoid(z, p):
        return (min(max(z / np.float32(6.0) + np.float32(0.5), np.float32(0.0)), np.float32(1.0)),
                np.float32(z > np.float32(-3.0)) * np.float32(z < np.float32(3.0)) / np.float32(6.0))

    @njit(inline="always")
    def _g_hard_swish(z, p):
        lo, hi = np.float32(z < np.float32(-3.0)), np.float32(z > np.float32(3.0))
        a = z * min(max(z + np.float32(3.0), np.float32(0.0)), np.float32(6.0)) / np.float32(6.0)
        return a, (np.float32(1.0) - lo - hi) * (z / np.float32(3.0) + np.float32(0.5)) + hi

    @njit(inline="always")
    def _g_sigmoid(z, p):
        s = _vsig(z)
        return s, s * (np.float32(1.0) - s)

    @njit(inline="always")
    def _g_tanh(z, p):
        e = _vexp(np.float32(-2.0) * abs(z))
        t = (np.float32(1.0) - e) / (np.float32(1.0) + e)
        t = t * (np.float32(2.0) * np.float32(z >= np.float32(0.0)) - np.float32(1.0))
        return t, np.float32(1.0) - t * t

    @njit(inline="always")
    def _g_softsign(z, p):
        d = np.float32(1.0) + abs(z)
        return z / d, np.float32(1.0) / (d * d)

    @njit(inline="always")
    def _g_elu(z, p):
        pos = np.float32(z > np.float32(0.0))
        e = _vexp(min(z, np.float32(0.0)))
        return pos * z + (np.float32(1.0) - pos) * p * (e - np.float32(1.0)), pos + (np.float32(1.0) - pos) * p * e

    @njit(inline="always")
    def _g_celu(z, p):
        pos = np.float32(z > np.float32(0.0))
        e = _vexp(min(z, np.float32(0.0)) / p)
        return pos * z + (np.float32(1.0) - pos) * p * (e - np.float32(1.0)), pos + (np.float32(1.0) - pos) * e

    @njit(inline="always")
    def _g_selu(z, p):
        pos = np.float32(z > np.float32(0.0))
        e = _vexp(min(z, np.float32(0.0)))
        sa = np.float32(SELU_SCALE * SELU_ALPHA)
        return (pos * np.float32(SELU_SCALE) * z + (np.float32(1.0) - pos) * sa * (e - np.float32(1.0)),
                pos * np.float32(SELU_SCALE) + (np.float32(1.0) - pos) * sa * e)

    @njit(inline="always")
    def _g_swish(z, p):
        s = _vsig(p * z)
        return z * s, s + p * z * s * (np.float32(1.0) - s)

    @njit(inline="always")
    def _g_gelu_sigmoid(z, p):
        s = _vsig(np.float32(1.702) * z)
        return z * s, s + np.float32(1.702) * z * s * (np.float32(1.0) - s)

    GEN_ACTS = {name: globals()[f"_g_{name}"] for name in (
        "identity", "relu", "leaky_relu", "relu6", "hard_tanh", "hard_sigmoid", "hard_swish", "sigmoid", "tanh",
        "softsign", "elu", "celu", "selu", "swish", "gelu_sigmoid")}

# ------------------------------------------------------------------------------ generated (unrolled) kernels

GEN_MAX_WEIGHTS = 150  # a network with at most this many weights gets a generated kernel (straight-line code;
# compiling one takes 5-12 s, once per shape, activation and loss: cached in the kernel folder)


def _layout(sizes: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """(nin, nout, weight row offset, bias row offset) per layer, as FusedPopulation lays rows out."""
    out, off = [], 0
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        out.append((a, b, off, off + a * b))
        off += a * b + b
    return out


def generate_source(sizes: tuple[int, ...], act: str, loss: str) -> str:
    """Python source of a module with `train(...)` and `evaluate(...)` for one network shape, activation and
    binary loss (bce or mse): one lane per iteration of the innermost loop, every unit a scalar, so LLVM
    vectorises across the R lanes and keeps the units in registers. Every array the lane loop touches is
    flat with constant offsets (the block's parameters, and one scratch buffer for gradients, sums and the
    gathered inputs), so the vectoriser can prove the accesses apart."""
    lay = _layout(sizes)
    L = len(lay)
    nf, rows = sizes[0], lay[-1][3] + lay[-1][1]
    acc, xo = rows * R, rows * R + 2 * R  # offsets in the scratch buffer: the sums, then the gathered inputs

    def forward(ind: str, xs: list[str]) -> list[str]:
        lines, prev = [], xs
        for li, (nin, nout, wo, bo) in enumerate(lay):
            cur = []
            for u in range(nout):
                terms = " + ".join(f"Pb[{(wo + k * nout + u) * R} + r] * {prev[k]}" for k in range(nin))
                lines.append(f"{ind}z{li}_{u} = Pb[{(bo + u) * R} + r] + {terms}")
                if li < L - 1:
                    lines.append(f"{ind}a{li}_{u}, d{li}_{u} = ACT(z{li}_{u}, p)")
                    cur.append(f"a{li}_{u}")
            prev = cur
        return lines

    def loss_lines(ind: str) -> list[str]:
        z = f"z{L - 1}_0"
        out = [f"{ind}hit = one - abs(min(max({z} * BIG, zero), one) - yv)"]  # 1 where (z > 0) == y
        if loss == "bce":
            return out + [f"{ind}e = _vexp(-abs({z}))",
                          f"{ind}lv = max({z}, zero) - {z} * yv + _vlog1p(e)",
                          f"{ind}inv = one / (one + e)",
                          f"{ind}pos = min(max({z} * BIG + one, zero), one)",  # 1 for z >= 0 (to float32 range)
                          f"{ind}g = (pos * inv + (one - pos) * e * inv - yv) * scale"]
        return out + [f"{ind}lv = ({z} - yv) * ({z} - yv)", f"{ind}g = np.float32(2.0) * ({z} - yv) * scale"]

    hidden = list(sizes[1:-1])
    ao = xo + (nf + 1) * R  # the example's hidden outputs, layer by layer
    go = ao + sum(hidden) * R  # its deltas dL/dz, layer by layer
    aoff = [ao + sum(hidden[:i]) * R for i in range(len(hidden))]
    goff = [go + sum(sizes[1:li + 1]) * R for li in range(L)]
    scratch = go + sum(sizes[1:]) * R

    def deltas(ind: str) -> list[str]:
        """Backward through the layers as scalars; then the example's hidden outputs and deltas to the buffer."""
        lines = [f"{ind}g{L - 1}_0 = g"]
        for li in range(L - 1, 0, -1):
            nin, nout, wo, bo = lay[li]
            for k in range(nin):
                terms = " + ".join(f"Pb[{(wo + k * nout + u) * R} + r] * g{li}_{u}" for u in range(nout))
                lines.append(f"{ind}g{li - 1}_{k} = ({terms}) * d{li - 1}_{k}")
        for li in range(L - 1):
            lines += [f"{ind}buf[{aoff[li] + u * R} + r] = a{li}_{u}" for u in range(sizes[li + 1])]
        for li in range(L):
            lines += [f"{ind}buf[{goff[li] + u * R} + r] = g{li}_{u}" for u in range(sizes[li + 1])]
        return lines

    def gradients(ind: str) -> list[str]:
        """The example's contribution to every gradient row, in lane loops of at most 12 rows each (a loop
        with more read-modify-writes exceeds what LLVM's dependence analysis follows, and stays scalar)."""
        rows_ = []
        for li, (nin, nout, wo, bo) in enumerate(lay):
            src_in = [f"buf[{xo + k * R} + r]" for k in range(nin)] if li == 0 else \
                [f"buf[{aoff[li - 1] + k * R} + r]" for k in range(nin)]
            for u in range(nout):
                delta = f"buf[{goff[li] + u * R} + r]"
                rows_.append(f"buf[{(bo + u) * R} + r] += {delta}")
                rows_ += [f"buf[{(wo + k * nout + u) * R} + r] += {src_in[k]} * {delta}" for k in range(nin)]
        lines = []
        for i in range(0, len(rows_), 12):
            lines.append(f"{ind}for r in range(R):")
            lines += [f"{ind}    {row}" for row in rows_[i: i + 12]]
        return lines

    xs = [f"x{k}" for k in range(nf)]
    src = [
        '"""Generated by actlab.training.fused.generate_source: do not edit."""',
        "import numpy as np",
        "from numba import njit, prange",
        f"from actlab.training.fused import R, _update, _vexp, _vlog1p, _g_{act} as ACT",
        "",
        f"ROWS, ACC, XO, SCRATCH = {rows}, {acc}, {xo}, {scratch}",
        "BIG = np.float32(1e30)",
        "",
        "",
        "@njit(parallel=True, cache=True, fastmath={'contract'}, error_model='numpy')",
        "def train(P, P2, S1, S2, X, Yf, order, alive, blocks, p, bs, lrs, opt, momentum, nesterov, wd, beta1, beta2,",
        "          eps, step0, loss_out, hit_out, bad_out):",
        "    n = X.shape[0]",
        "    steps = (n + bs - 1) // bs",
        "    full = order.shape[0] == 0",
        "    zero, one = np.float32(0.0), np.float32(1.0)",
        "    for q in prange(blocks.shape[0]):",
        "        b = blocks[q]",
        "        Pb = P2[b]",
        "        buf = np.zeros(SCRATCH, dtype=np.float32)",
        "        G = buf[:ACC].reshape(ROWS, R)",
        "        lsum = np.zeros(R, dtype=np.float32)",
        "        hits = np.zeros(R, dtype=np.float32)",
        "        bad = np.zeros(R, dtype=np.bool_)",
        "        for s in range(steps):",
        "            lo = s * bs",
        "            nb = min(bs, n - lo)",
        "            scale = one / np.float32(nb)",
        "            buf[:XO] = 0.0",
        "            for j in range(nb):",
        "                for r in range(R):",
        "                    i = lo + j if full else order[b * R + r, lo + j]",
        *[f"                    buf[{xo + k * R} + r] = X[i, {k}]" for k in range(nf)],
        f"                    buf[{xo + nf * R} + r] = Yf[i]",
        "                for r in range(R):",
        *[f"                    x{k} = buf[{xo + k * R} + r]" for k in range(nf)],
        f"                    yv = buf[{xo + nf * R} + r]",
        *forward("                    ", xs),
        *loss_lines("                    "),
        f"                    buf[{acc} + r] += lv",
        f"                    buf[{acc + R} + r] += hit",
        *deltas("                    "),
        *gradients("                "),
        "            for r in range(R):",
        "                hits[r] += buf[ACC + R + r]",
        "                lv = buf[ACC + r] / np.float32(nb)",
        "                if not np.isfinite(lv):",
        "                    bad[r] = True",
        "                else:",
        "                    lsum[r] += lv * np.float32(nb)",
        "            _update(P[b], S1[b], S2[b], G, alive, b * R, lrs[s], step0 + s + 1, opt, momentum, nesterov, wd,",
        "                    beta1, beta2, eps)",
        "        for r in range(R):",
        "            loss_out[b * R + r] = lsum[r]",
        "            hit_out[b * R + r] = hits[r]",
        "            bad_out[b * R + r] = bad[r]",
        "",
        "",
        "@njit(parallel=True, cache=True, fastmath={'contract'}, error_model='numpy')",
        "def evaluate(P2, X, Yf, blocks, p, loss_out, hit_out):",
        "    n = X.shape[0]",
        "    zero, one = np.float32(0.0), np.float32(1.0)",
        "    scale = one",
        "    for q in prange(blocks.shape[0]):",
        "        b = blocks[q]",
        "        Pb = P2[b]",
        "        buf = np.zeros(2 * R, dtype=np.float32)",
        "        for i in range(n):",
        *[f"            x{k} = X[i, {k}]" for k in range(nf)],
        "            yv = Yf[i]",
        "            for r in range(R):",
        *forward("                ", xs),
        *loss_lines("                "),
        "                buf[r] += lv",
        "                buf[R + r] += hit",
        "        for r in range(R):",
        "            loss_out[b * R + r] = buf[r] / n",
        "            hit_out[b * R + r] = buf[R + r] / n",
        "",
        "",
        "@njit(parallel=True, cache=True, fastmath={'contract'}, error_model='numpy')",
        "def forward(P2, X, blocks, p, out):",
        "    for q in prange(blocks.shape[0]):",
        "        b = blocks[q]",
        "        Pb = P2[b]",
        "        for i in range(X.shape[0]):",
        *[f"            x{k} = X[i, {k}]" for k in range(nf)],
        "            for r in range(R):",
        *forward("                ", xs),
        f"                out[i, b * R + r] = z{L - 1}_0",
        "",
    ]
    return "\n".join(src)


def surface_forward(model, cfg, task: str, n_classes: int):
    """For a population the kernel trained on generated kernels: a function points (P, features) tensor ->
    outputs (M, P) tensor computed by the kernel's forward pass (the decision surface's grid, a hundred times
    torch's speed on these tiny networks); None where the generated kernels do not cover the population."""
    fp = FusedPopulation(model, cfg, task, n_classes)
    if fp.path != "generated":
        return None
    return lambda pts: torch.from_numpy(fp.forward(pts.detach().cpu().numpy())[:, : fp.m].T)


_GENERATED: dict[str, object] = {}


def generated(sizes: tuple[int, ...], act: str, loss: str):
    """The compiled module for (sizes, act, loss), written once to the kernel cache (ACTLAB_CACHE or
    ~/.cache/actlab, kernels/) so numba caches its machine code beside it; None where out of scope."""
    if numba is None or act not in GEN_ACTS or loss not in ("bce", "mse") or sizes[-1] != 1:
        return None
    if sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)) > GEN_MAX_WEIGHTS:
        return None
    src = generate_source(tuple(sizes), act, loss)
    key = hashlib.sha256(src.encode()).hexdigest()[:16]
    if key not in _GENERATED:
        folder = runtime.cache_dir() / "kernels"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"k_{key}.py"
        if not path.exists() or path.read_text() != src:
            runtime.write_text_atomic(path, src)
        name = f"actlab_kernel_{key}"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # numba's cache finds the module of a cached function by name
        spec.loader.exec_module(mod)
        _GENERATED[key] = mod
    return _GENERATED[key]

# --------------------------------------------------------------------------------------- the population


class FusedPopulation:
    """The kernel's copy of a population: parameters and optimizer state in blocks of R replicas.

    `load()` copies the torch parameters in (after init), `store()` copies them back (before an evaluation
    or probe on the torch side, and at the end); the optimizer state lives here only.
    """

    def __init__(self, model, cfg, task: str, n_classes: int):
        self.model, self.cfg = model, cfg
        self.layers = model.weight_layers()
        sizes = [self.layers[0].in_features, *[lay.out_features for lay in self.layers]]
        self.sizes = np.array(sizes, dtype=np.int64)
        self.m = model.m
        self.nblk = -(-self.m // R)
        woff, boff, off = [], [], 0
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            woff.append(off)
            off += a * b
            boff.append(off)
            off += b
        self.rows = off
        self.woff, self.boff = np.array(woff, dtype=np.int64), np.array(boff, dtype=np.int64)
        self.aoff = np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.int64)  # input, hidden..., output
        hidden = sizes[1:-1]
        self.doff = np.concatenate([[0], np.cumsum(hidden)]).astype(np.int64) if hidden else np.zeros(1, np.int64)
        self.loss = LOSSES[cfg.resolved_loss(task, False)]
        codes, params = np.zeros(self.nblk * R, np.int64), np.zeros(self.nblk * R, np.float32)
        for mc, start, stop in model.groups:
            act, p = mc.resolved_activation()
            codes[start:stop] = CODE[act.name]
            params[start:stop] = next(iter(p.values()), 0.0) if p else 0.0
        codes[self.m:], params[self.m:] = codes[self.m - 1], params[self.m - 1]  # padded lanes: the last group's
        self.lcodes, self.lparams = codes.reshape(self.nblk, R), params.reshape(self.nblk, R)
        uniform = (self.lcodes == self.lcodes[:, :1]).all(1) & (self.lparams == self.lparams[:, :1]).all(1)
        self.codes = np.where(uniform, self.lcodes[:, 0], -1).astype(np.int64)  # -1: lanes of several activations
        self.params = self.lparams[:, 0].copy()
        self.gen = self._generated_groups(task)
        self.P = np.zeros((self.nblk, self.rows, R), np.float32)
        self.S1, self.S2 = np.zeros_like(self.P), np.zeros_like(self.P)
        self.alive = np.zeros(self.nblk * R, np.float32)
        self.alive[: self.m] = 1.0
        seeds = list(model.seeds) + [model.seeds[0]] * (self.nblk * R - self.m)  # padded lanes copy replica 0
        self.seeds = seeds
        self.load()

    def _generated_groups(self, task: str):
        """[(generated module, its blocks, activation parameter)] for the blocks that can run a generated
        kernel (one activation per block, a binary task, a small network); the others run the generic one."""
        loss = {0: "bce", 2: "mse"}.get(self.loss)
        groups, rest = [], np.ones(self.nblk, bool)
        if loss is not None and task == "binary":
            for code, p in sorted({(int(c), float(q)) for c, q in zip(self.codes, self.params, strict=True) if c >= 0}):
                mod = generated(tuple(int(v) for v in self.sizes), ACTS[code], loss)
                if mod is None:
                    continue
                mine = (self.codes == code) & (self.params == np.float32(p))
                groups.append((mod, np.nonzero(mine)[0].astype(np.int64), np.float32(p)))
                rest &= ~mine
        self.generic_blocks = np.nonzero(rest)[0].astype(np.int64)
        return groups

    @property
    def path(self) -> str:
        """Which kernels train this population: "generated" (unrolled per shape), "generic" or "mixed"."""
        if not self.gen:
            return "generic"
        return "generated" if len(self.generic_blocks) == 0 else "mixed"

    def load(self) -> None:
        """Torch parameters into the blocks."""
        pad = self.nblk * R - self.m
        for lay, wo, bo in zip(self.layers, self.woff, self.boff, strict=True):
            w = lay.weight.detach().cpu().numpy().reshape(self.m, -1)
            b = lay.bias.detach().cpu().numpy().reshape(self.m, -1)
            if pad:
                w = np.concatenate([w, np.repeat(w[:1], pad, 0)])
                b = np.concatenate([b, np.repeat(b[:1], pad, 0)])
            self.P[:, wo: wo + w.shape[1]] = w.reshape(self.nblk, R, -1).transpose(0, 2, 1)
            self.P[:, bo: bo + b.shape[1]] = b.reshape(self.nblk, R, -1).transpose(0, 2, 1)

    def store(self) -> None:
        """The blocks' parameters back into the torch parameters."""
        with torch.no_grad():
            for lay, wo, bo in zip(self.layers, self.woff, self.boff, strict=True):
                nw, nb = lay.in_features * lay.out_features, lay.out_features
                w = self.P[:, wo: wo + nw].transpose(0, 2, 1).reshape(-1, nw)[: self.m]
                b = self.P[:, bo: bo + nb].transpose(0, 2, 1).reshape(-1, nb)[: self.m]
                lay.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)).view_as(lay.weight))
                lay.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)).view_as(lay.bias))

    def order(self, epoch: int, n: int) -> np.ndarray:
        """(blocks·R, n) int32: every lane's data order this epoch (rng.permutations' hash and stable sort)."""
        stream = rng.stream_id("order", epoch)
        keys = rng._seed_keys(self.seeds, stream, "cpu").numpy().astype(np.uint64)
        return _permutations(keys, n)

    def epoch(self, x: np.ndarray, y: np.ndarray, epoch: int, bs: int, lrs: np.ndarray, step0: int):
        """Train one epoch; returns per-replica (loss sum over examples, hits, bad) for the first m lanes."""
        n = len(x)
        order = np.zeros((0, n), np.int32) if bs >= n else self.order(epoch, n)
        c = self.cfg
        opt = {"sgd": 0, "adam": 1, "adamw": 2}[c.optimizer]
        lane = self.nblk * R
        loss, hits, bad = np.zeros(lane, np.float32), np.zeros(lane, np.float32), np.zeros(lane, np.bool_)
        f = np.float32
        yf = y.astype(np.float32)
        for mod, blocks, p in self.gen:
            mod.train(self.P, self.P.reshape(self.nblk, -1), self.S1, self.S2, x, yf, order, self.alive, blocks, p,
                      min(bs, n), lrs.astype(np.float64), opt, f(c.momentum), c.nesterov, float(c.weight_decay),
                      float(c.betas[0]), float(c.betas[1]), f(1e-8), step0, loss, hits, bad)
        if len(self.generic_blocks) == 0:
            return loss[: self.m], hits[: self.m], bad[: self.m]
        _train_epoch(self.P, self.S1, self.S2, x, y, order, self.alive, self.generic_blocks, self.sizes, self.woff,
                     self.boff, self.aoff, self.doff, self.codes, self.params, self.lcodes, self.lparams, self.loss,
                     min(bs, n),
                     lrs.astype(np.float64), opt, f(c.momentum), c.nesterov, float(c.weight_decay), float(c.betas[0]),
                     float(c.betas[1]), f(1e-8), step0, loss, hits, bad)
        return loss[: self.m], hits[: self.m], bad[: self.m]

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lane = self.nblk * R
        loss, acc = np.zeros(lane, np.float64), np.zeros(lane, np.float64)
        yf = y.astype(np.float32)
        for mod, blocks, p in self.gen:
            mod.evaluate(self.P.reshape(self.nblk, -1), x, yf, blocks, p, loss, acc)
        if len(self.generic_blocks) == 0:
            return loss[: self.m], acc[: self.m]
        _evaluate(self.P, x, y, self.generic_blocks, self.sizes, self.woff, self.boff, self.aoff, self.doff,
                  self.codes, self.params, self.lcodes, self.lparams, self.loss, loss, acc)
        return loss[: self.m], acc[: self.m]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(n, blocks·R) float32: the output (before the sigmoid) of every lane for inputs x (n, features), on
        the generated kernels (a population trained by the generic kernel has `path` != "generated")."""
        if self.path != "generated":
            raise ValueError("the kernel's forward pass needs generated kernels for every block")
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((len(x), self.nblk * R), np.float32)
        for mod, blocks, p in self.gen:
            mod.forward(self.P.reshape(self.nblk, -1), x, blocks, p, out)
        return out

    def kill(self, dead: np.ndarray) -> None:
        """Zero and freeze the lanes of `dead` replicas (m,) bool: parameters and optimizer state."""
        lanes = np.zeros(self.nblk * R, bool)
        lanes[: self.m] = dead
        b, r = np.nonzero(lanes.reshape(self.nblk, R))
        for arr in (self.P, self.S1, self.S2):
            arr[b, :, r] = 0.0
        self.alive[lanes] = 0.0
