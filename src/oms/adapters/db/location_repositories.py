"""Locations, on the unit of work's connection (like every repository, the only code that
writes their SQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.engine import Connection, RowMapping

from oms.adapters.db import tables as t
from oms.adapters.db.stored import Stored
from oms.adapters.db.upsert import insert_for
from oms.domain.ids import new_webhook_secret
from oms.domain.locations import Address, Capability, Location, LocationType

CAPABILITY_COLUMN = {
    Capability.SHIP: "can_ship",
    Capability.PICKUP: "can_pickup",
    Capability.RETURNS: "can_return",
}


def location_row(location: Location) -> dict[str, Any]:
    a = location.address
    return {
        "id": location.id,
        "type": location.type.value,
        "name": location.name,
        "line1": a.line1,
        "line2": a.line2,
        "city": a.city,
        "region": a.region,
        "postal_code": a.postal_code,
        "country": a.country,
        "lat": a.lat,
        "lon": a.lon,
        **{CAPABILITY_COLUMN[c]: c in location.capabilities for c in Capability},
        "priority": location.priority,
        "active": location.active,
        "timezone": location.timezone,
        "fulfillment_callback_url": location.fulfillment_callback_url,
    }


class LocationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def upsert_many(
        self, locations: Sequence[Location], now: dt.datetime
    ) -> dict[str, tuple[int, bool]]:
        stmt = insert_for(self.conn, t.locations)
        # The callback secret is made once, with the location, and never overwritten here.
        updatable = [c.name for c in t.locations.c
                     if c.name not in ("id", "created_at", "version", "callback_secret")]
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.locations.c.id],
            set_={**{name: stmt.excluded[name] for name in updatable},
                  "version": t.locations.c.version + 1},
        ).returning(t.locations.c.id, t.locations.c.version)
        params = [
            {**location_row(loc), "callback_secret": new_webhook_secret(), "version": 1,
             "created_at": now, "updated_at": now}
            for loc in locations
        ]
        return {r.id: (r.version, r.version == 1) for r in self.conn.execute(stmt, params)}

    def get(self, location_id: str) -> Stored[Location] | None:
        row = self.conn.execute(
            select(t.locations).where(t.locations.c.id == location_id)
        ).mappings().first()
        return None if row is None else _location(row)

    def existing(self, ids: Iterable[str]) -> set[str]:
        ids = list(set(ids))
        return set(self.conn.scalars(select(t.locations.c.id).where(t.locations.c.id.in_(ids))))

    def revision(self) -> str:
        """Changes whenever a location is created or changed."""
        count, versions = self.conn.execute(
            select(func.count(), func.coalesce(func.sum(t.locations.c.version), 0))).one()
        return f"{count}:{versions}"

    def callback(self, location_id: str) -> tuple[str, str] | None:
        """The URL and signing secret a DC or 3PL is told of its requests with."""
        row = self.conn.execute(
            select(t.locations.c.fulfillment_callback_url, t.locations.c.callback_secret)
            .where(t.locations.c.id == location_id)).first()
        if row is None or row.fulfillment_callback_url is None or row.callback_secret is None:
            return None
        return row.fulfillment_callback_url, row.callback_secret

    def callback_secret(self, location_id: str) -> str | None:
        return self.conn.scalar(select(t.locations.c.callback_secret)
                                .where(t.locations.c.id == location_id))

    def page(
        self,
        *,
        after: str | None,
        limit: int,
        type: str | None = None,
        active: bool | None = None,
        capability: Capability | None = None,
    ) -> list[Stored[Location]]:
        stmt = select(t.locations).order_by(t.locations.c.id).limit(limit)
        if after is not None:
            stmt = stmt.where(t.locations.c.id > after)
        if type is not None:
            stmt = stmt.where(t.locations.c.type == type)
        if active is not None:
            stmt = stmt.where(t.locations.c.active == active)
        if capability is not None:
            stmt = stmt.where(t.locations.c[CAPABILITY_COLUMN[capability]].is_(True))
        return [_location(r) for r in self.conn.execute(stmt).mappings()]


def _location(r: RowMapping) -> Stored[Location]:
    return Stored(
        Location(
            id=r["id"],
            type=LocationType(r["type"]),
            name=r["name"],
            address=Address(
                line1=r["line1"],
                line2=r["line2"],
                city=r["city"],
                region=r["region"],
                postal_code=r["postal_code"],
                country=r["country"],
                lat=r["lat"],
                lon=r["lon"],
            ),
            capabilities=frozenset(c for c in Capability if r[CAPABILITY_COLUMN[c]]),
            priority=r["priority"],
            active=r["active"],
            timezone=r["timezone"],
            fulfillment_callback_url=r["fulfillment_callback_url"],
        ),
        r["version"],
        r["created_at"],
        r["updated_at"],
    )
