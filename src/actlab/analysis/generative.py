"""Generative studies (kinds vae and gan): what their numbers show, from the store.

- Cells are grouped by context and depth; each group's **reference arm** is its first cell in the study's grid
  order, and every other arm is compared with it, paired over seeds (the same data order, the same noise and
  the same draws of every shared tensor), with the exact sign-flip test; the study's p-values are one Holm family.
- **GAN** (`actlab.training.adversarial`): per seed, at the last epoch, the **modes covered** (modes nearest to at
  least a tenth of the high-quality samples a perfect generator puts there, of 2,500: one sample, Srivastava et al.
  2017's rule, is met by uniform noise) and the **high-quality share** (samples within 3σ of their nearest mode),
  beside what uniform noise over [−1, 1]² scores (`adversarial.chance`); **every mode covered** as a proportion of seeds
  with its exact interval (a collapsed seed is counted, not dropped); and the discriminator's dead fraction (units
  at exactly zero derivative on every probed real point) at the last probe epoch. Arms are compared on modes
  covered and on the high-quality share.
- **VAE** (`actlab.nn.generative`): the test negative ELBO in nats per example with its two terms (reconstruction,
  KL) and, for gradient flow, the norm of the gradient of the negative ELBO with respect to each encoder layer's
  weights at the first and the last probe epoch (geometric mean over seeds, 95 % interval). Arms are compared on
  the −ELBO (lower is better) and on log10 of the first encoder layer's gradient norm at the last probe epoch.
- A replica that diverged (NaN or inf loss) is counted in each cell's sentence and compared apart (paired 0/1),
  never hidden; the scores use the replicas that finished.
"""

from __future__ import annotations

import math

import numpy as np

from actlab.analysis.recurrent import diverged
from actlab.analysis.statements import Finding, Stats, Text, compare, finish
from actlab.analysis.stats import proportion_ci
from actlab.store.results import CellData, Run, likelihood
from actlab.training.adversarial import chance


def is_generative(run: Run) -> bool:
    return run.generative is not None


def _groups(run: Run) -> list[list[CellData]]:
    out: dict[tuple, list[CellData]] = {}
    for c in sorted(run.done, key=lambda c: c.index):
        out.setdefault((c.context, c.depth), []).append(c)
    return list(out.values())


def _alive(run: Run, c: CellData, column: str) -> dict[int, float]:
    div = diverged(run, c)
    return {s: math.nan if div.get(s) else v for s, v in run.replicas(c, column).items()}


def n_modes(c: CellData) -> int:
    return len((c.data_provenance or {}).get("modes") or [])


def encoder_grads(run: Run, c: CellData, epoch: int) -> tuple[list[str], np.ndarray]:
    """(encoder layer names, (seeds, layers) weight-gradient norms) at a probe epoch."""
    names, v = run.probe(c, "grad_norm", epoch)
    keep = [i for i, n in enumerate(names) if n.startswith("encoder")]
    return [names[i] for i in keep], (v[:, keep] if len(names) else v)


def _log_grad(run: Run, c: CellData, epoch: int) -> dict[int, float]:
    seeds = sorted(run.replicas(c, "final_test_loss"))
    _, g = encoder_grads(run, c, epoch)
    div = diverged(run, c)
    if not g.size:
        return {}
    with np.errstate(divide="ignore", invalid="ignore"):
        return {s: math.nan if div.get(s) or not g[i, 0] > 0 else math.log10(g[i, 0]) for i, s in enumerate(seeds)}


def generative_findings(run: Run, st: Stats) -> list[Finding]:
    if not run.done:
        return [Finding("No cell has finished yet: there is nothing to report.")]
    found: list[Finding] = []
    verdicts: list = []
    gan = run.generative == "gan"
    for cells in _groups(run):
        ref = cells[0]
        where = ", ".join(p for p in (ref.context, f"depth {ref.depth}" if len(run.depths()) > 1 else "") if p)
        at = f" ({where})" if where else ""
        for c in cells:
            found.append((_gan_cell if gan else _vae_cell)(run, st, c, at))
        for c in cells[1:]:
            if gan:
                k = n_modes(ref)
                compare(found, verdicts, st, f"Modes covered{at}", c.series, ref.series,
                        _alive(run, c, "modes_covered"), _alive(run, ref, "modes_covered"), "covers more modes",
                        spec=".3g", bounds=(-k, k))
                compare(found, verdicts, st, f"High-quality share{at}", c.series, ref.series,
                        _alive(run, c, "high_quality"), _alive(run, ref, "high_quality"),
                        "puts more samples on the modes", spec=".3f", bounds=(-1.0, 1.0))
            else:
                compare(found, verdicts, st, f"Test negative ELBO (nats){at}", c.series, ref.series,
                        _alive(run, c, "final_test_loss"), _alive(run, ref, "final_test_loss"),
                        "has the better ELBO", spec=".4g", lower_better=True)
                epochs = run.probe_epochs(c)
                if epochs:
                    compare(found, verdicts, st, f"log10 of the first encoder layer's gradient norm at epoch "
                            f"{epochs[-1]}{at}", c.series, ref.series, _log_grad(run, c, epochs[-1]),
                            _log_grad(run, ref, epochs[-1]), "passes the larger gradient to the encoder", spec=".3f")
            da, db = diverged(run, c), diverged(run, ref)
            if any(da.values()) or any(db.values()):
                compare(found, verdicts, st, f"Diverged (1) or not (0){at}", c.series, ref.series, da, db,
                        "diverges less often", spec=".2f", lower_better=True, bounds=(-1.0, 1.0))
    failed = [c for c in run.cells if c.status != "done"]
    if failed:
        found.append(Finding(f"{len(failed)} cell(s) did not finish ({', '.join(sorted({c.status for c in failed}))});"
                             " they are left out of every number here.", [("unfinished", len(failed), "d")]))
    return finish(found, verdicts)


