"""A store cart's payments and its checkout into an order.

A card is authorised with the PSP before the payment is written, and never inside a
transaction: the cart is read, the PSP asked, then the cart changed in a transaction of its
own. The PSP's idempotency key comes from the request's Idempotency-Key, so a request sent
again is not authorised twice. Cash pays what is due and gives change.

Checkout places the order through the same placement as a web shop's, with channel `store`:
take-now items are fulfilled there and then (their holds consumed, their part of the card
payments captured once the order is committed), pickup items are issued to their store on
the stock their cart held, and ship items are routed as any order's.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError as PydanticError
from sqlalchemy import Engine

from oms.adapters import ProviderUnavailable
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.adapters.payments import PaymentProvider, PaymentRequest
from oms.adapters.registry import CASH, GIFT_CARD, Providers
from oms.domain.access import Principal, Scope
from oms.domain.carts import (
    Cart,
    CartStatus,
    Fulfillment,
    Tender,
    TenderMethod,
    TenderStatus,
)
from oms.domain.errors import (
    ApprovalRequired,
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    UpstreamFailed,
    ValidationFailed,
)
from oms.domain.events import Event, utcnow
from oms.domain.ids import new_id
from oms.domain.money import format_minor
from oms.domain.orders import ItemStatus, Order, PlacementWindow, ServiceLevel
from oms.schemas import GiftCardIn, OrderIn, PaymentIn
from oms.services import inventory, provider_calls
from oms.services.carts import (
    CartRules,
    Priced,
    approvals_needed,
    delete_cart,
    edit_cart,
    hold_line,
    load_cart,
    price,
    save_edit,
)
from oms.services.fulfillment import capture_owed
from oms.services.orders import parse_minor, place_in_transaction
from oms.services.routing import issue_requests
from oms.services.views import gift_card_out

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The payments an authorisation stands behind, voided when taken back.
VOIDED = frozenset({TenderMethod.CARD, TenderMethod.PAY_BY_LINK})
#: At most this many payments toward one cart (an order takes 20).
MAX_TENDERS = 20


class PaymentDeclined(DomainError):
    """The PSP declined the card: nothing was written."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, [], "payment-declined")


class RequestWork(Protocol):
    """The request's unit of work, opened when first used, and a way to call out before."""

    @property
    def uow(self) -> UnitOfWork: ...

    def outside(self, call: Callable[[], T]) -> T: ...


