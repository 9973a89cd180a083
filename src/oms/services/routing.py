"""Routing an order's waiting items: reserve their stock where the plan sends them, and issue
each location a fulfilment request for its items, in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.errors import Conflict, DomainError, FieldError, InsufficientStock
from oms.domain.events import Event, utcnow
from oms.domain.fulfillment import (
    FulfillmentRequest,
    LinkStatus,
    RequestItem,
    RequestStatus,
    RequestType,
    request_type,
)
from oms.domain.ids import new_id
from oms.domain.locations import Location
from oms.domain.orders import ItemStatus, Order, OrderItem, ServiceLevel
from oms.domain.routing import Destination, RoutingItem
from oms.domain.routing_fast import decide
from oms.domain.routing_record import Decision, ItemDecision, decisions_json, inputs_json
from oms.services import inventory
from oms.services.inventory import ReserveLine
from oms.services.views import request_out

#: A reservation that loses a race re-plans with fresh stock; after this many, the order waits.
MAX_ROUTING_ATTEMPTS = 5


def route_items(uow: UnitOfWork, order: Order, trigger: str, now: dt.datetime, *,
                refuse_unavailable: bool, only_changes: bool = False, written: bool = True,
                atp: Sequence[tuple[str, str, int]] | None = None) -> None:
    """Route the order's on-hold items, reserving their stock and issuing fulfilment
    requests; record the run and events, and save the order with what else the caller
    changed in it; nothing is written when no item is on hold, nor, with `only_changes`,
    when every item stays on hold for the reason it already had. Locations that rejected
    items of this order are not asked again. With
    `written` False the order is not in the database yet: the caller writes it as this
    leaves it (its status, and its version after one per event). `atp`, the (location, sku,
    ATP) rows of the items' skus as the caller just read them, is weighed on the first try
    instead of reading them again. An item to be collected at a store of its own (a store's
    mixed cart) waits for that store alone: routing does not send it elsewhere."""
    waiting = [i for i in order.items
               if i.status is ItemStatus.ON_HOLD and i.pickup_location_id is None]
    if not waiting:
        return
    address = order.shipping_address or {}
    service_level = order.service_level or ServiceLevel.STANDARD.value
    destination = Destination(address.get("country"), address.get("lat"), address.get("lon"))
    reference = uow.reference()
    rule = reference.rules.get((service_level, destination.country)) if (
        destination.country) else None
    network = reference.network
    excluded = frozenset(uow.fulfillment.rejected_locations(order.id)) if (
        trigger != "placement") else frozenset()
    routing_items = [RoutingItem(i.id, i.sku, i.quantity, i.preorder) for i in waiting]
    skus = sorted({i.sku for i in waiting})
    preorder_skus = sorted({i.sku for i in waiting if i.preorder})

    for attempt in range(MAX_ROUTING_ATTEMPTS):
        atp_now = network.atp_table(
            atp if attempt == 0 and atp is not None else uow.stock.atp(skus), skus)
        # Future stock sells pre-orders only: without one, it is not read.
        future = network.atp_table(
            ((location_id, sku, n) for (location_id, sku), n
             in uow.stock.future_atp(preorder_skus, now).items()),
            preorder_skus) if preorder_skus else {}
        plan = decide(
            routing_items, network=network, service_level=service_level,
            destination=destination, atp=atp_now, future_atp=future, rule=rule,
            pickup_location_id=order.pickup_location_id,
            required_location_id=order.fulfillment_location_id, excluded=excluded,
        )
        if refuse_unavailable and order.fulfillment_location_id is None and plan.on_hold:
            item = next(i for i in waiting if i.id in plan.on_hold)
            # The order is well formed: today's stock cannot take it (409, as a reservation
            # that finds too little is).
            raise DomainError(
                f"{item.sku} is not available in the quantity ordered ({item.quantity}) "
                "at any location that can fulfil this order; backorders are not accepted",
                [FieldError(f"items.{item.line - 1}.sku", plan.on_hold[item.id])],
                "insufficient-stock",
            )
        by_id = {i.id: i for i in waiting}
        reserve_lines = [ReserveLine(location_id, by_id[item_id].sku, by_id[item_id].quantity,
                                     item_id, by_id[item_id].preorder)
                         for item_id, location_id in plan.assignments.items()]
        mark = uow.pending_mark()
        try:
            records = inventory.reserve(uow, reserve_lines) if reserve_lines else []
            break
        except InsufficientStock:
            # Someone else took the stock between our read and our reservation (what this
            # attempt took is given back): read again.
            uow.discard_since(mark)
    else:
        if refuse_unavailable:
            # Placing must not turn into a backorder: the client retries the whole order.
            raise Conflict("the stock of these items kept changing while the order was "
                           "routed; send the order again", retryable=True)
        records = []
        plan = _weighed_nothing(waiting, "stock kept changing while routing; retry later")
    if only_changes and not plan.assignments and all(
            _hold_reason(plan, i.id) == i.hold_reason for i in waiting):
        return

    reservation_of = {r.reference: r for r in records}
    item_events: list[tuple[str, dict[str, Any]]] = []
    routed: list[OrderItem] = []
    for item in waiting:
        location_id = plan.assignments.get(item.id)
        facts = {"order_id": order.id, "item_id": item.id, "sku": item.sku,
                 "quantity": item.quantity}
        if location_id is not None:
            routed.append(order.change_item(
                item.id, status=ItemStatus.ROUTED, location_id=location_id,
                reservation_id=reservation_of[item.id].id, fulfillment_request_id=None,
                hold_reason=None))
            item_events.append(("order.item_routed", {**facts, "location_id": location_id}))
        else:
            order.change_item(item.id, status=ItemStatus.ON_HOLD, location_id=None,
                              reservation_id=None, fulfillment_request_id=None,
                              hold_reason=_hold_reason(plan, item.id))
            item_events.append(("order.item_on_hold", {
                **facts, "reason": plan.on_hold.get(item.id, "not routed")}))
    # The items' events come before the requests' they lead to.
    mark = uow.pending_mark()
    if routed:
        available_on = {r.reference: r.available_on for r in records if r.reference}
        request_of = issue_requests(uow, order, routed, reference.by_id, available_on, now)
        for item in routed:
            item.fulfillment_request_id = request_of[item.id]
    uow.routing.add_run({
        "id": new_id(), "order_id": order.id, "trigger": trigger, "ran_at": now,
        "assignments": plan.assignments, "on_hold": plan.on_hold,
        "decisions": decisions_json(plan.items),
        "inputs": None if plan.inputs is None else inputs_json(plan.inputs),
    })
    if written:
        # One statement for the status and a version per event: their sequences have no gaps.
        last = uow.orders.save(order, now, len(item_events))
    else:
        order.status = order.derived_status
        order.version += len(item_events)
        last = order.version
    for n, (event_type, payload) in enumerate(item_events):
        uow.record_at(mark + n, Event(event_type, order.id, last - len(item_events) + n + 1,
                                      payload, now))


def _hold_reason(plan: Decision, item_id: str) -> str:
    """The reason an item stays on hold, as its row keeps it."""
    return plan.on_hold.get(item_id, "not routed")[:300]


def _weighed_nothing(waiting: Sequence[OrderItem], reason: str) -> Decision:
    """A run that leaves every item waiting for `reason` without weighing any location."""
    return Decision({}, {i.id: reason for i in waiting},
                    tuple(ItemDecision(i.id, None, reason, None, (), {}) for i in waiting),
                    None)


def issue_requests(uow: UnitOfWork, order: Order, routed: Sequence[OrderItem],
                   location_of: Mapping[str, Location],
                   available_on: Mapping[str, dt.date | None], now: dt.datetime,
                   service_level: str | None = None) -> dict[str, str]:
    """One fulfilment request per location the items were routed to; returns the request of
    each item. `service_level`: the items', if not the order's (a store's pickup items)."""
    by_location: dict[str, list[OrderItem]] = defaultdict(list)
    for item in routed:
        assert item.location_id is not None
        by_location[item.location_id].append(item)
    requests = []
    request_of: dict[str, str] = {}
    for location_id, items in sorted(by_location.items()):
        kind = request_type(location_of[location_id].type,
                            service_level or order.service_level)
        dates = [d for i in items if (d := available_on.get(i.id)) is not None]
        third_party = kind is RequestType.THIRD_PARTY
        request = FulfillmentRequest(
            id=new_id(), order_id=order.id, location_id=location_id, type=kind,
            status=RequestStatus.ISSUED, placed_at=order.placed_at,
            available_on=max(dates) if dates else None, carrier=order.carrier,
            parcels=None, collected_by=None, reason=None, ready_at=None, version=1,
            created_at=now, updated_at=now,
            items=[RequestItem(
                item_id=i.id, line=i.line, sku=i.sku, quantity=i.quantity,
                status=LinkStatus.OPEN, reason=None, shipment_id=None,
                item_status=i.status.value, reservation_id=i.reservation_id,
                value_minor=i.total_minor, stock_expected_on=available_on.get(i.id))
                for i in items],
            notify_state="pending" if third_party else None,
            notify_next_at=now if third_party else None)
        requests.append(request)
        request_of.update((i.id, request.id) for i in items)
        uow.record(Event("fulfillment_request.issued", request.id, 1,
                         request_out(request, order.currency), now))
    uow.fulfillment.add(requests)
    return request_of


#: The entity of the routing rules' events: they are replaced all at once.
RULES_ENTITY = "routing-rules"


def replace_rules(uow: UnitOfWork, rules: Sequence[dict[str, Any]]) -> None:
    """Replace every routing rule with these; `routing.rules_replaced` carries them all."""
    now = utcnow()
    uow.routing.put_rules(rules, now)
    uow.reference_changed()
    uow.record(Event("routing.rules_replaced", RULES_ENTITY,
                     uow.events.last_sequence(RULES_ENTITY) + 1, {"rules": list(rules)}, now))
    uow.commit()
