"""One colour per activation, the same in every figure of every report, the CLI's figures and the explorer.

The catalog's activations take the colours of a colour-blind-safe qualitative palette: Okabe and Ito's
first, then Paul Tol's "muted" and "light" schemes, which stay distinguishable under the common
colour-vision deficiencies; the most compared activations (sigmoid, ReLU, tanh, GELU, Swish, ELU, ...)
get the strongest colours, the rest follow in catalog order. A figure's series are matched to an
activation by the name they start with ("relu", "relu + kaiming_normal", "leaky_relu(alpha=0.1)"), so
ReLU is the same colour in moons, cnn-depth-cpu and the explorer. Several series of one activation (other
parameters, inits or depths) get shades of its hue, ordered; series that name no catalog activation take
the palette's unused colours in order.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Sequence

# Okabe & Ito (2008) without its yellow and black, then Paul Tol's "muted" (2018); the light colours that
# read poorly as lines on white come last, for the catalog's least compared entries
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
    "#332288", "#882255", "#117733", "#AA4499", "#44AA99", "#999933", "#CC6677", "#88CCEE", "#555555",
    "#77AADD", "#EE8866", "#BBCC33", "#AAAA00", "#DDCC77", "#F0E442", "#FFAABB", "#99DDFF",
    # strong colours for the entries added since (ReLU² and the gated FFNs, compared together in transformer
    # studies beside ReLU, GELU and Swish), set below: magenta, cyan, near-black, lime, brown, navy
    "#EE3377", "#33BBEE", "#222222", "#66AA00", "#8B4513", "#1F3A93",
)
# the catalog's order (actlab.names()), fixed here so that a colour never moves when an activation is added:
# a new one is appended
ORDER = ("sigmoid", "tanh", "hard_tanh", "softsign", "relu", "relu6", "leaky_relu", "prelu", "elu", "celu", "selu",
         "softplus", "swish", "mish", "gelu", "gelu_tanh", "gelu_sigmoid", "hard_sigmoid", "hard_swish", "identity",
         "softmax", "relu2", "glu", "bilinear", "reglu", "geglu", "swiglu")
# the most compared activations get the strongest colours (the classic pairs contrast: sigmoid blue, ReLU
# vermilion, tanh green; the modern smooth ones purple and orange); the rest follow in catalog order
_FIRST = {"sigmoid": 0, "relu": 1, "tanh": 2, "gelu": 3, "swish": 4, "elu": 5, "leaky_relu": 6, "selu": 7,
          "mish": 8, "softplus": 9, "softmax": 12, "identity": 14,
          "relu2": 23, "glu": 24, "bilinear": 25, "reglu": 26, "geglu": 27, "swiglu": 28}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _assign() -> dict[str, str]:
    out = {name: PALETTE[i] for name, i in _FIRST.items()}
    free = [c for i, c in enumerate(PALETTE) if i not in _FIRST.values()]
    for name in ORDER:
        if name not in out:
            out[name] = free.pop(0)
    return out


COLORS = _assign()


def activation_color(name: str) -> str | None:
    """The fixed colour (hex) of a catalog activation; None for a name the catalog does not have."""
    return COLORS.get(name)


def activation_of(label: str) -> str | None:
    """The catalog activation a series label starts with ("relu + he" -> "relu"), or None."""
    m = _NAME.match(label.strip())
    return m.group(0) if m and m.group(0) in COLORS else None


def shades(color: str, n: int) -> list[str]:
    """n shades of one hue, dark to light (n = 1: the colour itself): for ordered series of one activation,
    e.g. depth 1 to 8."""
    if n <= 1:
        return [color]
    r, g, b = (int(color[i: i + 2], 16) / 255 for i in (1, 3, 5))
    h, lum, s = colorsys.rgb_to_hls(r, g, b)
    lo, hi = max(0.18, lum - 0.22), min(0.78, lum + 0.22)
    out = []
    for k in range(n):
        rr, gg, bb = colorsys.hls_to_rgb(h, lo + (hi - lo) * k / (n - 1), s)
        out.append("#{:02X}{:02X}{:02X}".format(*(round(255 * v) for v in (rr, gg, bb))))
    return out


def series_colors(labels: Sequence[str]) -> dict[str, str]:
    """A colour per series label: its activation's colour (shades when several series share one activation,
    in the order given), the palette's unused colours for the rest."""
    labels = list(dict.fromkeys(labels))
    by_act: dict[str, list[str]] = {}
    other = []
    for lab in labels:
        act = activation_of(lab)
        if act is None:
            other.append(lab)
        else:
            by_act.setdefault(act, []).append(lab)
    out = {}
    for act, labs in by_act.items():
        out.update(zip(labs, shades(COLORS[act], len(labs)), strict=True))
    used = {COLORS[a] for a in by_act}
    spare = [c for c in PALETTE if c not in used] or list(PALETTE)
    for i, lab in enumerate(other):
        out[lab] = spare[i % len(spare)]
    return out
