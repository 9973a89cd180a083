from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import Field

from oms.adapters.db.event_repositories import event_id, parse_event_id
from oms.api import models
from oms.api.deps import Integrators, ReadUow
from oms.api.openapi import answer, problems
from oms.api.routing import JsonBodyRoute
from oms.domain.errors import FieldError, ValidationFailed
from oms.schemas import EVENT_ID_PATTERN

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=JsonBodyRoute)


@router.get("", summary="The event stream, oldest first", response_model=models.EventPage,
            responses=problems(403))
def list_events(
    uow: ReadUow,
    _: Integrators,
    # The pattern is what parse_event_id takes: it answers for `after` like any other check.
    after: Annotated[
        Annotated[str, Field(json_schema_extra={"pattern": EVENT_ID_PATTERN, "maxLength": 32})]
        | None, Query(description="Id of the last event already read")] = None,
    type: Annotated[list[Annotated[str, Field(max_length=64)]] | None, Query(
        max_length=100, description="Exact types or prefixes like order.*")] = None,
    entity_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    try:
        position = parse_event_id(after) if after is not None else None
    except ValueError as exc:
        raise ValidationFailed("after must be an event id",
                               [FieldError("after", "not an event id")]) from exc
    events = uow.events.read(after=position, types=type or [], limit=limit, entity_id=entity_id)
    return answer({
        "items": [
            {"id": e.id, "type": e.type, "entity_id": e.entity_id, "sequence": e.sequence,
             "occurred_at": e.occurred_at.isoformat(), "payload": e.payload}
            for e in events
        ],
        # Where to continue from: the last id read, or the same `after` when nothing was new
        # (written as ids are: its hex digits in lower case).
        "next_after": events[-1].id if events else (
            event_id(*position) if position is not None else None),
        # Committed events that follow once an older transaction ends: ask again shortly.
        "held_back": uow.events.held_back() if len(events) < limit else 0,
    })
