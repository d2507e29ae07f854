"""The report's tables, from a stored run alone: results per cell, the classic depth rows, a simulation's
grouped rows, and the cells' timing. Every mean is shown with its 95 % CI and n."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from actlab.analysis.published import compare
from actlab.analysis.simulations import gradient_flow_table
from actlab.analysis.stats import mean_ci
from actlab.analysis.summary import group_sim_rows, prose_name
from actlab.store.results import Run, likelihood


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""  # what pruning left out, shown under the title


EMPTY = ("—", "", "nan", "None")


def pruned(t: Table) -> Table:
    """The table without columns in which every row is "—" (or empty) and without rows that are "—" in every
    column but the first; the note says what was left out (`actlab export` keeps everything)."""
    if not t.rows:
        return t
    keep = [j for j in range(len(t.header)) if j == 0 or any(r[j] not in EMPTY for r in t.rows)]
    cols = [t.header[j] for j in range(len(t.header)) if j not in keep]
    rows = [[r[j] for j in keep] for r in t.rows]
    full = [r for r in rows if len(r) == 1 or any(v not in EMPTY for v in r[1:])]
    parts = []
    if cols:
        parts.append(f"column{'s' if len(cols) > 1 else ''} {', '.join(cols)} left out: \"—\" in every row")
    if len(full) < len(rows):
        parts.append(f"{len(rows) - len(full)} row{'s' if len(rows) - len(full) > 1 else ''} of only \"—\" left out")
    note = "; ".join(parts) + (" (everything is in actlab export)" if parts else "")
    return Table(t.title, [t.header[j] for j in keep], full, note)



def _ci(values: list[float] | np.ndarray, spec: str = ".3f", method: str = "t",
        bounds: tuple[float, float] | None = None) -> str:
    return mean_ci(values, method=method, bounds=bounds).format(spec)


UNIT = (0.0, 1.0)  # accuracies: their intervals stay inside [0, 1]


def results_table(run: Run, ci: str = "t") -> Table:
    """Per cell: status, n, final and best test accuracy, final test loss (95 % CIs), diverged, wall time."""
    rows = []
    if run.generative:
        return _generative_table(run, ci)
    if run.regression:  # no accuracy: the test MSE (and the train MSE where the run evaluated it)
        train = any(np.isfinite(list(run.replicas(c, "final_train_loss").values())).any() for c in run.cells)
        for c in run.cells:
            mse = list(run.replicas(c, "final_test_loss").values())
            rows.append([c.label, c.status, str(len(mse)), _ci(mse, ".4g", ci, bounds=(0.0, math.inf)),
                         *([_ci(list(run.replicas(c, "final_train_loss").values()), ".4g", ci, bounds=(0.0, math.inf))]
                           if train else []),
                         str(run.diverged(c)), "—" if c.wall_s is None else f"{c.wall_s:.1f}"])
        return Table("Results per cell: mean [95 % CI] over seeds (n = replicas with a finite value)",
                     ["cell", "status", "seeds", "final test MSE", *(["final train MSE"] if train else []), "diverged",
                      "wall s"], rows)
    for c in run.cells:
        final = list(run.replicas(c, "final_test_acc").values())
        rows.append([c.label, c.status, str(len(final)), _ci(final, method=ci, bounds=UNIT),
                     _ci(list(run.replicas(c, "best_test_acc").values()), method=ci, bounds=UNIT),
                     _ci(list(run.replicas(c, "final_test_loss").values()), ".4g", ci), str(run.diverged(c)),
                     "—" if c.wall_s is None else f"{c.wall_s:.1f}"])
    return Table("Results per cell: mean [95 % CI] over seeds (n = replicas with a finite value)",
                 ["cell", "status", "seeds", "final test acc", "best test acc", "final test loss", "diverged",
                  "wall s"], rows)


def _generative_table(run: Run, ci: str) -> Table:
    """A VAE's test negative ELBO with its two terms; a GAN's modes covered and high-quality share."""
    rows = []
    gan = run.generative == "gan"
    for c in run.cells:
        n = len(run.replicas(c, "final_test_loss"))
        if gan:
            modes = len((c.data_provenance or {}).get("modes") or []) or math.inf
            vals = [_ci(list(run.replicas(c, "modes_covered").values()), ".3g", ci, bounds=(0.0, modes)),
                    _ci(list(run.replicas(c, "high_quality").values()), ".3f", ci, bounds=UNIT),
                    _ci(run.final(c, "batch_acc")[1], ".3f", ci, bounds=UNIT)]
        else:
            terms = run.artifact(c, "elbo_terms") if c.status == "done" else None
            t = terms["test"] if terms is not None else np.full((n, 2), np.nan)
            bern = likelihood(c) == "bernoulli"
            vals = [_ci(list(run.replicas(c, "final_test_loss").values()), ".4g", ci,
                        bounds=(0.0, math.inf) if bern else None),
                    _ci(t[:, 0], ".4g", ci, bounds=(0.0, math.inf) if bern else None),
                    _ci(t[:, 1], ".4g", ci, bounds=(0.0, math.inf))]
        rows.append([c.label, c.status, str(n), *vals, str(run.diverged(c)),
                     "—" if c.wall_s is None else f"{c.wall_s:.1f}"])
    header = (["modes covered", "high-quality share", "D accuracy (last epoch)"] if gan else
              ["test −ELBO (nats)", "reconstruction", "KL"])
    what = ("at the last epoch; a high-quality sample lies within 3σ of its nearest mode, a mode is covered when it "
            "is the nearest of at least one" if gan else "per test example; −ELBO = reconstruction + KL")
    return Table(f"Results per cell: mean [95 % CI] over seeds, {what}", ["cell", "status", "seeds", *header,
                                                                          "diverged", "wall s"], rows)


def depth_tables(run: Run, ci: str = "t") -> list[Table]:
    """The classic layout: depth rows; per series, final and best accuracy and the gradient mean (when recorded)."""
    if len(run.depths()) < 2:
        return []
    out = []
    for ctx in run.contexts():
        cells = {(c.depth, c.series): c for c in run.done if c.context == ctx}
        grad = any(np.isfinite(run.metric(c, "grad_mean")[1]).any() for c in cells.values())
        header = ["depth"]
        for s in run.series():
            header += [f"{s} final acc", f"{s} best acc"] + ([f"{s} grad mean"] if grad else [])
        rows = []
        for d in run.depths():
            line = [str(d)]
            for s in run.series():
                c = cells.get((d, s))
                if c is None:
                    line += ["—", "—"] + (["—"] if grad else [])
                    continue
                line += [_ci(list(run.replicas(c).values()), method=ci, bounds=UNIT),
                         _ci(list(run.replicas(c, "best_test_acc").values()), method=ci, bounds=UNIT)]
                if grad:
                    _, g = run.metric(c, "grad_mean")
                    line.append(_ci(np.nanmean(g, axis=1) if g.size else [], ".3g", ci))
            rows.append(line)
        title = ("By depth" + (f" ({ctx})" if ctx else "") + ": mean [95 % CI] over seeds"
                 + ("; grad mean = per batch, the mean over parameter tensors of each tensor's mean |∂L/∂θ|, "
                    "averaged over all epochs" if grad else "")
                 + "; best acc = the best test accuracy over epochs (selected on the test set, as the cnn-depth "
                   "source reports it: an optimistic number)")
        out.append(Table(title, header, rows))
    return out


def simulation_tables(run: Run) -> list[Table]:
    """Every simulation's rows grouped over seeds (means with CIs), and gradient flow's ratio table."""
    rows = run.sim_rows()
    grouped = group_sim_rows(rows)
    out = []
    if grouped:
        cols = list(dict.fromkeys(k for r in grouped for k in r))
        out.append(Table("Simulation results: mean [95 % CI] over seeds", [prose_name(c) for c in cols],
                         [[str(r.get(c, "")) for c in cols] for r in grouped]))
    if run.study["config"]["simulation"]["name"] == "gradient-flow" and rows:
        header, body = gradient_flow_table(rows)
        out.append(Table("Gradient ratio ‖first layer‖ / ‖last layer‖: geometric mean [95 % CI] over seeds",
                         header, body))
    return out


def cells_table(run: Run) -> Table:
    def when(t: float | None) -> str:
        return "—" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    rows = [[c.label, c.key, c.status, when(c.started), when(c.finished),
             "—" if c.wall_s is None else f"{c.wall_s:.2f}",
             (c.device or "—") + (f" (not the fused kernel: {c.engine_note})" if c.engine_note else ""), c.error or ""]
            for c in run.cells]
    return Table("Cells: wall time per cell (cells trained as one population share its time equally)",
                 ["cell", "key", "status", "started", "finished", "wall s", "device", "error"], rows)


def published_table(run: Run) -> Table | None:
    """The source's published numbers beside actlab's estimates, each with its verdict (store.published)."""
    rows = []
    for c in compare(run):
        rep = c.reproduced
        est = "—" if rep is None or rep.n == 0 else rep.format(c.spec)
        published = f"{c.published:.4g}{(' ' + c.unit) if c.unit else ''} ({'one run' if c.single_run else 'a mean'})"
        rows.append([c.quantity, published, est, c.verdict, c.detail, c.source])
    if not rows:
        source = run.study["config"].get("source", "")
        if run.kind == "suite":
            return None
        reason = (f"{source} states no number for this study: there is nothing to compare" if source else
                  "actlab's own study or variant: no source published its numbers")
        rows = [["—", "—", "—", "not comparable" if not source else "nothing published", reason, source or "—"]]
    return Table("Published beside reproduced: the source's numbers, actlab's mean [95 % CI] over seeds, and a verdict "
                 "(a single run: within the 95 % prediction interval of one more run from actlab's seeds; a mean: "
                 "within actlab's interval, widened for the published mean's own error)",
                 ["quantity", "published", "actlab", "verdict", "compared with", "source"], rows)
