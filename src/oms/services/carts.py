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
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.access import Principal, Scope
from oms.domain.carts import (
    MAX_LINE_QUANTITY,
    Cart,
    CartLine,
    CartStatus,
    Customer,
    Discount,
    Fulfillment,
    PriceOverride,
    Pricing,
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
from oms.domain.events import utcnow
from oms.domain.ids import new_id
from oms.domain.locations import Capability, Location
from oms.domain.money import Money, format_minor
from oms.schemas import (
    BarcodeTypesIn,
    CartChangeIn,
    CartCustomerIn,
    CartIn,
    CartItemChangeIn,
    CartItemIn,
    DiscountIn,
    LineFulfillmentIn,
    TaxRatesIn,
)
from oms.services.inventory import ReserveLine, release, reserve

#: The setting naming the barcode types the stores' scanners accept.
BARCODE_TYPES = "barcode_types"


@dataclass(frozen=True)
class CartRules:
    """What the retailer configured for carts (oms.settings)."""

    hold_minutes: int
    #: Applies where the tax provider has no rate.
    tax_fallback: TaxRate


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
                            "tax_class": r.tax_class, "rate": str(Decimal(r.rate).normalize()),
                            "prices_include_tax": r.prices_include_tax} for r in body.rates])
    uow.commit()
    return tax_rates(uow)


# -- carts --------------------------------------------------------------------------------------

def create_cart(uow: UnitOfWork, caller: Principal, body: CartIn, rules: CartRules
                ) -> dict[str, Any]:
    if not caller.scope.covers(body.location_id):
        raise Forbidden(f"this key does not act for {body.location_id}")
    store = _location(uow, body.location_id, "location_id")
    if not store.active:
        raise ValidationFailed(f"location {store.id} is inactive: it sells nothing",
                               [FieldError("location_id", "inactive")])
    now = utcnow()
    cart = Cart(new_id(), store.id, body.currency, CartStatus.OPEN, caller.key_id, now, now,
                customer=_customer(body.customer))
    uow.carts.add(cart)
    uow.commit()
    return cart_out(uow, cart, rules, held=set())


def get_cart(uow: UnitOfWork, cart_id: str, rules: CartRules) -> dict[str, Any]:
    cart = _cart(uow, cart_id, uow.scope)
    return cart_out(uow, cart, rules, held=_held(uow, cart))


def delete_cart(uow: UnitOfWork, scope: Scope, cart_id: str) -> None:
    """The cart is gone and its holds give their stock back."""
    cart = _cart(uow, cart_id, scope, for_update=True)
    cart.check_open()
    _release_holds(uow, [x for x in cart.lines if x.hold_id])
    uow.carts.delete(cart.id)
    uow.commit()


def change_cart(uow: UnitOfWork, scope: Scope, cart_id: str, body: CartChangeIn, rules: CartRules
                ) -> dict[str, Any]:
    edit = _edit(uow, scope, cart_id, rules)
    cart = edit.cart
    cart.customer = _customer(body.customer)
    return _saved(uow, edit, rules)


def add_item(uow: UnitOfWork, scope: Scope, cart_id: str, body: CartItemIn, rules: CartRules
             ) -> tuple[dict[str, Any], bool]:
    """The cart with the goods added; whether a new line was made (False: a scan of goods
    already in the cart added to their line)."""
    edit = _edit(uow, scope, cart_id, rules)
    cart = edit.cart
    sku = body.sku if body.barcode is None else _scanned(uow, body.barcode)
    stored = uow.products.get(sku) if sku is not None else None
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
        _hold(uow, edit, line)
        return _saved(uow, edit, rules), False
    line = CartLine(new_id(), product.sku, product.name, product.tax_class, body.quantity,
                    fulfillment, location_id, product.price.minor, barcode=body.barcode)
    cart.add_line(line)
    _hold(uow, edit, line)
    return _saved(uow, edit, rules), True


def change_item(uow: UnitOfWork, scope: Scope, cart_id: str, line_id: str, body: CartItemChangeIn,
                rules: CartRules) -> dict[str, Any]:
    edit = _edit(uow, scope, cart_id, rules)
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
            _minor(override.price, cart.currency, "price_override.price"), override.reason)
    changed = cart.set_line(line.id, **changes)
    if (changed.quantity, changed.fulfillment, changed.location_id) != (
            line.quantity, line.fulfillment, line.location_id):
        _hold(uow, edit, changed, moved=changed.location_id != line.location_id)
    return _saved(uow, edit, rules)


def remove_item(uow: UnitOfWork, scope: Scope, cart_id: str, line_id: str, rules: CartRules
                ) -> dict[str, Any]:
    edit = _edit(uow, scope, cart_id, rules)
    cart = edit.cart
    line = cart.remove_line(line_id)
    _release_holds(uow, [line] if line.hold_id else [])
    return _saved(uow, edit, rules)


def add_discount(uow: UnitOfWork, scope: Scope, cart_id: str, body: DiscountIn, rules: CartRules
                 ) -> dict[str, Any]:
    edit = _edit(uow, scope, cart_id, rules)
    cart = edit.cart
    cart.add_discount(Discount(
        new_id(), body.reason, body.line_id,
        None if body.percentage is None else Decimal(body.percentage),
        None if body.amount is None else _minor(body.amount, cart.currency, "amount")))
    return _saved(uow, edit, rules)


def remove_discount(uow: UnitOfWork, scope: Scope, cart_id: str, discount_id: str, rules: CartRules
                    ) -> dict[str, Any]:
    edit = _edit(uow, scope, cart_id, rules)
    cart = edit.cart
    cart.remove_discount(discount_id)
    return _saved(uow, edit, rules)


