from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from oms.api.deps import (
    Admins,
    AnyRole,
    CursorParam,
    Integrators,
    Limit,
    ReadUow,
    Uow,
    decode_cursor,
    page,
)
from oms.api.routing import JsonBodyRoute
from oms.domain.errors import NotFound
from oms.domain.ids import CODE_PATTERN
from oms.domain.locations import Capability, LocationType
from oms.schemas import LocationIn, location_out
from oms.services import locations

router = APIRouter(prefix="/v1/locations", tags=["locations"], route_class=JsonBodyRoute)
LocationId = Annotated[str, Path(pattern=CODE_PATTERN)]


@router.put("/{location_id}", summary="Create or replace a location")
def put_location(location_id: LocationId, body: LocationIn, uow: Uow, _: Integrators,
                 response: Response) -> dict[str, Any]:
    result, created = locations.put_location(uow, body.to_domain(location_id))
    response.status_code = 201 if created else 200
    return result


@router.get("/{location_id}", summary="A location")
def get_location(location_id: LocationId, uow: ReadUow, _: AnyRole) -> dict[str, Any]:
    stored = locations.get_location(uow, location_id)
    return location_out(stored.value, stored.version, stored.updated_at)


@router.get("/{location_id}/callback-secret",
            summary="The secret a DC's or 3PL's fulfilment callbacks are signed with")
def get_callback_secret(location_id: LocationId, uow: ReadUow, _: Admins) -> dict[str, Any]:
    secret = uow.locations.callback_secret(location_id)
    if secret is None:
        raise NotFound(f"no location {location_id!r}")
    return {"location_id": location_id, "secret": secret,
            "signing": "Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature"}


@router.get("", summary="Locations, by id")
def list_locations(
    uow: ReadUow,
    _: AnyRole,
    type: Annotated[LocationType | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
    capability: Annotated[Capability | None, Query()] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    after = decode_cursor(cursor)
    rows = uow.locations.page(
        after=after, limit=limit + 1, type=type.value if type else None, active=active,
        capability=capability,
    )
    items = [location_out(r.value, r.version, r.updated_at) for r in rows]
    return page(items, limit, key=lambda x: x["id"])
