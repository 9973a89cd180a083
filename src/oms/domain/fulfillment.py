"""Fulfilment requests: the items one location must fulfil for one order, and the steps that
take them to the customer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from oms.domain.errors import Conflict, FieldError, InvalidState, ValidationFailed
from oms.domain.locations import LocationType, local_date, start_of_day
from oms.domain.orders import ItemStatus, ServiceLevel


class RequestType(StrEnum):
    #: A store picks, packs and ships through a carrier the OMS books.
    SHIP_FROM_STORE = "ship_from_store"
    #: A store gets the items ready and hands them to the customer.
    PICKUP = "pickup"
    #: A DC or 3PL is told and reports back what it shipped.
    THIRD_PARTY = "third_party"


class RequestStatus(StrEnum):
    ISSUED = "issued"
    ACCEPTED = "accepted"
    ACKNOWLEDGED = "acknowledged"
    PICKED = "picked"
    PACKED = "packed"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    READY_FOR_PICKUP = "ready_for_pickup"
    PICKED_UP = "picked_up"
    #: Every item was rejected (and re-routed elsewhere).
    REJECTED = "rejected"
    #: Every item was cancelled, or a pickup was never collected.
    CANCELLED = "cancelled"


class Step(StrEnum):
    ACCEPT = "accept"
    PICK = "pick"
    PACK = "pack"
    SHIP = "ship"
    READY_FOR_PICKUP = "ready-for-pickup"
    HAND_OVER = "hand-over"
    ACKNOWLEDGE = "acknowledge"
    SHIPMENTS = "shipments"
    REJECT = "reject"


class LinkStatus(StrEnum):
    """An item's part in one request (it may move on to another request after a rejection)."""

    OPEN = "open"
    REJECTED = "rejected"
    SHIPPED = "shipped"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"


_S = RequestStatus

#: Per type and step: the statuses the step may start from, and the status it leads to.
TRANSITIONS: dict[RequestType, dict[Step, tuple[frozenset[RequestStatus], RequestStatus]]] = {
    RequestType.SHIP_FROM_STORE: {
        Step.ACCEPT: (frozenset({_S.ISSUED}), _S.ACCEPTED),
        Step.PICK: (frozenset({_S.ACCEPTED}), _S.PICKED),
        Step.PACK: (frozenset({_S.PICKED}), _S.PACKED),
        Step.SHIP: (frozenset({_S.PACKED}), _S.SHIPPED),
    },
    RequestType.PICKUP: {
        Step.ACCEPT: (frozenset({_S.ISSUED}), _S.ACCEPTED),
        Step.PICK: (frozenset({_S.ACCEPTED}), _S.PICKED),
        Step.READY_FOR_PICKUP: (frozenset({_S.PICKED}), _S.READY_FOR_PICKUP),
        Step.HAND_OVER: (frozenset({_S.READY_FOR_PICKUP}), _S.PICKED_UP),
    },
    RequestType.THIRD_PARTY: {
        Step.ACKNOWLEDGE: (frozenset({_S.ISSUED}), _S.ACKNOWLEDGED),
        # A provider may report a shipment without acknowledging first.
        Step.SHIPMENTS: (frozenset({_S.ISSUED, _S.ACKNOWLEDGED, _S.PARTIALLY_SHIPPED}),
                         _S.SHIPPED),
    },
}

#: Items may be rejected at any step before they leave the location.
REJECTABLE = frozenset({_S.ISSUED, _S.ACCEPTED, _S.ACKNOWLEDGED, _S.PICKED, _S.PACKED,
                        _S.PARTIALLY_SHIPPED, _S.READY_FOR_PICKUP})
#: Statuses in which the request still has work to do.
OPEN_REQUEST_STATUSES = REJECTABLE


def request_type(location_type: LocationType, service_level: str | None) -> RequestType:
    if service_level == ServiceLevel.PICKUP:
        return RequestType.PICKUP
    if location_type is LocationType.STORE:
        return RequestType.SHIP_FROM_STORE
    return RequestType.THIRD_PARTY


def next_status(kind: RequestType, status: RequestStatus, step: Step) -> RequestStatus:
    """The status a step leads to, or a clear refusal when it does not apply now."""
    steps = TRANSITIONS[kind]
    if step not in steps:
        allowed = ", ".join(s.value for s in steps)
        # Not a fault of the request's form: the request it names is of another type.
        raise InvalidState(f"a {kind.value} request has no {step.value} step "
                           f"(its steps: {allowed})")
    starts, target = steps[step]
    if status not in starts:
        expected = " or ".join(sorted(s.value for s in starts))
        raise InvalidState(f"the request is {status.value}; {step.value} needs it to be "
                           f"{expected}")
    return target


