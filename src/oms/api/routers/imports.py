from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from oms.api.deps import Integrators
from oms.api.routing import JsonBodyRoute
from oms.domain.errors import DomainError
from oms.schemas import ImportKind
from oms.services.imports import FileFormat, ImportMode, lines_of, run_import
from oms.services.order_imports import import_orders

router = APIRouter(prefix="/v1/imports", tags=["imports"], route_class=JsonBodyRoute)

MAX_IMPORT_BYTES = 200 * 1024 * 1024


@router.post(
    "/{kind}",
    summary="Import a CSV or JSON Lines file (the raw request body)",
    description=(
        "Send the file as the body with `Content-Type: text/csv` or "
        "`application/x-ndjson` (or `?format=`). Bad rows are reported by line number; "
        "the others are imported. Orders come as JSON Lines, one `POST /v1/orders` body "
        "per line."
    ),
    openapi_extra={"requestBody": {"content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
    }, "required": True}},
)
async def post_import(
    kind: ImportKind,
    request: Request,
    _: Integrators,
    mode: Annotated[ImportMode, Query()] = ImportMode.DELTA,
    format: Annotated[FileFormat | None, Query()] = None,
) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    fmt = format or (FileFormat.JSONL if ("ndjson" in content_type or "jsonl" in content_type)
                     else FileFormat.CSV)
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise DomainError(f"an import file may hold at most {MAX_IMPORT_BYTES} bytes; split it",
                          [], "payload-too-large")
    settings = request.app.state.settings
    if kind == "orders":
        report = await run_in_threadpool(import_orders, request.app.state.engine,
                                         lines_of(body), window=settings.placement_window())
    else:
        report = await run_in_threadpool(
            run_import, request.app.state.engine, kind, lines_of(body), fmt, mode,
            settings.import_chunk_size,
        )
    return report.as_dict()
