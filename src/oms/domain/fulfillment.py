"""Fulfilment requests: the items one location must fulfil for one order, and the steps that
take them to the customer."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from oms.domain.errors import InvalidState
from oms.domain.locations import LocationType, local_date, start_of_day
from oms.domain.orders import ServiceLevel


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
