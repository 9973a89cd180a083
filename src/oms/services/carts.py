"""Use cases of a store's cart (oms.domain.carts): built line by line by an associate, its
take-now and pickup lines holding their stock while it is built.

A hold is a reservation with an expiry (`OMS_CART_HOLD_MINUTES`). Each change to the cart
moves the expiry of its holds on, and holds again what a lapsed hold gave back, where the
stock is still there; a line whose stock went meanwhile shows its hold `lapsed`. The worker
gives back the stock of holds that ran out (`expire_holds`), with an `inventory.changed`
event whose reason is `hold_expired`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import get_territory_currencies
from sqlalchemy import Engine

from oms.adapters import ProviderUnavailable
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.adapters.pricing import RateProvider, TaxProvider
from oms.domain.access import Principal, Scope
from oms.domain.approvals import ApprovalRule, CartFacts, Criteria, matching
from oms.domain.carts import (
    MAX_LINE_QUANTITY,
    Approval,
    Cart,
    CartLine,
    CartStatus,
    Customer,
    Discount,
    Fulfillment,
    PriceOverride,
    Pricing,
    ShippingChoice,
    TaxRate,
)
from oms.domain.catalog import BarcodeType
from oms.domain.errors import (
    FieldError,
    Forbidden,
    InsufficientStock,
    NotFound,
    ValidationFailed,
)
from oms.domain.events import Event, utcnow
from oms.domain.ids import new_id
from oms.domain.inventory import ReservationStatus
from oms.domain.locations import Capability, Location, LocationType
from oms.domain.money import MAX_MINOR, format_minor, minor_units
from oms.domain.orders import ServiceLevel
from oms.domain.shipping import Quote, ShippingRate, option_id, quote
from oms.schemas import (
    ApprovalIn,
    ApprovalRulesIn,
    BarcodeTypesIn,
    CartChangeIn,
    CartCustomerIn,
    CartIn,
    CartItemChangeIn,
    CartItemIn,
    CartShippingIn,
    DiscountIn,
    LineFulfillmentIn,
    ShippingRatesIn,
    TaxRatesIn,
)
from oms.services.inventory import ReserveLine, release, reserve
from oms.services.orders import parse_minor

log = logging.getLogger(__name__)

#: The setting naming the barcode types the stores' scanners accept.
BARCODE_TYPES = "barcode_types"
#: The setting holding the manager approval rules.
APPROVAL_RULES = "approval_rules"


@dataclass(frozen=True)
class CartRules:
    """What the retailer configured for carts (oms.settings)."""

    hold_minutes: int
    #: Applies where the tax provider has no rate.
    tax_fallback: TaxRate
    #: The tax provider and the shipping rates adapter a unit of work prices with (the
    #: built-in ones read the tables the API sets).
    taxes: Callable[[UnitOfWork], TaxProvider] = lambda uow: uow.tax_rates
    rates: Callable[[UnitOfWork], RateProvider] = lambda uow: uow.shipping_rates
    #: How long a payment link can be paid.
    link_minutes: int = 30


# -- settings -----------------------------------------------------------------------------------

def barcode_types(uow: UnitOfWork) -> dict[str, Any]:
    stored = uow.settings.get(BARCODE_TYPES)
    return {"types": stored if stored is not None else [t.value for t in BarcodeType],
            "default": stored is None}


def set_barcode_types(uow: UnitOfWork, body: BarcodeTypesIn) -> dict[str, Any]:
    chosen = [t.value for t in BarcodeType if t in set(body.types)]
    uow.settings.put(BARCODE_TYPES, chosen, utcnow())
    uow.commit()
    return {"types": chosen, "default": False}


def tax_rates(uow: UnitOfWork) -> dict[str, Any]:
    return {"rates": [{"country": r["country"], "region": r["region"] or None,
                       "tax_class": r["tax_class"], "rate": r["rate"],
                       "prices_include_tax": r["prices_include_tax"]}
                      for r in uow.tax_rates.all()]}


def set_tax_rates(uow: UnitOfWork, body: TaxRatesIn) -> dict[str, Any]:
    """Replace every rate: the table is the built-in tax provider's whole knowledge."""
    uow.tax_rates.replace([{"country": r.country, "region": r.region or "",
                            "tax_class": r.tax_class,
                            "rate": format(Decimal(r.rate).normalize(), "f"),
                            "prices_include_tax": r.prices_include_tax} for r in body.rates])
    uow.commit()
    return tax_rates(uow)


