"""Working fulfilment requests: a store accepts, picks, packs and ships or hands over; a DC or
3PL acknowledges and reports shipments; any of them may reject items, which are routed again
elsewhere. Shipping and handing over consume the stock and capture the payment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from oms.adapters.carriers import Parcel
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.adapters.providers import Notification, NotifyFailed
from oms.adapters.registry import Providers
from oms.domain.access import Principal
from oms.domain.errors import (
    InvalidState,
    NotFound,
    ValidationFailed,
)
from oms.domain.events import Event, utcnow
from oms.domain.fulfillment import (
    TRACKING_STATUSES,
    FulfillmentRequest,
    LinkStatus,
    RequestItem,
    ShipmentStatus,
    Step,
)
from oms.domain.ids import new_id
from oms.domain.orders import ItemStatus, Order
from oms.domain.payments import CallKind, plan_captures
from oms.domain.retries import delay_after
from oms.services import inventory, provider_calls
from oms.services.routing import route_items
from oms.services.views import request_out, shipment_out

#: A worker that took a notification and died leaves it to others after this long.
NOTIFY_LEASE = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Context:
    """Who is acting, and with which outside world."""

    actor: Principal
    providers: Providers
    default_carrier: str = "standard"
    default_parcel_weight_grams: int = 1000


@dataclass
class _Work:
    """A step's request, and its order locked first."""

    order: Order
    request: FulfillmentRequest


def _begin(uow: UnitOfWork, ctx: Context, request_id: str) -> _Work:
    """Lock the request's order, then the request (always in this order, as cancelling and
    rerouting lock the order first). A request of a location the caller is not at is not
    found: the caller does not see it (oms.domain.access.Scope)."""
    order = uow.orders.load_of_request(request_id, ctx.actor.scope)
    if order is None:
        raise NotFound(f"no fulfillment request {request_id!r}")
    request = uow.fulfillment.load(request_id, for_update=True)
    assert request is not None
    return _Work(order, request)


def _save(uow: UnitOfWork, work: _Work, event_type: str, now: dt.datetime, **extra: Any
          ) -> dict[str, Any]:
    """Save the request's change and record its event, with the request as it is now."""
    version = uow.fulfillment.save(work.request, now)
    body = request_out(work.request, work.order.currency)
    uow.record(Event(event_type, work.request.id, version, {**body, **extra}, now))
    return body


def _reloaded(uow: UnitOfWork, work: _Work) -> None:
    """Read the request again where routing moved its items on since it was loaded."""
    request = uow.fulfillment.load(work.request.id)
    assert request is not None
    work.request = request


def _items_changed(uow: UnitOfWork, order: Order, changes: Sequence[tuple[str, str]],
                   now: dt.datetime) -> None:
    """Set item statuses and tell the order's consumers."""
    if not changes:
        return
    order.set_item_statuses(changes)
    version = uow.orders.save(order, now, 1)
    uow.record(Event("order.items_updated", order.id, version, {
                         "order_id": order.id, "status": order.status.value,
                         "items": [{"id": item_id, "status": s} for item_id, s in changes]},
                     now))


def _step(uow: UnitOfWork, ctx: Context, request_id: str, step: Step,
          item_status: ItemStatus | None, event_type: str, **values: Any) -> dict[str, Any]:
    """A step that moves the whole request on, and its open items with it."""
    work = _begin(uow, ctx, request_id)
    now = utcnow()
    changes = work.request.step(step, item_status, **values)
    _items_changed(uow, work.order, changes, now)
    body = _save(uow, work, event_type, now)
    uow.commit()
    return body


def accept(uow: UnitOfWork, ctx: Context, request_id: str) -> dict[str, Any]:
    return _step(uow, ctx, request_id, Step.ACCEPT, ItemStatus.IN_FULFILLMENT,
                 "fulfillment_request.accepted")


def acknowledge(uow: UnitOfWork, ctx: Context, request_id: str) -> dict[str, Any]:
    return _step(uow, ctx, request_id, Step.ACKNOWLEDGE, ItemStatus.IN_FULFILLMENT,
                 "fulfillment_request.acknowledged")


def pick(uow: UnitOfWork, ctx: Context, request_id: str, missing: Sequence[str],
         reason: str | None) -> dict[str, Any]:
    """Everything open is picked but the items reported missing, which are rejected."""
    work = _begin(uow, ctx, request_id)
    now = utcnow()
    if missing:
        reason = reason or "missing at pick"
        _rejected(uow, work, work.request.reject_missing(missing, reason), reason, now)
        _reloaded(uow, work)
    work.request.step(Step.PICK)
    body = _save(uow, work, "fulfillment_request.picked", now)
    uow.commit()
    return body