def add_payment(engine: Engine, work: RequestWork, providers: Providers, scope: Scope,
                cart_id: str, method: TenderMethod, amount: str, psp: str,
                request_key: str | None, rules: CartRules, gift_card: str | None = None
                ) -> dict[str, Any]:
    """Pay toward the cart. A card is authorised for `amount`, at most what is due; cash
    handed over pays what is due of it, and the rest is change; a gift card (`gift_card`,
    its code) pays at most what is due and its balance holds. The PSP is called before
    the request's unit of work opens (`work.outside`). `request_key`: the request's
    Idempotency-Key with its API key's scope, if it has one.

    A card authorised for a cart that is checked out or dropped before the payment is
    written stays authorised until the PSP lets it lapse; one that pays more than is due
    by then (two terminals at once) shows as `balance.over`, and checkout waits until it
    is taken back (which voids it)."""
    with UnitOfWork(engine, read_only=True, scope=scope) as read:
        cart = load_cart(read, cart_id, scope)
        cart.check_open()
        due = price(read, cart, rules).pricing.grand_total_minor - cart.paid_minor
    if len(cart.tenders) >= MAX_TENDERS:
        raise ValidationFailed(f"a cart takes at most {MAX_TENDERS} payments")
    tendered = parse_minor(amount, cart.currency, "amount")
    if tendered <= 0:
        raise ValidationFailed("a payment is more than 0", [FieldError("amount", "must be > 0")])
    if due <= 0:
        raise ValidationFailed(f"nothing is due on cart {cart_id}",
                               [FieldError("amount", "nothing due")])
    tender_id = new_id()
    if method is not TenderMethod.CASH and tendered > due:
        raise ValidationFailed(
            f"a {method.value} pays at most what is due ({format_minor(due, cart.currency)})",
            [FieldError("amount", f"at most {format_minor(due, cart.currency)}")])
    # Sent again with the same Idempotency-Key, the PSP takes it as the same call.
    request = PaymentRequest(
        hashlib.sha256(f"{cart_id}\n{request_key or tender_id}".encode()).hexdigest(), psp,
        None, tendered, cart.currency, tendered)
    tender = None
    if method is TenderMethod.CARD:
        result = _ask(work, psp, lambda: providers.psp(psp).authorize(request))
        if not result.succeeded:
            raise PaymentDeclined(f"the card was declined: {result.reason or 'no reason given'}")
        tender = Tender(tender_id, method, tendered, tendered, psp, result.psp_reference)
    elif method is TenderMethod.PAY_BY_LINK:
        # The customer pays on their phone: the payment counts once the PSP says so.
        expires = utcnow() + dt.timedelta(minutes=rules.link_minutes)
        link = _ask(work, psp,
                    lambda: providers.psp(psp).create_payment_link(request, expires))
        tender = Tender(tender_id, method, tendered, tendered, psp, link.reference,
                        TenderStatus.PENDING, link.url, expires)
    elif method is TenderMethod.CASH:
        tender = Tender(tender_id, method, min(tendered, due), tendered)
    uow = work.uow
    edit = edit_cart(uow, scope, cart_id, rules)
    if tender is None:
        # A gift card: its balance is taken in the cart's transaction.
        assert gift_card is not None
        tender = Tender(tender_id, method, tendered, tendered, GIFT_CARD,
                        _spend(uow, edit.cart, gift_card, tendered))
    edit.cart.tenders.append(tender)
    if method is TenderMethod.CARD:
        uow.record(Event("payment.authorized", tender.id, 1,
                         _tender_out(edit.cart, tender), utcnow()))
    elif method is TenderMethod.PAY_BY_LINK:
        assert tender.reference is not None
        assert tender.link_expires_at is not None
        uow.payment_links.add(tender.reference, psp, cart_id, tender_id,
                              tender.link_expires_at, utcnow())
    return save_edit(uow, edit, rules)


def _ask(work: RequestWork, psp: str, call: Callable[[], T]) -> T:
    """Ask the PSP before the request's unit of work opens."""
    try:
        return work.outside(call)
    except ProviderUnavailable as exc:
        raise UpstreamFailed(f"the PSP {psp!r} could not be reached: {exc}") from exc


def remove_payment(uow: UnitOfWork, providers: Providers, scope: Scope, cart_id: str,
                   tender_id: str, rules: CartRules) -> dict[str, Any]:
    """Take a payment back: a card's authorisation is voided once this commits; cash is
    handed back."""
    edit = edit_cart(uow, scope, cart_id, rules)
    cart = edit.cart
    tender = cart.tender(tender_id)
    cart.tenders.remove(tender)
    _void_after_commit(uow, providers, cart, [tender])
    _give_back(uow, cart, [tender])
    return save_edit(uow, edit, rules)


def drop_cart(uow: UnitOfWork, providers: Providers, scope: Scope, cart_id: str) -> None:
    """The cart is gone: its holds give their stock back, its cards are voided."""
    cart = delete_cart(uow, scope, cart_id, commit=False)
    _void_after_commit(uow, providers, cart, cart.tenders)
    _give_back(uow, cart, cart.tenders)
    uow.commit()


