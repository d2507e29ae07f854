"""The explorer: `actlab serve`, a local web page over the catalog, live trainings and stored runs.

`create_app(runs_root, max_trainings)` builds the FastAPI app (`actlab.web.app`, one router per view in
`actlab.web.routes`); `serve` runs it with uvicorn, bound to 127.0.0.1 unless told otherwise. The page (static/) is
plain HTML and JavaScript with
uPlot shipped locally (static/vendor/, MIT), so it works offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import uvicorn

from actlab.runtime import tune_malloc
from actlab.web.app import create_app

__all__ = ["create_app", "serve"]


def serve(host: str = "127.0.0.1", port: int = 8000, runs_root: str | Path = "runs", max_trainings: int = 2,
          allow_hosts: Iterable[str] = ()) -> None:
    """Run the explorer until interrupted (an entry point: it applies the process-wide allocator tuning).
    `allow_hosts`: Host header names answered besides the bound address (and loopback names)."""
    tune_malloc()
    app = create_app(runs_root, max_trainings, host, allow_hosts)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:  # Ctrl-C: the event streams end first, so that the
            app.state.live.closing.set()  # graceful shutdown does not wait on them; then every training stops
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)).run()