def pack(uow: UnitOfWork, ctx: Context, request_id: str, parcels: Sequence[Parcel] | None
         ) -> dict[str, Any]:
    chosen = list(parcels) if parcels else [Parcel(ctx.default_parcel_weight_grams)]
    return _step(uow, ctx, request_id, Step.PACK, None, "fulfillment_request.packed",
                 parcels=[_parcel_out(p) for p in chosen])


def ready_for_pickup(uow: UnitOfWork, ctx: Context, request_id: str) -> dict[str, Any]:
    work = _begin(uow, ctx, request_id)
    now = utcnow()
    changes = work.request.step(Step.READY_FOR_PICKUP, ItemStatus.READY_FOR_PICKUP,
                                ready_at=now)
    _items_changed(uow, work.order, changes, now)
    customer = uow.customers.get(work.order.customer_id)
    assert customer is not None
    # The event carries what a notification service needs to tell the customer.
    body = _save(uow, work, "fulfillment_request.ready_for_pickup", now,
                 customer={"email": customer["email"], "name": customer["name"],
                           "phone": customer["phone"]},
                 order_display_id=work.order.display_id)
    uow.commit()
    return body


def hand_over(uow: UnitOfWork, ctx: Context, request_id: str, collected_by: str | None
              ) -> dict[str, Any]:
    work = _begin(uow, ctx, request_id)
    now = utcnow()
    if collected_by is None:
        work.request.next(Step.HAND_OVER)
        customer = uow.customers.get(work.order.customer_id)
        assert customer is not None
        collected_by = customer["name"] or customer["email"]
    leaving = work.request.hand_over(collected_by)
    _consume(uow, leaving)
    _items_changed(uow, work.order, [(x.item_id, ItemStatus.FULFILLED.value) for x in leaving],
                   now)
    body = _save(uow, work, "fulfillment_request.picked_up", now)
    provider_calls.after_commit(uow, ctx.providers, capture_owed(uow, work.order, now))
    uow.commit()
    return body


def ship(uow: UnitOfWork, ctx: Context, request_id: str, carrier: str | None
         ) -> dict[str, Any]:
    """Send everything packed on its way. The carrier's booking (tracking number and label)
    and the capture are carried out once this commits; the route's answer shows the
    shipment as the booking left it."""
    work = _begin(uow, ctx, request_id)
    now = utcnow()
    code = carrier or work.request.carrier or ctx.default_carrier
    shipment_id = new_id()
    leaving = work.request.ship(shipment_id, code)
    shipment = _add_shipment(uow, work, shipment_id, code, None, None, leaving,
                             work.request.parcels or [], now, label_status="pending")
    # A shipment made just now: no booking of it was refused yet.
    calls = [provider_calls.add_label_call(uow, shipment, now, refusals=0)]
    body = _save(uow, work, "fulfillment_request.shipped", now, shipment_id=shipment_id)
    calls += capture_owed(uow, work.order, now)
    provider_calls.after_commit(uow, ctx.providers, calls)
    uow.commit()
    return {**body, "shipment": shipment_out(shipment, [], with_label=True)}


def shipment_view(uow: UnitOfWork, shipment_id: str) -> dict[str, Any]:
    shipment = uow.fulfillment.shipment(shipment_id)
    assert shipment is not None
    return shipment_out(shipment, uow.fulfillment.tracking([shipment_id]), with_label=True)


def book_label_again(uow: UnitOfWork, ctx: Context, shipment_id: str, carrier: str | None
                     ) -> dict[str, Any]:
    """After the carrier refused a booking: book it again, with another carrier if named."""
    found = uow.fulfillment.within(ctx.actor.scope).shipment(shipment_id)
    if found is None:
        raise NotFound(f"no shipment {shipment_id!r}")
    uow.orders.get(found["order_id"], for_update=True)
    shipment = uow.fulfillment.shipment(shipment_id, for_update=True)
    assert shipment is not None
    if shipment["label_status"] != "failed":
        state = shipment["label_status"] or "booked by its DC or 3PL"
        raise InvalidState(f"the shipment's label is {state}; only a refused booking is "
                           "asked again")
    now = utcnow()
    code = carrier or shipment["carrier"]
    version = uow.fulfillment.update_shipment_booking(
        shipment_id, now, carrier=code, label_status="pending", label_error=None)
    shipment = uow.fulfillment.shipment(shipment_id)
    assert shipment is not None
    body = shipment_out(shipment, uow.fulfillment.tracking([shipment_id]), with_label=True)
    uow.record(Event("shipment.booking_requested", shipment_id, version, body, now))
    provider_calls.after_commit(uow, ctx.providers,
                                [provider_calls.add_label_call(uow, shipment, now)])
    uow.commit()
    return body


