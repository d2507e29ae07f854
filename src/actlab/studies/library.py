"""The shipped studies: one TOML file per classic experiment in shipped/, found by name (`actlab studies`
lists them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from actlab.errors import ActlabError, closest

FOLDER = Path(__file__).parent / "shipped"


def names() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.toml"))


def shipped_path(name: str) -> Path:
    """The file of shipped study `name`; unknown names list the closest."""
    path = FOLDER / f"{name}.toml"
    if not path.exists():
        near = closest(name, names())
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ActlabError(f"study {name!r} is neither a file nor a shipped study{hint} Shipped: {', '.join(names())}")
    return path


def describe() -> list[tuple[str, str]]:
    """(name, description) of every shipped study."""
    out = []
    for name in names():
        doc = tomllib.loads(shipped_path(name).read_text(encoding="utf-8"))
        out.append((name, doc.get("description", "")))
    return out