def link_notified(uow: UnitOfWork, providers: Providers, psp: str, reference: str,
                  paid: bool, now: dt.datetime) -> str:
    """The PSP says whether the customer paid a link: the cart's payment counts, or fails
    (a link paid after its expiry fails, and what was authorised is voided). A notification
    of a link already settled is a replay, and changes nothing. Returns what it did."""
    link = uow.payment_links.lock(psp, reference)
    if link is None:
        raise NotFound(f"no payment link {reference!r} of {psp}")
    if link.status != TenderStatus.PENDING.value:
        return "ignored"
    cart = uow.carts.load(link.cart_id, for_update=True)
    tender = next((x for x in cart.tenders if x.id == link.tender_id), None) if cart else None
    ok = (paid and cart is not None and tender is not None and cart.status is CartStatus.OPEN
          and now < link.expires_at)
    status = TenderStatus.AUTHORIZED if ok else TenderStatus.FAILED
    uow.payment_links.settle(psp, reference, status, now)
    if cart is not None and tender is not None:
        settled = replace(tender, status=status)
        cart.tenders[cart.tenders.index(tender)] = settled
        uow.carts.save(cart, now)
        if ok:
            uow.record(Event("payment.authorized", settled.id, 1, _tender_out(cart, settled),
                             now))
    if paid and not ok and cart is not None:
        # Paid too late, or for a cart gone by: the money is not taken.
        late = tender or Tender(link.tender_id, TenderMethod.PAY_BY_LINK, 0, 0, psp, reference)
        _void_after_commit(uow, providers, cart, [late])
    uow.commit()
    return status.value


def issue_gift_card(uow: UnitOfWork, caller: Principal, body: GiftCardIn) -> dict[str, Any]:
    code = body.code or secrets.token_hex(8).upper()
    now = utcnow()
    card = uow.gift_cards.add(code, body.currency,
                              parse_minor(body.amount, body.currency, "amount"),
                              caller.key_id, now)
    if card is None:
        raise Conflict(f"gift card {code} exists already", [FieldError("code", "taken")])
    uow.record(Event("gift_card.issued", card.code, card.version, gift_card_out(card), now))
    uow.commit()
    return gift_card_out(card)


def gift_card(uow: UnitOfWork, code: str) -> dict[str, Any]:
    card = uow.gift_cards.get(code)
    if card is None:
        raise NotFound(f"no gift card {code!r}")
    return gift_card_out(card)


def _spend(uow: UnitOfWork, cart: Cart, code: str, amount_minor: int) -> str:
    """Take the amount off the card's balance, in the cart's transaction; the card's code."""
    card = uow.gift_cards.get(code)
    if card is None:
        raise NotFound(f"no gift card {code!r}", [FieldError("gift_card", "unknown")])
    if card.currency != cart.currency:
        raise ValidationFailed(f"gift card {code} holds {card.currency}, the cart is in "
                               f"{cart.currency}", [FieldError("gift_card", "currency")])
    now = utcnow()
    spent = uow.gift_cards.spend(code, amount_minor, now)
    if spent is None:
        left = uow.gift_cards.get(code)
        balance = format_minor(left.balance_minor if left else 0, cart.currency)
        raise ValidationFailed(f"gift card {code} holds {balance} {cart.currency}, less than "
                               f"{format_minor(amount_minor, cart.currency)}",
                               [FieldError("amount", f"at most {balance}")])
    uow.record(Event("gift_card.redeemed", spent.code, spent.version, {
        **gift_card_out(spent), "amount": format_minor(amount_minor, cart.currency),
        "cart_id": cart.id}, now))
    return spent.code


def _give_back(uow: UnitOfWork, cart: Cart, tenders: list[Tender]) -> None:
    """Put what these gift card payments took back onto their cards."""
    now = utcnow()
    for tender in tenders:
        if tender.method is TenderMethod.GIFT_CARD and tender.reference is not None:
            card = uow.gift_cards.give_back(tender.reference, tender.amount_minor, now)
            uow.record(Event("gift_card.restored", card.code, card.version, {
                **gift_card_out(card),
                "amount": format_minor(tender.amount_minor, cart.currency),
                "cart_id": cart.id}, now))


def _void_after_commit(uow: UnitOfWork, providers: Providers, cart: Cart,
                       tenders: list[Tender]) -> None:
    """Void these cards' authorisations once the change commits (`payment.voided` is
    recorded with the change). A void that fails is logged: the PSP lets an authorisation
    nobody captures lapse."""
    for tender in tenders:
        if tender.method not in VOIDED or tender.psp is None or tender.amount_minor == 0:
            continue
        # Recorded with the change that takes the card back; the PSP is asked once it commits.
        uow.record(Event("payment.voided", tender.id, 2, _tender_out(cart, tender), utcnow()))
        psp = providers.psp(tender.psp)
        request = PaymentRequest(f"void-{tender.id}", tender.psp, tender.reference,
                                 tender.amount_minor, cart.currency, tender.amount_minor)
        uow.after_commit(functools.partial(_void, psp, request))


