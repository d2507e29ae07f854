"""The fused kernel's activation-independent parts: float32 math helpers, the losses, the optimizer step, the
seeds' data order, and the generic kernel's templates.

The generic kernel (`_forward`, `_train_epoch`, `_evaluate` below) is written here as plain Python, not
compiled: it calls `_act_row`, the per-row activation dispatch, which depends on the table of kernel forms
(`activations.FORMS`). `codegen.generic_module` writes these functions' source beside a dispatch generated
from the table into one module, named by a hash of all its inputs, and numba compiles and caches that module;
a table that changes (an activation registered) is a new module, never a stale cached one.
"""

from __future__ import annotations

import math

import numpy as np

from actlab import rng

try:  # numba is a dependency; without it (an odd install) everything runs on the torch path
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

    def njit(*args, **kwargs):
        """Without numba: the function itself (nothing here is then called)."""
        return args[0] if args and callable(args[0]) else (lambda f: f)

    prange = range

R = 16  # replicas per block: one AVX-512 vector of float32 (two AVX2 vectors)
LOSSES = {"bce": 0, "ce": 1, "mse": 2}
SELU_SCALE, SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
one32, zero32 = np.float32(1.0), np.float32(0.0)
_POW2 = np.array([2.0 ** k for k in range(-127, 128)], dtype=np.float32)  # 2^n for n in [-127, 127]

_mix = njit(inline="always")(rng.mix)  # the counter-based streams' hash, the same function as on the torch side


@njit
def _sig(z):
    return np.float32(1.0) / (np.float32(1.0) + math.exp(-z))


# Branch-free math for generated kernels: they run one lane per loop iteration with straight-line code, so LLVM
# vectorises the lane loop; that needs every operation branch-free and without libm calls: exp and log1p are
# written here (Cody–Waite reduction and a degree-6 polynomial, 2^n from a table; log1p through atanh's
# series), accurate to a few float32 ulps.
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


# A template too (compiled by codegen.data_order, @njit(parallel=True, cache=True)): it inlines `rng.mix` from
# another file, whose edits numba's own cache would not notice; the generated module's name hashes rng's source.
def _permutations(keys, n):
    """(M, n) int32: rng.permutations of range(n) for seed keys (M,) in [0, 2^32) (stable argsort of the hash).

    A bucket sort: the hashes are uniform, so scattering them (stably) into 2^b ≥ n buckets by their top b
    bits leaves about one per bucket, and an insertion sort of each bucket (strict comparison: equal hashes
    keep index order) finishes the stable sort in about 3n steps, against 4 passes for a radix sort. The
    buckets stop at 2^24: past 16.7 M points each holds n/2^24 on average (still exact, only slower)."""
    m = keys.shape[0]
    out = np.empty((m, n), dtype=np.int32)
    idx = (np.arange(n).astype(np.int64) * 0x9E3779B9) & 0xFFFFFFFF
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
            k = np.uint32(_mix(np.int64(keys[i]) ^ idx[j]))
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


# ------------------------------------------------------------ the generic kernel (templates for codegen)
# Compiled by codegen.generic_module with these decorators: _forward @njit(cache=True) (a call, not inlined:
# the activations' row loops are then compiled once, not once in training and again in evaluation),
# _train_epoch and _evaluate @njit(parallel=True, cache=True).


def _forward(P, A, D, sizes, woff, boff, aoff, doff, code, p, lcodes, lparams):
    """Forward of one example per lane: A holds the input at aoff[0]; hidden outputs and φ′ go to A and D,
    the output logits to A at aoff[L]. `code` is the block's activation, or -1 for lane codes.

    A call, not inlined: the activations' row loops are then compiled once, not once in training and again in
    evaluation, which shortens the generic kernel's first compile at the same speed
    (benchmarks/RESULTS.md)."""
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
                _act_row(code, p, lcodes, lparams, A, D, ao + u, do + u)  # noqa: F821 - the generated module defines it


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
