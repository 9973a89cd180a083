"""The JSON views of orders, customers, fulfilment requests and shipments: what the API
answers and what their events carry, one function each so the two never differ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import RowMapping

from oms.adapters.db.cart_repositories import GiftCard
from oms.domain.fulfillment import FulfillmentRequest, RequestType
from oms.domain.money import format_minor
from oms.domain.orders import ItemStatus, Order

#: A stored row or the dict it was written from.
RowLike = Mapping[str, Any] | RowMapping


def customer_out(c: RowLike) -> dict[str, Any]:
    return {"id": c["id"], "display_id": c["display_id"], "email": c["email"],
            "name": c["name"], "phone": c["phone"], "created_at": c["created_at"].isoformat()}


def render_order(o: Order, customer: RowLike, payments: Sequence[RowLike],
                 pending: Mapping[tuple[str, str], int] | None = None) -> dict[str, Any]:
    """An order as the API and its events show it."""
    c = o.currency
    return {
        "id": o.id, "display_id": o.display_id, "channel": o.channel,
        "external_id": o.external_id, "status": o.status.value,
        "historical": o.historical, "placed_at": o.placed_at.isoformat(),
        "currency": c, "customer": customer_out(customer),
        "items": [{
            "id": i.id, "line": i.line, "sku": i.sku, "quantity": i.quantity,
            "unit_price": format_minor(i.unit_price_minor, c),
            "discount": format_minor(i.discount_minor, c), "tax": format_minor(i.tax_minor, c),
            "status": i.status.value, "location_id": i.location_id,
            "preorder": i.preorder,
            "tentative_ship_date": i.tentative_ship_date.isoformat()
            if i.tentative_ship_date else None,
            "hold_reason": i.hold_reason if i.status is ItemStatus.ON_HOLD else None,
            "fulfillment_request_id": i.fulfillment_request_id,
            "pickup_location_id": i.pickup_location_id,
        } for i in o.items],
        "shipping": {
            "service_level": o.service_level, "carrier": o.carrier,
            "price": format_minor(o.shipping_price_minor, c),
            "pickup_location_id": o.pickup_location_id,
            "address": o.shipping_address,
        } if o.service_level else None,
        "fulfillment_location_id": o.fulfillment_location_id,
        "sold_at": {"location_id": o.sold_at_location_id, "key_id": o.sold_by_key}
        if o.sold_at_location_id else None,
        "payments": [{"id": p["id"], "method": p["method"], "psp": p["psp"],
                      "reference": p["reference"], "amount": format_minor(p["amount_minor"], c),
                      "captured": format_minor(p["captured_minor"], c),
                      "refunded": format_minor(p["refunded_minor"], c),
                      "voided": format_minor(p["voided_minor"], c),
                      # Asked of the PSP and not answered yet.
                      "pending": {kind: format_minor((pending or {}).get((p["id"], kind), 0), c)
                                  for kind in ("capture", "refund", "void")},
                      "status": p["status"],
                      "failure_reason": p["failure_reason"]} for p in payments],
        "totals": {"grand_total": format_minor(o.grand_total_minor, c)},
        "version": o.version,
        "updated_at": o.updated_at.isoformat(),
    }


def request_out(r: FulfillmentRequest, currency: str) -> dict[str, Any]:
    """A fulfilment request as the API and its events show it; a DC's or 3PL's also says
    whether it was told of the request."""
    body: dict[str, Any] = {
        "id": r.id, "order_id": r.order_id, "location_id": r.location_id,
        "type": r.type.value, "status": r.status.value,
        "placed_at": r.placed_at.isoformat(),
        "available_on": r.available_on.isoformat() if r.available_on else None,
        "carrier": r.carrier, "parcels": r.parcels, "collected_by": r.collected_by,
        "reason": r.reason,
        "items": [{
            "item_id": x.item_id, "line": x.line, "sku": x.sku,
            "quantity": x.quantity, "status": x.status.value, "reason": x.reason,
            "shipment_id": x.shipment_id, "item_status": x.item_status,
            "value": format_minor(x.value_minor, currency),
        } for x in r.items],
        "version": r.version, "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "ready_at": r.ready_at.isoformat() if r.ready_at else None,
    }
    if r.type is RequestType.THIRD_PARTY:
        body["notification"] = {
            "state": r.notify_state, "attempts": r.notify_attempts,
            "last_error": r.notify_last_error,
            "next_attempt_at": r.notify_next_at.isoformat() if r.notify_next_at else None,
        }
    return body


def shipment_out(s: RowLike, tracking: Sequence[RowLike], *, with_label: bool = False
                 ) -> dict[str, Any]:
    body = {
        "id": s["id"], "request_id": s["request_id"], "order_id": s["order_id"],
        "location_id": s["location_id"], "carrier": s["carrier"],
        "tracking_number": s["tracking_number"], "tracking_url": s["tracking_url"],
        # pending until the carrier booked it, then booked or failed; None when the DC or
        # 3PL that shipped it booked the carrier itself.
        "label_status": s["label_status"], "label_error": s["label_error"],
        "parcels": s["parcels"], "item_ids": s["item_ids"], "status": s["status"],
        "tracking_events": [{
            "status": e["status"], "occurred_at": e["occurred_at"].isoformat(),
            "description": e["description"], "place": e["place"]} for e in tracking],
        "version": s["version"], "created_at": s["created_at"].isoformat(),
        "updated_at": s["updated_at"].isoformat(),
    }
    if with_label and s["label"] is not None:
        body["label"] = {"format": s["label_format"], "content": s["label"]}
    return body


def gift_card_out(card: GiftCard) -> dict[str, Any]:
    return {"code": card.code, "currency": card.currency,
            "balance": format_minor(card.balance_minor, card.currency),
            "initial": format_minor(card.initial_minor, card.currency),
            "created_at": card.created_at.isoformat(), "updated_at": card.updated_at.isoformat()}