def _tender_out(cart: Cart, tender: Tender) -> dict[str, Any]:
    return {"payment_id": tender.id, "cart_id": cart.id, "location_id": cart.location_id,
            "method": tender.method.value, "psp": tender.psp, "reference": tender.reference,
            "amount": format_minor(tender.amount_minor, cart.currency),
            "currency": cart.currency}


def _void(psp: PaymentProvider, request: PaymentRequest) -> None:
    result = psp.void(request)
    if not result.succeeded:
        log.warning("the PSP refused to void %s: %s", request.reference, result.reason)


def checkout(uow: UnitOfWork, providers: Providers, caller: Principal, cart_id: str,
             rules: CartRules, window: PlacementWindow) -> str:
    """Place the cart's order; its id."""
    edit = edit_cart(uow, caller.scope, cart_id, rules)
    cart = edit.cart
    if not cart.lines:
        raise ValidationFailed(f"cart {cart_id} is empty")
    if cart.customer.email is None:
        raise ValidationFailed("the customer's email is needed to check out",
                               [FieldError("customer.email", "missing")])
    lost = []
    for line in list(cart.lines):
        if line.holds_stock and line.hold_id not in edit.held:
            try:
                hold_line(uow, edit, line)
            except ValidationFailed as exc:
                lost.append(FieldError(f"lines.{line.id}", exc.detail))
    if lost:
        raise Conflict(f"{len(lost)} line(s) lost their stock while the cart waited: "
                       + "; ".join(e.message for e in lost), lost, retryable=True)
    priced = price(uow, cart, rules)
    now = utcnow()
    if cart.ship_lines and priced.quote is None:
        raise ValidationFailed("choose how the ship lines are delivered "
                               "(PUT /v1/carts/{id}/shipping), among the options offered",
                               [FieldError("shipping", "none offered chosen")])
    waiting = [t for t in cart.tenders if t.status_at(now) is TenderStatus.PENDING]
    if waiting:
        raise Conflict(f"{len(waiting)} payment link(s) not paid yet: checkout once the "
                       "customer has paid or the link is taken back", retryable=True)
    needed = approvals_needed(uow, cart, priced.pricing)
    if needed:
        raise ApprovalRequired(needed)
    due = priced.pricing.grand_total_minor - cart.paid_minor
    if due != 0:
        amount = format_minor(abs(due), cart.currency)
        raise ValidationFailed(
            f"{amount} {cart.currency} still to pay" if due > 0 else
            f"paid {amount} {cart.currency} more than the total: take a payment back",
            [FieldError("payments", "do not cover the total" if due > 0 else "exceed it")])
    order_in = _order_in(cart, priced, now)
    fingerprint = hashlib.sha256(json.dumps(order_in.model_dump(mode="json"),
                                            sort_keys=True).encode()).hexdigest()
    cart_lines = list(cart.lines)

    def settle(order: Order) -> None:
        order.sold_at_location_id = cart.location_id
        order.sold_by_key = caller.key_id
        pickups = []
        for item, line in zip(order.items, cart_lines, strict=True):
            if line.fulfillment is Fulfillment.TAKE_NOW:
                item.status, item.location_id = ItemStatus.FULFILLED, line.location_id
                item.reservation_id = line.hold_id
            elif line.fulfillment is Fulfillment.PICKUP:
                item.status, item.location_id = ItemStatus.ROUTED, line.location_id
                item.reservation_id, item.pickup_location_id = line.hold_id, line.location_id
                pickups.append(item)
        if pickups:
            stores = {loc.id: loc for loc in uow.reference().locations}
            request_of = issue_requests(uow, order, pickups, stores, {}, now,
                                        ServiceLevel.PICKUP.value)
            for item in pickups:
                item.fulfillment_request_id = request_of[item.id]

    body = place_in_transaction(uow, order_in, fingerprint, window, settle=settle)
    order_id: str = body["id"]
    # The goods taken now left the store; what waits for pickup is the order's now.
    inventory.consume(uow, [x.hold_id for x in cart_lines
                            if x.fulfillment is Fulfillment.TAKE_NOW and x.hold_id])
    uow.reservations.keep([x.hold_id for x in cart_lines
                           if x.fulfillment is Fulfillment.PICKUP and x.hold_id])
    order = uow.orders.load(order_id, for_update=True)
    assert order is not None
    provider_calls.after_commit(uow, providers, capture_owed(uow, order, now))
    cart.receipt = _receipt_of(cart, priced)
    cart.status, cart.order_id = CartStatus.CHECKED_OUT, order_id
    cart.holds_expire_at = None
    cart.events += 1
    uow.record(Event("cart.checked_out", cart.id, cart.events, {
        "cart_id": cart.id, "order_id": order_id, "location_id": cart.location_id,
        "sold_by_key": caller.key_id}, now))
    uow.carts.save(cart, now)
    uow.commit()
    return order_id


