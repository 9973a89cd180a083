"""Carts, tax rates and the retailer's settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from oms.adapters.db import tables as t
from oms.adapters.db.scoping import located_seen
from oms.adapters.db.upsert import insert_for
from oms.domain.access import Scope
from oms.domain.carts import (
    Approval,
    Cart,
    CartLine,
    CartStatus,
    Customer,
    Discount,
    Fulfillment,
    PriceOverride,
    ShippingChoice,
    TaxRate,
    Tender,
    TenderMethod,
    TenderStatus,
)
from oms.domain.shipping import ShippingRate


def _line_document(x: CartLine) -> dict[str, Any]:
    return {"id": x.id, "sku": x.sku, "name": x.name, "tax_class": x.tax_class,
            "quantity": x.quantity, "fulfillment": x.fulfillment.value,
            "location_id": x.location_id, "catalog_price_minor": x.catalog_price_minor,
            "override": None if x.override is None else {
                "unit_price_minor": x.override.unit_price_minor, "reason": x.override.reason},
            "barcode": x.barcode, "hold_id": x.hold_id}


def _line(d: dict[str, Any]) -> CartLine:
    override = d["override"]
    return CartLine(d["id"], d["sku"], d["name"], d["tax_class"], d["quantity"],
                    Fulfillment(d["fulfillment"]), d["location_id"], d["catalog_price_minor"],
                    None if override is None else PriceOverride(override["unit_price_minor"],
                                                                override["reason"]),
                    d["barcode"], d["hold_id"])


def _discount_document(x: Discount) -> dict[str, Any]:
    return {"id": x.id, "reason": x.reason, "line_id": x.line_id,
            "percentage": None if x.percentage is None else str(x.percentage),
            "amount_minor": x.amount_minor}


def _discount(d: dict[str, Any]) -> Discount:
    return Discount(d["id"], d["reason"], d["line_id"],
                    None if d["percentage"] is None else Decimal(d["percentage"]),
                    d["amount_minor"])


def _document(cart: Cart) -> dict[str, Any]:
    c = cart.customer
    shipping = cart.shipping
    return {"customer": {"email": c.email, "name": c.name, "phone": c.phone},
            "lines": [_line_document(x) for x in cart.lines],
            "discounts": [_discount_document(x) for x in cart.discounts],
            "shipping": None if shipping is None else {
                "service_level": shipping.service_level, "carrier": shipping.carrier,
                "address": dict(shipping.address)},
            "tenders": [{"id": x.id, "method": x.method.value, "amount_minor": x.amount_minor,
                         "tendered_minor": x.tendered_minor, "psp": x.psp,
                         "reference": x.reference, "status": x.status.value,
                         "link_url": x.link_url,
                         "link_expires_at": None if x.link_expires_at is None
                         else x.link_expires_at.isoformat()} for x in cart.tenders],
            "events": cart.events, "tax_exemption": cart.tax_exemption,
            "receipt": cart.receipt,
            "approvals": [{"id": a.id, "rule_ids": list(a.rule_ids), "granted": a.granted,
                           "by_key": a.by_key, "note": a.note, "at": a.at.isoformat(),
                           "cart_version": a.cart_version} for a in cart.approvals]}


def _cart(row: Any) -> Cart:
    doc = row.document
    return Cart(row.id, row.location_id, row.currency, CartStatus(row.status),
                row.created_by_key, row.created_at, row.updated_at, row.version,
                Customer(**doc["customer"]), [_line(x) for x in doc["lines"]],
                [_discount(x) for x in doc["discounts"]], row.holds_expire_at,
                None if doc.get("shipping") is None else ShippingChoice(**doc["shipping"]),
                [Tender(x["id"], TenderMethod(x["method"]), x["amount_minor"],
                        x["tendered_minor"], x["psp"], x["reference"],
                        TenderStatus(x.get("status", "authorized")), x.get("link_url"),
                        None if x.get("link_expires_at") is None
                        else dt.datetime.fromisoformat(x["link_expires_at"]))
                 for x in doc.get("tenders", [])],
                row.order_id, doc.get("events", 0), doc.get("tax_exemption"),
                [Approval(a["id"], tuple(a["rule_ids"]), a["granted"], a["by_key"], a["note"],
                          dt.datetime.fromisoformat(a["at"]), a["cart_version"])
                 for a in doc.get("approvals", [])],
                doc.get("receipt"))


class CartRepository:
    """Carts within the caller's scope: a store key sees its stores' carts only."""

    def __init__(self, conn: Connection, scope: Scope) -> None:
        self.conn = conn
        self.scope = scope

    def within(self, scope: Scope) -> CartRepository:
        return CartRepository(self.conn, scope)

    def load(self, cart_id: str, *, for_update: bool = False) -> Cart | None:
        stmt = select(t.carts).where(t.carts.c.id == cart_id,
                                     located_seen(t.carts.c.location_id, self.scope))
        if for_update:
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        return None if row is None else _cart(row)

    def add(self, cart: Cart) -> None:
        self.conn.execute(insert(t.carts).values(
            id=cart.id, location_id=cart.location_id, currency=cart.currency,
            status=cart.status.value, created_by_key=cart.created_by_key,
            document=_document(cart), holds_expire_at=cart.holds_expire_at,
            version=cart.version, created_at=cart.created_at, updated_at=cart.updated_at))

    def save(self, cart: Cart, now: dt.datetime) -> None:
        """Write the cart as it is now; it was loaded locked, so its version is still ours."""
        cart.version += 1
        cart.updated_at = now
        self.conn.execute(update(t.carts).where(t.carts.c.id == cart.id).values(
            status=cart.status.value, document=_document(cart),
            holds_expire_at=cart.holds_expire_at, order_id=cart.order_id,
            version=cart.version, updated_at=now))

    def of_order(self, order_id: str) -> Cart | None:
        """The cart checked out into this order (the caller has seen the order)."""
        row = self.conn.execute(select(t.carts).where(t.carts.c.order_id == order_id)).first()
        return None if row is None else _cart(row)

    def delete(self, cart_id: str) -> None:
        self.conn.execute(delete(t.carts).where(t.carts.c.id == cart_id))

    def page(self, *, location_id: str | None, status: CartStatus | None,
             after: tuple[dt.datetime, str] | None, limit: int) -> list[Cart]:
        """Newest first."""
        c = t.carts.c
        stmt = select(t.carts).where(located_seen(c.location_id, self.scope))
        if location_id is not None:
            stmt = stmt.where(c.location_id == location_id)
        if status is not None:
            stmt = stmt.where(c.status == status.value)
        if after is not None:
            at, cart_id = after
            stmt = stmt.where((c.created_at < at) | ((c.created_at == at) & (c.id < cart_id)))
        rows = self.conn.execute(stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit))
        return [_cart(r) for r in rows]


class SettingsRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, name: str) -> Any | None:
        return self.conn.execute(
            select(t.settings.c.value).where(t.settings.c.name == name)).scalar_one_or_none()

    def put(self, name: str, value: Any, now: dt.datetime) -> int:
        """Store the setting; its new version."""
        stmt = insert_for(self.conn, t.settings)
        c = t.settings.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.name],
            set_={"value": stmt.excluded.value, "version": c.version + 1,
                  "updated_at": stmt.excluded.updated_at},
        ).returning(c.version)
        version: int = self.conn.execute(
            stmt, {"name": name, "value": value, "version": 1, "updated_at": now}).scalar_one()
        return version


class TaxRateRepository:
    """The built-in tax provider (oms.adapters.pricing.TaxProvider): a region's rate before
    its country's."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._known: dict[str, dict[tuple[str, str], TaxRate]] = {}

    def rate(self, country: str, region: str | None, tax_class: str) -> TaxRate | None:
        if country not in self._known:
            self._known[country] = {(r, c): rate for (_, r, c), rate
                                    in self.of_countries([country]).items()}
        rates = self._known[country]
        return rates.get((region or "", tax_class)) or rates.get(("", tax_class))

    def all(self) -> list[dict[str, Any]]:
        c = t.tax_rates.c
        return [dict(r) for r in self.conn.execute(
            select(t.tax_rates).order_by(c.country, c.region, c.tax_class)).mappings()]

    def replace(self, rows: Sequence[dict[str, Any]]) -> None:
        self._known.clear()
        self.conn.execute(delete(t.tax_rates))
        if rows:
            self.conn.execute(insert(t.tax_rates), list(rows))

    def of_countries(self, countries: Sequence[str]
                     ) -> dict[tuple[str, str, str], TaxRate]:
        """(country, region, tax class) → rate, of these countries."""
        c = t.tax_rates.c
        rows = self.conn.execute(select(t.tax_rates).where(c.country.in_(list(countries))))
        return {(r.country, r.region, r.tax_class): TaxRate(Decimal(r.rate),
                                                            r.prices_include_tax)
                for r in rows}


