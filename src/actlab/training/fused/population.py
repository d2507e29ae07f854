"""A population on the fused CPU kernel: when the kernel can train it (`unsupported`), when engine "auto" lets
it (`slower`, `slower_population`), and the kernel's copy of its parameters and optimizer state
(`FusedPopulation`), which hands each block of R replicas to a generated kernel where one covers it and to
the generic kernel otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from actlab import rng
from actlab.catalog.activations import registered
from actlab.nn.models import PopMLP
from actlab.training.fused import codegen
from actlab.training.fused.activations import FORMS, TORCH_ONLY
from actlab.training.fused.kernel import LOSSES, R, numba


def available() -> bool:
    return numba is not None


# engine "auto" uses the kernel where benchmarks/RESULTS.md measured it faster than torch (the figures are
# there): networks at most 16 units wide, and either every block on a generated kernel or at most 512
# replicas on the generic kernel (wider networks, and the generic kernel at thousands of replicas, were slower)
AUTO_MAX_REPLICAS, AUTO_MAX_WIDTH = 512, 16
# replicas × epochs × training examples below which auto leaves a population to torch: there torch is done
# before a kernel met for the first time would have compiled (compile times: benchmarks/RESULTS.md).
# A function of the configuration only, never of what is cached: the same config gets the same engine.
AUTO_MIN_WORK = 10**8


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
        if act.name in FORMS and not registered(act):  # the forms are those of the catalog's entry of that name
            return (f"activation {act.name} is not the catalog's entry of that name (another function under the "
                    "same name: the kernel's forms compute the catalog's)")
        if act.name not in FORMS:
            why = TORCH_ONLY.get(act.name, "no kernel form in actlab.training.fused.activations")
            return f"activation {act.name} (not in the kernel's table: {why})"
    loss = cfg.resolved_loss(ds.task, False)
    if loss not in LOSSES or ds.task == "regression":
        return f"loss {loss} on a {ds.task} task"
    if cfg.amp or cfg.grad_stats:
        return "AMP or per-batch gradient statistics"
    if cfg.grad_clip is not None or cfg.epoch_examples is not None:
        return "gradient clipping or sampled epochs (epoch_examples)"
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




def surface_forward(model, cfg, task: str, n_classes: int):
    """For a population the kernel trained on generated kernels: a function points (P, features) tensor ->
    outputs (M, P) tensor computed by the kernel's forward pass (the decision surface's grid, far faster than
    torch on these tiny networks: benchmarks/RESULTS.md); None where the generated kernels do not cover the
    population."""
    fp = FusedPopulation(model, cfg, task, n_classes)
    if fp.path != "generated":
        return None
    return lambda pts: torch.from_numpy(fp.forward(pts.detach().cpu().numpy())[:, : fp.m].T)


class FusedPopulation:
    """The kernel's copy of a population: parameters and optimizer state in blocks of R replicas.

    `load()` copies the torch parameters in (after init), `store()` copies them back (before an evaluation
    or probe on the torch side, and at the end); the optimizer state lives here only.
    """

    def __init__(self, model, cfg, task: str, n_classes: int, note: Callable[[str], None] | None = None):
        self.model, self.cfg, self.note = model, cfg, note  # note: told before a kernel compiles for the first time
        self._generic = self._order = None
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
        self.names = tuple(FORMS)  # code i is the kernel form names[i]
        for mc, start, stop in model.groups:
            act, p = mc.resolved_activation()
            codes[start:stop] = self.names.index(act.name)
            params[start:stop] = p.get(FORMS[act.name].param, 0.0) if FORMS[act.name].param else 0.0
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
                mod = codegen.generated(tuple(int(v) for v in self.sizes), self.names[code], loss, self.note)
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
        keys = rng._seed_keys(self.seeds, stream, "cpu").numpy()
        if self._order is None:  # looked up once: building a kernel's source to find its module costs milliseconds
            self._order = codegen.data_order()
        return self._order._permutations(keys, n)

    def generic(self):
        """The generic kernel of this population's table of forms (loaded once per population, not per epoch)."""
        if self._generic is None:
            self._generic = codegen.generic(self.names, self.note)
        return self._generic

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
        generic = self.generic()
        generic._train_epoch(self.P, self.S1, self.S2, x, y, order, self.alive, self.generic_blocks, self.sizes,
                             self.woff, self.boff, self.aoff, self.doff, self.codes, self.params, self.lcodes,
                             self.lparams, self.loss, min(bs, n), lrs.astype(np.float64), opt, f(c.momentum),
                             c.nesterov, float(c.weight_decay), float(c.betas[0]), float(c.betas[1]), f(1e-8), step0,
                             loss, hits, bad)
        return loss[: self.m], hits[: self.m], bad[: self.m]

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lane = self.nblk * R
        loss, acc = np.zeros(lane, np.float64), np.zeros(lane, np.float64)
        yf = y.astype(np.float32)
        for mod, blocks, p in self.gen:
            mod.evaluate(self.P.reshape(self.nblk, -1), x, yf, blocks, p, loss, acc)
        if len(self.generic_blocks) == 0:
            return loss[: self.m], acc[: self.m]
        generic = self.generic()
        generic._evaluate(self.P, x, y, self.generic_blocks, self.sizes, self.woff, self.boff, self.aoff, self.doff,
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