# -- carts --------------------------------------------------------------------------------------

def create_cart(uow: UnitOfWork, caller: Principal, body: CartIn, rules: CartRules
                ) -> dict[str, Any]:
    if not caller.scope.covers(body.location_id):
        raise Forbidden(f"this key does not act for {body.location_id}")
    store = _location(uow, body.location_id, "location_id")
    if store.type is not LocationType.STORE or not store.active:
        raise ValidationFailed(f"location {store.id} is no active store: it sells nothing over "
                               "the counter", [FieldError("location_id", "not an active store")])
    now = utcnow()
    cart = Cart(new_id(), store.id, body.currency, CartStatus.OPEN, caller.key_id, now, now,
                customer=_customer(body.customer))
    uow.carts.add(cart)
    uow.commit()
    return cart_out(uow, cart, rules, {})


def get_cart(uow: UnitOfWork, cart_id: str, rules: CartRules) -> dict[str, Any]:
    cart = load_cart(uow, cart_id, uow.scope)
    return cart_out(uow, cart, rules, _holds_of(uow, cart.lines))


def delete_cart(uow: UnitOfWork, scope: Scope, cart_id: str, *, commit: bool = True) -> Cart:
    """The cart is gone and its holds give their stock back; the cart as it was."""
    edit = edit_cart(uow, scope, cart_id, None)
    _release_holds(uow, edit, edit.cart.lines)
    uow.carts.delete(cart_id)
    if commit:
        uow.commit()
    return edit.cart


def change_cart(uow: UnitOfWork, scope: Scope, cart_id: str, body: CartChangeIn, rules: CartRules
                ) -> dict[str, Any]:
    edit = edit_cart(uow, scope, cart_id, rules)
    cart = edit.cart
    if "customer" in body.model_fields_set:
        cart.customer = _customer(body.customer)
    if "tax_exemption" in body.model_fields_set:
        cart.tax_exemption = body.tax_exemption.certificate if body.tax_exemption else None
    return save_edit(uow, edit, rules)


# -- manager approvals --------------------------------------------------------------------------

def approval_rules(uow: UnitOfWork) -> dict[str, Any]:
    return {"rules": uow.settings.get(APPROVAL_RULES) or []}


def set_approval_rules(uow: UnitOfWork, body: ApprovalRulesIn) -> dict[str, Any]:
    rules = [{"id": r.id, "name": r.name,
              "criteria": r.criteria.model_dump(mode="json", exclude_unset=True)}
             for r in body.rules]
    uow.settings.put(APPROVAL_RULES, rules, utcnow())
    uow.commit()
    return {"rules": rules}


