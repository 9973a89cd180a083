"""Stock levels and available-to-promise (ATP)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

#: The largest on_hand, and the largest quantity or delta a request may carry. A level plus a
#: delta then stays below 2**31, so the 32-bit columns never overflow mid-statement.
MAX_QUANTITY = 1_000_000_000


@dataclass(frozen=True)
class StockLevel:
    location_id: str
    sku: str
    on_hand: int
    reserved: int
    safety_stock: int

    @property
    def atp(self) -> int:
        """Available to promise. Negative only after a physical report (offline sale, ERP
        count) took on_hand below what was reserved: a discrepancy to reconcile."""
        return self.on_hand - self.reserved - self.safety_stock

    @property
    def discrepancy(self) -> bool:
        return self.on_hand < self.reserved

    def can_reserve(self, quantity: int) -> bool:
        return quantity > 0 and self.atp >= quantity


@dataclass(frozen=True)
class FutureStock:
    location_id: str
    sku: str
    quantity: int
    available_on: dt.date
    #: Sold to pre-orders already.
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.quantity - self.reserved


class ReservationStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    CONSUMED = "consumed"


@dataclass(frozen=True)
class ReservationRequest:
    location_id: str
    sku: str
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError("a reservation needs a positive quantity")


StockKey = tuple[str, str]


def lock_order(requests: Iterable[ReservationRequest]) -> list[tuple[StockKey, int]]:
    """Sum quantities per (location, sku) and sort by that key.

    Two lines of one sku must be checked against ATP together, never each on its own; and
    rows are always locked in one fixed order so that two transactions never deadlock.
    """
    totals: dict[StockKey, int] = defaultdict(int)
    for request in requests:
        totals[(request.location_id, request.sku)] += request.quantity
    return sorted(totals.items())

