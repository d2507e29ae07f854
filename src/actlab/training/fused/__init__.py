"""A fused CPU kernel for populations of small dense networks (numba), beside the torch path.

Why: on a population of small MLPs (moons' 2-8-8-1 at thousands of replicas) the torch path spends its time
in tiny batched GEMMs, a per-replica sort, gathers and element-wise passes over memory. This kernel trains a
block of R = 16 replicas at once with the replicas in the SIMD lanes (weights laid out [row, replica], one
AVX-512 vector per row): the forward, backward and optimizer step of one minibatch for the whole block,
its weights, gradients and optimizer state in L1/L2, before the next block; blocks run in parallel
(numba's prange), each block's arithmetic in a fixed order, so results are bitwise the same run to run
whatever the thread count.

The equivalence contract holds as on the torch path: replica m draws its initial weights (the population's,
copied in) and its data order (`rng.permutations(seed_m, ("order", epoch))`, the same hash, `rng.mix`) from
its seed alone; its loss is its own batch mean; optimizers are element-wise (torch's formulas: SGD with
momentum, Nesterov and L2; Adam; AdamW); a replica whose loss turns non-finite is zeroed and frozen at the
end of that epoch. Results equal the torch path's within float32 rounding (the order of sums and the libm
differ), checked by tests for every supported activation, optimizer and loss.

Scope (`unsupported` says why anything else falls back to torch, and the run records it): CPU; an MLP
population without normalisation, residuals, input transforms or an explicit output activation, every layer
with a bias; the element-wise activations that have a kernel form (`activations.FORMS`, keyed by catalog
name; `TORCH_ONLY` says why the others have none); losses BCE (binary), CE (multiclass) and MSE (binary or
multiclass); no AMP and no per-batch gradient statistics.

Modules, in order: `kernel` (math helpers, losses, the optimizer step, the data order, the generic kernel's
templates), `activations` (the forms, keyed by name), `codegen` (the generic and the generated kernels as
modules in the kernel cache), `population` (what the training loop calls).
"""

from actlab.training.fused.population import (
                                               FusedPopulation,
                                               available,
                                               slower,
                                               slower_population,
                                               surface_forward,
                                               unsupported,
)

__all__ = ["FusedPopulation", "available", "slower", "slower_population", "surface_forward", "unsupported"]
