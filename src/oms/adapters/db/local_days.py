"""SQL for "which day is it at this location": a store's day begins at midnight in its own
time zone, so at one instant stores of different zones may be on different dates."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Date, case, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from oms.adapters.db import tables as t
from oms.domain.locations import local_date

K = TypeVar("K", bound=Hashable)


def zones_by(conn: Connection, key: Callable[[str], K]) -> dict[K, list[str]]:
    """The time zones of all locations, grouped by `key` (a date, an instant, ...)."""
    groups: dict[K, list[str]] = defaultdict(list)
    for zone in sorted(conn.scalars(select(t.locations.c.timezone).distinct())):
        groups[key(zone)].append(zone)
    return dict(groups)


def in_zones(location_id: ColumnElement[Any], zones: list[str]) -> ColumnElement[bool]:
    """The location that `location_id` names is in one of these time zones."""
    return location_id.in_(select(t.locations.c.id).where(t.locations.c.timezone.in_(zones)))


def today_at(conn: Connection, location_id: ColumnElement[Any], now: dt.datetime
             ) -> ColumnElement[dt.date]:
    """The date it is at `now` at the location that `location_id` names."""
    by_day = sorted(zones_by(conn, lambda zone: local_date(zone, now)).items())
    if len(by_day) <= 1:  # every location is on the same date (or there is none)
        return literal(by_day[0][0] if by_day else now.date(), Date)
    *others, (last_day, _) = by_day
    return case(*((in_zones(location_id, zones), literal(day, Date)) for day, zones in others),
                else_=literal(last_day, Date))

