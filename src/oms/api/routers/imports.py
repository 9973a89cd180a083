from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from oms.api import models
from oms.api.deps import Integrators
from oms.api.openapi import answer, problems
from oms.api.problems import PROBLEM_JSON, TYPE_PREFIX, problem
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import IdempotencyKey, checked_key
from oms.domain.access import Principal
from oms.domain.errors import DomainError, FieldError, ValidationFailed
from oms.domain.events import utcnow
from oms.schemas import ImportKind
from oms.services import import_runs
from oms.services.import_runs import ImportInProgress, Sender
from oms.services.imports import (
    FileFormat,
    ImportFile,
    ImportInterrupted,
    ImportMode,
    run_import,
)
from oms.services.order_imports import import_orders

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/imports", tags=["imports"], route_class=JsonBodyRoute)

CSV_TYPES = ("text/csv",)
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
#: Bodies that say nothing of their format: `?format=` names it.
UNTYPED = ("", "application/octet-stream", "text/plain")


DESCRIPTION = (
    "Send the file as the body with `Content-Type: text/csv` or `application/x-ndjson` "
    "(or as `application/octet-stream` with `?format=`). The whole file is read first: "
    "a CSV without its header line, or a line past the reader's limits (a field over "
    "131,072 characters, JSON nested deeper than 32 levels) refuses the file (422) and "
    "nothing is applied. Bad rows are reported by line number; the others are applied "
    "in chunks, each committed with the import's progress. Send an `Idempotency-Key`: "
    "a resend with the same key and file resumes an interrupted import after its last "
    "applied chunk, or replays the report of a completed one."
)
ORDERS_DESCRIPTION = (
    "Orders come as JSON Lines, one `POST /v1/orders` body per line, and are placed LIVE "
    "(routed, stock reserved) unless the line says `\"historical\": true`."
)


def _file_types(kind: ImportKind) -> dict[str, Any]:
    """The request body of an import: the file, of the types the kind is read from."""
    typed = JSONL_TYPES if kind == "orders" else CSV_TYPES + JSONL_TYPES
    return {"requestBody": {"content": {
        **{t: {"schema": {"type": "string", "minLength": 1}} for t in typed},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                                "minLength": 1}},
    }, "required": True}}


_RESPONSES = problems(
    403,
    (409, "An import with this Idempotency-Key is still running"),
    (413, "The file is larger than OMS_MAX_IMPORT_BYTES"),
    (415, "The body's Content-Type is not one the kind is read from, or disagrees with "
          "`?format=`"),
    (422, "The file cannot be read (not UTF-8, no CSV header, a line past the reader's "
          "limits), or the Idempotency-Key was used for another file"),
    (503, "The import stopped part way: the answer says which lines were applied; resend "
          "it with the same Idempotency-Key to resume"),
)


async def _import(kind: ImportKind, request: Request, principal: Principal, mode: ImportMode,
                  format: FileFormat | None, idempotency_key: str | None) -> JSONResponse:
    fmt = _format_of(request.headers.get("content-type", ""), format, kind)
    key = checked_key(idempotency_key) if idempotency_key is not None else None
    settings = request.app.state.settings
    sender = Sender(api_key_id=principal.key_id, idempotency_key=key,
                    lease=dt.timedelta(seconds=settings.import_lease_seconds),
                    key_ttl=dt.timedelta(hours=settings.idempotency_ttl_hours))
    # The body is limited by BodyLimitMiddleware (OMS_MAX_IMPORT_BYTES): a declared length
    # over it is refused before this runs, and a stream that passes it stops with 413.
    with ImportFile.spooled() as file:
        try:
            async for chunk in request.stream():
                file.write(chunk)
        except ClientDisconnect as exc:
            raise DomainError("the request body ended before it was complete") from exc
        # No file at all is no import (a CSV's reader refuses it too: it lacks its header).
        if file.size == 0 and fmt is FileFormat.JSONL:
            raise ValidationFailed(f"the file is empty: a JSON Lines file of {kind} holds one "
                                   "JSON object per line", [FieldError("body", "empty")])
        engine = request.app.state.engine
        try:
            if kind == "orders":
                report = await run_in_threadpool(import_orders, engine, file, sender=sender,
                                                 window=settings.placement_window())
            else:
                report = await run_in_threadpool(
                    run_import, engine, kind, file, fmt, mode, settings.import_chunk_size,
                    sender=sender)
        except ImportInProgress as exc:
            return problem(exc.kind, exc.detail, instance=request.url.path,
                           headers={"Retry-After": str(exc.retry_after)})
        except ImportInterrupted as exc:
            return _interrupted(exc, request.url.path)
    headers = {"Idempotent-Replayed": "true"} if report.replayed else None
    return JSONResponse(report.as_dict(), headers=headers)


Mode = Annotated[ImportMode, Query(description="`full`: what the file leaves out is "
                                               "removed or zeroed; `delta`: only its rows "
                                               "change")]