class ShippingRateRepository:
    """The built-in rates adapter (oms.adapters.pricing.RateProvider)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def all(self) -> list[ShippingRate]:
        c = t.shipping_rates.c
        return [_rate(r) for r in self.conn.execute(
            select(t.shipping_rates).order_by(c.country, c.service_level, c.currency))]

    def rates(self, country: str, currency: str) -> list[ShippingRate]:
        c = t.shipping_rates.c
        return [_rate(r) for r in self.conn.execute(
            select(t.shipping_rates).where(c.country == country, c.currency == currency)
            .order_by(c.service_level))]

    def replace(self, rates: Sequence[ShippingRate]) -> None:
        self.conn.execute(delete(t.shipping_rates))
        if rates:
            self.conn.execute(insert(t.shipping_rates), [
                {"country": r.country, "service_level": r.service_level,
                 "currency": r.currency, "carrier": r.carrier, "price_minor": r.price_minor,
                 "free_above_minor": r.free_above_minor, "transit_days": r.transit_days,
                 "cutoff": r.cutoff.strftime("%H:%M")} for r in rates])


def _rate(r: Any) -> ShippingRate:
    return ShippingRate(r.country, r.service_level, r.carrier, r.currency, r.price_minor,
                        r.free_above_minor, r.transit_days, dt.time.fromisoformat(r.cutoff))


@dataclass(frozen=True)
class GiftCard:
    code: str
    currency: str
    initial_minor: int
    balance_minor: int
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class GiftCardRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, code: str, currency: str, amount_minor: int, key_id: str | None,
            now: dt.datetime) -> GiftCard | None:
        """The card issued; None if a card has this code already (two issues of one code
        at once included: the insert is the check)."""
        row = self.conn.execute(
            insert_for(self.conn, t.gift_cards).values(
                code=code, currency=currency, initial_minor=amount_minor,
                balance_minor=amount_minor, issued_by_key=key_id, version=1, created_at=now,
                updated_at=now)
            .on_conflict_do_nothing(index_elements=[t.gift_cards.c.code])
            .returning(*t.gift_cards.c)).first()
        return None if row is None else _gift_card(row)

    def get(self, code: str) -> GiftCard | None:
        row = self.conn.execute(select(t.gift_cards).where(t.gift_cards.c.code == code)).first()
        return None if row is None else _gift_card(row)

    def spend(self, code: str, amount_minor: int, now: dt.datetime) -> GiftCard | None:
        """Take `amount_minor` off the balance if it holds that much; None if it does not
        (or there is no such card). The condition is the check: two spends of one balance
        are serialised by the row, and the second sees what the first left."""
        c = t.gift_cards.c
        row = self.conn.execute(
            update(t.gift_cards)
            .where(c.code == code, c.balance_minor >= amount_minor)
            .values(balance_minor=c.balance_minor - amount_minor, version=c.version + 1,
                    updated_at=now)
            .returning(*t.gift_cards.c)).first()
        return None if row is None else _gift_card(row)

    def give_back(self, code: str, amount_minor: int, now: dt.datetime) -> GiftCard:
        c = t.gift_cards.c
        row = self.conn.execute(
            update(t.gift_cards).where(c.code == code)
            .values(balance_minor=c.balance_minor + amount_minor, version=c.version + 1,
                    updated_at=now)
            .returning(*t.gift_cards.c)).one()
        return _gift_card(row)


def _gift_card(r: Any) -> GiftCard:
    return GiftCard(r.code, r.currency, r.initial_minor, r.balance_minor, r.version,
                    r.created_at, r.updated_at)


class PaymentLinkRepository:
    """Payment links by the PSP's reference: its notification names only that."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, reference: str, psp: str, cart_id: str, tender_id: str,
            expires_at: dt.datetime, now: dt.datetime) -> None:
        self.conn.execute(insert(t.payment_links).values(
            reference=reference, psp=psp, cart_id=cart_id, tender_id=tender_id,
            status=TenderStatus.PENDING.value, expires_at=expires_at, created_at=now,
            updated_at=now))

    def lock(self, psp: str, reference: str) -> Any | None:
        """The link, locked: two notifications of it are taken one after the other."""
        c = t.payment_links.c
        return self.conn.execute(select(t.payment_links)
                                 .where(c.psp == psp, c.reference == reference)
                                 .with_for_update()).first()

    def settle(self, psp: str, reference: str, status: TenderStatus, now: dt.datetime) -> None:
        c = t.payment_links.c
        self.conn.execute(update(t.payment_links)
                          .where(c.psp == psp, c.reference == reference)
                          .values(status=status.value, updated_at=now))
