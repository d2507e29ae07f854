"""The explorer's front door: an ASGI middleware that refuses, before any route runs,

- a request whose `Host` is not a name the server was bound to (DNS rebinding: a page on evil.example that
  resolves its name to 127.0.0.1 sends `Host: evil.example`), with 403 unless the user allowed the host;
- a write (any method but GET, HEAD and OPTIONS) that is not same-origin: it must carry the custom header
  `X-Actlab: 1` (which a cross-origin page cannot send without a CORS preflight this server never grants),
  and an `Origin`, when present, must be this server's own (scheme http(s), the same host and port);
- a request body over `max_body` bytes, with 413 before anything parses it (a declared Content-Length is
  checked up front; a chunked body is counted as it arrives).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

WRITE_HEADER = "x-actlab"
MAX_BODY = 64 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


_HOST = re.compile(r"^(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9.\-]+)|(?P<bare6>[0-9a-f:]+))(?::\d{1,5})?$")


def hostname(host: str) -> str:
    """The name part of a Host header value (no port; IPv6 without its brackets), lower-cased; "" for a value
    that is not a host name or address with an optional port (e.g. `127.0.0.1:80@evil`)."""
    host = host.strip().lower()
    if host.count(":") > 1 and not host.startswith("["):  # a bare IPv6 address, no port
        return host if re.fullmatch(r"[0-9a-f:.]+", host) else ""
    m = _HOST.match(host)
    if m is None:
        return ""
    return m.group("v6") or m.group("name") or m.group("bare6") or ""


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The Host names a server bound to `bind` answers: the bound name, the loopback names when it is a
    loopback or wildcard address, and `extra` (`--allow-host`; "*" allows any)."""
    names = {hostname(bind), *("*" if h.strip() == "*" else hostname(h) for h in extra)} - {""}
    if names & {*LOOPBACK, "0.0.0.0", "::"}:
        names.update(LOOPBACK)
    return frozenset(names)


class Guard:
    """Wraps the app; see the module's docstring."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str], max_body: int = MAX_BODY):
        self.app, self.hosts, self.max_body = app, frozenset(hosts), max_body

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if "*" not in self.hosts and hostname(host) not in self.hosts:
            if scope["type"] == "websocket":  # no route takes one today; refuse a foreign Host all the same
                return await send({"type": "websocket.close", "code": 1008})
            return await _refuse(send, 403, f"Host {host[:80]!r} is not one this server answers (allowed: "
                                 f"{', '.join(sorted(self.hosts))}); start it with --allow-host NAME to add one")
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        if scope["method"] not in SAFE_METHODS:
            if headers.get(WRITE_HEADER) != "1":
                return await _refuse(send, 403, f"a {scope['method']} request must carry the header "
                                     "'X-Actlab: 1' (the explorer's own page sends it; other sites cannot)")
            origin = headers.get("origin")
            parts = urlsplit(origin or "")
            if origin is not None and (parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower()):
                return await _refuse(send, 403, f"Origin {origin[:80]!r} is not this server ({host[:80]!r}): "
                                     "writes are accepted from the explorer's own page only")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _refuse(send, 413, f"request body of {length[:20]} bytes is over the limit of "
                                 f"{self.max_body} bytes")
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge(413, f"request body over the limit of {self.max_body} bytes")
            return msg

        async def tracked(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _refuse(send, 413, f"request body over the limit of {self.max_body} bytes")


class _TooLarge(HTTPException):
    """A chunked body went past the limit (an HTTPException, so FastAPI's body parsing passes it on as 413)."""


async def _refuse(send: Callable[[Message], Awaitable[None]], status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
