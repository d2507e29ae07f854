"""Recurrent-net studies (kinds rnn, gru, lstm): what their numbers show, from the store.

- The **score** is the final test accuracy, or on a regression task (the adding problem) the final test MSE, or
  on a next-token task the validation loss (both lower is better).
- The **reference arm** of each group of cells (same context and depth) is its first cell in the study's grid
  order: the standard LSTM of lstm-slots, the tanh RNN of rnn-time. Every other arm is compared with it, paired
  over seeds (the same data order and the same draws of every tensor), with the exact sign-flip test; the
  study's p-values form one Holm family. "Detectably worse" means Holm-adjusted p < 0.05 on the worse side.
- **Solved** (the adding problem): a seed whose final test MSE is below a tenth of what guessing the mean scores
  (1/6, so 1/60): counted with its exact Clopper–Pearson interval; seeds that never got there (a diverged one
  included) are counted, not dropped. Each arm is compared with the reference on it too, paired (1 solved, 0 not:
  the exact sign-flip test on the seeds where exactly one solved it), in the same Holm family: the outcome no
  single exploding seed can swamp (a loss of 1e33 is finite and moves a mean anywhere; the median is given too).
- **Gradient through time** at initialisation (the first probe epoch): per seed the per-step gain
  (‖∂ℓ/∂h₁‖ / ‖∂ℓ/∂h_T‖)^(1/(T−1)) of the first layer, its geometric mean over seeds with a 95 % interval;
  beside it mean-field theory's prediction √χ₁ for a plain RNN whose weights are N(0, σ_w²/fan_in)
  (`weight_variance`) and whose recurrent matrix is drawn, not the identity: the step's input acts as a bias of
  variance σ_w²·E‖x‖²/F, from the adding problem's input distribution (`input_power`). Read only where the
  gradient reaches step 1 through the chain of steps alone: one direction, the head on the last state (a
  bidirectional net's backward states and an `all` readout hand every step the head's gradient directly).
- **Divergence** (a replica whose loss turned NaN or inf, or, where the task has a guessing baseline, whose final
  test MSE is over a million times guessing's: 1e33 is finite and no better an answer) is an outcome, not a
  gap: each cell says how many of its replicas diverged (exact interval) and, where an arm or its reference has
  any, the two are compared on it too, paired (1 diverged, 0 not: the exact sign-flip test on the seeds where
  exactly one diverged), in the same Holm family. The score comparisons use the seeds where both arms finished,
  so a better score of the survivors of an arm that diverges more often is survivorship, never a win alone.
- **Gates** at the last probe epoch: each gate slot's saturated fraction (|σ′| < 0.01) and, where a gate can
  close exactly (relu, hard_sigmoid), its dead fraction (units shut on every probe example and step).
"""

from __future__ import annotations

import math
import re

import numpy as np

from actlab.analysis.statements import Finding, Stats, Text, compare, finish
from actlab.analysis.stats import mean_ci, proportion_ci
from actlab.catalog.properties import properties
from actlab.catalog.theory import meanfield
from actlab.store.results import RECURRENT_KINDS, CellData, Run

SOLVED_SHARE = 0.1  # solved: a final test MSE below this share of guessing's
BLOWUP = 1e6  # diverged, too: a final test MSE this many times guessing's
GATES = ("input_gate", "forget_gate", "output_gate", "reset_gate", "update_gate")


def is_recurrent(run: Run) -> bool:
    return run.kind == "train" and any(c.model.get("kind") in RECURRENT_KINDS for c in run.cells)


def _task(c: CellData) -> str:
    return (c.data_provenance or {}).get("task", "")


def score(run: Run, c: CellData) -> dict[int, float]:
    """seed -> the cell's score (see the module docstring); NaN for a replica that diverged (`diverged`)."""
    raw = run.replicas(c, "final_test_loss" if _task(c) in ("regression", "next_token") else "final_test_acc")
    div = diverged(run, c)
    return {s: math.nan if div.get(s) else v for s, v in raw.items()}


def _groups(run: Run) -> list[list[CellData]]:
    out: dict[tuple, list[CellData]] = {}
    for c in sorted(run.done, key=lambda c: c.index):
        out.setdefault((c.context, c.depth), []).append(c)
    return list(out.values())


def solved(run: Run, c: CellData) -> dict[int, float]:
    """seed -> 1.0 if the replica's final test MSE is below SOLVED_SHARE of guessing's, else 0.0 (a diverged
    replica has not solved it: counted, not dropped)."""
    guess = (c.data_provenance or {}).get("guess_mse", 0.0)
    return {s: float(math.isfinite(v) and v < SOLVED_SHARE * guess) for s, v in score(run, c).items()}


