"""RFC 9457 problem details: every error the API answers is one of these."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from oms.adapters.db.errors import is_transient
from oms.domain.errors import DomainError, FieldError
from oms.json_text import JsonSyntaxError, JsonValueError
from oms.logs import REQUEST_ID

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:oms:problem:"

_STATUS = {
    "validation-error": 422,
    "invalid-request": 400,
    "not-found": 404,
    "conflict": 409,
    "insufficient-stock": 409,
    "invalid-state": 409,
    "upstream-failed": 502,
    "payment-declined": 402,
    "approval-required": 409,
    "unauthorized": 401,
    "forbidden": 403,
    "idempotency-key-reused": 422,
    "idempotency-key-in-use": 409,
    "method-not-allowed": 405,
    "payload-too-large": 413,
    "unsupported-media-type": 415,
    "internal-error": 500,
    "service-unavailable": 503,
}

_TITLE = {
    "validation-error": "The request is not valid",
    "invalid-request": "The request cannot be processed",
    "not-found": "Not found",
    "conflict": "Conflict with the current state",
    "insufficient-stock": "Not enough stock",
    "invalid-state": "Not possible in the resource's current state",
    "upstream-failed": "A provider refused or could not be reached",
    "payment-declined": "The payment was declined",
    "approval-required": "A manager's approval is needed",
    "unauthorized": "Authentication required",
    "forbidden": "Not allowed",
    "idempotency-key-reused": "Idempotency key reused with another request",
    "idempotency-key-in-use": "A request with this idempotency key is still running",
    "method-not-allowed": "Method not allowed",
    "payload-too-large": "Payload too large",
    "unsupported-media-type": "Unsupported media type",
    "internal-error": "Internal error",
    "service-unavailable": "Busy: try again shortly",
}


def problem(
    kind: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    *,
    status: int | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    code = status or _STATUS.get(kind, 400)
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind,
        "title": _TITLE.get(kind, "Error"),
        "status": code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    body.update(extensions or {})
    return JSONResponse(body, status_code=code, media_type=PROBLEM_JSON, headers=headers)


def domain_problem(exc: DomainError, path: str) -> JSONResponse:
    """The answer to a refusal of the business rules."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.kind == "unauthorized" else None
    if exc.kind == "idempotency-key-in-use":
        headers = {"Retry-After": "1"}
    return problem(exc.kind, exc.detail, exc.errors, instance=path, headers=headers,
                   extensions=exc.extensions)


def database_problem(exc: DBAPIError | SQLAlchemyTimeout, method: str, path: str
                     ) -> JSONResponse:
    """A deadlock, a lock held past lock_timeout, a lost connection, every connection in use:
    the same request will most likely pass in a moment (503). Anything else is a bug."""
    if isinstance(exc, SQLAlchemyTimeout) or is_transient(exc):
        log.warning("transient database failure on %s %s: %s", method, path,
                    getattr(exc, "orig", exc))
        return problem("service-unavailable",
                       "the database was busy or could not be reached; send the request "
                       "again, with the same Idempotency-Key if it had one (a deadlock or a "
                       "lock waited for too long changed nothing)",
                       instance=path, headers={"Retry-After": "1"})
    log.error("database error on %s %s", method, path, exc_info=exc)
    return problem("internal-error", "an unexpected error occurred; it has been logged",
                   instance=path)


#: The methods a route may take, in the order `Allow` names them.
METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method the app takes at the request's path. Starlette's 405 names only those of
    the first route whose path matches, where a path has a route per method."""
    routes = request.app.router.routes
    return ", ".join(method for method in METHODS if any(
        route.matches({**request.scope, "method": method})[0] is Match.FULL
        for route in routes))


def _field(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return domain_problem(exc, request.url.path)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        return database_problem(exc, request.method, request.url.path)

    @app.exception_handler(SQLAlchemyTimeout)
    async def _pool(request: Request, exc: SQLAlchemyTimeout) -> JSONResponse:
        return database_problem(exc, request.method, request.url.path)

    @app.exception_handler(JsonSyntaxError)
    async def _not_json(request: Request, exc: JsonSyntaxError) -> JSONResponse:
        return problem("invalid-request", f"the body is not valid JSON: {exc}",
                       [FieldError("body", str(exc))], instance=request.url.path,
                       extensions={"line": exc.line, "column": exc.column})

    @app.exception_handler(JsonValueError)
    async def _json_value(request: Request, exc: JsonValueError) -> JSONResponse:
        field = ".".join(map(str, exc.path)) or "body"
        return problem("validation-error", f"{field}: {exc.message}",
                       [FieldError(field, exc.message)], instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(_field(e.get("loc", ())), _message(e)) for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem("invalid-request", "the body is not valid JSON", errors,
                           status=400, instance=request.url.path)
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        return problem("validation-error", summary or "invalid request", errors,
                       instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "unauthorized", 403: "forbidden", 404: "not-found",
                405: "method-not-allowed", 413: "payload-too-large",
                415: "unsupported-media-type"}.get(exc.status_code, "invalid-request")
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem(kind, str(exc.detail), status=exc.status_code,
                       instance=request.url.path, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Sent from outside the middleware that adds it to every other answer.
        request_id = REQUEST_ID.get()
        return problem("internal-error", "an unexpected error occurred; it has been logged",
                       instance=request.url.path,
                       headers={"X-Request-Id": request_id} if request_id else None)
