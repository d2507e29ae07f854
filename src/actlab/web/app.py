"""The explorer's server: a FastAPI app over the catalog, live trainings and the stored runs, one router per
view (`actlab.web.routes`).

Safety rules (DESIGN §8): every size a request can ask for is bounded by its typed model; activations are
looked up in the catalog by name only (a request can name no import path, so nothing it names is imported
or executed); files are served only from the static folder and the runs root, after resolving the path
and checking it lies inside; bad requests get a 4xx whose `detail` names the field, a short excerpt of the
value given and what is allowed. The server binds 127.0.0.1 unless the CLI is told otherwise. Before any
route, `actlab.web.guard` refuses a foreign Host header (DNS rebinding), a write that is not same-origin and
an over-long body. Reports built here import no code named in a run (`catalog_only`), and live trainings
answer only the client holding their token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from actlab import __version__
from actlab.errors import ActlabError, excerpt
from actlab.web.guard import Guard, allowed_hosts
from actlab.web.routes import activations, live, runs
from actlab.web.sessions import Busy, LiveManager, warm_up

STATIC = Path(__file__).parent / "static"


def _detail(err: RequestValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {e['msg'].replace('Value error, ', '')} (given {excerpt(e.get('input'))})")
    return "; ".join(parts)


def create_app(runs_root: str | Path = "runs", max_trainings: int = 2, host: str = "127.0.0.1",
               allow_hosts: Iterable[str] = (), warm: bool = True) -> FastAPI:
    """The explorer app: `runs_root` is the only folder whose files it serves besides its own static files.

    `host` is the address the server binds: requests must name it (or a loopback name when it is a loopback
    or wildcard address) in their Host header, or one of `allow_hosts` ("*": any); see `actlab.web.guard`.
    `warm`: at start-up, train two tiny live populations in the background (`sessions.warm_up`), so that the
    first live training's first frame is not held up by the process's cold start."""
    sessions = LiveManager(max_trainings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if warm:
            threading.Thread(target=warm_up, name="live-warm-up", daemon=True).start()
        yield
        sessions.stop_all()  # shutting down: every live training ends at its next epoch

    app = FastAPI(title="actlab explorer", version=__version__, docs_url="/api/docs", openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    app.state.live = sessions

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _detail(err)}, status_code=422)

    @app.exception_handler(ActlabError)
    async def _bad(_: Request, err: ActlabError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(Busy)
    async def _busy(_: Request, err: Busy) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=429)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__, "live": len(sessions.sessions), "max_trainings": sessions.max}

    app.include_router(activations.router(Path(runs_root)))
    app.include_router(live.router(sessions))
    app.include_router(runs.router(Path(runs_root)))
    app.add_middleware(Guard, hosts=allowed_hosts(host, allow_hosts))
    return app