def diverged(run: Run, c: CellData) -> dict[int, float]:
    """seed -> 1.0 if the replica diverged, else 0.0: a NaN or inf loss during training, or on a task with a
    guessing baseline a final test MSE over BLOWUP times guessing's (1e33 is finite, and no better an answer)."""
    out = {s: float(v > 0) for s, v in run.replicas(c, "diverged_epoch").items()}
    guess = (c.data_provenance or {}).get("guess_mse")
    if guess:
        for s, v in run.replicas(c, "final_test_loss").items():
            if math.isfinite(v) and v > BLOWUP * guess:
                out[s] = 1.0
    return out


def step_gains(run: Run, c: CellData, epoch: int) -> tuple[list[str], np.ndarray]:
    """(the first layer's step names, (seeds, steps) gradient norms ‖∂ℓ/∂h_t‖) at a probe epoch."""
    names, v = run.probe(c, "state_grad_norm", epoch)
    keep = [i for i, n in enumerate(names) if n.startswith("layer1.")]
    return [names[i] for i in keep], v[:, keep] if len(names) else v


def chain(c: CellData) -> bool:
    """Whether ∂ℓ/∂h₁ reaches step 1 only back through the steps (one direction, the head on the last state, not
    a language model's head at every step): then the gradient's decay is a gain per step."""
    m = c.model
    return not m.get("bidirectional") and m.get("readout", "last") == "last" and _task(c) != "next_token"


def predicted_gain(c: CellData, input_power: float | None) -> float | None:
    """Mean-field √χ₁ per step (module docstring), or None where theory gives none."""
    m = c.model
    if not chain(c) or m.get("kind") != "rnn" or m.get("weight_variance") is None \
            or m.get("recurrent_init", "default") != "default" or input_power is None or m.get("bias_std", 0) \
            or m.get("activation_params"):
        return None
    sw2 = float(m["weight_variance"])
    r = meanfield.propagation(m["activation"], sw2, sw2 * input_power)
    return r.backward_gain


def input_power(c: CellData) -> float | None:
    """E‖x_t‖²/F of one step's input for the adding problem (value U(0, 1): 1/3; marker: 2/T), else None."""
    prov = c.data_provenance or {}
    if "guess_mse" not in prov or "T" not in prov:
        return None
    return (1 / 3 + 2 / prov["T"]) / 2


