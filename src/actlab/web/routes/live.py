"""The Live view: create, stream (server-sent events), pause, resume and stop live trainings."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from actlab.web.live import DATASETS, LiveManager, LiveRequest, Session


def router(live: LiveManager) -> APIRouter:
    r = APIRouter()

    @r.get("/api/datasets")
    async def datasets() -> dict[str, str]:
        return DATASETS

    @r.get("/api/live")
    async def live_list() -> dict[str, Any]:
        return {"max": live.max, "sessions": [{"id": s.id, "state": s.state, "epoch": s.epoch,
                                               "request": s.request.model_dump()} for s in live.sessions.values()]}

    @r.post("/api/live", status_code=201)
    async def live_create(req: LiveRequest) -> dict[str, Any]:
        s = live.create(req)
        return {"id": s.id, "request": s.request.model_dump()}

    def _session(sid: str) -> Session:
        try:
            return live.get(sid)
        except KeyError:
            raise HTTPException(404, f"live training {sid!r} does not exist (finished, stopped or expired)") from None

    @r.get("/api/live/{sid}/events")
    async def live_events(sid: str, request: Request) -> StreamingResponse:
        s = _session(sid)
        if s.state != "pending":
            raise HTTPException(409, f"live training {sid!r} is already streaming to a client")
        live.start(s, asyncio.get_running_loop())

        async def stream():
            try:
                yield f"event: session\ndata: {json.dumps({'id': s.id})}\n\n"
                while True:
                    try:
                        event, data = await asyncio.wait_for(s.queue.get(), timeout=10)
                    except TimeoutError:
                        if await request.is_disconnected():
                            break
                        yield ": keep-alive\n\n"
                        continue
                    yield f"event: {event}\ndata: {json.dumps(data)}\n\n"
                    if event in ("done", "stopped", "error"):
                        break
            finally:  # the client went away (or the training ended): stop the worker
                s.stop.set()
                s.running.set()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @r.post("/api/live/{sid}/{action}")
    async def live_control(sid: str, action: Literal["pause", "resume"]) -> dict[str, str]:
        """Pause (the worker waits between epochs) or resume a live training."""
        s = _session(sid)
        if action == "pause":
            s.running.clear()
        else:
            s.running.set()
        s.state = "paused" if action == "pause" else "running"
        return {"id": sid, "state": s.state}

    @r.delete("/api/live/{sid}")
    async def live_stop(sid: str) -> dict[str, str]:
        s = _session(sid)
        s.stop.set()
        s.running.set()
        if s.thread is None:  # never started: nothing will remove it
            live.sessions.pop(sid, None)
        return {"id": sid, "state": "stopping"}

    return r