def _rules_of(uow: UnitOfWork) -> list[ApprovalRule]:
    def dec(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    found = []
    for r in uow.settings.get(APPROVAL_RULES) or []:
        c = r["criteria"]
        found.append(ApprovalRule(r["id"], r["name"], Criteria(
            dec(c.get("order_value_at_least")), c.get("has_discount"),
            dec(c.get("discount_percentage_at_least")), dec(c.get("discount_value_at_least")),
            c.get("price_override"), c.get("tax_exempt"),
            None if c.get("payment_methods") is None else frozenset(c["payment_methods"]))))
    return found


def approvals_needed(uow: UnitOfWork, cart: Cart, pricing: Pricing) -> list[str]:
    """The rules the cart matches that no manager approved since it last changed."""
    digits = Decimal(1).scaleb(-minor_units(cart.currency))
    facts = CartFacts(
        Decimal(pricing.subtotal_minor) * digits, Decimal(pricing.discount_minor) * digits,
        Decimal(pricing.grand_total_minor) * digits,
        any(x.override is not None for x in cart.lines), cart.tax_exemption is not None,
        frozenset(t.method.value for t in cart.tenders))
    approved = cart.approved_rules()
    return [r for r in matching(_rules_of(uow), facts) if r not in approved]


def decide_approval(uow: UnitOfWork, manager: Principal, cart_id: str, body: ApprovalIn,
                    rules: CartRules) -> dict[str, Any]:
    """A manager of the cart's store grants (or denies) the rules it needs approving. Not
    the key that built the cart: whoever asks does not approve."""
    edit = edit_cart(uow, manager.scope, cart_id, rules)
    cart = edit.cart
    if manager.key_id == cart.created_by_key:
        raise Forbidden("the key that built the cart cannot approve it: another manager must")
    known = {r.id for r in _rules_of(uow)}
    unknown = [FieldError(f"rule_ids.{n}", f"no approval rule {x!r}")
               for n, x in enumerate(body.rule_ids) if x not in known]
    if unknown:
        raise ValidationFailed("; ".join(e.message for e in unknown), unknown)
    now = utcnow()
    granted = body.decision == "grant"
    # Saving the cart takes the next version: the approval holds while it stays that one.
    approval = Approval(new_id(), tuple(dict.fromkeys(body.rule_ids)), granted,
                        manager.key_id, body.note, now, cart.version + 1)
    cart.approvals.append(approval)
    cart.events += 1
    uow.record(Event("approval.granted" if granted else "approval.denied", cart.id,
                     cart.events, {"cart_id": cart.id, "location_id": cart.location_id,
                                   "approval_id": approval.id,
                                   "rule_ids": list(approval.rule_ids),
                                   "by_key": manager.key_id, "note": body.note}, now))
    return save_edit(uow, edit, rules)


def add_item(uow: UnitOfWork, scope: Scope, cart_id: str, body: CartItemIn, rules: CartRules
             ) -> tuple[dict[str, Any], bool]:
    """The cart with the goods added; whether a new line was made (False: a scan of goods
    already in the cart added to their line)."""
    sku = body.sku if body.barcode is None else _scanned(uow, body.barcode)
    stored = uow.products.get(sku) if sku is not None else None
    edit = edit_cart(uow, scope, cart_id, rules, [stored.value.sku] if stored else [])
    cart = edit.cart
    if stored is None:
        raise NotFound(f"no product {sku!r}", [FieldError("sku", "unknown")])
    product = stored.value
    if product.price.currency != cart.currency:
        raise ValidationFailed(f"{product.sku} is priced in {product.price.currency}, the cart "
                               f"in {cart.currency}")
    fulfillment, location_id = _where(uow, cart, body.fulfillment)
    if product.is_preorder and fulfillment is not Fulfillment.SHIP:
        raise ValidationFailed(
            f"{product.sku} is a pre-order: it can only be shipped when it arrives",
            [FieldError("fulfillment.type", "must be ship for a pre-order")])
    existing = cart.find_same(product.sku, fulfillment, location_id)
    if existing is not None:
        quantity = existing.quantity + body.quantity
        _check_quantity(quantity)
        line = cart.set_line(existing.id, quantity=quantity)
        hold_line(uow, edit, line)
        return save_edit(uow, edit, rules), False
    line = CartLine(new_id(), product.sku, product.name, product.tax_class, body.quantity,
                    fulfillment, location_id, product.price.minor, barcode=body.barcode)
    cart.add_line(line)
    hold_line(uow, edit, line)
    return save_edit(uow, edit, rules), True


def change_item(uow: UnitOfWork, scope: Scope, cart_id: str, line_id: str, body: CartItemChangeIn,
                rules: CartRules) -> dict[str, Any]:
    edit = edit_cart(uow, scope, cart_id, rules)
    cart = edit.cart
    line = cart.line(line_id)
    changes: dict[str, Any] = {}
    if body.quantity is not None:
        changes["quantity"] = body.quantity
    if body.fulfillment is not None:
        changes["fulfillment"], changes["location_id"] = _where(uow, cart, body.fulfillment)
        if changes["fulfillment"] is not Fulfillment.SHIP and uow.products.preorder_dates(
                [line.sku]).get(line.sku) is not None:
            raise ValidationFailed(f"{line.sku} is a pre-order: it can only be shipped",
                                   [FieldError("fulfillment.type", "must be ship")])
    if "price_override" in body.model_fields_set:
        override = body.price_override
        changes["override"] = None if override is None else PriceOverride(
            parse_minor(override.price, cart.currency, "price_override.price"), override.reason)
    changed = cart.set_line(line.id, **changes)
    if (changed.quantity, changed.fulfillment, changed.location_id) != (
            line.quantity, line.fulfillment, line.location_id):
        hold_line(uow, edit, changed)
    return save_edit(uow, edit, rules)


def remove_item(uow: UnitOfWork, scope: Scope, cart_id: str, line_id: str, rules: CartRules
                ) -> dict[str, Any]:
    edit = edit_cart(uow, scope, cart_id, rules)
    cart = edit.cart
    line = cart.remove_line(line_id)
    _release_holds(uow, edit, [line])
    return save_edit(uow, edit, rules)


def add_discount(uow: UnitOfWork, scope: Scope, cart_id: str, body: DiscountIn, rules: CartRules
                 ) -> dict[str, Any]:
    edit = edit_cart(uow, scope, cart_id, rules)
    cart = edit.cart
    cart.add_discount(Discount(
        new_id(), body.reason, body.line_id,
        None if body.percentage is None else Decimal(body.percentage),
        None if body.amount is None else parse_minor(body.amount, cart.currency, "amount")))
    return save_edit(uow, edit, rules)


def remove_discount(uow: UnitOfWork, scope: Scope, cart_id: str, discount_id: str, rules: CartRules
                    ) -> dict[str, Any]:
    edit = edit_cart(uow, scope, cart_id, rules)
    cart = edit.cart
    cart.remove_discount(discount_id)
    return save_edit(uow, edit, rules)


def list_carts(uow: UnitOfWork, rules: CartRules, *, location_id: str | None,
               status: CartStatus | None, after: tuple[dt.datetime, str] | None, limit: int
               ) -> list[dict[str, Any]]:
    carts = uow.carts.page(location_id=location_id, status=status, after=after, limit=limit)
    holds = _holds_of(uow, [x for c in carts for x in c.lines])
    return [cart_out(uow, c, rules, holds) for c in carts]


def expire_holds(engine: Engine, now: dt.datetime, limit: int = 500) -> int:
    """Give back the stock of holds whose time ran out; how many. A cart changed since
    renewed its holds, and is left alone."""
    with UnitOfWork(engine, read_only=True) as uow:
        due = uow.reservations.expired(now, limit)
    expired = 0
    for hold in due:
        with UnitOfWork(engine) as uow:
            # Locked: a change to the cart renewing it meanwhile waits, then finds it gone
            # and holds again what is still there.
            current = uow.reservations.get(hold.id, for_update=True)
            if (current is None or current.status.value != "active"
                    or current.expires_at is None or current.expires_at >= now):
                continue  # closed or renewed meanwhile
            release(uow, [hold.id], reason="hold_expired")
            uow.commit()
            expired += 1
    return expired


# -- the parts ----------------------------------------------------------------------------------

def _customer(body: CartCustomerIn | None) -> Customer:
    return Customer() if body is None else Customer(body.email, body.name, body.phone)


def _location(uow: UnitOfWork, location_id: str, field: str) -> Location:
    stored = uow.locations.get(location_id)
    if stored is None:
        raise NotFound(f"no location {location_id!r}", [FieldError(field, "unknown")])
    return stored.value


def load_cart(uow: UnitOfWork, cart_id: str, scope: Scope, *, for_update: bool = False) -> Cart:
    """The cart, if the caller's scope sees it (a use case that changes data works with
    every row: the scope is applied here)."""
    cart = uow.carts.within(scope).load(cart_id, for_update=for_update)
    if cart is None:
        raise NotFound(f"no cart {cart_id!r}")
    return cart


@dataclass
class CartEdit:
    """A change to an open cart: the cart, locked, and its holds, renewed."""

    cart: Cart
    #: The holds still active, now running out at `expires`.
    held: set[str]
    expires: dt.datetime


def edit_cart(uow: UnitOfWork, scope: Scope, cart_id: str, rules: CartRules | None,
          skus: Sequence[str] = ()) -> CartEdit:
    """Lock the cart, then its holds (moving their expiry on; `rules` None: the cart is
    going, and they stay as they are), then every stock row its lines and `skus` may touch,
    in the one order every path takes them (DESIGN §3.8): an edit may give back one line's
    stock and hold another's, and must not meet an order or the worker the other way round.
    A hold's row is taken before its stock, as the worker expiring it takes them."""
    cart = load_cart(uow, cart_id, scope, for_update=True)
    cart.check_open()
    holds = [x.hold_id for x in cart.lines if x.hold_id]
    if rules is None:
        expires = utcnow()
        held = {r.id for r in uow.reservations.lock(holds)
                if r.status is ReservationStatus.ACTIVE}
    else:
        expires = utcnow() + dt.timedelta(minutes=rules.hold_minutes)
        held = uow.reservations.renew(holds, expires)
    touched = {x.sku for x in cart.lines} | set(skus)
    if touched:
        uow.stock.lock_skus(sorted(touched))
    return CartEdit(cart, held, expires)


def _scanned(uow: UnitOfWork, barcode: str) -> str:
    found = uow.products.barcode(barcode)
    if found is None:
        raise NotFound(f"no product has barcode {barcode!r}", [FieldError("barcode", "unknown")])
    sku, kind = found
    enabled = barcode_types(uow)["types"]
    if kind.value not in enabled:
        raise ValidationFailed(
            f"{kind.value} barcodes are not accepted by the stores' scanners (enabled: "
            f"{', '.join(enabled)})", [FieldError("barcode", f"type {kind.value} not enabled")])
    return sku


def _where(uow: UnitOfWork, cart: Cart, body: LineFulfillmentIn) -> tuple[Fulfillment, str | None]:
    """The line's fulfilment and where its stock is held."""
    if body.type is Fulfillment.TAKE_NOW:
        if not _location(uow, cart.location_id, "location_id").active:
            raise ValidationFailed(f"store {cart.location_id} is inactive: nothing is taken "
                                   "from it now", [FieldError("fulfillment.type", "inactive")])
        return body.type, cart.location_id
    if body.type is Fulfillment.SHIP:
        return body.type, None
    assert body.location_id is not None
    store = _location(uow, body.location_id, "fulfillment.location_id")
    if not store.can(Capability.PICKUP):
        raise ValidationFailed(f"location {store.id} does not offer pickup",
                               [FieldError("fulfillment.location_id", "no pickup there")])
    return body.type, store.id


def _check_quantity(quantity: int) -> None:
    if quantity > MAX_LINE_QUANTITY:
        raise ValidationFailed(f"a line holds at most {MAX_LINE_QUANTITY} units",
                               [FieldError("quantity", f"at most {MAX_LINE_QUANTITY} in a line")])


def hold_line(uow: UnitOfWork, edit: CartEdit, line: CartLine) -> None:
    """Hold the line's stock as it is now: its old hold goes, a new one of its quantity at
    its location comes (none for a ship line). Refused (422) when the stock is not there."""
    cart = edit.cart
    _release_holds(uow, edit, [line])
    hold_id = None
    if line.holds_stock:
        assert line.location_id is not None
        mark = uow.pending_mark()
        try:
            hold_id = reserve(uow, [ReserveLine(
                line.location_id, line.sku, line.quantity, reference=f"cart:{cart.id}",
                expires_at=edit.expires)])[0].id
        except InsufficientStock as exc:
            uow.discard_since(mark)
            level = uow.stock.get(line.location_id, line.sku)
            atp = max(level.atp, 0) if level is not None else 0
            raise ValidationFailed(
                f"only {atp} of {line.sku} can be held at {line.location_id}; the line wants "
                f"{line.quantity}", [FieldError("quantity", f"at most {atp} available")]
            ) from exc
        edit.held.add(hold_id)
    cart.set_line(line.id, hold_id=hold_id)


def _release_holds(uow: UnitOfWork, edit: CartEdit, lines: Sequence[CartLine]) -> None:
    """Give back what these lines hold, where their hold is still active."""
    ids = [x.hold_id for x in lines if x.hold_id in edit.held]
    if ids:
        release(uow, ids, reason="hold_released")
        edit.held.difference_update(ids)


def save_edit(uow: UnitOfWork, edit: CartEdit, rules: CartRules) -> dict[str, Any]:
    """Hold again what lapsed, where the stock is still there, and save the cart."""
    cart = edit.cart
    for line in list(cart.lines):
        if line.holds_stock and line.hold_id not in edit.held:
            try:
                hold_line(uow, edit, line)
            except ValidationFailed:
                cart.set_line(line.id, hold_id=None)
    # What the lines hold now (a line removed, or moved, gave its hold back).
    edit.held &= {x.hold_id for x in cart.lines if x.hold_id}
    cart.holds_expire_at = edit.expires if edit.held else None
    priced = price(uow, cart, rules)
    if max(priced.pricing.subtotal_minor, priced.pricing.grand_total_minor) > MAX_MINOR:
        raise ValidationFailed(f"the cart would cost more than {cart.currency} "
                               f"{format_minor(MAX_MINOR, cart.currency)}")
    uow.carts.save(cart, utcnow())
    uow.commit()
    return cart_out(uow, cart, rules, dict.fromkeys(edit.held, HELD), priced)


#: What a line's hold is: its stock kept for the cart; kept still, though its time ran out
#: (the worker gives it back soon, the cart's next change keeps it again); given back.
HELD, EXPIRED, LAPSED = "held", "expired", "lapsed"


def _holds_of(uow: UnitOfWork, lines: Sequence[CartLine]) -> dict[str, str]:
    """The holds of these lines that still keep their stock, by id: held or expired."""
    now = utcnow()
    return {r.id: HELD if r.expires_at is None or r.expires_at > now else EXPIRED
            for r in uow.reservations.get_many([x.hold_id for x in lines if x.hold_id])
            if r.status is ReservationStatus.ACTIVE}


@dataclass(frozen=True)
class Priced:
    pricing: Pricing
    #: The chosen shipping's quote; None when none is chosen, or the option is no longer
    #: offered (the cart cannot be checked out so).
    quote: Quote | None


def price(uow: UnitOfWork, cart: Cart, rules: CartRules) -> Priced:
    """The cart's prices. Goods are taxed where they are sold (the store) or, shipped, where
    they are delivered (the store's country until an address is chosen); a region's rate
    before its country's. Shipping is quoted on what the ship lines cost after discounts."""
    store = _location(uow, cart.location_id, "location_id")
    taxes = rules.taxes(uow)
    shipping = cart.shipping

    def rate(tax_class: str, delivered: bool) -> TaxRate | None:
        country, region = ((shipping.country, shipping.region) if delivered and shipping
                           else (store.address.country, store.address.region))
        try:
            return taxes.rate(country, region, tax_class)
        except ProviderUnavailable:
            log.warning("the tax provider could not be asked; cart %s is taxed at the "
                        "fallback rate", cart.id, exc_info=True)
            return None

    pricing = cart.price(rate, rules.tax_fallback)
    if shipping is None or not cart.ship_lines:
        return Priced(pricing, None)
    goods = sum(pricing.lines[x.id].net_minor for x in cart.ship_lines)
    offered = _quotes(uow, cart, store, shipping.country, goods, rules)
    quote = offered.get(option_id(shipping.service_level, shipping.carrier))
    if quote is None:
        return Priced(pricing, None)
    return Priced(cart.price(rate, rules.tax_fallback, quote.price_minor), quote)


def _quotes(uow: UnitOfWork, cart: Cart, store: Location, country: str, goods_minor: int,
            rules: CartRules) -> dict[str, Quote]:
    """Each option of delivery to `country`, by its id; the cut-off is the store's."""
    local_now = utcnow().astimezone(ZoneInfo(store.timezone))
    return {r.option_id: quote(r, goods_minor, local_now)
            for r in rules.rates(uow).rates(country, cart.currency)
            if r.service_level != ServiceLevel.PICKUP.value}


def shipping_options(uow: UnitOfWork, cart_id: str, rules: CartRules, country: str | None
                     ) -> dict[str, Any]:
    """What delivering the cart's ship lines to `country` (else to its address's) costs
    with each rate, and when it arrives."""
    cart = load_cart(uow, cart_id, uow.scope)
    where = country or (cart.shipping.country if cart.shipping else None)
    if where is None:
        raise ValidationFailed("say where to deliver: give country, or choose the cart's "
                               "shipping address first",
                               [FieldError("country", "needed while the cart has no address")])
    pricing = price(uow, cart, rules).pricing
    goods = sum(pricing.lines[x.id].net_minor for x in cart.ship_lines)
    store = _location(uow, cart.location_id, "location_id")
    options = _quotes(uow, cart, store, where, goods, rules)
    return {"country": where, "currency": cart.currency,
            "options": [_quote_out(q, cart.currency) for q in options.values()]}


def _quote_out(q: Quote, currency: str) -> dict[str, Any]:
    return {"id": q.rate.option_id, "service_level": q.rate.service_level,
            "carrier": q.rate.carrier, "price": format_minor(q.price_minor, currency),
            "ships_on": q.ships_on.isoformat(), "promised_delivery_date": q.promised_on.isoformat()}


def choose_shipping(uow: UnitOfWork, scope: Scope, cart_id: str, body: CartShippingIn,
                    rules: CartRules) -> dict[str, Any]:
    edit = edit_cart(uow, scope, cart_id, rules)
    cart = edit.cart
    address = body.address.model_dump(exclude_none=True)
    offered = _quotes(uow, cart, _location(uow, cart.location_id, "location_id"),
                      address["country"], 0, rules)
    if body.option_id not in offered:
        raise ValidationFailed(
            f"no shipping option {body.option_id!r} to {address['country']} in "
            f"{cart.currency}; offered: {', '.join(sorted(offered)) or 'none'}",
            [FieldError("option_id", "not offered there")])
    rate = offered[body.option_id].rate
    cart.shipping = ShippingChoice(rate.service_level, rate.carrier, address)
    return save_edit(uow, edit, rules)


def shipping_rates(uow: UnitOfWork) -> dict[str, Any]:
    return {"rates": [_rate_out(r) for r in uow.shipping_rates.all()]}


def _rate_out(r: ShippingRate) -> dict[str, Any]:
    return {"country": r.country, "service_level": r.service_level, "carrier": r.carrier,
            "currency": r.currency, "price": format_minor(r.price_minor, r.currency),
            "free_above": None if r.free_above_minor is None
            else format_minor(r.free_above_minor, r.currency),
            "transit_days": r.transit_days, "cutoff": r.cutoff.strftime("%H:%M")}


def set_shipping_rates(uow: UnitOfWork, body: ShippingRatesIn) -> dict[str, Any]:
    """Replace every rate: the table is the built-in rates adapter's whole knowledge."""
    rates = []
    for n, r in enumerate(body.rates):
        currency = r.currency or _currency_of(r.country)
        rates.append(ShippingRate(
            r.country, r.service_level.value, r.carrier, currency,
            parse_minor(r.price, currency, f"rates.{n}.price"),
            None if r.free_above is None else parse_minor(r.free_above, currency,
                                                     f"rates.{n}.free_above"),
            r.transit_days, dt.time.fromisoformat(r.cutoff)))
    keys = [(r.country, r.service_level, r.currency) for r in rates]
    if len(keys) != len(set(keys)):
        raise ValidationFailed("a (country, service_level, currency) is listed twice",
                               [FieldError("rates", "listed twice")])
    uow.shipping_rates.replace(rates)
    uow.commit()
    return shipping_rates(uow)


def _currency_of(country: str) -> str:
    """The currency the country pays in today (CLDR)."""
    found = get_territory_currencies(country)
    if not found:
        raise ValidationFailed(f"{country} has no currency of its own: give the rate's "
                               "currency", [FieldError("currency", "needed")])
    return str(found[0])


def cart_out(uow: UnitOfWork, cart: Cart, rules: CartRules, holds: Mapping[str, str],
             priced: Priced | None = None) -> dict[str, Any]:
    """The cart as the API shows it; `holds`, what each hold is (`_holds_of`)."""
    priced = priced or price(uow, cart, rules)
    pricing = priced.pricing
    cur = cart.currency

    def money(minor: int) -> str:
        return format_minor(minor, cur)

    lines = []
    for x in cart.lines:
        p = pricing.lines[x.id]
        hold: dict[str, Any] | None = None
        if x.holds_stock:
            status = holds.get(x.hold_id or "", LAPSED)
            hold = {"status": status, "location_id": x.location_id,
                    "quantity": 0 if status == LAPSED else x.quantity,
                    "expires_at": None if status == LAPSED else _iso(cart.holds_expire_at)}
        lines.append({
            "id": x.id, "sku": x.sku, "name": x.name, "barcode": x.barcode,
            "quantity": x.quantity,
            "fulfillment": {"type": x.fulfillment.value,
                            "location_id": x.location_id if x.fulfillment is Fulfillment.PICKUP
                            else None},
            "catalog_price": money(x.catalog_price_minor),
            "unit_price": money(x.unit_price_minor),
            "price_override": None if x.override is None else {
                "price": money(x.override.unit_price_minor), "reason": x.override.reason},
            "subtotal": money(p.gross_minor), "discount": money(p.discount_minor),
            "tax": money(p.tax_minor), "tax_class": x.tax_class,
            "hold": hold,
        })
    c = cart.customer
    return {
        "id": cart.id, "location_id": cart.location_id, "currency": cur,
        "status": cart.status.value,
        "customer": None if c == Customer() else {"email": c.email, "name": c.name,
                                                  "phone": c.phone},
        "lines": lines,
        "discounts": [{"id": d.id, "line_id": d.line_id,
                       "percentage": None if d.percentage is None else str(d.percentage),
                       "amount": None if d.amount_minor is None else money(d.amount_minor),
                       "reason": d.reason, "taken": money(pricing.discounts.get(d.id, 0))}
                      for d in cart.discounts],
        "totals": {"subtotal": money(pricing.subtotal_minor),
                   "discount": money(pricing.discount_minor),
                   "shipping": money(pricing.shipping_minor),
                   "tax": money(pricing.tax_minor),
                   "tax_exempted": money(pricing.exempted_minor),
                   "grand_total": money(pricing.grand_total_minor)},
        "shipping": _shipping_out(cart, priced.quote),
        "payments": [{"id": t.id, "method": t.method.value, "amount": money(t.amount_minor),
                      "tendered": money(t.tendered_minor), "change": money(t.change_minor),
                      "psp": t.psp, "reference": t.reference,
                      "status": t.status_at(utcnow()).value,
                      "link": None if t.link_url is None else {
                          "url": t.link_url, "expires_at": _iso(t.link_expires_at)}}
                     for t in cart.tenders],
        "balance": {"paid": money(cart.paid_minor), "pending": money(cart.pending_minor),
                    "due": money(max(pricing.grand_total_minor - cart.paid_minor, 0)),
                    "over": money(max(cart.paid_minor - pricing.grand_total_minor, 0))},
        "order_id": cart.order_id,
        "tax_exemption": None if cart.tax_exemption is None
        else {"certificate": cart.tax_exemption},
        "approvals": [{"id": a.id, "rule_ids": list(a.rule_ids),
                       "decision": "grant" if a.granted else "deny", "by_key": a.by_key,
                       "note": a.note, "at": a.at.isoformat(),
                       "valid": a.cart_version == cart.version} for a in cart.approvals],
        "approvals_needed": approvals_needed(uow, cart, pricing)
        if cart.status is CartStatus.OPEN else [],
        "tax_estimated": pricing.tax_estimated,
        "holds_expire_at": _iso(cart.holds_expire_at)
        if any(x.hold_id in holds for x in cart.lines) else None,
        "created_by_key": cart.created_by_key,
        "version": cart.version,
        "created_at": _iso(cart.created_at), "updated_at": _iso(cart.updated_at),
    }


def _shipping_out(cart: Cart, q: Quote | None) -> dict[str, Any] | None:
    choice = cart.shipping
    if choice is None:
        return None
    quoted = _quote_out(q, cart.currency) if q is not None else {
        "price": None, "ships_on": None, "promised_delivery_date": None}
    return {"option_id": option_id(choice.service_level, choice.carrier),
            "service_level": choice.service_level, "carrier": choice.carrier,
            "address": {"name": None, "line2": None, "region": None, "lat": None, "lon": None,
                        "phone": None, **choice.address},
            "offered": q is not None or not cart.ship_lines,
            "price": quoted["price"], "ships_on": quoted["ships_on"],
            "promised_delivery_date": quoted["promised_delivery_date"]}


def _iso(at: dt.datetime | None) -> str | None:
    return None if at is None else at.isoformat()