@dataclass
class RequestItem:
    """An order item's part in one request (it may move on to another request after a
    rejection), with what the request needs to know of the item."""

    item_id: str
    line: int
    sku: str
    quantity: int
    status: LinkStatus
    reason: str | None
    shipment_id: str | None
    #: The order item's own status, as the request's views show it.
    item_status: str
    reservation_id: str | None
    #: What the line costs the customer, in minor units.
    value_minor: int
    #: A pre-order still holding future stock: the day that stock is expected.
    stock_expected_on: dt.date | None = None

    @property
    def is_open(self) -> bool:
        return self.status is LinkStatus.OPEN


#: The request's columns a step may change, besides its status.
_STEP_VALUES = frozenset({"carrier", "parcels", "collected_by", "ready_at", "reason"})


@dataclass
class FulfillmentRequest:
    """The items one location must fulfil for one order, and where their fulfilment stands.
    Its methods check a step against the request as it is and change it in memory; its
    repository saves what changed, taking the request's next version for the step's event."""

    id: str
    order_id: str
    location_id: str
    type: RequestType
    status: RequestStatus
    placed_at: dt.datetime
    available_on: dt.date | None
    carrier: str | None
    parcels: list[dict[str, Any]] | None
    collected_by: str | None
    reason: str | None
    ready_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    items: list[RequestItem]
    #: DC and 3PL: telling the provider of the request (None for a store's).
    notify_state: str | None = None
    notify_attempts: int = 0
    notify_next_at: dt.datetime | None = None
    notify_last_error: str | None = None
    #: What changed since it was loaded or saved: the request's columns, and the items whose
    #: part changed.
    changed: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    changed_items: set[str] = field(default_factory=set, compare=False, repr=False)

    @property
    def open_items(self) -> list[RequestItem]:
        return [x for x in self.items if x.is_open]

    def next(self, step: Step) -> RequestStatus:
        """The status `step` leads to from here, or a refusal."""
        return next_status(self.type, self.status, step)

    def step(self, step: Step, item_status: ItemStatus | None = None, **values: Any
             ) -> list[tuple[str, str]]:
        """Move the whole request on, and its open items with it; returns the order items'
        new statuses."""
        self._set(status=self.next(step), **values)
        return self._items_now(self.open_items, item_status)

    def reject_missing(self, missing: Sequence[str], reason: str) -> list[RequestItem]:
        """Before a pick: the items reported missing are rejected (returned); at least one
        item must be left to pick."""
        self.next(Step.PICK)
        self.check_open(missing, "missing")
        if len(set(missing)) == len(self.open_items):
            raise Conflict("every item is missing: reject the request instead",
                           [FieldError("missing", "leaves nothing to pick")])
        return self._reject(missing, reason)

    def reject(self, item_ids: Sequence[str], reason: str) -> list[RequestItem]:
        """The location cannot fulfil these items (none named: all it still has); returns
        them. A request left with nothing open is rejected."""
        if self.status not in REJECTABLE:
            raise InvalidState(f"the request is {self.status.value}; items can be rejected "
                               "only before they leave the location")
        wanted = list(item_ids) or [x.item_id for x in self.open_items]
        self.check_open(wanted, "items")
        return self._reject(wanted, reason)

    def _reject(self, item_ids: Sequence[str], reason: str) -> list[RequestItem]:
        rejected = self._mark(item_ids, LinkStatus.REJECTED, reason)
        if not self.open_items:
            self._set(status=RequestStatus.REJECTED, reason=reason)
        return rejected

    def ship(self, shipment_id: str, carrier: str) -> list[RequestItem]:
        """Everything packed leaves in one shipment; returns what left."""
        target = self.next(Step.SHIP)
        leaving = self.open_items
        check_shippable(leaving)
        self._mark([x.item_id for x in leaving], LinkStatus.SHIPPED, None, shipment_id)
        self._items_now(leaving, ItemStatus.SHIPPED)
        self._set(status=target, carrier=carrier)
        return leaving

    def report_shipment(self, item_ids: Sequence[str], shipment_id: str, carrier: str
                        ) -> list[RequestItem]:
        """A DC or 3PL shipped these items (none named: all it still has); returns them."""
        self.next(Step.SHIPMENTS)
        wanted = list(item_ids) or [x.item_id for x in self.open_items]
        self.check_open(wanted, "items")
        by_id = {x.item_id: x for x in self.items}
        leaving = [by_id[x] for x in wanted]  # as the provider listed them
        check_shippable(leaving)
        self._mark(wanted, LinkStatus.SHIPPED, None, shipment_id)
        self._items_now(leaving, ItemStatus.SHIPPED)
        self._set(status=RequestStatus.PARTIALLY_SHIPPED if self.open_items
                  else RequestStatus.SHIPPED, carrier=carrier)
        return leaving

    def hand_over(self, collected_by: str) -> list[RequestItem]:
        """The customer collected everything ready; returns what left."""
        target = self.next(Step.HAND_OVER)
        leaving = self.open_items
        check_shippable(leaving)
        self._mark([x.item_id for x in leaving], LinkStatus.PICKED_UP, None)
        self._items_now(leaving, ItemStatus.FULFILLED)
        self._set(status=target, collected_by=collected_by)
        return leaving

    def withdraw(self, item_ids: Sequence[str], status: LinkStatus, reason: str | None
                 ) -> None:
        """Take cancelled items out; a request left with nothing to do is cancelled."""
        self._mark(item_ids, status, reason)
        if not self.open_items:
            self._set(status=RequestStatus.CANCELLED, reason=reason)

    def check_open(self, item_ids: Sequence[str], field: str) -> None:
        """Items named must be the request's (422), and still open in it: one that has left
        or was rejected is the request's state, not a fault of the body (409)."""
        known = {x.item_id: x for x in self.items}
        errors = [FieldError(f"{field}.{n}", f"item {item_id!r} is not in this request")
                  for n, item_id in enumerate(item_ids) if item_id not in known]
        if len(set(item_ids)) != len(item_ids):
            errors.append(FieldError(field, "an item is listed twice"))
        if errors:
            raise ValidationFailed("; ".join(e.message for e in errors), errors)
        closed = [FieldError(f"{field}.{n}",
                             f"item {item_id} is {known[item_id].status.value} in this request")
                  for n, item_id in enumerate(item_ids) if not known[item_id].is_open]
        if closed:
            raise Conflict("; ".join(e.message for e in closed), closed)

    def _mark(self, item_ids: Sequence[str], status: LinkStatus, reason: str | None,
              shipment_id: str | None = None) -> list[RequestItem]:
        wanted = set(item_ids)
        marked = [x for x in self.items if x.item_id in wanted]
        for x in marked:
            x.status, x.reason, x.shipment_id = status, reason, shipment_id
            self.changed_items.add(x.item_id)
        return marked

    def _items_now(self, items: Sequence[RequestItem], status: ItemStatus | None
                   ) -> list[tuple[str, str]]:
        if status is None:
            return []
        for x in items:
            x.item_status = status.value
        return [(x.item_id, status.value) for x in items]

    def _set(self, **values: Any) -> None:
        unknown = set(values) - _STEP_VALUES - {"status"}
        assert not unknown, f"not a column a step changes: {unknown}"
        for name, value in values.items():
            setattr(self, name, value)
            self.changed[name] = value.value if isinstance(value, StrEnum) else value



def check_shippable(items: Sequence[RequestItem]) -> None:
    """Something must be left to send, and no pre-order may leave before its stock."""
    if not items:
        raise Conflict("the request has no items left to ship")
    waiting = [(x.sku, x.stock_expected_on) for x in items if x.stock_expected_on is not None]
    if waiting:
        raise Conflict(
            "pre-order items cannot leave before their stock arrives: "
            + ", ".join(f"{sku} (expected {on.isoformat()})" for sku, on in waiting))


class ShipmentStatus(StrEnum):
    CREATED = "created"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"


#: What a carrier may report about a shipment.
TRACKING_STATUSES = frozenset(ShipmentStatus) - {ShipmentStatus.CREATED}


def pickup_expiry(timezone: str, now: dt.datetime, days: int) -> dt.datetime:
    """A pickup made ready on the store's day D is held through the store's day D + `days`
    and expires when the next one begins: those made ready before the instant returned have
    expired by `now`."""
    return start_of_day(timezone, local_date(timezone, now) - dt.timedelta(days=days))
