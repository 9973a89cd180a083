"""The OpenAPI document tells what each route answers, its errors included.

How answers are made: every route renders its own answer and returns a `Response`, which
FastAPI sends as it is. State-changing routes answer with `tx.done(...)`, which stores the
answer with the change; reads answer with `answer(...)`, which renders the same way. The
decorator's `response_model=` (a model of `oms.api.models`) only documents the answer: FastAPI
neither re-validates nor filters it at run time, since filtering would silently drop a field
a model forgot and re-validating costs time on every request. That the models are true is
proven by a test that checks real answers against this document (tests/api/test_openapi.py).

Errors are problem+json (`oms.api.models.Problem`). A route names in its decorator the
errors of its own logic (`responses=problems(403, 404)`); `install` adds to every operation
those of the machinery all routes share, as that machinery decides them:

- 401 on /v1 (AuthenticationMiddleware), with `WWW-Authenticate`;
- 422 on every route (parameters, bodies, and the NUL checks of the app's dependencies),
  in place of FastAPI's own `HTTPValidationError`;
- 400 (not JSON), 413 and 415 where there is a body;
- on routes that take the `Idempotency-Key` header (those that run in a `WriteTx`): 400 (a
  key of the wrong length), 409 with `Retry-After` (a request with the key still runs), 422
  (the key was used with another request), and `Idempotent-Replayed` on their answers;
- 503 with `Retry-After` on every route (the database was busy or could not be reached).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Response

from oms.api.auth import PROTECTED_PREFIX
from oms.api.models import Problem
from oms.api.problems import PROBLEM_JSON
from oms.api.transactions import JSON_TYPE, MAX_KEY_LENGTH, render

REF = "#/components/schemas/"

#: What each error status means, when a route gives no reason of its own.
REASONS = {
    400: "The body is not valid JSON",
    401: "No API key was sent, or it is unknown or revoked",
    403: "The key's role or locations do not allow this",
    404: "Not found, or not visible to this key",
    409: "Not possible in the resource's current state",
    413: "The body is larger than the limit",
    415: "The body's content type is not one this route takes",
    422: "A parameter or the body is not valid",
    503: "The database was busy or could not be reached: send the request again (with the "
         "same Idempotency-Key, if it had one)",
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again",
                                "schema": {"type": "integer", "minimum": 0}}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "`Bearer`",
                                          "schema": {"type": "string"}}}
#: The header of `WriteTx`: a route that has it runs in a transaction that may replay.
IDEMPOTENCY_KEY = "Idempotency-Key"
_REPLAYED = {"Idempotent-Replayed": {
    "description": "`true` when this is the stored answer of an earlier request with the same "
                   "Idempotency-Key", "schema": {"type": "string", "enum": ["true"]}}}
#: The `headers` of an answer that names where the resource it made is.
LOCATION = {"Location": {"description": "The path of the resource",
                         "schema": {"type": "string"}}}


def answer(body: Any) -> Response:
    """A read's answer (200), rendered as `tx.done` renders a change's (see the module's
    docstring): FastAPI sends it as it is."""
    return Response(render(body), 200, {"content-type": JSON_TYPE})


def problems(*errors: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the error statuses its own logic answers, each with the
    reason it has here, or the usual one."""
    documented: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        status, reason = error if isinstance(error, tuple) else (error, REASONS[error])
        documented[status] = {"model": Problem, "description": reason}
    return documented


def install(app: FastAPI) -> None:
    """Have `app.openapi()` give every operation the errors of the machinery it runs
    through, all as problem+json."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_errors(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_errors(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=REF + "{model}", mode="serialization")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for path, operations in document["paths"].items():
        for operation in operations.values():
            _add_shared_errors(path, operation)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": REF + "Problem"}}}
            operation["responses"] = dict(sorted(operation["responses"].items()))
    # FastAPI's own 422 answer, no longer referred to (its item first, then the item's parts).
    for name in ("HTTPValidationError", "ValidationError"):
        if f'"{REF}{name}"' not in json.dumps(document):
            schemas.pop(name, None)


def _add_shared_errors(path: str, operation: dict[str, Any]) -> None:
    body = operation.get("requestBody", {}).get("content", {})
    if path.startswith(PROTECTED_PREFIX):
        _add(operation, 401, REASONS[401], _WWW_AUTHENTICATE)
    if JSON_TYPE in body:
        _add(operation, 400, REASONS[400])
    if body:
        _add(operation, 413, REASONS[413])
        _add(operation, 415, REASONS[415])
    _add(operation, 422, REASONS[422])
    if any(p["in"] == "header" and p["name"] == IDEMPOTENCY_KEY
           for p in operation.get("parameters", [])):
        _add(operation, 400, f"The {IDEMPOTENCY_KEY} is not 1 to {MAX_KEY_LENGTH} printable "
                             "ASCII characters")
        _add(operation, 409, f"A request with this {IDEMPOTENCY_KEY} is still running",
             _RETRY_AFTER)
        _add(operation, 422, f"This {IDEMPOTENCY_KEY} was used with another request")
        for status, response in operation["responses"].items():
            if int(status) < 300:
                response.setdefault("headers", {}).update(_REPLAYED)
    _add(operation, 503, REASONS[503], _RETRY_AFTER)


def _add(operation: dict[str, Any], status: int, reason: str,
         headers: dict[str, Any] | None = None) -> None:
    responses = operation["responses"]
    response = responses.get(str(status))
    if response is None or response.get("description") in (None, "Validation Error"):
        responses[str(status)] = response = {"description": reason}
    elif reason not in response["description"]:
        response["description"] += f"; or: {reason[0].lower()}{reason[1:]}"
    if headers:
        response.setdefault("headers", {}).update(headers)
