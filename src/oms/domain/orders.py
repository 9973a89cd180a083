"""Orders: items with their own status, totals that must add up, payments that must cover."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from oms.domain.errors import FieldError


class Channel(StrEnum):
    STORE = "store"
    WEB = "web"
    OFFLINE = "offline"
    HISTORICAL = "historical"


class ServiceLevel(StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"
    SAME_DAY = "same_day"
    PICKUP = "pickup"


class ItemStatus(StrEnum):
    ROUTED = "routed"
    ON_HOLD = "on_hold"
    #: Its location accepted (a store) or acknowledged (a DC or 3PL) the request.
    IN_FULFILLMENT = "in_fulfillment"
    READY_FOR_PICKUP = "ready_for_pickup"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    #: Handed over to the customer (or, for historical orders, fulfilled elsewhere).
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class OrderStatus(StrEnum):
    ROUTED = "routed"
    ON_HOLD = "on_hold"
    IN_PROGRESS = "in_progress"
    #: Every item not cancelled has left its location; some are still on their way.
    SHIPPED = "shipped"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    """What an order brings: a payment authorised, or already captured, by the system that
    took it."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"


class PaymentState(StrEnum):
    """A payment as the OMS keeps it, as goods leave and captures are asked of the PSP."""

    AUTHORIZED = "authorized"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    #: The PSP refused the last capture; what is owed stays owed and is asked again.
    CAPTURE_FAILED = "capture_failed"
    #: Some or all of what was captured was given back (cancelled items, returns).
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    #: Nothing was captured and the whole authorisation was released (a cancelled order).
    VOIDED = "voided"


#: Items that still hold a reservation and may be cancelled.
OPEN_STATUSES = frozenset({ItemStatus.ROUTED, ItemStatus.ON_HOLD, ItemStatus.IN_FULFILLMENT,
                           ItemStatus.READY_FOR_PICKUP})
#: Items that have left their location: their goods are owed payment.
DEPARTED_STATUSES = frozenset({ItemStatus.SHIPPED, ItemStatus.DELIVERED, ItemStatus.FULFILLED})
#: Items at the end of their way.
DONE_STATUSES = frozenset({ItemStatus.DELIVERED, ItemStatus.FULFILLED})


def derive_status(statuses: Iterable[ItemStatus]) -> OrderStatus:
    """The order's status follows its items'."""
    live = set(statuses) - {ItemStatus.CANCELLED}
    if not live:
        return OrderStatus.CANCELLED
    if live <= DONE_STATUSES:
        return OrderStatus.FULFILLED
    if live <= DEPARTED_STATUSES:
        return OrderStatus.SHIPPED
    if ItemStatus.ON_HOLD in live:
        return OrderStatus.ON_HOLD
    if live == {ItemStatus.ROUTED}:
        return OrderStatus.ROUTED
    return OrderStatus.IN_PROGRESS


@dataclass(frozen=True)
class PlacementWindow:
    """When an order may say it was placed. A live order is being placed now: a time long past
    or ahead is a client's mistake (a wrong clock, a date in the wrong field) that would also
    put it before or after every other order in the queues. A historical one was placed in the
    past. `ahead` allows for a sender's clock running a little fast."""

    max_age: dt.timedelta = dt.timedelta(days=30)
    ahead: dt.timedelta = dt.timedelta(minutes=5)

    def check(self, placed_at: dt.datetime, *, historical: bool, now: dt.datetime
              ) -> list[FieldError]:
        if placed_at > now + self.ahead:
            return [FieldError("placed_at", f"{placed_at.isoformat()} is in the future; it is "
                                            f"{now.isoformat(timespec='seconds')} now")]
        if not historical and placed_at < now - self.max_age:
            return [FieldError("placed_at", (
                f"{placed_at.isoformat()} is more than {_days(self.max_age)} ago: a live order "
                "is placed now, an order of the past is sent as historical"))]
        return []


def _days(span: dt.timedelta) -> str:
    return f"{span.days} days" if span.days != 1 else "1 day"


@dataclass(frozen=True)
class LineAmounts:
    quantity: int
    unit_price: Decimal
    discount: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.quantity * self.unit_price - self.discount + self.tax


@dataclass(frozen=True)
class PaymentAmount:
    status: PaymentStatus
    amount: Decimal


def check_money(
    lines: Sequence[LineAmounts],
    shipping_price: Decimal,
    grand_total: Decimal,
    payments: Sequence[PaymentAmount],
    *,
    historical: bool,
) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, line in enumerate(lines):
        if line.discount > line.quantity * line.unit_price:
            errors.append(FieldError(f"items.{i}.discount",
                                     f"discount {line.discount} exceeds the line's price "
                                     f"{line.quantity * line.unit_price}"))
    computed = sum((line.total for line in lines), Decimal(0)) + shipping_price
    if computed != grand_total:
        errors.append(FieldError(
            "totals.grand_total",
            f"grand_total {grand_total} does not add up: items and shipping come to {computed}",
        ))
    paid = sum((p.amount for p in payments), Decimal(0))
    if not historical and grand_total > 0 and paid < grand_total:
        errors.append(FieldError(
            "payments",
            f"payment must be authorized before the order is placed: {paid} of "
            f"{grand_total} is authorized or captured",
        ))
    return errors
