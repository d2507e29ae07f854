"""The classic simulations' analysis, one section per simulation: what theory predicts for its rows, how its
rows compare with the source's own numbers, its table's data and its findings. Changing a simulation means
changing its function in `actlab.studies.simulations`, its study file, and its section here (its figure, in
`actlab.report.figures.simulations`, only draws).

Names of activations come back from the store as text and are looked up here, where they are read.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from actlab.analysis.statements import Finding, Stats, Text, compare
from actlab.analysis.stats import Estimate, ratio_of_means, time_to_event
from actlab.analysis.summary import group, group_rows, log_ratio, values, vanished
from actlab.catalog import activations
from actlab.catalog.theory import meanfield
from actlab.errors import ActlabError
from actlab.nn import init as inits

Rows = list[dict[str, Any]]


def _by_seed(rows: list[dict], key: str, fn=lambda v: v) -> dict[int, float]:
    return {r["seed"]: (np.nan if r.get(key) is None else fn(float(r[key]))) for r in rows}


# ----------------------------------------------------------------------------------------- gradient-flow

def source_ratios(rows: list[dict[str, Any]]) -> dict[int, Estimate]:
    """Seed 003's gradient-flow table: per depth, mean‖g‖ of the first (activation, init) pair over the
    second's, from the "source toy" rows, with a paired bootstrap interval over seeds."""
    toy = [r for r in rows if r.get("method") == "source toy"]
    pairs = list(dict.fromkeys((r["activation"], r["init"]) for r in toy))
    if len(pairs) < 2:
        return {}
    out = {}
    for (depth,), rs in group_rows(toy, ("depth",)).items():
        a, b = ({r["seed"]: r["grad_norm"] for r in rs if (r["activation"], r["init"]) == pr} for pr in pairs[:2])
        out[depth] = ratio_of_means(a, b)
    return out



def toy_gradient(rows: list[dict]) -> dict[int, tuple[float, Estimate]]:
    """Seed 003's gradient-flow toy, per depth L: (theory, measured) for the ratio of root-mean-square norms
    of the first pair's g over the second's. Each toy layer multiplies E‖g‖² by χ = σ_w² E[φ′(z)²] (z ~ N(0, 1),
    σ_w² = gain², W independent of g), so theory's ratio is (χ_a / χ_b)^(L/2); the measured one is
    √(mean‖g_a‖² / mean‖g_b‖²) with its paired bootstrap interval. (The source's table is the ratio of mean
    norms, which theory does not give: E‖g‖ falls below √E‖g‖² as depth multiplies the fluctuations.)"""
    toy = [r for r in rows if r.get("method") == "source toy"]
    pairs = list(dict.fromkeys((r["activation"], r["init"]) for r in toy))
    if len(pairs) < 2:
        return {}
    chi = []
    for act, scheme in pairs[:2]:
        k = meanfield.Kernel(activations.get(act), {})
        chi.append(inits.scheme_gain(scheme, activations.get(act)) ** 2 * k.slope_moment(1.0).value)
    out = {}
    for depth in sorted({r["depth"] for r in toy}):
        a, b = ({r["seed"]: r["grad_norm"] ** 2 for r in toy
                 if r["depth"] == depth and (r["activation"], r["init"]) == pr}
                for pr in pairs[:2])
        e = ratio_of_means(a, b)
        measured = Estimate(math.sqrt(e.mean), math.sqrt(max(e.lo, 0.0)), math.sqrt(max(e.hi, 0.0)), e.n, e.method)
        out[depth] = ((chi[0] / chi[1]) ** (depth / 2), measured)
    return out


