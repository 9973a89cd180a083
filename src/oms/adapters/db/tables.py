"""The relational schema (SQLAlchemy Core). Alembic migrations create and evolve it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from oms.adapters.db.types import JSONDocument, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    # SHA-256 of the whole key: keys are long random strings, so a fast hash is enough and
    # the plain key is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("role", String(20), nullable=False),
    Column("location_ids", JSONDocument, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("tax_class", String(64), nullable=False),
    Column("preorder_ship_date", Date, nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

product_barcodes = Table(
    "product_barcodes",
    metadata,
    Column("sku", String(64), ForeignKey("products.sku", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("type", String(16), nullable=False),
    # One printed barcode identifies one product: a scan must never be ambiguous.
    Column("value", String(64), nullable=False, unique=True),
)

locations = Table(
    "locations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("type", String(8), nullable=False),
    Column("name", String(200), nullable=False),
    Column("line1", String(200), nullable=False),
    Column("line2", String(200), nullable=True),
    Column("city", String(100), nullable=False),
    Column("region", String(100), nullable=True),
    Column("postal_code", String(20), nullable=False),
    Column("country", String(2), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    # One column per capability, so that routing and lists filter on them with an index.
    Column("can_ship", Boolean, nullable=False),
    Column("can_pickup", Boolean, nullable=False),
    Column("can_return", Boolean, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("timezone", String(64), nullable=False),
    # A DC or 3PL is told of its fulfilment requests by a signed POST to this URL.
    Column("fulfillment_callback_url", String(2000), nullable=True),
    Column("callback_secret", String(128), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("location_id", String(64), ForeignKey("locations.id"), primary_key=True),
    Column("sku", String(64), ForeignKey("products.sku"), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    # Denormalised sum of the active reservations' quantities, kept in the same transaction
    # as the reservation rows (services.inventory.check_reserved_counters recomputes it).
    Column("reserved", Integer, nullable=False),
    Column("safety_stock", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # on_hand has no CHECK: an upsert's VALUES row carries the delta, which may be negative.
    # The upsert's WHERE clause keeps on_hand itself from going below zero.
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("safety_stock >= 0", name="safety_stock_not_negative"),
)
Index("ix_stock_levels_sku", stock_levels.c.sku)

future_stock = Table(
    "future_stock",
    metadata,
    Column("location_id", String(64), ForeignKey("locations.id"), primary_key=True),
    Column("sku", String(64), ForeignKey("products.sku"), primary_key=True),
    Column("available_on", Date, primary_key=True),
    Column("quantity", Integer, nullable=False),
    # Pre-orders sold against this delivery (their reservations name `available_on`).
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
)
Index("ix_future_stock_sku", future_stock.c.sku)

reservations = Table(
    "reservations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("location_id", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("reference", String(200), nullable=True),
    # Set while the reservation holds future stock (a pre-order) expected on that date.
    Column("available_on", Date, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
Index(
    "ix_reservations_active_stock",
    reservations.c.location_id,
    reservations.c.sku,
    reservations.c.status,
)

events = Table(
    "events",
    metadata,
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    # On PostgreSQL the id of the writing transaction (pg_current_xact_id()); 0 on SQLite,
    # whose single writer makes `position` order the commit order. See EventRepository.
    Column("txid", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("entity_id", String(200), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("payload", JSONDocument, nullable=False),
)
Index("ix_events_txid_position", events.c.txid, events.c.position)
Index("ix_events_entity", events.c.entity_id, events.c.sequence)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_headers", JSONDocument, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("locked_at", UTCDateTime, nullable=True),
)
Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

customers = Table(
    "customers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("display_id", String(16), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    # Lower-cased: a customer is found by email whatever its case.
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=True),
    Column("phone", String(40), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("display_id", String(16), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("external_id", String(100), nullable=True),
    # Hash of the order as first received: the same order sent again is recognised.
    Column("request_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("historical", Boolean, nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("customer_id", String(36), ForeignKey("customers.id"), nullable=False),
    Column("service_level", String(16), nullable=True),
    Column("carrier", String(64), nullable=True),
    Column("shipping_price_minor", BigInteger, nullable=False),
    Column("pickup_location_id", String(64), ForeignKey("locations.id"), nullable=True),
    Column("fulfillment_location_id", String(64), ForeignKey("locations.id"), nullable=True),
    Column("shipping_address", JSONDocument, nullable=True),
    Column("grand_total_minor", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("channel", "external_id", name="uq_orders_channel_external_id"),
)
# Keyset pagination, newest first, with the filters the order list offers.
Index("ix_orders_placed", orders.c.placed_at, orders.c.id)
Index("ix_orders_customer_placed", orders.c.customer_id, orders.c.placed_at)
Index("ix_orders_status_placed", orders.c.status, orders.c.placed_at)
# Search by the shop's order number whatever the channel (uq_orders_channel_external_id
# begins with the channel, so it cannot answer that).
Index("ix_orders_external_id", orders.c.external_id)

order_items = Table(
    "order_items",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("sku", String(64), ForeignKey("products.sku"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("location_id", String(64), ForeignKey("locations.id"), nullable=True),
    Column("reservation_id", String(36), nullable=True),
    Column("preorder", Boolean, nullable=False),
    Column("tentative_ship_date", Date, nullable=True),
    Column("hold_reason", String(300), nullable=True),
    # The fulfilment request the item is in now (a rejection moves it to another).
    Column("fulfillment_request_id", String(36), nullable=True),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
Index("ix_order_items_order", order_items.c.order_id, order_items.c.line)
Index("ix_order_items_status", order_items.c.status)

payments = Table(
    "payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False),
    Column("method", String(32), nullable=False),
    Column("psp", String(64), nullable=True),
    Column("reference", String(128), nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    # Captured so far (by the OMS, or by the external system before the order came).
    Column("captured_minor", BigInteger, nullable=False, server_default="0"),
    Column("failure_reason", String(300), nullable=True),
    Column("version", Integer, nullable=False, server_default="1"),
    CheckConstraint("captured_minor <= amount_minor", name="captured_within_amount"),
)
Index("ix_payments_order", payments.c.order_id)

routing_rules = Table(
    "routing_rules",
    metadata,
    Column("service_level", String(16), primary_key=True),
    Column("country", String(2), primary_key=True),
    Column("groups", JSONDocument, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

routing_runs = Table(
    "routing_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("ran_at", UTCDateTime, nullable=False),
    Column("assignments", JSONDocument, nullable=False),
    Column("on_hold", JSONDocument, nullable=False),
    Column("considerations", JSONDocument, nullable=False),
)
Index("ix_routing_runs_order", routing_runs.c.order_id, routing_runs.c.ran_at)

fulfillment_requests = Table(
    "fulfillment_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False),
    Column("location_id", String(64), ForeignKey("locations.id"), nullable=False),
    Column("type", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    # The order's, copied so that a store's queue sorts without a join.
    Column("placed_at", UTCDateTime, nullable=False),
    # For pre-orders: the date their stock is expected; the queue puts those due first.
    Column("available_on", Date, nullable=True),
    Column("carrier", String(64), nullable=True),
    Column("parcels", JSONDocument, nullable=True),
    Column("collected_by", String(200), nullable=True),
    Column("reason", String(300), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ready_at", UTCDateTime, nullable=True),
    # DC and 3PL: telling the provider, retried until it answers 2xx.
    Column("notify_state", String(12), nullable=True),
    Column("notify_attempts", Integer, nullable=False, server_default="0"),
    Column("notify_next_at", UTCDateTime, nullable=True),
    Column("notify_last_error", String(1000), nullable=True),
)
Index("ix_fulfillment_requests_queue", fulfillment_requests.c.location_id,
      fulfillment_requests.c.status, fulfillment_requests.c.placed_at)
Index("ix_fulfillment_requests_order", fulfillment_requests.c.order_id)
Index("ix_fulfillment_requests_notify", fulfillment_requests.c.notify_state,
      fulfillment_requests.c.notify_next_at)
Index("ix_fulfillment_requests_status_ready", fulfillment_requests.c.status,
      fulfillment_requests.c.ready_at)

fulfillment_request_items = Table(
    "fulfillment_request_items",
    metadata,
    Column("request_id", String(36), ForeignKey("fulfillment_requests.id"), primary_key=True),
    Column("item_id", String(36), ForeignKey("order_items.id"), primary_key=True),
    Column("status", String(12), nullable=False),
    Column("reason", String(300), nullable=True),
    Column("shipment_id", String(36), nullable=True),
)
Index("ix_fulfillment_request_items_item", fulfillment_request_items.c.item_id)

shipments = Table(
    "shipments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request_id", String(36), ForeignKey("fulfillment_requests.id"), nullable=False),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False),
    Column("location_id", String(64), ForeignKey("locations.id"), nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("tracking_number", String(100), nullable=False),
    Column("tracking_url", String(2000), nullable=True),
    Column("label_format", String(16), nullable=True),
    Column("label", Text, nullable=True),
    Column("parcels", JSONDocument, nullable=False),
    Column("item_ids", JSONDocument, nullable=False),
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_shipments_order", shipments.c.order_id)
Index("ix_shipments_request", shipments.c.request_id)

tracking_events = Table(
    "tracking_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("shipment_id", String(36), ForeignKey("shipments.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("description", String(500), nullable=True),
    Column("place", String(200), nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    # A carrier that sends the same update twice records it once.
    UniqueConstraint("shipment_id", "status", "occurred_at", name="uq_tracking_events_update"),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("event_types", JSONDocument, nullable=False),
    Column("description", String(500), nullable=True),
    Column("secret", String(128), nullable=False),
    # After a rotation the old secret signs too, until it expires.
    Column("previous_secret", String(128), nullable=True),
    Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    Column("status", String(10), nullable=False),
    Column("disabled_reason", String(300), nullable=True),
    # Set at the first failure after a success; three days of it disable the subscription.
    Column("failing_since", UTCDateTime, nullable=True),
    # The last event (txid, position) turned into deliveries for this subscription.
    Column("fanout_txid", BigInteger, nullable=False),
    Column("fanout_position", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subscription_id", String(36), ForeignKey("webhook_subscriptions.id",
                                                     ondelete="CASCADE"), nullable=False),
    Column("event_txid", BigInteger, nullable=False),
    Column("event_position", BigInteger, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("entity_id", String(200), nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    # When the first attempt was due: three days after it, the delivery is given up.
    Column("due_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    # A worker delivering it holds it until then; if the worker dies, another takes over.
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    UniqueConstraint("subscription_id", "event_txid", "event_position",
                     name="uq_webhook_deliveries_event"),
)
Index("ix_webhook_deliveries_due", webhook_deliveries.c.status,
      webhook_deliveries.c.next_attempt_at)
# A later event of an entity waits for the earlier one: found through this index.
Index("ix_webhook_deliveries_entity", webhook_deliveries.c.subscription_id,
      webhook_deliveries.c.entity_id, webhook_deliveries.c.status,
      webhook_deliveries.c.event_txid, webhook_deliveries.c.event_position)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("delivery_id", String(36), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
           nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("response_body", String(1024), nullable=True),
    Column("error", String(500), nullable=True),
)
Index("ix_webhook_attempts_delivery", webhook_attempts.c.delivery_id,
      webhook_attempts.c.attempted_at)

event_sinks = Table(
    "event_sinks",
    metadata,
    # E.g. "nats": the last event the sink acknowledged, to resume after a restart.
    Column("name", String(32), primary_key=True),
    Column("after_txid", BigInteger, nullable=False),
    Column("after_position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
