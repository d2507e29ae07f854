"""Figures draw the measured curves: data and colours read back from the matplotlib artists."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np

from actlab.catalog.activations import get
from actlab.report.figures import catalog as plots
from actlab.report.figures.common import save


def _lines(fig):
    return {ln.get_label(): ln for ln in fig.axes[0].lines if not ln.get_label().startswith("_")}


def test_activation_figure_function_blue_derivative_red():
    fig = plots.activation_figure([("relu", {}), ("elu", {"alpha": 0.5})], lo=-2, hi=2, points=401)
    lines = _lines(fig)
    assert set(lines) == {"relu", "relu′", "elu(alpha=0.5)", "elu(alpha=0.5)′"}
    x = lines["relu"].get_xdata()
    np.testing.assert_allclose(lines["relu"].get_ydata(), np.maximum(x, 0))
    np.testing.assert_allclose(lines["relu′"].get_ydata(), (x > 0).astype(float))
    np.testing.assert_allclose(lines["elu(alpha=0.5)"].get_ydata(), np.where(x > 0, x, 0.5 * np.expm1(x)))
    assert mcolors.same_color(lines["relu"].get_color(), plots.FUNCTION_COLOR)
    assert mcolors.same_color(lines["elu(alpha=0.5)′"].get_color(), plots.DERIVATIVE_COLOR)
    assert lines["relu"].get_linestyle() != lines["elu(alpha=0.5)"].get_linestyle()


def test_catalog_figure_has_one_panel_per_activation(tmp_path):
    names = ["sigmoid", "tanh", "relu", "gelu", "swish", "mish", "selu"]
    fig = plots.catalog_figure([*names[:-1], get("selu")], cols=3)  # names or entries
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == names
    path = save(fig, tmp_path / "sub" / "catalog.svg")
    assert path.read_text().startswith("<?xml")
