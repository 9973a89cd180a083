"""Calls to PSPs and carriers (DESIGN §3.7): captures, refunds, voids and label bookings.

A step that needs one writes it as an intent in its own transaction, with an idempotency key
made of what the call is for. Once the step commits, the request that made it carries it out
at once, holding no lock and no transaction; the worker carries out whatever is left (the
process died, the provider was unreachable). Each outcome is recorded in a transaction of its
own with its event. A step retried after a failed commit writes the same intent under the
same key, so the provider takes it once, and no provider is ever called for a change that
did not commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import RowMapping

from oms.adapters import ProviderUnavailable
from oms.adapters.carriers import BookingRequest, CarrierError, Parcel
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.adapters.payments import PaymentRequest
from oms.adapters.registry import GIFT_CARD, Providers
from oms.domain.events import Event, utcnow
from oms.domain.ids import new_id
from oms.domain.money import format_minor
from oms.domain.orders import Order, PaymentState
from oms.domain.payments import CallKind, CallStatus, PaymentBook, payment_state
from oms.domain.retries import delay_after
from oms.services.views import RowLike, gift_card_out, shipment_out

log = logging.getLogger(__name__)

#: Whoever carries a call out holds it this long; then the worker may take it over. Longer
#: than any provider may take to answer.
LEASE = dt.timedelta(minutes=2)


def payment_books(uow: UnitOfWork, order_id: str) -> list[tuple[RowMapping, PaymentBook]]:
    """The order's payments in the order they were made, with what is asked of their PSP."""
    payments = uow.orders.payments(order_id)
    pending = uow.calls.pending_amounts([p["id"] for p in payments])
    return [(p, book_of(p, pending)) for p in payments]


def book_of(p: RowLike, pending: Mapping[tuple[str, str], int]) -> PaymentBook:
    return PaymentBook(
        p["id"], p["amount_minor"], p["captured_minor"], p["refunded_minor"],
        p["voided_minor"], pending.get((p["id"], CallKind.CAPTURE.value), 0),
        pending.get((p["id"], CallKind.REFUND.value), 0),
        pending.get((p["id"], CallKind.VOID.value), 0))


def add_payment_call(uow: UnitOfWork, payment: RowMapping, book: PaymentBook, kind: CallKind,
                     amount: int, now: dt.datetime) -> str:
    refusals = uow.calls.count(kind=kind.value, payment_id=payment["id"],
                               status=CallStatus.FAILED.value)
    return _add(uow, kind, book.key(kind, amount, refusals), payment["order_id"],
                payment["psp"] or "default", now, payment_id=payment["id"], amount=amount)


def add_label_call(uow: UnitOfWork, shipment: dict[str, Any] | RowMapping, now: dt.datetime,
                   refusals: int | None = None) -> str:
    """The booking of a shipment's label; `refusals`, the bookings of it the carrier refused,
    is counted unless the caller knows it."""
    if refusals is None:
        refusals = uow.calls.count(kind=CallKind.LABEL.value, shipment_id=shipment["id"],
                                   status=CallStatus.FAILED.value)
    key = f"{shipment['id']}:label" + (f":{refusals}" if refusals else "")
    return _add(uow, CallKind.LABEL, key, shipment["order_id"], shipment["carrier"], now,
                shipment_id=shipment["id"])


def _add(uow: UnitOfWork, kind: CallKind, key: str, order_id: str, provider: str,
         now: dt.datetime, *, payment_id: str | None = None, shipment_id: str | None = None,
         amount: int | None = None) -> str:
    # Held from the clock's now, not the step's (a worker pass's `now` may be minutes old).
    held_until = utcnow() + LEASE
    call_id = new_id()
    uow.calls.add({
        "id": call_id, "kind": kind.value, "idempotency_key": key, "order_id": order_id,
        "payment_id": payment_id, "shipment_id": shipment_id, "provider": provider,
        "amount_minor": amount, "status": CallStatus.PENDING.value, "attempts": 0,
        # Held by the request that writes it, which carries it out once it commits.
        "next_attempt_at": now, "lease_until": held_until, "last_error": None,
        "created_at": now, "completed_at": None})
    return call_id


def after_commit(uow: UnitOfWork, providers: Providers, call_ids: Sequence[str]) -> None:
    """Carry these calls out as soon as the transaction that wrote them commits (on the
    providers' own threads, waited for a bounded time)."""
    if call_ids:
        ids = list(call_ids)
        engine = uow.engine
        uow.after_commit(lambda: providers.runner.run(lambda: carry_out(engine, providers,
                                                                        ids)))


