"""The one error type users see.

Every input problem actlab can name (an unknown activation, a parameter out of range, an import path that
is not callable, ...) raises `ActlabError` with a message that names the field, the value and what is
allowed. The CLI prints that message alone, without a traceback, and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ActlabError(ValueError):
    """Bad input: the message names the field, the value given, and what is allowed."""


def excerpt(value: object, limit: int = 80) -> str:
    """`repr(value)` for a message, cut to `limit` characters with the full length said: a long input is never
    echoed whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def closest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The `n` choices closest to `word` (difflib ratio), best first; may be empty."""
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.5)
