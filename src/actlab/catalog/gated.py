"""Properties of a gated entry y = φ(a)·b, measured from its two-input function, never typed by hand.

A gated entry takes two pre-activations (a = xW + b_W, b = xV + b_V, two projections of the same input), so
the element-wise record (`actlab.catalog.properties`) applies to two of its parts only: its gate φ, and its
self-gated diagonal x·φ(x) (both inputs equal; e.g. GLU's diagonal x·σ(x) is Swish). What applies to the function
of two inputs is measured here, on a grid over the gate input a ∈ [-12, 12] (step 2e-4) times the value input b
(autograd in float64), with a, b independent N(0, 1), the statistics of two independent projections at init.
Expectations are Simpson's rule over a and Gauss-Hermite over b, which is exact in b for a function at most
quadratic in its value input (f and f² of a value-linear f; `linear_in_value` is measured first, on a
[-12, 12]² grid, and the expectations are refused where it fails):

- `linear_in_value`: f(a, s·b) = s·f(a, b) for every a, b and s on the grid (the value path is linear, so a
  gated FFN can pass any magnitude through; only the gate is nonlinear);
- `zero_value_zero_output`: f(a, 0) = 0 for every a;
- `mean` and `second_moment`: E[f] and E[f²]; `variance_gain` is 1 / sqrt(E[f²]);
- `grad_gate_second_moment` and `grad_value_second_moment`: E[(∂f/∂a)²] and E[(∂f/∂b)²], the backward gains
  through the gate input and the value input at unit pre-activations;
- `closed_gate_fraction`: P(φ(a) = 0), the share of gates that pass nothing (ReGLU's ½: its dead half);
- `gate_bounded`: whether φ's range is bounded (GLU's sigmoid is; ReGLU's, GEGLU's and SwiGLU's are not).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from scipy.integrate import simpson

from actlab.catalog.activations import Activation, get
from actlab.catalog.moments import WINDOW
from actlab.catalog.properties import Properties, properties
from actlab.errors import ActlabError

GRID_STEP = 0.02  # the linearity check's grid: 1201 points per axis on [-12, 12]
GATE_STEP = 2e-4  # the gate input's quadrature step
HERMITE_NODES = 16  # Gauss-Hermite nodes over the value input: exact for polynomials of degree <= 31
LINEAR_TOL = 1e-9  # relative, for the value-linearity check

MEANINGS = {
    "linear_in_value": "f(a, s·b) = s·f(a, b): the value path is linear, only the gate is nonlinear",
    "zero_value_zero_output": "f(a, 0) = 0 for every gate input",
    "mean": "E[f(a, b)] for a, b independent N(0, 1)",
    "second_moment": "E[f(a, b)²] for a, b independent N(0, 1)",
    "variance_gain": "1 / sqrt(E[f²]): the output scale that keeps unit second moment",
    "grad_gate_second_moment": "E[(∂f/∂a)²]: backward gain through the gate input",
    "grad_value_second_moment": "E[(∂f/∂b)²] = E[φ(a)²]: backward gain through the value input",
    "closed_gate_fraction": "P(φ(a) = 0) for a ~ N(0, 1): gates that pass nothing",
    "gate_bounded": "whether φ's range is bounded",
}


class GatedProperties(BaseModel):
    """The measured record of one gated entry at one parameter setting."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")
    name: str
    gate_name: str
    params: dict[str, float]
    linear_in_value: bool
    zero_value_zero_output: bool
    mean: float
    second_moment: float
    variance_gain: float
    grad_gate_second_moment: float
    grad_value_second_moment: float
    closed_gate_fraction: float
    gate_bounded: bool
    gate: Properties  # φ's own element-wise record
    diagonal: Properties  # the self-gated diagonal x·φ(x)


def gated_properties(spec: str | Activation, **params: Any) -> GatedProperties:
    """Measure a gated entry (a name such as 'swiglu', or 'gated:NAME')."""
    act = get(spec)
    if act.gate is None:
        raise ActlabError(f"activation {act.name!r} is {act.kind}; gated properties are for gated entries "
                          "(glu, bilinear, reglu, geglu, swiglu, gated:NAME)")
    values = act.resolve(**params)
    n = int(round(2 * WINDOW / GRID_STEP)) + 1
    x = torch.linspace(-WINDOW, WINDOW, n, dtype=torch.float64)
    with torch.no_grad():
        a, b = x.view(-1, 1), x.view(1, -1)
        f1 = act.gated_fn(a, b, **values)
        scale = float(f1.abs().max()) or 1.0
        linear = bool(all((act.gated_fn(a, s * b, **values) - s * f1).abs().max() <= LINEAR_TOL * abs(s) * scale
                          for s in (-3.0, 0.5, 2.0)))
        zero = bool((act.gated_fn(a, torch.zeros_like(b), **values) == 0).all())
    if not linear:
        raise ActlabError(f"gated entry {act.name!r} is not linear in its value input; its expectations are not "
                          "measured (a gated entry is φ(a)·b)")
    xa = torch.linspace(-WINDOW, WINDOW, int(round(2 * WINDOW / GATE_STEP)) + 1, dtype=torch.float64)
    nodes, weights = np.polynomial.hermite_e.hermegauss(HERMITE_NODES)  # ∫ g(b) e^{-b²/2} db
    ga_ = xa.view(-1, 1).expand(-1, HERMITE_NODES).clone().requires_grad_()
    gb_ = torch.as_tensor(nodes).view(1, -1).expand(len(xa), -1).clone().requires_grad_()
    f = act.gated_fn(ga_, gb_, **values)
    ga, gb = torch.autograd.grad(f.sum(), (ga_, gb_))
    xs = xa.numpy()
    pdf = np.exp(-0.5 * xs**2) / math.sqrt(2 * math.pi)
    wb = weights / math.sqrt(2 * math.pi)

    def expect(v: torch.Tensor) -> float:
        return float(simpson((v.detach().numpy() @ wb) * pdf, x=xs))

    fv = f.detach()
    second = expect(fv * fv)
    gate_rec = properties(act.gate, cost=False, **values)
    with torch.no_grad():
        phi = act.gate.fn(xa, **values).numpy()
    closed = float(simpson(np.where(phi == 0.0, pdf, 0.0), x=xs))
    return GatedProperties(
        name=act.label(**values), gate_name=act.gate.name, params=values,
        linear_in_value=linear, zero_value_zero_output=zero,
        mean=expect(fv), second_moment=second, variance_gain=1.0 / math.sqrt(second) if second > 0 else math.inf,
        grad_gate_second_moment=expect(ga * ga), grad_value_second_moment=expect(gb * gb),
        closed_gate_fraction=closed,
        gate_bounded=math.isfinite(gate_rec.range.low) and math.isfinite(gate_rec.range.high),
        gate=gate_rec, diagonal=properties(act, cost=False, **values))