def report_shipment(uow: UnitOfWork, ctx: Context, request_id: str, item_ids: Sequence[str],
                    carrier: str, tracking_number: str, tracking_url: str | None
                    ) -> dict[str, Any]:
    """A DC or 3PL reports what it shipped: some or all of the open items."""
    work = _begin(uow, ctx, request_id)
    now = utcnow()
    shipment_id = new_id()
    leaving = work.request.report_shipment(item_ids, shipment_id, carrier)
    shipment = _add_shipment(uow, work, shipment_id, carrier, tracking_number, tracking_url,
                             leaving, [], now, label_status=None)
    body = _save(uow, work, "fulfillment_request.shipped", now, shipment_id=shipment_id)
    provider_calls.after_commit(uow, ctx.providers, capture_owed(uow, work.order, now))
    uow.commit()
    return {**body, "shipment": shipment_out(shipment, [])}


def reject(uow: UnitOfWork, ctx: Context, request_id: str, item_ids: Sequence[str],
           reason: str) -> dict[str, Any]:
    """The location cannot fulfil these items (none named: all it still has): they go back
    to routing, which sends them elsewhere or holds them."""
    work = _begin(uow, ctx, request_id)
    now = utcnow()
    _rejected(uow, work, work.request.reject(item_ids, reason), reason, now)
    _reloaded(uow, work)
    body = request_out(work.request, work.order.currency)
    uow.commit()
    return body


def _rejected(uow: UnitOfWork, work: _Work, rejected: Sequence[RequestItem], reason: str,
              now: dt.datetime) -> None:
    """Release the rejected items' stock here, record the rejection, and route them again."""
    inventory.lock_stock_of(uow, [i.sku for i in work.order.items])
    inventory.release(uow, [x.reservation_id for x in rejected if x.reservation_id is not None])
    item_ids = sorted(x.item_id for x in rejected)
    _save(uow, work, "fulfillment_request.rejected", now, rejected_items=item_ids,
          rejection_reason=reason)
    work.order.hold(item_ids, f"rejected by {work.request.location_id}: {reason}")
    # The items just put on hold are routed, so the order is saved with them.
    route_items(uow, work.order, "rejection", now, refuse_unavailable=False)


def withdraw_items(uow: UnitOfWork, order: Order, item_ids: Sequence[str],
                   status: LinkStatus, reason: str | None, now: dt.datetime) -> None:
    """Take cancelled items out of their open requests; a request left with nothing to do is
    cancelled."""
    by_request: dict[str, list[str]] = {}
    for link in uow.fulfillment.open_links_of_items(item_ids):
        by_request.setdefault(link["request_id"], []).append(link["item_id"])
    for request_id, ids in sorted(by_request.items()):
        request = uow.fulfillment.load(request_id, for_update=True)
        assert request is not None
        request.withdraw(ids, status, reason)
        version = uow.fulfillment.save(request, now)
        uow.record(Event("fulfillment_request.items_cancelled", request_id, version,
                         {**request_out(request, order.currency), "cancelled_items": ids},
                         now))


def _consume(uow: UnitOfWork, items: Sequence[RequestItem]) -> None:
    inventory.consume(uow, [x.reservation_id for x in items if x.reservation_id is not None])


def _add_shipment(uow: UnitOfWork, work: _Work, shipment_id: str, carrier: str,
                  tracking_number: str | None, tracking_url: str | None,
                  leaving: Sequence[RequestItem], parcels: list[dict[str, Any]],
                  now: dt.datetime, label_status: str | None) -> dict[str, Any]:
    _consume(uow, leaving)
    row = {
        "id": shipment_id, "request_id": work.request.id, "order_id": work.order.id,
        "location_id": work.request.location_id, "carrier": carrier,
        "tracking_number": tracking_number, "tracking_url": tracking_url,
        "label_format": None, "label": None, "label_status": label_status,
        "label_error": None, "parcels": parcels, "item_ids": [x.item_id for x in leaving],
        "status": ShipmentStatus.CREATED.value,
        "version": 1, "created_at": now, "updated_at": now,
    }
    uow.fulfillment.add_shipment(row)
    _items_changed(uow, work.order, [(x.item_id, ItemStatus.SHIPPED.value) for x in leaving],
                   now)
    uow.record(Event("shipment.created", shipment_id, 1, shipment_out(row, []), now))
    return row


def _parcel_out(p: Parcel) -> dict[str, Any]:
    return {"weight_grams": p.weight_grams, "length_mm": p.length_mm, "width_mm": p.width_mm,
            "height_mm": p.height_mm}


