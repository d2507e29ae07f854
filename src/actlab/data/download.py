"""Downloads into a cache: progress bar, MD5 check, atomic write, and a file the user placed there by hand.

The cache directory is, in order: the `cache_dir` argument, the `ACTLAB_CACHE` environment variable,
`~/.cache/actlab`. A download streams to `NAME.part` in the cache, is checked against its published MD5,
and only then renamed to `NAME`, so a reader never meets half a file. A partial file from an interrupted
or corrupt download is removed. A file already in the cache is used without any network access when its
MD5 matches; when it does not, the message says so and what was expected.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from actlab import runtime
from actlab.errors import ActlabError

CACHE_ENV = runtime.CACHE_ENV
CHUNK = 1 << 16  # bytes read per step
TIMEOUT_S = 30.0  # per network operation


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where downloads live: `override`, else $ACTLAB_CACHE, else ~/.cache/actlab."""
    return Path(override).expanduser() if override is not None else runtime.cache_dir()


def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, filename: str, md5: str, cache: str | os.PathLike | None = None,
          progress: bool | None = None) -> Path:
    """Path of `filename` in the cache, downloading it from `url` first if it is not there.

    Raises ActlabError when the cached file's MD5 differs, when the download fails (saying where to place
    the file by hand), or when the downloaded bytes are incomplete or do not match `md5`.
    """
    folder = cache_dir(cache)
    path = folder / filename
    if path.exists():
        got = md5sum(path)
        if got != md5:
            raise ActlabError(
                f"{path} has MD5 {got}, expected {md5}: it is corrupt or a different file. "
                f"Remove it and run again to download it from {url}, or replace it with the official file."
            )
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ActlabError(f"cache directory {folder} cannot be created ({e}); set {CACHE_ENV} or pass "
                          "cache_dir") from None
    part = path.with_name(path.name + ".part")
    try:
        _download(url, part, filename, progress)
        got = md5sum(part)
        if got != md5:
            raise ActlabError(f"download of {url} has MD5 {got}, expected {md5}; the partial file was removed. "
                              "Run again, or place the official file at " + str(path))
        os.replace(part, path)
    except ActlabError:
        part.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise ActlabError(
            f"could not download {url} ({reason}). Offline? Place the file {filename} (MD5 {md5}) at {path}"
        ) from None
    except BaseException:  # Ctrl-C: leave no partial file behind
        part.unlink(missing_ok=True)
        raise
    return path


def _download(url: str, dest: Path, label: str, progress: bool | None) -> None:
    """Stream `url` to `dest`; raises ActlabError when fewer bytes arrive than announced."""
    show = sys.stderr.isatty() if progress is None else progress
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp, open(dest, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), disable=not show, transient=True) as bar:
            task = bar.add_task(f"downloading {label}", total=total)
            received = 0
            while block := resp.read(CHUNK):
                out.write(block)
                received += len(block)
                bar.update(task, advance=len(block))
    if total is not None and received != total:
        raise ActlabError(f"download of {url} stopped after {received} of {total} bytes; the partial file was "
                          "removed. Run again.")
