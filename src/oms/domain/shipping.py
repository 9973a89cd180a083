"""Shipping rates and the quotes they give: what delivery costs, and when it arrives.

A rate is set per destination country, service level and currency: a carrier, a price,
free delivery from an order value on, the days in transit and the day's cut-off time at the
location that ships. A quote of a rate for goods worth so much, asked at a time: its price,
the day the goods leave (today before the cut-off, else the next working day) and the day
they are promised (that many working days later; Saturdays and Sundays are no working days).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class ShippingRate:
    country: str
    service_level: str
    carrier: str
    currency: str
    price_minor: int
    #: Goods worth at least this ship free; None: never free.
    free_above_minor: int | None
    transit_days: int
    #: Orders after this local time at the shipping location leave the next working day.
    cutoff: dt.time

    @property
    def option_id(self) -> str:
        return option_id(self.service_level, self.carrier)


def option_id(service_level: str, carrier: str) -> str:
    return f"{service_level}:{carrier}"


@dataclass(frozen=True)
class Quote:
    rate: ShippingRate
    price_minor: int
    ships_on: dt.date
    promised_on: dt.date


def _working_day(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def add_working_days(day: dt.date, days: int) -> dt.date:
    for _ in range(days):
        day = _working_day(day + dt.timedelta(days=1))
    return day


def quote(rate: ShippingRate, goods_minor: int, local_now: dt.datetime) -> Quote:
    """The rate's quote for goods worth `goods_minor`, asked at `local_now` (the time at the
    location that ships)."""
    today = local_now.date()
    ships_on = _working_day(today if local_now.time() < rate.cutoff and today.weekday() < 5
                            else today + dt.timedelta(days=1))
    free = rate.free_above_minor is not None and goods_minor >= rate.free_above_minor
    return Quote(rate, 0 if free else rate.price_minor, ships_on,
                 add_working_days(ships_on, rate.transit_days))