def list_carts(uow: UnitOfWork, rules: CartRules, *, location_id: str | None,
               status: CartStatus | None, after: tuple[dt.datetime, str] | None, limit: int
               ) -> list[dict[str, Any]]:
    carts = uow.carts.page(location_id=location_id, status=status, after=after, limit=limit)
    held = _held_of(uow, [x for c in carts for x in c.lines])
    return [cart_out(uow, c, rules, held) for c in carts]


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


def _cart(uow: UnitOfWork, cart_id: str, scope: Scope, *, for_update: bool = False) -> Cart:
    """The cart, if the caller's scope sees it (a use case that changes data works with
    every row: the scope is applied here)."""
    cart = uow.carts.within(scope).load(cart_id, for_update=for_update)
    if cart is None:
        raise NotFound(f"no cart {cart_id!r}")
    return cart


@dataclass
class _Edit:
    """A change to an open cart: the cart, locked, and its holds, renewed."""

    cart: Cart
    #: The holds still active, now running out at `expires`.
    held: set[str]
    expires: dt.datetime


def _edit(uow: UnitOfWork, scope: Scope, cart_id: str, rules: CartRules) -> _Edit:
    """Lock the cart and move its holds' expiry on, before anything else: a hold's row is
    then always taken before the stock it holds, as the worker expiring it takes them."""
    cart = _cart(uow, cart_id, scope, for_update=True)
    cart.check_open()
    expires = utcnow() + dt.timedelta(minutes=rules.hold_minutes)
    held = uow.reservations.renew([x.hold_id for x in cart.lines if x.hold_id], expires)
    return _Edit(cart, held, expires)


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


def _minor(amount: str, currency: str, field: str) -> int:
    try:
        return Money.parse(amount, currency).minor
    except ValueError as exc:
        raise ValidationFailed(f"{field}: {exc}", [FieldError(field, str(exc))]) from exc


def _hold(uow: UnitOfWork, edit: _Edit, line: CartLine, *, moved: bool = False) -> None:
    """Hold the line's stock as it is now: its old hold goes, a new one of its quantity at
    its location comes (none for a ship line). Refused (422) when the stock is not there."""
    cart = edit.cart
    if line.hold_id is not None:
        if moved:
            # Two stock rows change: take the sku's rows in the one order every path does.
            uow.stock.lock_skus([line.sku])
        _release_holds(uow, [line])
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


def _release_holds(uow: UnitOfWork, lines: Sequence[CartLine]) -> None:
    """Give back what these lines hold, where their hold is still active."""
    ids = [x.hold_id for x in lines if x.hold_id]
    active = [r.id for r in uow.reservations.get_many(ids) if r.status.value == "active"]
    if active:
        release(uow, active, reason="hold_released")


def _saved(uow: UnitOfWork, edit: _Edit, rules: CartRules) -> dict[str, Any]:
    """Hold again what lapsed, where the stock is still there, and save the cart."""
    cart = edit.cart
    for line in list(cart.lines):
        if line.holds_stock and line.hold_id not in edit.held:
            try:
                _hold(uow, edit, line)
            except ValidationFailed:
                cart.set_line(line.id, hold_id=None)
    # What the lines hold now (a line removed, or moved, gave its hold back).
    edit.held &= {x.hold_id for x in cart.lines if x.hold_id}
    cart.holds_expire_at = edit.expires if edit.held else None
    uow.carts.save(cart, utcnow())
    uow.commit()
    return cart_out(uow, cart, rules, edit.held)


def _held(uow: UnitOfWork, cart: Cart) -> set[str]:
    return _held_of(uow, cart.lines)


def _held_of(uow: UnitOfWork, lines: Sequence[CartLine]) -> set[str]:
    """The holds of these lines still active and not run out."""
    now = utcnow()
    return {r.id for r in uow.reservations.get_many([x.hold_id for x in lines if x.hold_id])
            if r.status.value == "active" and (r.expires_at is None or r.expires_at > now)}


def price(uow: UnitOfWork, cart: Cart, rules: CartRules) -> Pricing:
    """The cart's prices, tax by the built-in provider: the rates of the store's country and
    region (a region's rate before the country's), for goods sold there."""
    store = _location(uow, cart.location_id, "location_id").address
    rates = uow.tax_rates.of_countries([store.country])

    def rate(tax_class: str, delivered: bool) -> TaxRate | None:
        # Delivered goods are taxed where they are delivered: the store's country until the
        # cart has a delivery address.
        return (rates.get((store.country, store.region or "", tax_class))
                or rates.get((store.country, "", tax_class)))

    return cart.price(rate, rules.tax_fallback)


def cart_out(uow: UnitOfWork, cart: Cart, rules: CartRules, held: set[str]
             ) -> dict[str, Any]:
    pricing = price(uow, cart, rules)
    cur = cart.currency

    def money(minor: int) -> str:
        return format_minor(minor, cur)

    lines = []
    for x in cart.lines:
        p = pricing.lines[x.id]
        hold: dict[str, Any] | None = None
        if x.holds_stock:
            hold = ({"status": "held", "location_id": x.location_id, "quantity": x.quantity,
                     "expires_at": _iso(cart.holds_expire_at)}
                    if x.hold_id in held else
                    {"status": "lapsed", "location_id": x.location_id, "quantity": 0,
                     "expires_at": None})
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
                   "grand_total": money(pricing.grand_total_minor)},
        "tax_estimated": pricing.tax_estimated,
        "holds_expire_at": _iso(cart.holds_expire_at),
        "created_by_key": cart.created_by_key,
        "version": cart.version,
        "created_at": _iso(cart.created_at), "updated_at": _iso(cart.updated_at),
    }


def _iso(at: dt.datetime | None) -> str | None:
    return None if at is None else at.isoformat()
