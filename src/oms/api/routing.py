"""The route class of every router: a body a route reads as JSON must be JSON, sent as JSON.

FastAPI hands a body of another content type to the model as bytes ("Input should be a valid
dictionary") and reads JSON with Python's lenient parser. Here a route that takes JSON answers
415 to another content type, and its body is read by `oms.json_text` before FastAPI sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from oms import json_text

JSON = "application/json"


def is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


class _StrictJsonRequest(Request):
    """A request whose body, read as JSON, goes through `oms.json_text`."""

    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = json_text.loads(await self.body())
        return self._strict_json


class JsonBodyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None or isinstance(self.body_field.field_info, params.Form):
            return handler

        async def read_json_first(request: Request) -> Response:
            request = _StrictJsonRequest(request.scope, request.receive)
            if await request.body():
                content_type = request.headers.get("content-type", "")
                if not is_json(content_type):
                    raise HTTPException(415, f"this route takes {JSON}, not "
                                             f"{content_type or 'a body without a content type'}")
                # Refusals (JsonSyntaxError, JsonValueError) are answered by api.problems.
                await request.json()
            return await handler(request)

        return read_json_first