def record_tracking(uow: UnitOfWork, shipment_id: str, status: ShipmentStatus,
                    occurred_at: dt.datetime, description: str | None, place: str | None
                    ) -> dict[str, Any]:
    """A carrier's update. The shipment's status is that of its latest update by the time it
    happened, so an update arriving late does not turn a delivered parcel back."""
    if status not in TRACKING_STATUSES:
        raise ValidationFailed(f"{status.value} is not a tracking status")
    found = uow.fulfillment.shipment(shipment_id)
    if found is None:
        raise NotFound(f"no shipment {shipment_id!r}")
    order = uow.orders.load(found["order_id"], for_update=True)
    shipment = uow.fulfillment.shipment(shipment_id, for_update=True)
    assert order is not None
    assert shipment is not None
    now = utcnow()
    uow.fulfillment.add_tracking({
        "id": new_id(), "shipment_id": shipment_id, "status": status.value,
        "occurred_at": occurred_at, "description": description, "place": place,
        "received_at": now})
    tracking = uow.fulfillment.tracking([shipment_id])
    latest = tracking[-1]["status"]
    if latest != shipment["status"]:
        version = uow.fulfillment.update_shipment(shipment_id, latest, now)
        shipment = uow.fulfillment.shipment(shipment_id)
        assert shipment is not None
        uow.record(Event("shipment.updated", shipment_id, version,
                         shipment_out(shipment, tracking), now))
        if latest == ShipmentStatus.DELIVERED:
            _items_changed(uow, order, [
                (i, ItemStatus.DELIVERED.value) for i in shipment["item_ids"]
                if order.item(i).status is ItemStatus.SHIPPED], now)
    body = shipment_out(shipment, tracking)
    uow.commit()
    return body


def capture_owed(uow: UnitOfWork, order: Order, now: dt.datetime) -> list[str]:
    """Ask for what the goods that left `order` (as locked by the step) are worth and is not
    captured or asked for yet, from the order's payments in turn; returns the calls to carry
    out once this commits. A refused capture leaves the amount owed: the next departure, or
    a retry, asks again."""
    owed = order.owed_for_departed()
    if not owed:
        return []
    # What the external system captured counts first.
    books = provider_calls.payment_books(uow, order.id)
    payments = {book.id: p for p, book in books}
    return [provider_calls.add_payment_call(uow, payments[book.id], book, CallKind.CAPTURE,
                                            amount, now)
            for book, amount in plan_captures([b for _, b in books], owed)]


def notify_providers(engine: Engine, providers: Providers, now: dt.datetime,
                     limit: int = 50) -> int:
    """Tell DCs and 3PLs of their new requests. Several workers may run this: each claims
    its batch for a while, so no request is sent by two at once. Returns how many were
    delivered."""
    with UnitOfWork(engine) as uow:
        due = uow.fulfillment.due_notifications(now, limit)
        uow.fulfillment.claim_notifications([r["id"] for r in due], now + NOTIFY_LEASE)
        uow.commit()
    delivered = 0
    for request in due:
        with UnitOfWork(engine, read_only=True) as uow:
            location = uow.locations.get(request["location_id"])
            endpoint = uow.locations.callback(request["location_id"])
            order = uow.orders.get(request["order_id"])
            assert location is not None
            assert order is not None
            out = request_out(uow.fulfillment.assemble([request])[0], order["currency"])
            # Its delivery state is ours, not the provider's.
            out.pop("notification", None)
            body = {**out, "order_display_id": order["display_id"],
                    "service_level": order["service_level"],
                    "ship_to": order["shipping_address"]}
        error = None
        if endpoint is None:
            error = (f"location {request['location_id']} has no fulfillment_callback_url; "
                     "set one to have its requests delivered")
        else:
            url, secret = endpoint
            try:
                providers.notifier.notify(Notification(request["id"], url, secret, body))
            except NotifyFailed as exc:
                error = str(exc)
        _notification_outcome(engine, request["id"], request["notify_attempts"] + 1, error,
                              now)
        delivered += error is None
    return delivered


def _notification_outcome(engine: Engine, request_id: str, attempts: int, error: str | None,
                          now: dt.datetime) -> None:
    """What the provider answered, in a transaction of its own, with its event. The event's
    entity is the request's notification, one in sequence per attempt: the request itself is
    unchanged, so the next attempt sends the same body under the same message id."""
    next_at = None if error is None else now + delay_after(attempts)
    with UnitOfWork(engine) as uow:
        uow.fulfillment.notification_done(
            request_id, delivered=error is None, attempts=attempts, next_at=next_at,
            error=error[:1000] if error else None)
        request = uow.fulfillment.get(request_id)
        assert request is not None
        uow.record(Event(
            "fulfillment_request.notified" if error is None
            else "fulfillment_request.notification_failed",
            f"{request_id}/notification", attempts, {
                "request_id": request_id, "order_id": request["order_id"],
                "location_id": request["location_id"],
                "state": "delivered" if error is None else "pending", "attempts": attempts,
                "last_error": error[:1000] if error else None,
                "next_attempt_at": next_at.isoformat() if next_at else None},
            utcnow()))
        uow.commit()
