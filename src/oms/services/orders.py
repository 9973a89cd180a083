"""Placing orders: customer, items, payments, and routing every current item in the same
transaction that reserves its stock."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.adapters.registry import Providers
from oms.domain.errors import Conflict, DomainError, FieldError, NotFound, ValidationFailed
from oms.domain.events import Event, utcnow
from oms.domain.fulfillment import LinkStatus, RequestStatus
from oms.domain.holds import inputs_digest, is_due, next_wait
from oms.domain.ids import new_id
from oms.domain.money import Money, format_minor
from oms.domain.orders import (
    ItemStatus,
    LineAmounts,
    Order,
    OrderItem,
    OrderStatus,
    PaymentAmount,
    PaymentStatus,
    PlacementWindow,
    check_money,
    derive_status,
)
from oms.domain.payments import plan_release
from oms.schemas import OrderIn
from oms.services import fulfillment, inventory, provider_calls
from oms.services.routing import route_items
from oms.services.views import customer_out, render_order, shipment_out

_DISPLAY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def display_id(prefix: str) -> str:
    # One draw from the system's randomness, not one per character.
    number = secrets.randbelow(len(_DISPLAY_ALPHABET) ** 8)
    chars = []
    for _ in range(8):
        number, digit = divmod(number, len(_DISPLAY_ALPHABET))
        chars.append(_DISPLAY_ALPHABET[digit])
    return prefix + "-" + "".join(chars)


def order_hash(order: OrderIn) -> str:
    """Fingerprint of an order as sent, to tell a blind retry from a different order."""
    body = order.model_dump(mode="json", exclude_none=True)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def parse_minor(amount: str, currency: str, field: str) -> int:
    """An amount of the request in minor units; 422 naming `field` when it is none."""
    try:
        return Money.parse(amount, currency).minor
    except ValueError as exc:
        raise ValidationFailed(f"{field}: {exc}", [FieldError(field, str(exc))]) from exc


def place_order(uow: UnitOfWork, order: OrderIn, window: PlacementWindow = PlacementWindow()
                ) -> tuple[dict[str, Any], bool]:
    """Returns the order and whether it was created (False: the same order sent again)."""
    fingerprint = order_hash(order)
    try:
        body = place_in_transaction(uow, order, fingerprint, window, write_now=False)
        # The order's row refuses a duplicate here (IntegrityError), with the events.
        uow.commit()
    except (DomainError, IntegrityError):
        # Most orders are new, so they are not looked for first. The same (channel,
        # external_id) placed before, or by another request just now, is refused by the
        # order's row (IntegrityError); a resend may also meet a refusal first (a time now
        # too old, a sku since removed, the stock since sold). Either way the order placed
        # before is the answer, as it always was.
        if order.external_id is None:
            raise
        uow.rollback()
        existing = uow.orders.by_external(order.channel.value, order.external_id)
        if existing is None:
            raise
        return _duplicate(uow, existing, fingerprint, order.external_id), False
    return body, True


def _duplicate(uow: UnitOfWork, existing: RowMapping, fingerprint: str, external_id: str
               ) -> dict[str, Any]:
    if existing["request_hash"] != fingerprint:
        raise Conflict(
            f"order {existing['display_id']} already has external_id {external_id!r} with "
            "different content",
            [FieldError("external_id", f"taken by order {existing['id']}")],
        )
    return order_out(uow, existing["id"])


def validate_order(order: OrderIn, preorder_dates: Mapping[str, dt.date | None],
                   now: dt.datetime, window: PlacementWindow) -> None:
    """Refuse an order placed at a time it cannot have been, whose money does not add up or
    that names unknown products. `preorder_dates` holds every known sku of the order (None:
    not a pre-order)."""
    currency = order.currency
    for n, i in enumerate(order.items):
        for name in ("unit_price", "discount", "tax"):
            parse_minor(getattr(i, name), currency, f"items.{n}.{name}")
    if order.shipping:
        parse_minor(order.shipping.option.price, currency, "shipping.option.price")
    parse_minor(order.totals.grand_total, currency, "totals.grand_total")
    for n, p in enumerate(order.payments):
        parse_minor(p.amount, currency, f"payments.{n}.amount")
    errors = window.check(order.placed_at, historical=order.historical, now=now)
    errors += check_money(
        [LineAmounts(i.quantity, Decimal(i.unit_price), Decimal(i.discount), Decimal(i.tax))
         for i in order.items],
        Decimal(order.shipping.option.price) if order.shipping else Decimal(0),
        Decimal(order.totals.grand_total),
        [PaymentAmount(p.status, Decimal(p.amount)) for p in order.payments],
        historical=order.historical,
    )
    errors += [FieldError(f"items.{n}.sku", f"no product {i.sku!r}")
               for n, i in enumerate(order.items) if i.sku not in preorder_dates]
    if errors:
        raise ValidationFailed("; ".join(e.message for e in errors), errors)


@dataclass
class NewOrder:
    order: Order
    payments: list[dict[str, Any]]


def new_order(order: OrderIn, fingerprint: str, preorder_dates: Mapping[str, dt.date | None],
              customer_id: str, now: dt.datetime) -> NewOrder:
    """A validated order as it is stored; current items start on hold until routed."""
    currency = order.currency
    order_id = new_id()
    items = [OrderItem(
        id=new_id(), line=n + 1, sku=item.sku, quantity=item.quantity,
        unit_price_minor=Money.parse(item.unit_price, currency).minor,
        discount_minor=Money.parse(item.discount, currency).minor,
        tax_minor=Money.parse(item.tax, currency).minor,
        status=ItemStatus(item.status or ItemStatus.FULFILLED.value) if order.historical
        else ItemStatus.ON_HOLD,
        preorder=preorder_dates[item.sku] is not None,
        tentative_ship_date=preorder_dates[item.sku]) for n, item in enumerate(order.items)]
    shipping = order.shipping
    return NewOrder(
        Order(
            id=order_id, display_id=display_id("O"), channel=order.channel.value,
            external_id=order.external_id, request_hash=fingerprint,
            status=derive_status(i.status for i in items),
            historical=order.historical, placed_at=order.placed_at.astimezone(dt.UTC),
            currency=currency, customer_id=customer_id,
            service_level=shipping.option.service_level.value if shipping else None,
            carrier=shipping.option.carrier if shipping else None,
            shipping_price_minor=Money.parse(shipping.option.price, currency).minor
            if shipping else 0,
            pickup_location_id=shipping.option.pickup_location_id if shipping else None,
            fulfillment_location_id=order.fulfillment_location_id,
            shipping_address=shipping.address.model_dump(mode="json")
            if shipping and shipping.address else None,
            grand_total_minor=Money.parse(order.totals.grand_total, currency).minor,
            version=1, created_at=now, updated_at=now, items=items),
        [{"id": new_id(), "order_id": order_id, "method": p.method, "psp": p.psp,
          "reference": p.reference, "amount_minor": Money.parse(p.amount, currency).minor,
          "status": p.status.value,
          # Captured by the system that took the order: the OMS never captures it again.
          "captured_minor": Money.parse(p.amount, currency).minor
          if p.status is PaymentStatus.CAPTURED else 0,
          "refunded_minor": 0, "voided_minor": 0,
          "failure_reason": None, "version": 1} for p in order.payments],
    )


def customer_row(order: OrderIn) -> dict[str, Any]:
    email = order.customer.email
    return {"id": new_id(), "display_id": display_id("C"), "email": email,
            "email_key": email.lower(), "name": order.customer.name,
            "phone": order.customer.phone}


def place_in_transaction(uow: UnitOfWork, order: OrderIn, fingerprint: str,
                         window: PlacementWindow, *, write_now: bool = True,
                         settle: Callable[[Order], None] | None = None) -> dict[str, Any]:
    """Route and write the order in the caller's transaction, without committing. With
    `write_now` False its rows are written with the events, when the caller commits.
    `settle` deals with the items that are not routed before the rest are (a store's
    checkout: what the customer takes now, what waits at a store for them)."""
    now = utcnow()
    # Routing's first try weighs this ATP; on PostgreSQL the three reads are one round trip.
    reads = uow.read_for_placement(sorted({i.sku for i in order.items}),
                                   order.customer.email.lower(), with_atp=not order.historical)
    preorder_dates = reads.preorder_dates
    validate_order(order, preorder_dates, now, window)
    named = [x for x in (order.fulfillment_location_id,
                         order.shipping.option.pickup_location_id if order.shipping else None)
             if x is not None]
    missing = set(named) - uow.locations.existing(named) if named else set()
    if missing:
        raise ValidationFailed(f"no location {', '.join(sorted(missing))}")

    customer, created = uow.customers.find_or_create(customer_row(order), now,
                                                     found=reads.customer)
    if created:
        uow.record(Event("customer.created", customer["id"], 1, customer_out(customer), now))
    new = new_order(order, fingerprint, preorder_dates, customer["id"], now)
    # The order is routed before its rows are written, and they are written as routed, with
    # what routing adds (reservations, requests, its run) and the events, in one statement
    # on PostgreSQL: nothing reads them back before then.
    uow.hold_inserts()
    created_at_mark = uow.pending_mark()
    try:
        if settle is not None:
            settle(new.order)
            new.order.status = new.order.derived_status
        if not order.historical:
            route_items(uow, new.order, "placement", now, refuse_unavailable=True,
                        written=False, atp=reads.atp)
        uow.orders.add([new.order], new.payments)
        if write_now:
            uow.inserts.flush()
    except BaseException:
        # What this order would have written goes with it (an import goes on to the next).
        uow.inserts.clear()
        raise
    body = render_order(new.order, customer, new.payments)
    # order.created carries the order as placed and routed, yet comes before its item events.
    uow.record_at(created_at_mark, Event("order.created", new.order.id, 1, body, now))
    return body


def order_detail(uow: UnitOfWork, order_id: str) -> dict[str, Any]:
    """An order with its events, fulfilment requests and shipments."""
    body = order_out(uow, order_id)
    events = uow.events.read(after=None, types=[], limit=1000, entity_id=body["id"])
    body["events"] = [{"id": e.id, "type": e.type, "sequence": e.sequence,
                       "occurred_at": e.occurred_at.isoformat()} for e in events]
    requests = uow.fulfillment.of_order(body["id"])
    body["fulfillment_requests"] = [
        {"id": r["id"], "location_id": r["location_id"], "type": r["type"],
         "status": r["status"]} for r in requests]
    shipments = uow.fulfillment.shipments(order_id=body["id"])
    tracking = uow.fulfillment.tracking([s["id"] for s in shipments])
    body["shipments"] = [shipment_out(s, [e for e in tracking if e["shipment_id"] == s["id"]])
                         for s in shipments]
    return body


def order_locations(uow: UnitOfWork, order_id: str) -> set[str]:
    """Where the order is or will be fulfilled: its items' locations, its pickup store and
    the location it was pre-routed to. Store staff act only on orders of their stores."""
    order = uow.orders.load(order_id)
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    named = {order.pickup_location_id, order.fulfillment_location_id}
    named |= {i.location_id for i in order.items}
    return {x for x in named if x is not None}


def reroute(uow: UnitOfWork, order_id: str) -> dict[str, Any]:
    order = uow.orders.load(order_id, for_update=True)
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    route_items(uow, order, "reroute", utcnow(), refuse_unavailable=False)
    body = order_out(uow, order.id)
    uow.commit()
    return body


def reroute_waiting(engine: Engine, limit: int = 100, now: dt.datetime | None = None) -> int:
    """Route again the items of orders on hold whose routing may now come out differently,
    oldest orders first: the ATP of one of their skus rose somewhere, a location or the
    routing rules changed, or their wait since the last look is over (domain.holds); returns
    how many orders were looked at. A look that leaves every item on hold for the reason it
    had writes no routing run and no event, and doubles the wait. Several workers may run
    this at once: each order is taken by one of them (a worker skips an order another one
    holds; it is only a retry)."""
    now = now or utcnow()
    with UnitOfWork(engine, read_only=True) as uow:
        held = uow.orders.held()
        if not held:
            return 0
        rises = uow.stock.atp_rises(sorted({i.sku for o in held for i in o.items}))
        locations, rules = uow.locations.revision(), uow.routing.revision()
    inputs = {o.id: inputs_digest(o.items, rises, locations, rules) for o in held}
    due = [o.id for o in held if is_due(o.routing_inputs, inputs[o.id], o.reroute_after, now)]
    looked_at = 0
    for order_id in due[:limit]:
        with UnitOfWork(engine) as uow:
            order = uow.orders.load_if_free(order_id)
            # Another worker may have looked at it meanwhile.
            if order is None or order.status is not OrderStatus.ON_HOLD or not is_due(
                    order.routing_inputs, inputs[order_id], order.reroute_after, now):
                continue
            before = [(i.status, i.hold_reason) for i in order.items]
            route_items(uow, order, "worker", now, refuse_unavailable=False, only_changes=True)
            changed = before != [(i.status, i.hold_reason) for i in order.items]
            last = order.reroute_wait_seconds
            wait = next_wait(None if last is None else dt.timedelta(seconds=last), changed)
            uow.orders.set_reroute(order_id, inputs[order_id], now + wait, wait)
            uow.commit()
            looked_at += 1
    return looked_at


def cancel(uow: UnitOfWork, providers: Providers, order_id: str,
           item_ids: Sequence[str] | None, reason: str | None) -> dict[str, Any]:
    """Cancel some or all items not yet shipped: their reservations go back to ATP and they
    leave their fulfilment requests."""
    order = uow.orders.load(order_id, for_update=True)
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    provider_calls.after_commit(uow, providers,
                                cancel_items(uow, order, item_ids, reason, utcnow()))
    body = order_out(uow, order.id)
    uow.commit()
    return body


def cancel_items(uow: UnitOfWork, order: Order, item_ids: Sequence[str] | None,
                 reason: str | None, now: dt.datetime) -> list[str]:
    """Cancel these open items of the locked order (none named: all of them), without
    committing. What the order no longer owes is voided from its authorisations, or refunded
    where it was captured; returns those PSP calls, to carry out once the transaction
    commits."""
    cancelled = order.cancel(item_ids, reason)
    inventory.release(uow, cancelled.reservation_ids)
    version = uow.orders.save(order, now, 1)
    fulfillment.withdraw_items(uow, order, cancelled.item_ids, LinkStatus.CANCELLED, reason,
                               now)
    currency = order.currency
    uow.record(Event("order.items_cancelled", order.id, version, {
        "order_id": order.id, "item_ids": cancelled.item_ids, "reason": reason,
        # What the payment side voids or refunds for these items.
        "amount_to_void_or_refund": format_minor(cancelled.refund_minor, currency),
        "currency": currency}, now))
    books = provider_calls.payment_books(uow, order.id)
    payments = {book.id: p for p, book in books}
    return [provider_calls.add_payment_call(uow, payments[book.id], book, kind, amount, now)
            for book, kind, amount in plan_release([b for _, b in books],
                                                   cancelled.still_owed_minor)]


def capture(uow: UnitOfWork, providers: Providers, order_id: str) -> dict[str, Any]:
    """Ask the PSP again for what departed goods are owed (after a failed capture)."""
    order = uow.orders.load(order_id, for_update=True)
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    provider_calls.after_commit(uow, providers,
                                fulfillment.capture_owed(uow, order, utcnow()))
    body = order_out(uow, order.id)
    uow.commit()
    return body


def expire_uncollected_pickups(engine: Engine, providers: Providers, now: dt.datetime,
                               days: int, limit: int = 100) -> int:
    """Cancel pickups not collected within `days` of their store's calendar after the day
    they were ready: their stock goes back to ATP, their authorisation is voided. Returns
    how many requests expired."""
    with UnitOfWork(engine, read_only=True) as uow:
        due = uow.fulfillment.uncollected(now, days, limit)
    expired = 0
    for request in due:
        with UnitOfWork(engine) as uow:
            order = uow.orders.load_if_free(request["order_id"])
            if order is None:
                continue  # another worker, or someone handing it over right now
            current = uow.fulfillment.load(request["id"], for_update=True)
            if current is None or current.status is not RequestStatus.READY_FOR_PICKUP:
                continue
            open_ids = [x.item_id for x in current.open_items]
            if not open_ids:
                continue  # nothing to cancel (none named would cancel the whole order)
            provider_calls.after_commit(uow, providers, cancel_items(
                uow, order, open_ids, f"not collected within {days} days", now))
            uow.commit()
            expired += 1
    return expired


def order_out(uow: UnitOfWork, order_id: str) -> dict[str, Any]:
    order = uow.orders.load(order_id)
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    return _out(uow, order)


def orders_out(uow: UnitOfWork, rows: Sequence[RowMapping]) -> list[dict[str, Any]]:
    return [_out(uow, o) for o in uow.orders.assemble(rows)]


def _out(uow: UnitOfWork, order: Order) -> dict[str, Any]:
    customer = uow.customers.get(order.customer_id)
    assert customer is not None
    payments = uow.orders.payments(order.id)
    pending = uow.calls.pending_amounts([p["id"] for p in payments])
    return render_order(order, customer, payments, pending)


