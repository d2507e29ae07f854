"""The Live view: create, stream (server-sent events), pause, resume and stop live trainings."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from actlab.web.sessions import (
    DATASETS,
    FEATURES,
    GAN_DATASETS,
    PRESETS,
    LiveManager,
    LiveRequest,
    Session,
    check,
    preview,
)

Token = Annotated[str, Header(alias="X-Live-Token", max_length=100,
                              description="The secret `token` returned when the live training was created.")]


def router(live: LiveManager) -> APIRouter:
    r = APIRouter()

    @r.get("/api/datasets")
    async def datasets() -> dict[str, str]:
        """The live view's datasets and the actlab source behind each (the GAN's mixtures last)."""
        return DATASETS | {name: name for name in GAN_DATASETS}

    @r.get("/api/live/presets")
    async def presets() -> dict[str, Any]:
        """Each dataset's settings that show its point (the live view's defaults when a dataset is picked), and the
        input features a classifier can be given (name: label)."""
        return {"datasets": PRESETS, "features": {k: label for k, (label, _) in FEATURES.items()}}

    @r.post("/api/live/preview")
    async def live_preview(req: LiveRequest) -> dict[str, Any]:
        """What a live training would be given, without training: its data (drawn before Start), the arms' labels
        and colours, the layer widths. Checked as a training's request is."""
        return await asyncio.to_thread(preview, check(req))

    @r.get("/api/live")
    async def live_list(token: Token = "") -> dict[str, Any]:
        """How many live trainings run, and the caller's own (those whose token it sends)."""
        return {"max": live.max, "running": len(live.sessions),
                "sessions": [{"id": s.id, "state": s.state, "epoch": s.epoch, "request": s.request.model_dump()}
                             for s in live.owned(token)]}

    @r.post("/api/live", status_code=201)
    async def live_create(req: LiveRequest) -> dict[str, Any]:
        """Create a live training; the answer's `token` is its secret, needed by every later request on it."""
        s = live.create(req)
        return {"id": s.id, "token": s.token, "request": s.request.model_dump()}

    def _session(sid: str, token: str) -> Session:
        try:
            return live.get(sid, token)
        except KeyError:
            raise HTTPException(404, f"no live training {sid[:40]!r} for this client (finished, stopped, expired, "
                                "or created by another client: send its token)") from None

    @r.get("/api/live/{sid}/events")
    async def live_events(sid: str, request: Request, token: str = Query("", max_length=100)) -> StreamingResponse:
        """The training's events (server-sent); `token` in the query, as EventSource sends no headers."""
        s = _session(sid, token)
        if s.state != "pending":
            raise HTTPException(409, f"live training {sid!r} is already streaming to a client")
        live.start(s, asyncio.get_running_loop())

        async def stream():
            try:
                yield f"event: session\ndata: {json.dumps({'id': s.id})}\n\n"
                quiet = 0.0
                while not live.closing.is_set():
                    try:
                        event, data = await asyncio.wait_for(s.queue.get(), timeout=0.5)
                    except TimeoutError:
                        quiet += 0.5
                        if quiet >= 10:  # a keep-alive every 10 s without events, and a check the client is there
                            quiet = 0.0
                            if await request.is_disconnected():
                                break
                            yield ": keep-alive\n\n"
                        continue
                    quiet = 0.0
                    yield f"event: {event}\ndata: {json.dumps(data)}\n\n"
                    if event in ("done", "stopped", "error"):
                        break
            finally:  # the client went away (or the training ended): stop the worker
                s.stop.set()
                s.running.set()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @r.post("/api/live/{sid}/{action}")
    async def live_control(sid: str, action: Literal["pause", "resume", "step"], token: Token = "") -> dict[str, str]:
        """Pause (the worker waits between epochs), resume, or step (one more epoch, while paused) a live
        training that is streaming."""
        s = _session(sid, token)
        if s.state == "pending":  # its stream is not open yet: a state change now would make it unstreamable
            raise HTTPException(409, f"live training {sid[:40]!r} has not started: open its event stream first")
        if action == "step":
            if s.state != "paused":
                raise HTTPException(409, f"live training {sid[:40]!r} is {s.state}: pause it before stepping")
            s.steps = min(s.steps + 1, 50)
            return {"id": sid, "state": s.state}
        if action == "pause":
            s.running.clear()
        else:
            s.running.set()
        s.state = "paused" if action == "pause" else "running"
        return {"id": sid, "state": s.state}

    @r.delete("/api/live/{sid}")
    async def live_stop(sid: str, token: Token = "") -> dict[str, str]:
        s = _session(sid, token)
        s.stop.set()
        s.running.set()
        if s.thread is None:  # never started: nothing will remove it
            live.sessions.pop(sid, None)
        return {"id": sid, "state": "stopping"}

    return r
