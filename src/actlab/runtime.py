"""Process-wide settings, applied explicitly by the entry points (the CLI, the explorer, benchmarks), never
inside a library call.

`tune_malloc()` raises glibc's mmap and trim thresholds (`mallopt`), so the large per-step tensors of a
population reuse heap pages instead of being mapped and faulted in afresh every step (the gain is measured in
benchmarks/RESULTS.md). It changes how the whole process allocates memory,
which is why a library function does not do it behind its caller's back: call it once at start-up
(`actlab.tune_malloc()`). ACTLAB_MALLOC_TUNING=0 opts out.

`cache_dir()` is where actlab keeps what it computes or fetches once per machine (downloads, compiled
kernels, solved activation transforms, measured catalog records): $ACTLAB_CACHE, else ~/.cache/actlab;
`write_text_atomic` writes a file of it whole or not at all. `kept` and `keep` hold a JSON value computed
from `inputs` (a JSON document of everything it depends on), in a file named by a hash of those inputs that
also stores them: a value is only ever read back for exactly the inputs it was computed from.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

CACHE_ENV = "ACTLAB_CACHE"

_MALLOC_TUNED = False


def tune_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True if applied (False off glibc or opted out)."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED or os.environ.get("ACTLAB_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return _MALLOC_TUNED
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, (1 << 31) - 1)
        libc.mallopt(m_top_pad, 64 << 20)
        _MALLOC_TUNED = bool(ok)
    except OSError:  # not glibc (musl, ...): nothing to tune
        pass
    return _MALLOC_TUNED


def cache_dir() -> Path:
    """$ACTLAB_CACHE, else ~/.cache/actlab (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "actlab"


def write_text_atomic(path: Path, text: str) -> None:
    """`text` into `path`, whole or not at all: written to a temporary name of this process, then renamed into
    place; a failed write (disk full) leaves no temporary file behind. The folder must exist."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def keyed_file(folder: str, inputs: dict[str, Any]) -> Path:
    """The cache file of `folder` for these inputs (named by a hash of them)."""
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / folder / f"{key}.json"


def kept(folder: str, inputs: dict[str, Any]) -> Any:
    """The value kept in `folder` for exactly these inputs, or None (none kept, unreadable, or kept for other
    inputs); the caller still checks that the value is one it could have written."""
    try:
        doc = json.loads(keyed_file(folder, inputs).read_text())
    except (OSError, ValueError):
        return None
    return doc.get("value") if isinstance(doc, dict) and doc.get("inputs") == inputs else None


def keep(folder: str, inputs: dict[str, Any], value: Any) -> None:
    """Keep `value` (JSON) for these inputs, whole or not at all; a cache that cannot be written is skipped."""
    path = keyed_file(folder, inputs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"inputs": inputs, "value": value}, indent=1))
    except OSError:
        pass