def carry_out_due(engine: Engine, providers: Providers, now: dt.datetime,
                  limit: int = 50) -> int:
    """The worker's part: calls nobody carried out (or to be tried again). Several workers
    may run this: each claims one call at a time, held while it is carried out, so a slow
    provider does not let a claim run out under calls still waiting their turn. Returns how
    many calls were made."""
    made = 0
    while made < limit:
        with UnitOfWork(engine) as uow:
            claimed = uow.calls.claim_due(now, utcnow() + LEASE, 1)
            uow.commit()
        if not claimed:
            break
        carry_out(engine, providers, [claimed[0]["id"]])
        made += 1
    return made


@dataclass(frozen=True)
class _Outcome:
    succeeded: bool
    #: A refusal, or why the provider could not be asked.
    reason: str | None = None
    #: The provider could not be reached: ask again later.
    retry: bool = False
    result: Any = None


def carry_out(engine: Engine, providers: Providers, call_ids: Sequence[str]) -> None:
    """Carry out these calls (of one step, so mostly of one order), each recorded in a
    transaction of its own. What they need is read once, before the first is made: the
    order, its payments and the shipment are what the step that wrote the calls left."""
    with UnitOfWork(engine, read_only=True) as uow:
        calls = [call for call in (uow.calls.get(call_id) for call_id in call_ids)
                 if call is not None and call["status"] == CallStatus.PENDING]
        orders: dict[str, RowMapping] = {}
        contexts = [_context(uow, call, orders) for call in calls]
    for call, context in zip(calls, contexts, strict=True):
        outcome = _call(providers, call, context)
        _record(engine, call, outcome)


def _context(uow: UnitOfWork, call: RowMapping, orders: dict[str, RowMapping]
             ) -> dict[str, Any]:
    if call["order_id"] not in orders:
        read = uow.orders.get(call["order_id"])
        assert read is not None
        orders[call["order_id"]] = read
    order = orders[call["order_id"]]
    if call["kind"] != CallKind.LABEL:
        [payment] = [p for p in uow.orders.payments(order["id"]) if p["id"] == call["payment_id"]]
        return {"order": order, "payment": payment}
    shipment = uow.fulfillment.shipment(call["shipment_id"])
    assert shipment is not None
    location = uow.locations.get(shipment["location_id"])
    customer = uow.customers.get(order["customer_id"])
    assert location is not None
    assert customer is not None
    return {"order": order, "shipment": shipment, "location": location.value,
            "customer": customer}


def _call(providers: Providers, call: RowMapping, context: dict[str, Any]) -> _Outcome:
    """Ask the provider, outside any transaction."""
    try:
        if call["kind"] == CallKind.LABEL:
            return _Outcome(True, result=_book(providers, call, context))
        payment, order = context["payment"], context["order"]
        request = PaymentRequest(
            idempotency_key=call["idempotency_key"], psp=call["provider"],
            reference=payment["reference"], amount_minor=call["amount_minor"],
            currency=order["currency"], authorized_minor=payment["amount_minor"])
        psp = providers.psp(call["provider"])
        ask = {CallKind.CAPTURE: psp.capture, CallKind.REFUND: psp.refund,
               CallKind.VOID: psp.void}[CallKind(call["kind"])]
        result = ask(request)
        return _Outcome(result.succeeded, result.reason or (None if result.succeeded
                                                            else "refused"))
    except CarrierError as exc:
        return _Outcome(False, str(exc)[:300] or "refused")
    except ProviderUnavailable as exc:
        return _Outcome(False, f"unavailable: {exc}"[:300], retry=True)
    except Exception as exc:  # an adapter's own failure: keep the call for another attempt
        log.exception("%s call %s failed", call["kind"], call["id"])
        return _Outcome(False, f"{type(exc).__name__}"[:300], retry=True)


def _book(providers: Providers, call: RowMapping, context: dict[str, Any]) -> Any:
    shipment, order, location = context["shipment"], context["order"], context["location"]
    address = location.address
    return providers.carrier(call["provider"]).book(BookingRequest(
        idempotency_key=call["idempotency_key"], shipment_id=shipment["id"],
        carrier=call["provider"], service_level=order["service_level"] or "standard",
        ship_from={"name": location.name, "line1": address.line1,
                   "postal_code": address.postal_code, "city": address.city,
                   "country": address.country},
        ship_to={"name": context["customer"]["name"], **(order["shipping_address"] or {})},
        parcels=tuple(Parcel(**p) for p in shipment["parcels"] or []),
        reference=order["display_id"]))


