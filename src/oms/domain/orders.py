"""Orders: items with their own status, totals that must add up, payments that must cover."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from oms.domain.errors import Conflict, FieldError, ValidationFailed


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


def line_total(quantity: int, unit_price_minor: int, discount_minor: int, tax_minor: int
               ) -> int:
    """What a line costs the customer, in minor units."""
    return quantity * unit_price_minor - discount_minor + tax_minor


@dataclass
class OrderItem:
    """One line of an order: what was bought, at what price, and where it stands."""

    id: str
    line: int
    sku: str
    quantity: int
    unit_price_minor: int
    discount_minor: int
    tax_minor: int
    status: ItemStatus
    location_id: str | None = None
    reservation_id: str | None = None
    fulfillment_request_id: str | None = None
    #: Why it waits, while it is on hold.
    hold_reason: str | None = None
    preorder: bool = False
    tentative_ship_date: dt.date | None = None
    #: Collected at this store, whatever the rest of the order does (a store's mixed cart):
    #: routing never sends it elsewhere.
    pickup_location_id: str | None = None

    @property
    def total_minor(self) -> int:
        return line_total(self.quantity, self.unit_price_minor, self.discount_minor,
                          self.tax_minor)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class Cancellation:
    """What cancelling items gives back: their reservations, and the money the order no
    longer owes."""

    item_ids: list[str]
    reservation_ids: list[str]
    #: The cancelled lines, and the shipping once nothing of the order is left to ship.
    refund_minor: int
    #: What the order still owes for what is left of it, up to its grand total.
    still_owed_minor: int


@dataclass
class Order:
    """An order and its items. Its status follows its items'; its version counts its events.
    Its methods check a change against the order as it is and make it in memory; its
    repository saves the items that changed with the status, taking a version per event."""

    id: str
    display_id: str
    channel: str
    external_id: str | None
    request_hash: str
    status: OrderStatus
    historical: bool
    placed_at: dt.datetime
    currency: str
    customer_id: str
    service_level: str | None
    carrier: str | None
    shipping_price_minor: int
    pickup_location_id: str | None
    fulfillment_location_id: str | None
    shipping_address: dict[str, Any] | None
    grand_total_minor: int
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    items: list[OrderItem]
    #: What the worker's last look at the order on hold saw, and when it looks again.
    routing_inputs: str | None = None
    reroute_after: dt.datetime | None = None
    reroute_wait_seconds: int | None = None
    #: A store's sale: the store, and the key of the associate who sold it.
    sold_at_location_id: str | None = None
    sold_by_key: str | None = None
    #: Items changed since the order was loaded or saved.
    changed_items: set[str] = field(default_factory=set, compare=False, repr=False)

    def item(self, item_id: str) -> OrderItem:
        return next(i for i in self.items if i.id == item_id)

    @property
    def derived_status(self) -> OrderStatus:
        return derive_status(i.status for i in self.items)

    @property
    def open_items(self) -> list[OrderItem]:
        return [i for i in self.items if i.is_open]

    def set_item_statuses(self, changes: Sequence[tuple[str, str]]) -> None:
        """(item id, status) pairs, as its fulfilment moved them on."""
        for item_id, status in changes:
            self.change_item(item_id, status=ItemStatus(status))

    def change_item(self, item_id: str, **values: Any) -> OrderItem:
        item = self.item(item_id)
        for name, value in values.items():
            setattr(item, name, value)
        self.changed_items.add(item_id)
        return item

    def hold(self, item_ids: Sequence[str], reason: str) -> None:
        """These items wait to be routed (again), wherever they were."""
        for item_id in item_ids:
            self.change_item(item_id, status=ItemStatus.ON_HOLD, location_id=None,
                             reservation_id=None, fulfillment_request_id=None,
                             hold_reason=reason[:300])

    def owed_for_departed(self) -> int:
        """What the goods that left are worth, shipping included, up to the grand total."""
        departed = [i for i in self.items if i.status in DEPARTED_STATUSES]
        if not departed:
            return 0
        owed = sum(i.total_minor for i in departed) + self.shipping_price_minor
        return min(owed, self.grand_total_minor)

    def cancel(self, item_ids: Sequence[str] | None, reason: str | None) -> Cancellation:
        """Cancel these items (none named: all not yet shipped). Items the order does not
        have are a fault of the request (422); items that have left or were cancelled are
        the order's state (409)."""
        by_id = {i.id: i for i in self.items}
        wanted = list(item_ids) if item_ids else [i.id for i in self.open_items]
        unknown = [FieldError(f"items.{n}", f"no item {x!r} in this order")
                   for n, x in enumerate(wanted) if x not in by_id]
        if unknown:
            raise ValidationFailed("; ".join(e.message for e in unknown), unknown)
        done = [FieldError(f"items.{n}", f"item {x} is {by_id[x].status.value}; it cannot "
                                         "be cancelled")
                for n, x in enumerate(wanted) if not by_id[x].is_open]
        if done or not wanted:
            raise Conflict("; ".join(e.message for e in done) or "nothing left to cancel",
                           done)
        reservations = [r for x in wanted if (r := by_id[x].reservation_id) is not None]
        refund_minor = sum(by_id[x].total_minor for x in wanted)
        for item_id in wanted:
            self.change_item(item_id, status=ItemStatus.CANCELLED, reservation_id=None,
                             hold_reason=reason)
        remaining = [i for i in self.items if i.status is not ItemStatus.CANCELLED]
        if not remaining:
            # Nothing of the order will ship, so its shipping is not owed either.
            refund_minor += self.shipping_price_minor
        still_owed = min(sum(i.total_minor for i in remaining)
                         + (self.shipping_price_minor if remaining else 0),
                         self.grand_total_minor)
        return Cancellation(wanted, reservations, refund_minor, still_owed)


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
