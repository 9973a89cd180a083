"""Stores, distribution centres and 3PLs: the places that hold and fulfil stock."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pycountry

#: ISO 3166-1 alpha-2 codes.
COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)


class LocationType(StrEnum):
    STORE = "store"
    DC = "dc"
    THREE_PL = "3pl"


class Capability(StrEnum):
    SHIP = "ship"
    PICKUP = "pickup"
    RETURNS = "returns"


def validate_country(code: str) -> str:
    if code.upper() not in COUNTRIES:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code.upper()


@cache
def time_zones() -> frozenset[str]:
    """IANA time zone names. Read once, when first needed: listing them takes a while.
    `localtime` (whatever the server's zone is) and `Factory` (no zone) are no place's."""
    return frozenset(available_timezones() - {"localtime", "Factory"})


def validate_timezone(name: str) -> str:
    if name not in time_zones():
        raise ValueError(f"{name!r} is not an IANA time zone")
    return name


def local_date(timezone: str, at: dt.datetime) -> dt.date:
    """Which day it is at `at` for a location in this time zone: a store's day begins at its
    own midnight, not at UTC's."""
    return at.astimezone(ZoneInfo(timezone)).date()


def start_of_day(timezone: str, day: dt.date) -> dt.datetime:
    """The instant (UTC) a location in this time zone begins `day`."""
    return dt.datetime.combine(day, dt.time(), ZoneInfo(timezone)).astimezone(dt.UTC)


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    postal_code: str
    country: str
    lat: float
    lon: float
    line2: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        validate_country(self.country)
        if not -90 <= self.lat <= 90 or not -180 <= self.lon <= 180:
            raise ValueError("coordinates out of range")


@dataclass(frozen=True)
class Location:
    id: str
    type: LocationType
    name: str
    address: Address
    capabilities: frozenset[Capability]
    priority: int
    active: bool
    timezone: str
    #: Where a DC or 3PL is told of its fulfilment requests.
    fulfillment_callback_url: str | None = None

    def can(self, capability: Capability) -> bool:
        return self.active and capability in self.capabilities


EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points, in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))