def real_gradient(rows: list[dict]) -> dict[tuple[str, str], dict[int, float]]:
    """gradient-flow's real backprop predicted: per (activation, init) and depth, log10 of theory's
    ‖∂L/∂W₁‖ / ‖∂L/∂W_L‖ (`meanfield.weight_gradient_ratio`: N(0, 1) inputs uncorrelated across the batch,
    weights of variance gain²/fan_in, a random readout; widths cancel, the row's `batch` counts). Rows stored
    before rows carried their batch get no prediction. Raises ActlabError for an activation that cannot be
    imported here."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for r in rows:
        if r.get("method") != "real" or "batch" not in r:
            continue
        key = (r["activation"], r["init"])
        if key not in out:
            out[key] = {}
        if r["depth"] not in out[key]:
            sw2 = inits.scheme_gain(r["init"], activations.get(r["activation"])) ** 2
            ratio = meanfield.weight_gradient_ratio(r["activation"], int(r["depth"]), sw2, int(r["batch"]))
            out[key][r["depth"]] = math.log10(ratio) if ratio > 0 and math.isfinite(ratio) else math.nan
    return out


def selfnorm(act: str, scheme: str, depth: int) -> tuple[np.ndarray, np.ndarray, meanfield.SignalPropagation]:
    """selu-selfnorm predicted: the post-activation mean and variance of layers 1..depth (inputs N(0, 1), so
    q₁ = σ_w², no biases), and the variance map's fixed point at σ_w² = gain²."""
    sw2 = inits.scheme_gain(scheme, activations.get(act)) ** 2
    k = meanfield.Kernel(activations.get(act), {})
    qs = meanfield.q_iterates(act, sw2, depth, sw2, 0.0)
    means, variances = [], []
    for q in qs:
        if not math.isfinite(q):
            means.append(math.nan)
            variances.append(math.nan)
            continue
        s = math.sqrt(q)
        m = k.mean(lambda z: k.phi(s * z), err=False).value
        means.append(m)
        variances.append(k.second_moment(q, err=False).value - m * m)
    return np.array(means), np.array(variances), meanfield.propagation(act, sw2, 0.0)


def gradient_flow_table(rows: Rows) -> tuple[list[str], list[list[str]]]:
    """Depth rows: seed 003's ratio of mean norms (toy), then per (activation + init) the real-backprop
    geometric-mean ratio first/last [95 % CI], with how many seeds' first-layer gradient was exactly 0."""
    ratios = source_ratios(rows)
    toy = [r for r in rows if r.get("method") == "source toy"]
    pairs = list(dict.fromkeys((r["activation"], r["init"]) for r in toy))
    real = [r for r in rows if r.get("method") == "real"]
    cols = list(dict.fromkeys((r["activation"], r["init"]) for r in real))
    g = group(real, "depth", "activation", "init")
    body = []
    for depth in sorted({r["depth"] for r in rows}):
        line = [str(depth), ratios[depth].format() if depth in ratios else "—"]
        for a, i in cols:
            rs = g.get((depth, a, i), [])
            e, zero = log_ratio(rs), vanished(rs)
            cell = "—" if e.n == 0 else f"{10 ** e.mean:.3g}" + (
                f" [{10 ** e.lo:.3g}, {10 ** e.hi:.3g}]" if np.isfinite(e.lo) else "") + f" (n = {e.n})"
            line.append(cell + (f"; exactly 0 in {zero} of {len(rs)}" if zero else ""))
        body.append(line)
    head = f"toy: mean‖g {pairs[0][0]}‖ / mean‖g {pairs[1][0]}‖" if len(pairs) >= 2 else "toy"
    return ["depth", head, *(f"real: {a} + {i}, first / last" for a, i in cols)], body


