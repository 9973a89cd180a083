"""Domain events: what changed, recorded in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

#: Every type of event the OMS records: what the feed, webhooks and NATS carry, and what a
#: webhook may subscribe to (each, `<prefix>.*` for all of one kind of entity, or `*`).
EVENT_TYPES = frozenset({
    "api_key.created",
    "api_key.revoked",
    "approval.denied",
    "approval.granted",
    "cart.checked_out",
    "customer.created",
    "fulfillment_request.accepted",
    "gift_card.issued",
    "gift_card.redeemed",
    "gift_card.restored",
    "fulfillment_request.acknowledged",
    "fulfillment_request.issued",
    "fulfillment_request.items_cancelled",
    "fulfillment_request.notification_failed",
    "fulfillment_request.notified",
    "fulfillment_request.packed",
    "fulfillment_request.picked",
    "fulfillment_request.picked_up",
    "fulfillment_request.ready_for_pickup",
    "fulfillment_request.rejected",
    "fulfillment_request.shipped",
    "inventory.changed",
    "inventory.future_changed",
    "location.upserted",
    "order.created",
    "order.item_on_hold",
    "order.item_routed",
    "order.items_cancelled",
    "order.items_updated",
    "payment.authorized",
    "payment.capture_failed",
    "payment.captured",
    "payment.refund_failed",
    "payment.refunded",
    "payment.void_failed",
    "payment.voided",
    "product.upserted",
    "routing.rules_replaced",
    "shipment.booked",
    "shipment.booking_failed",
    "shipment.booking_requested",
    "shipment.created",
    "shipment.updated",
    "webhook_subscription.created",
    "webhook_subscription.deleted",
    "webhook_subscription.disabled",
    "webhook_subscription.secret_rotated",
    "webhook_subscription.updated",
})
#: The kinds of entity events are about: `order` of `order.created`.
EVENT_PREFIXES = frozenset(t.partition(".")[0] for t in EVENT_TYPES)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Event:
    type: str
    entity_id: str
    #: The entity's version after the change: consumers order one entity's events by it.
    sequence: int
    payload: dict[str, Any]
    occurred_at: dt.datetime

    def __post_init__(self) -> None:
        # Subscribers choose from EVENT_TYPES: an event of a type not listed there would reach
        # only those who take `*`.
        if self.type not in EVENT_TYPES:
            raise ValueError(f"{self.type!r} is not in EVENT_TYPES; add it there")
