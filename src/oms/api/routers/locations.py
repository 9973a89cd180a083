from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from oms.api import models
from oms.api.deps import (
    Admins,
    AnyRole,
    CursorParam,
    Integrators,
    Limit,
    ReadUow,
    decode_cursor,
    page,
)
from oms.api.openapi import answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx
from oms.domain.errors import NotFound
from oms.domain.ids import CODE_PATTERN
from oms.domain.locations import Capability, LocationType
from oms.schemas import LocationIn, location_out
from oms.services import locations

router = APIRouter(prefix="/v1/locations", tags=["locations"], route_class=JsonBodyRoute)
LocationId = Annotated[str, Path(pattern=CODE_PATTERN)]


@router.put("/{location_id}", summary="Create or replace a location",
            response_model=models.Location,
            responses={201: {"model": models.Location, "description": "Created"},
                       **problems(403)})
def put_location(location_id: LocationId, body: LocationIn, request: Request, tx: WriteTx,
                 _: Integrators) -> Response:
    result, created = locations.put_location(
        tx.uow, body.to_domain(location_id),
        allow_private=request.app.state.settings.egress_allow_private)
    return tx.done(result, status=201 if created else 200)


@router.get("/{location_id}", summary="A location", response_model=models.Location,
            responses=problems(404))
def get_location(location_id: LocationId, uow: ReadUow, _: AnyRole) -> Response:
    stored = locations.get_location(uow, location_id)
    return answer(location_out(stored.value, stored.version, stored.updated_at))


@router.get("/{location_id}/callback-secret",
            summary="The secret a DC's or 3PL's fulfilment callbacks are signed with",
            response_model=models.CallbackSecret, responses=problems(403, 404))
def get_callback_secret(location_id: LocationId, uow: ReadUow, _: Admins) -> Response:
    secret = uow.locations.callback_secret(location_id)
    if secret is None:
        raise NotFound(f"no location {location_id!r}")
    return answer({"location_id": location_id, "secret": secret,
                   "signing": "Standard Webhooks: webhook-id, webhook-timestamp, "
                              "webhook-signature"})


@router.get("", summary="Locations, by id", response_model=models.LocationPage)
def list_locations(
    uow: ReadUow,
    _: AnyRole,
    type: Annotated[LocationType | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
    capability: Annotated[Capability | None, Query()] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Response:
    after = decode_cursor(cursor)
    rows = uow.locations.page(
        after=after, limit=limit + 1, type=type.value if type else None, active=active,
        capability=capability,
    )
    items = [location_out(r.value, r.version, r.updated_at) for r in rows]
    return answer(page(items, limit, key=lambda x: x["id"]))
