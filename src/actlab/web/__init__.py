"""The explorer: `actlab serve`, a local web page over the catalog, live trainings and stored runs.

`create_app(runs_root, max_trainings)` builds the FastAPI app (`actlab.web.api`); `serve` runs it with
uvicorn, bound to 127.0.0.1 unless told otherwise. The page (static/) is plain HTML and JavaScript with
uPlot shipped locally (static/vendor/, MIT), so it works offline.
"""

from __future__ import annotations

from pathlib import Path

from actlab.web.api import create_app

__all__ = ["create_app", "serve"]


def serve(host: str = "127.0.0.1", port: int = 8000, runs_root: str | Path = "runs", max_trainings: int = 2) -> None:
    """Run the explorer until interrupted."""
    import uvicorn

    uvicorn.run(create_app(runs_root, max_trainings), host=host, port=port, log_level="warning")
