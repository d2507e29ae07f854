"""Process-wide settings, applied explicitly by the entry points (the CLI, the explorer, benchmarks), never
inside a library call.

`tune_malloc()` raises glibc's mmap and trim thresholds (`mallopt`), so the large per-step tensors of a
population reuse heap pages instead of being mapped and faulted in afresh every step (2.7× on the blobs
workload at 4,000 replicas, benchmarks/RESULTS.md). It changes how the whole process allocates memory,
which is why a library function does not do it behind its caller's back: call it once at start-up
(`actlab.tune_malloc()`). ACTLAB_MALLOC_TUNING=0 opts out.

`cache_dir()` is where actlab keeps what it computes or fetches once per machine (downloads, compiled
kernels, solved activation transforms): $ACTLAB_CACHE, else ~/.cache/actlab; `write_text_atomic` writes
a file of it whole or not at all.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

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