def recurrent_findings(run: Run, st: Stats) -> list[Finding]:
    found: list[Finding] = []
    verdicts: list = []
    if not run.done:
        return [Finding("No cell has finished yet: there is nothing to report.")]
    # the guide's claim: (comparison, the unbounded-gate arm, task, "" or "divergence", lower is better)
    claims: list[tuple[Finding, str, str, str, bool]] = []
    for cells in _groups(run):
        ref = cells[0]
        task = _task(ref)
        lower = task in ("regression", "next_token")
        what = {"regression": "final test MSE", "next_token": "validation loss (nats per token)"}.get(
            task, "final test accuracy")
        bounds = (0.0, math.inf) if lower else (0.0, 1.0)
        where = ", ".join(p for p in (ref.context, f"{ref.depth} layer{'s' * (ref.depth != 1)}"
                                       if len(run.depths()) > 1 else "") if p)
        at = f" ({where})" if where else ""
        for c in cells:
            t = Text()
            est = st.mean(list(score(run, c).values()), bounds=bounds)
            t(f"{c.series}{at}: {what} ")
            if est.constant:
                t("{m} on all {n} seeds", m=(est.mean, ".4g"), n=(est.n, "d"))
            else:
                t("{m} (95 % CI [{lo}, {hi}], n = {n})", m=(est.mean, ".4g"), lo=(est.lo, ".4g"), hi=(est.hi, ".4g"),
                  n=(est.n, "d"))
            guess = (c.data_provenance or {}).get("guess_mse")
            if lower and est.n:  # a loss can blow up on one seed (1e33 is finite): the median says what is typical
                t(", median {med}", med=(float(np.nanmedian(list(score(run, c).values()))), ".4g"))
            if task == "regression" and guess:
                ok = solved(run, c)
                k = int(sum(ok.values()))
                pr = proportion_ci(k, len(ok))
                t("; solved (MSE below {thr}, a tenth of guessing's {g}) on {k} of {n} seeds (95 % CI [{lo}, {hi}])",
                  thr=(SOLVED_SHARE * guess, ".3g"), g=(guess, ".3g"), k=(k, "d"), n=(len(ok), "d"),
                  lo=(pr.lo, ".2f"), hi=(pr.hi, ".2f"))
            div = diverged(run, c)
            if any(div.values()):
                k = int(sum(div.values()))
                pr = proportion_ci(k, len(div))
                t("; {k} of {n} replicas diverged (a NaN or inf loss" + (
                    ", or a final test MSE over a million times guessing's" if guess else "")
                  + "; 95 % CI [{lo}, {hi}]), left out of the score above and compared apart", k=(k, "d"),
                  n=(len(div), "d"), lo=(pr.lo, ".2f"), hi=(pr.hi, ".2f"))
            found.append(t(".").finding())
        for c in cells[1:]:
            compare(found, verdicts, st, f"{what[0].upper()}{what[1:]}{at}", c.series, ref.series, score(run, c),
                    score(run, ref), "has the lower " + what.split(" (")[0] if lower else "is more accurate",
                    spec=".4g", lower_better=lower)
            if _unbounded_gate(ref, c):
                claims.append((found[-1], c.series, where or "all cells", "", lower))
            if task == "regression" and (ref.data_provenance or {}).get("guess_mse"):  # the unambiguous outcome
                compare(found, verdicts, st, f"Solved (1) or not (0){at}", c.series, ref.series, solved(run, c),
                        solved(run, ref), "solves it more often", spec=".2f", bounds=(-1.0, 1.0))
                if _unbounded_gate(ref, c):
                    claims.append((found[-1], c.series, where or "all cells", "solved", False))
            da, db = diverged(run, c), diverged(run, ref)
            if any(da.values()) or any(db.values()):  # divergence is an outcome too: an exact paired sign test
                compare(found, verdicts, st, f"Diverged (1) or not (0){at}", c.series, ref.series, da, db,
                        "diverges less often", spec=".2f", lower_better=True, bounds=(-1.0, 1.0))
                if _unbounded_gate(ref, c):
                    claims.append((found[-1], c.series, where or "all cells", "divergence", True))
    found += _time_gradients(run, st)
    found += _gates(run, st)
    failed = [c for c in run.cells if c.status != "done"]
    if failed:
        found.append(Finding(f"{len(failed)} cell(s) did not finish ({', '.join(sorted({c.status for c in failed}))});"
                             " they are left out of every number here.", [("unfinished", len(failed), "d")]))
    out = finish(found, verdicts)
    return out + [_guide_verdict(claims)] if claims else out


def _unbounded_gate(ref: CellData, c: CellData) -> bool:
    """Whether `c` is `ref`'s LSTM with only its gate activation changed, to one whose measured range is
    unbounded (relu), where `ref`'s gate is bounded."""
    a, b = ref.model, c.model
    if a.get("kind") != "lstm" or b.get("kind") != "lstm" or a.get("gate_activation") == b.get("gate_activation"):
        return False
    if any(a.get(k) != b.get(k) for k in ("activation", "cell_activation", "recurrent_init", "forget_bias")):
        return False

    def bounded(name: str | None) -> bool:
        r = properties(name or "sigmoid", cost=False).range
        return math.isfinite(r.low) and math.isfinite(r.high)

    return bounded(a.get("gate_activation")) and not bounded(b.get("gate_activation"))


def _guide_verdict(claims: list[tuple[Finding, str, str, str, bool]]) -> Finding:
    """The guide's "LSTM gates require bounded activations" (seed 003's RNN/LSTM row) against the paired
    comparisons of an unbounded gate with the standard LSTM, after Holm: supported where the unbounded gate is
    detectably worse on every task (in its score or in how often it diverges), contradicted where it is
    detectably better on one, else not shown."""
    t = Text()
    t("The guide's claim \"LSTM gates require bounded activations\" (seed 003, RNN/LSTM row), tested as an "
      "unbounded gate against the standard LSTM: ")
    sides: dict[str, dict[str, str]] = {}  # task -> outcome -> "worse" / "better"
    for i, (f, arm, task, outcome, lower) in enumerate(claims):
        p = next((v for k, v, _ in f.numbers if k == "p_holm"), math.nan)
        d = f.paired.diff.mean if f.paired is not None else math.nan
        side = None if not p < 0.05 else "worse" if (d > 0) == lower else "better"
        if side is not None:
            sides.setdefault(task, {})[outcome or "score"] = side
        verdict = f"detectably {side}" if side else "not separated"
        t(("; " if i else "") + f"{arm} {verdict} ({task}" + (f", {outcome}" if outcome else "")
          + f", Holm-adjusted p = {{p{i}}})", **{f"p{i}": (p, ".2g")})
    tasks = list(dict.fromkeys(task for _, _, task, _, _ in claims))
    per_task = {}
    for task in tasks:
        got = sides.get(task, {})
        if got.get("score") == "better" and got.get("divergence") == "worse":  # the survivors of many failures
            got = {k: v for k, v in got.items() if k != "score"} | {"survivors": "mixed"}
        kinds = set(got.values())
        per_task[task] = ("mixed" if "mixed" in kinds or kinds == {"worse", "better"} else
                          "worse" if kinds == {"worse"} else "better" if kinds == {"better"} else "none")
    worse = [k for k, v in per_task.items() if v == "worse"]
    better = [k for k, v in per_task.items() if v == "better"]
    mixed = [k for k, v in per_task.items() if v == "mixed"]
    if better and not worse and not mixed:
        t(". Contradicted at these settings: the unbounded gate does better on " + ", ".join(better) + ".")
    elif len(worse) == len(tasks):
        t(". Supported at these settings: the unbounded gate is worse on every task tested.")
    else:
        t(". Not supported as a requirement at these settings: the unbounded gate is detectably worse on "
          + (", ".join(worse) if worse else "no task")
          + (f", better on {', '.join(better)}" if better else "")
          + (f", mixed on {', '.join(mixed)} (worse in one outcome, better in another)" if mixed else "") + ".")
    return t.finding()