def _record(engine: Engine, made: RowMapping, outcome: _Outcome) -> None:
    """The outcome of the call `made`, in a transaction of its own, with its event."""
    now = utcnow()
    call_id = made["id"]
    with UnitOfWork(engine) as uow:
        # The order first, as every step locks it first.
        order = uow.orders.load(made["order_id"], for_update=True)
        assert order is not None
        call = uow.calls.lock_pending(call_id)
        if call is None:
            return  # another worker recorded it
        if outcome.retry:
            # Never taken as a refusal: an attempt that timed out may have gone through, and
            # only the same key keeps the provider from doing it twice. The call stays
            # pending, on the retry schedule, with its last error shown.
            uow.calls.retry_later(call_id, now + delay_after(call["attempts"] + 1),
                                  outcome.reason or "unavailable")
            uow.commit()
            return
        status = CallStatus.SUCCEEDED if outcome.succeeded else CallStatus.FAILED
        uow.calls.complete(call_id, status.value, now, outcome.reason)
        if call["kind"] == CallKind.LABEL:
            _label_outcome(uow, call, outcome, now)
        else:
            _payment_outcome(uow, order, call, outcome, now)
        uow.commit()


def _label_outcome(uow: UnitOfWork, call: RowMapping, outcome: _Outcome,
                   now: dt.datetime) -> None:
    shipment_id = call["shipment_id"]
    if outcome.succeeded:
        booking = outcome.result
        values: dict[str, Any] = {
            "tracking_number": booking.tracking_number, "tracking_url": booking.tracking_url,
            "label_format": booking.label_format, "label": booking.label,
            "label_status": "booked", "label_error": None}
        event_type = "shipment.booked"
    else:
        values = {"label_status": "failed", "label_error": outcome.reason}
        event_type = "shipment.booking_failed"
    version = uow.fulfillment.update_shipment_booking(shipment_id, now, **values)
    shipment = uow.fulfillment.shipment(shipment_id)
    assert shipment is not None
    uow.record(Event(event_type, shipment_id, version,
                     shipment_out(shipment, uow.fulfillment.tracking([shipment_id])), now))


_EVENTS = {
    CallKind.CAPTURE: ("payment.captured", "payment.capture_failed"),
    CallKind.REFUND: ("payment.refunded", "payment.refund_failed"),
    CallKind.VOID: ("payment.voided", "payment.void_failed"),
}
_COLUMN = {CallKind.CAPTURE: "captured_minor", CallKind.REFUND: "refunded_minor",
           CallKind.VOID: "voided_minor"}


def _payment_outcome(uow: UnitOfWork, order: Order, call: RowMapping, outcome: _Outcome,
                     now: dt.datetime) -> None:
    kind = CallKind(call["kind"])
    stored = uow.orders.payments(order.id)
    [payment] = [p for p in stored if p["id"] == call["payment_id"]]
    values: dict[str, Any] = {}
    amount = call["amount_minor"]
    if outcome.succeeded:
        column = _COLUMN[kind]
        values[column] = payment[column] + amount
    refused_capture = kind is CallKind.CAPTURE and not outcome.succeeded
    updated = {**payment, **values}
    payments = [updated if p["id"] == payment["id"] else p for p in stored]
    pending = uow.calls.pending_amounts([p["id"] for p in payments])
    # A refused capture shows until what it was for is taken: another capture succeeding
    # meanwhile (a later departure's) does not hide that something is still owed.
    still_owed = order.owed_for_departed() - sum(book_of(p, pending).taken for p in payments)
    capture_refused = refused_capture or (
        payment["status"] == PaymentState.CAPTURE_FAILED and still_owed > 0)
    state = payment_state(book_of(updated, pending), capture_refused)
    values["status"] = state.value
    if refused_capture:
        values["failure_reason"] = (outcome.reason or "refused")[:300]
    elif not capture_refused:
        values["failure_reason"] = None
    version = uow.fulfillment.update_payment(payment["id"], **values)
    currency = order.currency
    if outcome.succeeded and kind is CallKind.REFUND and call["provider"] == GIFT_CARD:
        # The retailer's own card: the refund goes back onto it with the refund's record.
        card = uow.gift_cards.give_back(payment["reference"], amount, now)
        uow.record(Event("gift_card.restored", card.code, card.version, {
            **gift_card_out(card), "amount": format_minor(amount, card.currency),
            "order_id": order.id}, now))

    def money(minor: int) -> str:
        return format_minor(minor, currency)

    done, failed = _EVENTS[kind]
    payload = {
        "payment_id": payment["id"], "order_id": order.id, "psp": call["provider"],
        "reference": payment["reference"], "currency": currency, "amount": money(amount),
        "captured": money(updated["captured_minor"]),
        "refunded": money(updated["refunded_minor"]),
        "voided": money(updated["voided_minor"]), "status": state.value}
    if not outcome.succeeded:
        payload["reason"] = outcome.reason
    uow.record(Event(done if outcome.succeeded else failed, payment["id"], version, payload,
                     now))
