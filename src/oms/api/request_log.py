"""Each request gets an id (the caller's `X-Request-Id` when it is a sane one), returned in
the answer's `X-Request-Id` header and carried by every log line written while it is
served; and one access log line, with the path but never the query string (searches put
customers' emails there)."""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms.domain.ids import new_id
from oms.logs import REQUEST_ID

HEADER = "X-Request-Id"
#: What a caller's id may be: printable, no spaces, short enough to log.
SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

access_log = logging.getLogger("oms.access")


def request_id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if SANE_ID.fullmatch(given):
                return given
    return new_id()


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        # Each request runs in a task of its own, so the id never leaks into another
        # request. On an error it stays set: the error handler's log line carries it too.
        REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            client = scope.get("client")
            path = quote(scope["path"])  # percent-encoded: no line breaks in a text log
            access_log.log(
                logging.ERROR if status >= 500 else logging.INFO,
                "%s %s %d", scope["method"], path, status,
                extra={"method": scope["method"], "path": path, "status": status,
                       "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                       "client": client[0] if client else None})