def _estimate(t: Text, est, spec: str, name: str) -> None:
    if est.constant:
        t(f"{{{name}}} on all {{{name}_n}} seeds", **{name: (est.mean, spec), f"{name}_n": (est.n, "d")})
    else:
        t(f"{{{name}}} (95 % CI [{{{name}_lo}}, {{{name}_hi}}], n = {{{name}_n}})",
          **{name: (est.mean, spec), f"{name}_lo": (est.lo, spec), f"{name}_hi": (est.hi, spec),
             f"{name}_n": (est.n, "d")})


def _diverged_clause(t: Text, run: Run, c: CellData) -> None:
    div = diverged(run, c)
    if any(div.values()):
        k = int(sum(div.values()))
        pr = proportion_ci(k, len(div))
        t("; {dk} of {dn} replicas diverged (a NaN or inf loss; 95 % CI [{dlo}, {dhi}]), left out of the numbers "
          "above and compared apart", dk=(k, "d"), dn=(len(div), "d"), dlo=(pr.lo, ".2f"), dhi=(pr.hi, ".2f"))


def _gan_cell(run: Run, st: Stats, c: CellData, at: str) -> Finding:
    k = n_modes(c)
    t = Text()
    modes = _alive(run, c, "modes_covered")
    t(f"{c.series}{at}: modes covered at the last epoch ")
    _estimate(t, st.mean(list(modes.values()), bounds=(0.0, k)), ".3g", "modes")
    t(" of {k}", k=(k, "d"))
    if (c.data_provenance or {}).get("modes"):
        floor_modes, floor_hq = chance(c.data_provenance)
        t(" (uniform noise over [−1, 1]² scores {cm} modes and a high-quality share of {ch})", cm=(floor_modes, ".3g"),
          ch=(floor_hq, ".3f"))
    t("; high-quality share ")
    _estimate(t, st.mean(list(_alive(run, c, "high_quality").values()), bounds=(0.0, 1.0)), ".3f", "hq")
    every = [v for v in modes.values() if math.isfinite(v)]
    if every:
        all_k = sum(v >= k for v in every)
        pr = proportion_ci(all_k, len(modes))
        t("; every mode covered on {ak} of {an} seeds (95 % CI [{alo}, {ahi}])", ak=(all_k, "d"),
          an=(len(modes), "d"), alo=(pr.lo, ".2f"), ahi=(pr.hi, ".2f"))
    epochs = [e for e in run.probe_epochs(c) if run.probe(c, "dead_fraction", e)[0]]
    if epochs:
        names, dead = run.probe(c, "dead_fraction", epochs[-1])
        d_cols = [i for i, n in enumerate(names) if n.startswith("discriminator")]
        if d_cols:
            est = st.mean(np.nanmean(dead[:, d_cols], axis=1), bounds=(0.0, 1.0))
            t("; the discriminator's dead units at epoch {de}: ", de=(epochs[-1], "d"))
            _estimate(t, est, ".3f", "dead")
    _diverged_clause(t, run, c)
    return t(".").finding()


def _vae_cell(run: Run, st: Stats, c: CellData, at: str) -> Finding:
    t = Text()
    bern = likelihood(c) == "bernoulli"
    t(f"{c.series}{at}: test negative ELBO ")
    _estimate(t, st.mean(list(_alive(run, c, "final_test_loss").values()), bounds=(0.0, math.inf) if bern else None),
              ".4g", "elbo")
    t(" nats per example")
    terms = run.artifact(c, "elbo_terms")
    if terms is not None:
        keep = np.array([not v for v in diverged(run, c).values()])
        tt = terms["test"][keep] if len(keep) == len(terms["test"]) else terms["test"]
        t(" = reconstruction {rec} + KL {kl}", rec=(float(np.mean(tt[:, 0])), ".4g"),
          kl=(float(np.mean(tt[:, 1])), ".4g"))
    epochs = run.probe_epochs(c)
    for e in (epochs[:1] + epochs[-1:]) if len(epochs) > 1 else epochs:
        names, g = encoder_grads(run, c, e)
        if not names:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log10(np.where(g > 0, g, np.nan))
        parts = []
        for j, n in enumerate(names):
            est = st.mean(logs[:, j])
            parts.append((n, est))
        t(f"; encoder weight-gradient norms at epoch {e} (geometric mean over seeds): ")
        for j, (n, est) in enumerate(parts):
            t(("" if not j else ", ") + f"{n} {{g{e}_{j}}} [{{g{e}_{j}lo}}, {{g{e}_{j}hi}}]",
              **{f"g{e}_{j}": (10 ** est.mean, ".3g"), f"g{e}_{j}lo": (10 ** est.lo, ".3g"),
                 f"g{e}_{j}hi": (10 ** est.hi, ".3g")})
    _diverged_clause(t, run, c)
    return t(".").finding()
