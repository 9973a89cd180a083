"""An order's receipt: what was bought, how it reaches the customer, the discounts, the taxes
and how it was paid. A store's sale adds what its cart priced and the order does not keep:
the tax inside prices that include it, each line's rate, the discounts' reasons, the change
given."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.errors import NotFound
from oms.domain.money import format_minor
from oms.domain.orders import line_total


def receipt(uow: UnitOfWork, order_id: str) -> dict[str, Any]:
    order = uow.orders.load(order_id)
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    c = order.currency

    def money(minor: int) -> str:
        return format_minor(minor, c)

    sale = None
    if order.sold_at_location_id is not None:
        cart = uow.carts.of_order(order.id)
        sale = cart.receipt if cart is not None else None
    places = {i.pickup_location_id or order.pickup_location_id for i in order.items}
    places |= {order.sold_at_location_id}
    locations = {x: found.value for x in sorted(p for p in places if p)
                 if (found := uow.locations.get(x)) is not None}
    store = None
    # The time of the sale where it was made (UTC for an order no store sold).
    zone = "UTC"
    if order.sold_at_location_id in locations:
        sold_at = locations[order.sold_at_location_id]
        a, zone = sold_at.address, sold_at.timezone
        store = {"id": sold_at.id, "name": sold_at.name,
                 "address": ", ".join(x for x in (a.line1, a.line2, a.postal_code, a.city,
                                                  a.country) if x)}
    names = {s.value.sku: s.value.name for s in
             (uow.products.get(sku) for sku in sorted({i.sku for i in order.items})) if s}
    lines = []
    taxes: dict[tuple[str, bool], int] = defaultdict(int)
    for n, item in enumerate(order.items):
        kept = sale["lines"][n] if sale else None
        tax = kept["tax_minor"] if kept else item.tax_minor
        included = bool(kept and kept["tax_included"])
        if tax:
            taxes[(kept["rate"] if kept else "", included)] += tax
        how = (kept["fulfillment"] if kept else
               "pickup" if order.pickup_location_id else "ship" if order.service_level else None)
        lines.append({
            "line": item.line, "sku": item.sku, "name": names.get(item.sku, item.sku),
            "quantity": item.quantity, "unit_price": money(item.unit_price_minor),
            "discount": money(item.discount_minor), "tax": money(tax),
            "tax_included": included,
            "total": money(line_total(item.quantity, item.unit_price_minor,
                                      item.discount_minor, item.tax_minor)),
            "fulfillment": how, "status": item.status.value,
            "pickup_location_id": (pickup := item.pickup_location_id or (
                order.pickup_location_id if how == "pickup" else None)),
            "pickup_location_name": locations[pickup].name if pickup in locations else None,
            "preorder": item.preorder,
            "tentative_ship_date": item.tentative_ship_date.isoformat()
            if item.tentative_ship_date else None})
    tenders = {(t["method"], t["amount_minor"]): t["change_minor"]
               for t in (sale["tenders"] if sale else [])}
    payments = [{"method": p["method"], "amount": money(p["amount_minor"]),
                 "change": money(tenders.get((p["method"], p["amount_minor"]), 0))}
                for p in uow.orders.payments(order.id)]
    return {
        "order_id": order.id, "display_id": order.display_id, "channel": order.channel,
        "placed_at": order.placed_at.isoformat(),
        "placed_local": f"{order.placed_at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}",
        "currency": c, "store": store,
        "lines": lines,
        "discounts": [{"reason": d["reason"], "amount": money(d["taken_minor"])}
                      for d in (sale["discounts"] if sale else []) if d["taken_minor"]],
        "shipping": None if not order.service_level else {
            "service_level": order.service_level, "carrier": order.carrier,
            "price": money(order.shipping_price_minor),
            "tax": money(sale["shipping_tax_minor"] if sale else 0)},
        "taxes": [{"rate": rate or None, "included": included, "amount": money(amount)}
                  for (rate, included), amount in sorted(
                      taxes.items(), key=lambda t: (Decimal(t[0][0] or 0), t[0][1]))],
        "tax_exemption": sale["tax_exemption"] if sale else None,
        "tax_exempted": money(sale["exempted_minor"] if sale else 0),
        "payments": payments,
        "grand_total": money(order.grand_total_minor),
    }