def _gradient_flow(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found, verdicts = _gradient_flow_details(rows, st)
    return ([f for f in [_gradient_flow_headline(rows)] if f is not None] + found), verdicts


def _gradient_flow_headline(rows: list[dict]) -> Finding | None:
    """gradient-flow's findings in one sentence: the toy's ratio from the shallowest to the deepest depth, how
    often theory lands inside the measured interval, and real backprop's first-to-last ratio per arm."""
    ratios = source_ratios(rows)
    if not ratios:
        return None
    t = Text()
    (d0, r0), (d1, r1) = min(ratios.items()), max(ratios.items())
    t("In short: in seed 003's toy the mean‖g‖ ratio goes from {a} at depth {d0} to {b} at depth {d1} "
      "(n = {n} simulations)", a=(r0.mean, ".3g"), d0=(d0, "d"), b=(r1.mean, ".3g"), d1=(d1, "d"), n=(r1.n, "d"))
    try:
        predicted = toy_gradient(rows)
    except ActlabError:
        predicted = {}
    judged = [rms.lo <= theory <= rms.hi for theory, rms in predicted.values() if np.isfinite(rms.lo)]
    if judged:
        t("; mean-field theory lies inside the measured interval at {k} of {m} depths", k=(sum(judged), "d"),
          m=(len(judged), "d"))
    real = [r for r in rows if r.get("method") == "real"]
    if real:
        top = max(r["depth"] for r in real)
        parts = []
        for (act, init), rs in group([r for r in real if r["depth"] == top], "activation", "init").items():
            e = log_ratio(rs)
            if e.n:
                parts.append((f"{act} + {init}", 10 ** e.mean))
        if parts:
            t("; in real backprop at depth {depth} the first layer gets ", depth=(top, "d"))
            for i, (name, v) in enumerate(parts):
                t(("" if i == 0 else " and " if i == len(parts) - 1 else ", ") + "{v}× the last layer's gradient "
                  f"with {name}", v=(v, ".3g"))
    t(".")
    return t.finding()


def _gradient_flow_details(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found, verdicts = [], []
    for depth, r in source_ratios(rows).items():
        t = Text()
        t("Seed 003's toy at depth {depth}: mean‖g‖ ratio {v}", depth=(depth, "d"), v=(r.mean, ".3g"))
        if np.isfinite(r.lo):
            t(" (95 % CI [{lo}, {hi}], paired bootstrap over seeds", lo=(r.lo, ".3g"), hi=(r.hi, ".3g"))
            t(", n = {n} simulations).", n=(r.n, "d"))
        else:
            t(" (n = {n} simulations).", n=(r.n, "d"))
        found.append(t.finding())
    try:
        predicted = toy_gradient(rows)
    except ActlabError:  # a user's activation the reader cannot import: no prediction
        predicted = {}
    for depth, (theory, rms) in predicted.items():
        t = Text()
        t("Mean-field theory for the toy at depth {depth}: root-mean-square ratio (χ_a/χ_b)^(L/2) = {p}; measured "
          "{m}", depth=(depth, "d"), p=(theory, ".3g"), m=(rms.mean, ".3g"))
        if np.isfinite(rms.lo):
            inside = rms.lo <= theory <= rms.hi
            t(" (95 % CI [{lo}, {hi}], paired bootstrap, n = {n}): " + ("theory inside the interval." if inside else
              "theory outside the interval."), lo=(rms.lo, ".3g"), hi=(rms.hi, ".3g"), n=(rms.n, "d"))
        else:
            t(" (n = {n}).", n=(rms.n, "d"))
        found.append(t.finding())
    real = [r for r in rows if r.get("method") == "real"]
    if not real:
        return found, verdicts
    top = max(r["depth"] for r in real)
    g = group([r for r in real if r["depth"] == top], "activation", "init")
    try:
        predicted_real = real_gradient(real)
    except ActlabError:  # a user's activation the reader cannot import: no prediction
        predicted_real = {}
    for (act, init), rs in g.items():
        e, zero = log_ratio(rs, st.ci), vanished(rs)
        t = Text()
        t(f"At depth {{depth}} (real backprop), {act} + {init}: ", depth=(top, "d"))
        if e.n:
            t("the first layer's gradient norm is {r}× the last layer's (geometric mean", r=(10 ** e.mean, ".3g"))
            if e.n > 1:
                t(", 95 % CI [{lo}, {hi}]", lo=(10 ** e.lo, ".3g"), hi=(10 ** e.hi, ".3g"))
            t(", n = {n})", n=(e.n, "d"))
        if zero:
            t(("; in " if e.n else "in ") + "{z} of {m} seeds every entry of the first layer's gradient was exactly "
              "0 (it vanished entirely)", z=(zero, "d"), m=(len(rs), "d"))
        t(".")
        p = predicted_real.get((act, init), {}).get(top)
        if p is not None and np.isfinite(p) and e.n > 1 and np.isfinite(e.lo):
            t(" Mean-field theory predicts {p}×: ", p=(10 ** p, ".3g"))
            if e.lo <= p <= e.hi:
                t("inside the interval.")
            else:
                t("outside the interval, by {d} decades (measured {f}× theory). Theory is the infinite-width "
                  "limit; at width {w} and depth {depth} finite-width corrections remain.",
                  d=(e.mean - p, "+.2g"), f=(10 ** (e.mean - p), ".3g"), w=(int(rs[0].get("width", 0)), "d"),
                  depth=(top, "d"))
        found.append(t.finding())
    for ka, kb in itertools.combinations(list(g), 2):
        # log10 of a ratio of exactly 0 (every entry 0) is undefined: such seeds drop out of the pairs, n says so
        la, lb = (_by_seed(g[k], "ratio", lambda v: math.log10(v) if v > 0 else math.nan) for k in (ka, kb))
        compare(found, verdicts, st, f"log10 ratio at depth {top} (real backprop)", ka[0], kb[0], la, lb,
                 "passes more gradient to the first layer")
    return found, verdicts


# ---------------------------------------------------------------------------- dead-neurons (trained)


def _dead_neurons(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found = []
    for (panel, cond), rs in group(rows, "panel", "condition").items():
        e = st.mean(values(rs, "dead_fraction"), bounds=(0.0, 1.0))
        what = "dead (never positive)" if panel == "bias" or cond == "relu" else "inactive (never above 0)"
        t = Text()
        t(f"{cond}: {{m}} of the units are {what}" if e.constant else
          f"{cond}: on average {{m}} of the units are {what} (95 % CI [{{lo}}, {{hi}}], n = {{n}})",
          m=(e.mean, ".1%"), lo=(e.lo, ".1%"), hi=(e.hi, ".1%"), n=(e.n, "d"))
        t(" on all {n} seeds." if e.constant else ".", n=(e.n, "d"))
        found.append(t.finding())
    zero, poor = ({r["seed"]: r["dead_units"] for r in rows if r["condition"] == c} for c in ("zero_bias", "poor_init"))
    if zero and poor and zero == poor:
        found.append(Finding("poor_init equals zero_bias on every seed, by construction: the source's code draws the "
                             "'poor init' hidden weights but never uses them, so that condition changes nothing."))
    return found, []


def _dead_neurons_trained(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found, verdicts = [], []
    last = max(r["epoch"] for r in rows)
    per: dict[str, dict[int, float]] = {}
    for (cond,), rs in group([r for r in rows if r["epoch"] == last], "condition").items():
        per[cond] = {s: float(np.mean([r["dead_fraction"] for r in rs if r["seed"] == s]))
                     for s in dict.fromkeys(r["seed"] for r in rs)}
        e = st.mean(list(per[cond].values()), bounds=(0.0, 1.0))
        t = Text()
        if e.n == 0:  # a replica that diverged has NaN statistics
            t(f"{cond}: after {{ep}} epochs the dead fraction cannot be measured: all {{k}} replicas diverged (NaN "
              "loss); it is measured at initialisation only.",
              ep=(last, "d"), k=(len(per[cond]), "d"))
        else:
            t(f"{cond}: after {{ep}} epochs, {{m}} of the hidden ReLU units are dead on average over layers (95 % "
              "CI [{lo}, {hi}], n = {n}).", ep=(last, "d"), m=(e.mean, ".3f"), lo=(e.lo, ".3f"), hi=(e.hi, ".3f"),
              n=(e.n, "d"))
        found.append(t.finding())
    base = next(iter(per), None)
    for cond in list(per)[1:]:
        compare(found, verdicts, st, f"Dead fraction after {last} epochs", cond, base, per[cond], per[base],
                 "leaves more units dead", spec=".3f")
    return found, verdicts




# ----------------------------------------------------------------------------------------- selu-selfnorm


def _selu(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    """"Self-normalising" is judged by theory's variance map (`meanfield`): a finite, attracting fixed point
    q* > 0 (|V′(q*)| < 1) is what the word means; a neutral one (ReLU + He: every q is fixed), none (the variance
    grows) or q* = 0 (the signal fades) is not. The measurement is then checked against theory's prediction
    for the last layer's mean and variance, inside their 95 % CIs or not."""
    found = []
    top = max(r["layer"] for r in rows)
    for (act, init), rs in group(rows, "activation", "init").items():
        last = [r for r in rs if r["layer"] == top]
        m, v = st.mean(values(last, "mean")), st.mean(values(last, "variance"), bounds=(0.0, math.inf))
        t = Text()
        t(f"{act} + {init}, layer {{top}}: measured mean {{m}} and variance {{v}} (95 % CIs [{{mlo}}, {{mhi}}] and "
          "[{vlo}, {vhi}], n = {n}). ", top=(top, "d"), m=(m.mean, ".3g"), mlo=(m.lo, ".3g"), mhi=(m.hi, ".3g"),
          v=(v.mean, ".3g"), vlo=(v.lo, ".3g"), vhi=(v.hi, ".3g"), n=(m.n, "d"))
        try:
            means, variances, r = selfnorm(act, init, top)
        except ActlabError as e:  # a user's activation the reader cannot import: no prediction
            t(f"No mean-field prediction: {e}.")
            found.append(t.finding())
            continue
        if r.q_star is None:
            t("Mean-field theory: the variance grows without bound (no finite fixed point), so it is not "
              "self-normalising")
        elif r.q_star == 0:
            t("Mean-field theory: the variance fades to 0 (V′(0) = {s}), so it is not self-normalising",
              s=(r.q_slope, ".3g"))
        elif not r.q_stable:
            t("Mean-field theory: q* = {q} is neutral (V′(q*) = {s}): every variance stays where it starts, none is "
              "attracting, so it is not self-normalising", q=(r.q_star, ".4g"), s=(r.q_slope, ".4g"))
        else:
            t("Mean-field theory: the variance map has an attracting fixed point q* = {q} (V′(q*) = {s}, approached "
              "with depth scale ξ_q = {xi} layers), so it is self-normalising in Klambauer et al.'s sense (an "
              "attracting fixed point, wherever it lies; SELU + LeCun puts it at mean 0 and variance 1)",
              q=(r.q_star, ".4g"), s=(r.q_slope, ".3g"), xi=(r.xi_q, ".2g"))
        pm, pv = float(means[-1]), float(variances[-1])
        if math.isfinite(pm) and math.isfinite(pv):
            inside = m.lo <= pm <= m.hi and v.lo <= pv <= v.hi
            t("; it predicts mean {pm} and variance {pv} at layer {top}, " + (
                "both inside the measured CIs." if inside else "not both inside the measured CIs."), pm=(pm, ".3g"),
              pv=(pv, ".3g"), top=(top, "d"))
        else:
            t(".")
        found.append(t.finding())
    return found, []


# ----------------------------------------------------------------------------------------------- xor-speed


def _xor(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    """Time to threshold is censored: a seed that never reached it counts at the horizon, never dropped. The rerun
    of the source's own initial weights (init = "source") is one run per activation, said first and kept out of
    the seeds' statistics."""
    found, verdicts = [], []
    for r in (r for r in rows if r.get("init") == "source"):
        t = Text()
        if r["epochs_to_threshold"] is None:
            t(f"{r['activation']}, the source's own initial weights: never reached the threshold within {{h}} "
              "epochs.", h=(r["horizon"], "d"))
        else:
            t(f"{r['activation']}, the source's own initial weights: reached the threshold at epoch {{e}}.",
              e=(r["epochs_to_threshold"], "d"))
        found.append(t.finding())
    rows = [r for r in rows if r.get("init") != "source"]
    g = group(rows, "activation")
    restricted: dict[str, dict[int, float]] = {}
    for (act,), rs in g.items():
        horizon = max(r.get("horizon") or 0 for r in rs) or max(len(r.get("loss_curve") or []) for r in rs)
        tte = time_to_event([r["epochs_to_threshold"] for r in rs], horizon)
        restricted[act] = {r["seed"]: float(horizon if r["epochs_to_threshold"] is None else r["epochs_to_threshold"])
                           for r in rs}
        t = Text()
        t(f"{act}: {{k}} of {{n}} seeds reached the threshold within {{h}} epochs (proportion {{p}}, exact 95 % CI "
          "[{plo}, {phi}])", k=(tte.reached.k, "d"), n=(tte.n, "d"), h=(horizon, "d"), p=(tte.reached.p, ".2f"),
          plo=(tte.reached.lo, ".2f"), phi=(tte.reached.hi, ".2f"))
        if tte.reached.k:
            t("; Kaplan–Meier median " + tte.format_median(unit=" epochs") + "; restricted mean {rm} epochs (seeds "
              "that never reached it count as {h})", rm=(tte.rmst, ".0f"), h=(horizon, "d"))
        t(".")
        found.append(t.finding())
    acts = [a for (a,) in g]
    for a, b in itertools.combinations(acts, 2):
        compare(found, verdicts, st, "Epochs to threshold, every seed (never reached = the horizon)", a, b,
                 restricted[a], restricted[b], "is slower", unit=" epochs", spec=".0f")
    return found, verdicts


# --------------------------------------------------------------------------------------------- gelu-approx


def _gelu(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found = []
    for r in rows:
        t = Text()
        t(f"{r['approximation']} ({r['formula']}): largest |error| {{e}} at x = ±{{x}} over [{{lo}}, {{hi}}]; mean "
          "|error| {m}.", e=(r["max_abs_error"], ".3e"), x=(r["at_x"], ".4f"), lo=(r["lo"], "g"), hi=(r["hi"], "g"),
          m=(r["mean_abs_error"], ".3e"))
        found.append(t.finding())
    return found, []


# ----------------------------------------------------------------------------------------------- ffn-stats


def ffn_std(act: str) -> float:
    """ffn-stats predicted: the output std of φ(x W1) W2 with x ~ N(0, 1) and He-normal W1, W2 (σ_w² = 2 each,
    no biases): the pre-activation variance is q = 2, so E[out²] = 2 E[φ(√2 z)²] and the mean is 0."""
    return math.sqrt(2.0 * meanfield.Kernel(activations.get(act), {}).second_moment(2.0).value)


def _ffn(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found, verdicts = [], []
    g = group(rows, "activation")
    for (act,), rs in g.items():
        m, s = st.mean(values(rs, "mean")), st.mean(values(rs, "std"))
        t = Text()
        t(f"{act}: FFN output mean {{m}} (95 % CI [{{mlo}}, {{mhi}}]) and std {{s}} (95 % CI [{{slo}}, {{shi}}]), "
          "n = {n}.", m=(m.mean, ".3g"), mlo=(m.lo, ".3g"), mhi=(m.hi, ".3g"), s=(s.mean, ".3g"), slo=(s.lo, ".3g"),
          shi=(s.hi, ".3g"), n=(m.n, "d"))
        try:
            predicted = ffn_std(act)
        except ActlabError:  # a user's activation the reader cannot import: no prediction
            predicted = math.nan
        if math.isfinite(predicted):
            t(" Mean-field theory (He-normal weights, pre-activation variance 2) predicts std √(2 E[φ(√2 z)²]) = "
              "{p}" + ((": inside the interval." if s.lo <= predicted <= s.hi else ": outside the interval.")
                       if math.isfinite(s.lo) else " (one run: no interval to hold it against)."),
              p=(predicted, ".3g"))
        found.append(t.finding())
    for a, b in itertools.combinations([a for (a,) in g], 2):
        compare(found, verdicts, st, "FFN output std", a, b, _by_seed(g[(a,)], "std"), _by_seed(g[(b,)], "std"),
                 "gives the wider output")
    return found, verdicts


# ----------------------------------------------------------------------------------------- linear-collapse

EQUIVALENCE_POINTS = 2.0  # linear-collapse: a difference whose whole 95 % CI lies within ± this many points


def _linear_collapse(rows: list[dict], st: Stats) -> tuple[list[Finding], list]:
    found, verdicts = [], []
    g = group(rows, "model", "depth")
    lr = g.get(("logistic regression", 0))
    if lr is None:
        return found, verdicts
    base = _by_seed(lr, "test_acc")
    equivalence: list[Finding] = []
    diffs = [v for (m, _), rs in g.items() if m == "identity" for v in values(rs, "max_abs_diff")]
    if diffs:
        t = Text()
        t("Over {n} trained identity networks the largest |logit − (x W_eff + b_eff)| on the test set, W_eff the "
          "product of its weight matrices in float64, is {d}" + (": each is one linear map, to float32 rounding."
                                                                  if max(diffs) < 1e-4 else "."),
          n=(len(diffs), "d"), d=(max(diffs), ".2g"))
        found.append(t.finding())
    for (model, depth), rs in g.items():
        if model == "logistic regression":
            continue
        label = f"{model} (depth {depth})"
        va = _by_seed(rs, "test_acc")
        pr = st.paired(va, base)
        t = Text()
        compare(found, verdicts, st, "test accuracy", label, "logistic regression", va, base, "is more accurate",
                 scale=100, unit=" points", spec=".2f", t=t)
        if model == "identity" and pr.n >= 2 and np.isfinite(pr.diff.lo):
            inside = pr.diff.lo >= -EQUIVALENCE_POINTS / 100 and pr.diff.hi <= EQUIVALENCE_POINTS / 100
            e = Text()
            e(f"{label} against logistic regression on this test set: the 95 % CI of the difference over seeds, "
              "[{lo}, {hi}] points, "
              + ("lies inside ±{eq} points: equivalent within that margin." if inside else
                 "reaches past ±{eq} points: not shown equivalent within that margin."),
              lo=(100 * pr.diff.lo, ".2f"), hi=(100 * pr.diff.hi, ".2f"), eq=(EQUIVALENCE_POINTS, "g"))
            equivalence.append(e.finding())
    return found + equivalence, verdicts


# ------------------------------------------------------------------------------------------------ all

FINDINGS = {"gradient-flow": _gradient_flow, "dead-neurons": _dead_neurons,
                       "dead-neurons-trained": _dead_neurons_trained, "selu-selfnorm": _selu,
                       "xor-speed": _xor, "gelu-approx": _gelu, "ffn-stats": _ffn,
                       "linear-collapse": _linear_collapse}