def _time_gradients(run: Run, st: Stats) -> list[Finding]:
    out = []
    for c in run.done:
        epochs = run.probe_epochs(c)
        if not epochs or not chain(c):
            continue
        names, v = step_gains(run, c, epochs[0])
        if v.shape[1] < 2:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            per_seed = np.log10(v[:, 0] / v[:, -1]) / (v.shape[1] - 1)
        est = mean_ci(per_seed)
        if not est.n:
            continue
        t = Text()
        t(f"{c.series}" + (f" ({c.context})" if c.context else "") + ": at epoch {e} the gradient reaching step 1 "
          "is {r} times the one at step {T} (geometric mean over {n} seeds): a gain per step of {g} (95 % CI "
          "[{lo}, {hi}])", e=(epochs[0], "d"), r=(10 ** (est.mean * (v.shape[1] - 1)), ".3g"),
          T=(v.shape[1], "d"), n=(est.n, "d"), g=(10 ** est.mean, ".3f"), lo=(10 ** est.lo, ".3f"),
          hi=(10 ** est.hi, ".3f"))
        pred = predicted_gain(c, input_power(c)) if epochs[0] == 0 else None
        if pred is not None:
            inside = 10 ** est.lo <= pred <= 10 ** est.hi
            t("; mean-field theory predicts √χ₁ = {p} per step (" + ("inside" if inside else "outside")
              + " the interval)", p=(pred, ".3f"))
        out.append(t(".").finding())
    return out


def _gates(run: Run, st: Stats) -> list[Finding]:
    out = []
    for c in run.done:
        epochs = run.probe_epochs(c)
        if not epochs:
            continue
        names, sat = run.probe(c, "saturated_fraction", epochs[-1])
        _, dead = run.probe(c, "dead_fraction", epochs[-1])
        gates = [(i, n) for i, n in enumerate(names) if n.split(".")[-1] in GATES and n.startswith("layer1")]
        if not gates:
            continue
        n = int(np.isfinite(sat[:, gates[0][0]]).sum())
        t = Text()
        t(f"{c.series}" + (f" ({c.context})" if c.context else "") + ": saturated fraction of each gate of layer 1 "
          "at epoch {e} (|φ′| < 0.01, a ReLU gate's shut units included; mean [95 % CI] over the {n} seeds that "
          "did not diverge): ", e=(epochs[-1], "d"), n=(n, "d"))
        for j, (i, n) in enumerate(gates):
            s = st.mean(list(sat[:, i]), bounds=(0.0, 1.0))
            d = float(np.nanmean(dead[:, i])) if dead.size else 0.0
            key = n.split(".")[-1]
            t(("; " if j else "") + f"{key.replace('_', ' ')} {{{key}}} [{{{key}_lo}}, {{{key}_hi}}]",
              **{key: (s.mean, ".2f"), f"{key}_lo": (s.lo, ".2f"), f"{key}_hi": (s.hi, ".2f")})
            if d > 0:
                t(f" (dead units {{{key}_dead}})", **{f"{key}_dead": (d, ".2f")})
        out.append(t(".").finding())
    return out


_STEP = re.compile(r"\.step(\d+)$")


def step_index(name: str) -> int:
    """'layer1.step12' -> 12."""
    m = _STEP.search(name)
    return int(m.group(1)) if m else 0
