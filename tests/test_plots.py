"""Figures draw the measured curves: data and colours read back from the matplotlib artists."""

from __future__ import annotations

import colorsys
import math

import matplotlib.colors as mcolors
import numpy as np
import pytest

import actlab
from actlab.catalog import palette
from actlab.catalog.activations import get
from actlab.report.figures import catalog as plots
from actlab.report.figures.common import save


def _lines(fig):
    return {ln.get_label(): ln for ln in fig.axes[0].lines if not ln.get_label().startswith("_")}


def test_activation_figure_colours_each_activation_solid_function_dashed_derivative():
    fig = plots.activation_figure([("relu", {}), ("elu", {"alpha": 0.5})], lo=-2, hi=2, points=401)
    lines = _lines(fig)
    assert set(lines) == {"relu", "relu′", "elu(alpha=0.5)", "elu(alpha=0.5)′"}
    x = lines["relu"].get_xdata()
    np.testing.assert_allclose(lines["relu"].get_ydata(), np.maximum(x, 0))
    np.testing.assert_allclose(lines["relu′"].get_ydata(), (x > 0).astype(float))
    np.testing.assert_allclose(lines["elu(alpha=0.5)"].get_ydata(), np.where(x > 0, x, 0.5 * np.expm1(x)))
    for name in ("relu", "elu"):
        key = name if name == "relu" else "elu(alpha=0.5)"
        assert mcolors.same_color(lines[key].get_color(), palette.activation_color(name))
        assert mcolors.same_color(lines[key + "′"].get_color(), palette.activation_color(name))
        assert lines[key].get_linestyle() == "-" and lines[key + "′"].get_linestyle() == "--"


def test_the_palette_gives_each_catalog_activation_one_distinct_colour_everywhere():
    # a new activation is appended, so no colour ever moves
    assert tuple(actlab.names(include_gated=True)) == palette.ORDER
    cols = [palette.activation_color(n) for n in palette.ORDER]
    assert len(set(cols)) == len(cols) and all(mcolors.is_color_like(c) for c in cols)
    a = palette.series_colors(["sigmoid", "relu"])
    b = palette.series_colors(["tanh", "relu + kaiming_normal", "my_module:act", "sigmoid"])
    assert a["relu"] == b["relu + kaiming_normal"] == palette.activation_color("relu")
    assert a["sigmoid"] == b["sigmoid"] and b["my_module:act"] not in {a["relu"], a["sigmoid"], b["tanh"]}
    shades = palette.series_colors(["relu, depth 1", "relu, depth 4", "relu, depth 8"])
    light = [colorsys.rgb_to_hls(*mcolors.to_rgb(shades[k]))[1] for k in shades]
    assert light == sorted(light) and len(set(shades.values())) == 3  # dark (first) to light (last), all distinct
    hue = {round(colorsys.rgb_to_hls(*mcolors.to_rgb(c))[0], 2) for c in shades.values()}
    assert len(hue) == 1  # one hue family


def test_catalog_figure_has_one_panel_per_activation(tmp_path):
    names = ["sigmoid", "tanh", "relu", "gelu", "swish", "mish", "selu"]
    fig = plots.catalog_figure([*names[:-1], get("selu")], cols=3)  # names or entries
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == names
    path = save(fig, tmp_path / "sub" / "catalog.svg")
    assert path.read_text().startswith("<?xml")


def test_axes_that_count_layers_depths_or_epochs_get_whole_number_ticks():
    from matplotlib.figure import Figure

    from actlab.report.figures.common import finish

    fig = Figure()
    a, b = fig.subplots(1, 2)
    a.plot([1, 2, 3], [0.1, 0.5, 0.2])
    a.set_xlabel("depth (layers)")
    b.plot([1, 2, 3], [0.1, 0.5, 0.2])
    b.set_xlabel("σ_w²")
    finish(fig)
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in a.get_xticks())
    assert not all(float(t).is_integer() for t in b.get_xticks())  # other axes keep their fractional ticks


@pytest.mark.parametrize(("lo", "hi", "labels"), [
    (1e-4, 1e-1, {"10^{-4}", "10^{-3}", "10^{-2}", "10^{-1}"}),  # a decade or more: powers of ten
    (2.0, 4.0, {"2", "3", "4"}),  # under a decade: plain numbers, not 2×10⁰
    (0.3, 0.9, {"0.3", "0.5", "0.9"}),
])
def test_log_axes_read_powers_of_ten_or_plain_numbers(lo, hi, labels):
    from matplotlib.figure import Figure

    from actlab.report.figures.common import finish

    fig = Figure()
    ax = fig.subplots()
    ax.semilogy([0, 1], [lo, hi])
    ax.set_ylim(lo, hi)
    finish(fig)
    fig.canvas.draw()
    shown = [(t.get_position()[1], t.get_text()) for t in ax.get_yticklabels()]
    texts = {t.replace("$\\mathdefault{", "")[:-2] if t.startswith("$") else t for y, t in shown
             if lo * 0.999 <= y <= hi * 1.001}
    assert labels <= texts, texts
    assert not any("times" in t or t in ("0", "") for t in texts)  # never 2.5×10⁰, never a lone 0
    assert all(t.get_text() == "" for t in ax.yaxis.get_minorticklabels())


def test_the_sources_classical_and_minima_figures_draw_measured_values():
    """Seed 003's panels, from measurements: sigmoid's derivative maximum 0.25 and tanh's 1 marked; the
    "typical" decay E[φ′(z)]^L with E[σ′(z)] = 0.2066 and E[tanh′(z)] = 0.6057 (quadrature of the closed
    forms, z ~ N(0, 1)); the Swish and GELU minima where φ′ = 0 (Swish: x = −W(1/e) − 1 = −1.27846)."""
    from scipy import integrate
    from scipy.special import expit

    fig = plots.classical_figure()
    labels = {ln.get_label(): ln for ax in fig.axes for ln in ax.get_lines()}
    assert labels["max sigmoid′ = 0.25 (measured)"].get_ydata()[0] == pytest.approx(0.25)
    assert labels["max tanh′ = 1 (measured)"].get_ydata()[0] == pytest.approx(1.0)
    pdf = lambda z: np.exp(-z * z / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    e_sig = integrate.quad(lambda z: expit(z) * (1 - expit(z)) * pdf(z), -np.inf, np.inf)[0]
    e_tanh = integrate.quad(lambda z: (1 - np.tanh(z) ** 2) * pdf(z), -np.inf, np.inf)[0]
    for name, e in (("sigmoid", e_sig), ("tanh", e_tanh)):
        line = next(v for k, v in labels.items() if k.startswith(f"{name}: typical"))
        np.testing.assert_allclose(line.get_ydata()[:3], e ** np.arange(1, 4), rtol=1e-6)
    marks = {c.get_label(): c.get_offsets()[0] for c in plots.minima_figure().axes[0].collections}
    (swish,) = [v for k, v in marks.items() if k.startswith("swish minimum")]
    from scipy.special import lambertw

    assert swish[0] == pytest.approx(-float(np.real(lambertw(np.exp(-1)))) - 1, abs=1e-4)
    (gelu,) = [v for k, v in marks.items() if k.startswith("gelu minimum")]
    grad = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2))) + x * pdf(x)  # noqa: E731
    assert abs(grad(gelu[0])) < 1e-4
