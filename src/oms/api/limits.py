"""Request bodies are refused (413) past a size limit before they are read whole: at once
when the declared Content-Length is over it, else as soon as the bytes received pass it.
Imports take files and have a limit of their own."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms.api.problems import problem

IMPORTS_PREFIX = "/v1/imports/"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes ({setting}); "
                              "split it")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_import_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_import_bytes = max_import_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = ((self.max_import_bytes, "OMS_MAX_IMPORT_BYTES")
                          if scope["path"].startswith(IMPORTS_PREFIX)
                          else (self.max_body_bytes, "OMS_MAX_BODY_BYTES"))
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = problem("payload-too-large", BodyTooLarge(limit, setting).detail,
                               instance=scope["path"], headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        await self.app(scope, limited, send)
