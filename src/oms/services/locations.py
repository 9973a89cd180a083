"""Use cases of locations (stores, DCs, 3PLs)."""

from __future__ import annotations

from typing import Any

from oms.adapters.db.repositories import Stored
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.errors import NotFound
from oms.domain.events import Event, utcnow
from oms.domain.locations import Location
from oms.schemas import location_out


def put_location(uow: UnitOfWork, location: Location) -> tuple[dict[str, Any], bool]:
    now = utcnow()
    version, created = uow.locations.upsert_many([location], now)[location.id]
    body = location_out(location, version, now)
    uow.record(Event("location.upserted", location.id, version, body, now))
    uow.commit()
    return body, created


def get_location(uow: UnitOfWork, location_id: str) -> Stored[Location]:
    stored = uow.locations.get(location_id)
    if stored is None:
        raise NotFound(f"no location with id {location_id!r}")
    return stored