def _receipt_of(cart: Cart, priced: Priced) -> dict[str, Any]:
    """What the order does not keep of the sale, for its receipt (minor units)."""
    pricing = priced.pricing
    return {
        "lines": [{"name": x.name, "fulfillment": x.fulfillment.value,
                   "location_id": x.location_id, "tax_minor": pricing.lines[x.id].tax_minor,
                   "tax_included": pricing.lines[x.id].tax_included,
                   "rate": str(pricing.lines[x.id].rate)} for x in cart.lines],
        "discounts": [{"reason": d.reason, "taken_minor": pricing.discounts.get(d.id, 0)}
                      for d in cart.discounts],
        "shipping_tax_minor": pricing.tax_minor - sum(p.tax_minor
                                                      for p in pricing.lines.values()),
        "exempted_minor": pricing.exempted_minor, "tax_exemption": cart.tax_exemption,
        "tenders": [{"method": t.method.value, "amount_minor": t.amount_minor,
                     "change_minor": t.change_minor} for t in cart.tenders],
    }


def _order_in(cart: Cart, priced: Priced, now: dt.datetime) -> OrderIn:
    """The order the cart is, as a web shop would send it: what the customer pays for each
    line (the tax in the item only where it is paid on top of the price), the shipping (its
    tax on top included), the payments."""
    def money(minor: int) -> str:
        return format_minor(minor, cart.currency)

    pricing = priced.pricing
    # A tax-exempt cart's tax taken out of a price that included it is the line's discount.
    items = [{"sku": x.sku, "quantity": x.quantity, "unit_price": money(x.unit_price_minor),
              "discount": money(pricing.lines[x.id].discount_minor
                                + pricing.lines[x.id].exempted_minor),
              "tax": money(pricing.lines[x.id].added_tax_minor)} for x in cart.lines]
    shipping = None
    if priced.quote is not None and cart.shipping is not None:
        shipping = {"option": {
            "service_level": cart.shipping.service_level, "carrier": cart.shipping.carrier,
            "price": money(pricing.shipping_minor + pricing.shipping_added_tax_minor
                           - pricing.shipping_exempted_minor)},
            "address": dict(cart.shipping.address)}
    payments = [PaymentIn.model_validate({
        "method": t.method.value, "psp": t.psp or CASH, "reference": t.reference,
        "amount": money(t.amount_minor),
        # Cash was handed over and a gift card's balance taken: only a card is authorised.
        "status": "authorized" if t.method in VOIDED else "captured"})
        for t in cart.tenders if t.status is TenderStatus.AUTHORIZED]
    c = cart.customer
    try:
        return OrderIn.model_validate({
        "channel": "store", "external_id": cart.id, "placed_at": now.isoformat(),
        "currency": cart.currency,
        "customer": {k: v for k, v in (("email", c.email), ("name", c.name),
                                       ("phone", c.phone)) if v is not None},
        "items": items, "shipping": shipping,
        "payments": [p.model_dump(mode="json", exclude_none=True) for p in payments],
        "totals": {"grand_total": money(pricing.grand_total_minor)},
        })
    except PydanticError as exc:
        # Amounts beyond what an order carries (13 integer digits), say.
        raise ValidationFailed(f"the cart does not make a valid order: {exc}") from exc
