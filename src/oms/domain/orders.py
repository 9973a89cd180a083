"""Orders: items with their own status, totals that must add up, payments that must cover."""

from __future__ import annotations

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
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"


class OrderStatus(StrEnum):
    ROUTED = "routed"
    ON_HOLD = "on_hold"
    IN_PROGRESS = "in_progress"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"


#: Items that still hold a reservation and may be cancelled.
OPEN_STATUSES = frozenset({ItemStatus.ROUTED, ItemStatus.ON_HOLD})


def derive_status(statuses: Iterable[ItemStatus]) -> OrderStatus:
    """The order's status follows its items'."""
    live = set(statuses) - {ItemStatus.CANCELLED}
    if not live:
        return OrderStatus.CANCELLED
    if live == {ItemStatus.FULFILLED}:
        return OrderStatus.FULFILLED
    if ItemStatus.ON_HOLD in live:
        return OrderStatus.ON_HOLD
    if live == {ItemStatus.ROUTED}:
        return OrderStatus.ROUTED
    return OrderStatus.IN_PROGRESS


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