Format = Annotated[FileFormat | None, Query(description="The file's format, for a body sent "
                                                        "as application/octet-stream")]


# An operation per kind, each documenting the file types that kind is read from; each kind
# is a path of its own, so that a POST to an import's path is 405, not an unknown kind.
TableKind = Literal["products", "locations", "inventory"]
TABLE_KINDS: tuple[TableKind, ...] = ("products", "locations", "inventory")


def _add_import_route(kind: TableKind) -> None:
    async def post_import(request: Request, principal: Integrators, mode: Mode = ImportMode.DELTA,
                          format: Format = None, idempotency_key: IdempotencyKey = None
                          ) -> JSONResponse:
        return await _import(kind, request, principal, mode, format, idempotency_key)

    router.add_api_route(f"/{kind}", post_import, methods=["POST"],
                         summary=f"Import {kind} from a CSV or JSON Lines file (the raw "
                                 "request body)",
                         description=DESCRIPTION, response_model=models.ImportReport,
                         openapi_extra=_file_types(kind), responses=_RESPONSES)


for _kind in TABLE_KINDS:
    _add_import_route(_kind)


@router.post("/orders", summary="Import orders from a JSON Lines file (the raw request body)",
             description=f"{DESCRIPTION} {ORDERS_DESCRIPTION}",
             response_model=models.ImportReport, openapi_extra=_file_types("orders"),
             responses=_RESPONSES)
async def post_order_import(
    request: Request,
    principal: Integrators,
    format: Annotated[Literal[FileFormat.JSONL] | None, Query(
        description="`jsonl`, for a body sent as application/octet-stream")] = None,
    # Resending the same file with the same key resumes or replays it.
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _import("orders", request, principal, ImportMode.DELTA, format,
                         idempotency_key)


# Import ids are UUIDs: no path of an import's kind is read as one.
@router.get("/{import_id:uuid}", summary="An import's report and how far it got",
            response_model=models.ImportRun, responses=problems(403, 404))
async def get_import(import_id: uuid.UUID, request: Request, _: Integrators) -> Response:
    run = await run_in_threadpool(import_runs.get_run, request.app.state.engine,
                                  str(import_id))
    return answer({
        "import_id": run.id, "status": import_runs.status_of(run, utcnow()), "kind": run.kind,
        "mode": run.mode, "format": run.format, **run.report,
        "errors_truncated": run.report["failed"] > len(run.report["errors"]),
        "applied_through_line": run.applied_through_line, "resumed_after_line": None,
        "created_at": run.created_at.isoformat(), "updated_at": run.updated_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    })


def _format_of(content_type: str, asked: FileFormat | None, kind: str) -> FileFormat:
    """The file's format from its Content-Type, or from `?format=` for an untyped body."""
    media = content_type.split(";", 1)[0].strip().lower()
    by_type = (FileFormat.CSV if media in CSV_TYPES
               else FileFormat.JSONL if media in JSONL_TYPES else None)
    accepted = ", ".join((*JSONL_TYPES,) if kind == "orders" else (*CSV_TYPES, *JSONL_TYPES))
    if by_type is None and not (media in UNTYPED and asked is not None):
        hint = (" (application/json is one JSON document; an import takes one JSON object "
                "per line)" if media == "application/json" else "")
        raise DomainError(
            f"an import takes {accepted}, or application/octet-stream with ?format=, not "
            f"{media or 'a body without Content-Type'}{hint}", [], "unsupported-media-type")
    fmt = by_type or asked
    assert fmt is not None
    if asked is not None and asked is not fmt:
        raise DomainError(f"Content-Type {media} is not the format {asked.value} that ?format= "
                          "names", [], "unsupported-media-type")
    if kind == "orders" and fmt is not FileFormat.JSONL:
        raise DomainError(f"orders are imported as JSON Lines ({accepted}), one order per line",
                          [], "unsupported-media-type")
    return fmt


def _interrupted(exc: ImportInterrupted, instance: str) -> JSONResponse:
    """The import stopped part way: say which lines were applied and how to finish it."""
    report = exc.report
    transient = isinstance(exc.cause, DBAPIError)
    if not transient:
        log.error("import %s stopped", report.import_id, exc_info=exc.cause)
    status = 503 if transient else 500
    body = {
        "type": TYPE_PREFIX + "import-interrupted",
        "title": "The import stopped part way",
        "status": status,
        "detail": (f"import {report.import_id} stopped after line "
                   f"{report.applied_through_line}: lines up to it were applied (but those "
                   "listed in errors), none after it; send the same file again with the same "
                   "Idempotency-Key to resume"),
        "instance": instance,
        "import_id": report.import_id,
        "applied_through_line": report.applied_through_line,
        "report": report.as_dict(),
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON,
                        headers={"Retry-After": "1"} if transient else None)
