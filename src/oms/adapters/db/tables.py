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
    # How often ATP rose here (on_hand up, a reservation released, safety stock down): orders
    # on hold for the sku are routed again when its sum over locations changes.
    Column("atp_rises", Integer, nullable=False, server_default="0"),
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
    # As stock_levels.atp_rises: the delivery grew, or a pre-order of it was released.
    Column("atp_rises", Integer, nullable=False, server_default="0"),
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
    # A cart's hold: released by the worker once this time has passed (None: it lasts).
    Column("expires_at", UTCDateTime, nullable=True),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
# Only holds expire: the orders' reservations stay out of the index.
Index("ix_reservations_expires_at", reservations.c.expires_at,
      postgresql_where=reservations.c.expires_at.isnot(None),
      sqlite_where=reservations.c.expires_at.isnot(None))
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
    # The answer, written in the transaction of the change it answers.
    Column("response_status", Integer, nullable=False),
    Column("response_headers", JSONDocument, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
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
    # While on hold: what routing read when the worker last looked (domain.holds), when it
    # looks again even if that has not changed, and the wait that led there.
    Column("routing_inputs", String(64), nullable=True),
    Column("reroute_after", UTCDateTime, nullable=True),
    Column("reroute_wait_seconds", Integer, nullable=True),
    # A store's sale: the store that sold it, and the API key of the associate who did.
    Column("sold_at_location_id", String(64), nullable=True),
    Column("sold_by_key", String(36), nullable=True),
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
    # Collected at this store, whatever the rest of the order does (a store's mixed cart).
    Column("pickup_location_id", String(64), nullable=True),
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
    # Given back of what was captured, and released of what was authorised and not captured.
    Column("refunded_minor", BigInteger, nullable=False, server_default="0"),
    Column("voided_minor", BigInteger, nullable=False, server_default="0"),
    Column("failure_reason", String(300), nullable=True),
    Column("version", Integer, nullable=False, server_default="1"),
    CheckConstraint("captured_minor + voided_minor <= amount_minor",
                    name="captured_within_amount"),
    CheckConstraint("refunded_minor <= captured_minor", name="refunded_within_captured"),
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
    # Per item: the location chosen, the few best passed over, counts per reason.
    Column("decisions", JSONDocument, nullable=False),
    # What explains any location's part (routing_record.inputs_json); null when nothing
    # was weighed.
    Column("inputs", JSONDocument, nullable=True),
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
    # None until the carrier booked it (a booking is carried out after the step commits).
    Column("tracking_number", String(100), nullable=True),
    Column("tracking_url", String(2000), nullable=True),
    Column("label_format", String(16), nullable=True),
    Column("label", Text, nullable=True),
    # Our booking of the carrier: pending, booked or failed; None when the location's own
    # provider booked it (a DC or 3PL reports its shipments with their tracking).
    Column("label_status", String(12), nullable=True),
    Column("label_error", String(300), nullable=True),
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

provider_calls = Table(
    "provider_calls",
    metadata,
    # A call to a PSP or carrier, written in the transaction of the step that needs it and
    # carried out after that transaction commits (DESIGN §3.7).
    Column("id", String(36), primary_key=True),
    Column("kind", String(12), nullable=False),
    # Sent to the provider, which takes a call with a key it has seen as the same call; made
    # of what the call is for, so that a step retried after a failed commit makes the same.
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False),
    Column("payment_id", String(36), ForeignKey("payments.id"), nullable=True),
    Column("shipment_id", String(36), ForeignKey("shipments.id"), nullable=True),
    Column("provider", String(64), nullable=False),
    Column("amount_minor", BigInteger, nullable=True),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # Whoever carries the call out holds it until then; the worker takes over after.
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
)
Index("ix_provider_calls_due", provider_calls.c.status, provider_calls.c.next_attempt_at)
Index("ix_provider_calls_payment", provider_calls.c.payment_id)
Index("ix_provider_calls_shipment", provider_calls.c.shipment_id)

import_runs = Table(
    "import_runs",
    metadata,
    # One import request (or `oms import`) and how far it got: each chunk of rows commits
    # with the progress written here, so a resent request resumes where the last one stopped.
    Column("id", String(36), primary_key=True),
    # Who sent it; NULL for the command line.
    Column("api_key_id", String(36), ForeignKey("api_keys.id"), nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("file_sha256", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("format", String(8), nullable=False),
    # running or completed; a running import whose lease ran out was interrupted.
    Column("status", String(12), nullable=False),
    # Transactions committed: chunks of rows, then (full inventory imports) one per location
    # whose unlisted skus went to zero.
    Column("steps_applied", Integer, nullable=False),
    # Every line up to this one has been applied or reported as refused; none after it.
    Column("applied_through_line", BigInteger, nullable=False),
    Column("zeroed_through", String(64), nullable=True),
    Column("rows_applied", BigInteger, nullable=False),
    # The report so far: counts and the refused lines.
    Column("report", JSONDocument, nullable=False),
    # The request carrying the import out holds it until lease_until, renewed by each step.
    Column("runner", String(36), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    UniqueConstraint("api_key_id", "idempotency_key", name="uq_import_runs_idempotency_key"),
)

settings = Table(
    "settings",
    metadata,
    # The retailer's settings made through the API (the barcode types scanners accept).
    Column("name", String(64), primary_key=True),
    Column("value", JSONDocument, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

tax_rates = Table(
    "tax_rates",
    metadata,
    Column("country", String(2), primary_key=True),
    # '' where the rate holds in the whole country.
    Column("region", String(100), primary_key=True),
    Column("tax_class", String(64), primary_key=True),
    # Percent, as the decimal text it was given: exact on both databases.
    Column("rate", String(16), nullable=False),
    Column("prices_include_tax", Boolean, nullable=False),
)

carts = Table(
    "carts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("location_id", String(64), ForeignKey("locations.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_by_key", String(36), nullable=False),
    # Its customer, lines and discounts: a cart is read and written whole, by one associate
    # at a time, and nothing searches inside it.
    Column("document", JSONDocument, nullable=False),
    Column("holds_expire_at", UTCDateTime, nullable=True),
    # The order it became at checkout.
    Column("order_id", String(36), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_carts_location_created", carts.c.location_id, carts.c.created_at)
# An order's receipt reads the cart it came from.
Index("ix_carts_order_id", carts.c.order_id)

shipping_rates = Table(
    "shipping_rates",
    metadata,
    # The built-in rates adapter's table (oms.domain.shipping).
    Column("country", String(2), primary_key=True),
    Column("service_level", String(16), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("carrier", String(64), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("free_above_minor", BigInteger, nullable=True),
    Column("transit_days", Integer, nullable=False),
    # HH:MM, the shipping location's local time.
    Column("cutoff", String(5), nullable=False),
)

gift_cards = Table(
    "gift_cards",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("initial_minor", BigInteger, nullable=False),
    # Spent by one conditional UPDATE: two carts cannot spend one balance twice.
    Column("balance_minor", BigInteger, nullable=False),
    Column("issued_by_key", String(36), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("balance_minor >= 0", name="balance_not_negative"),
    CheckConstraint("balance_minor <= initial_minor", name="balance_within_initial"),
)

payment_links = Table(
    "payment_links",
    metadata,
    # A link's PSP reference finds its cart when the PSP's notification comes.
    Column("psp", String(64), primary_key=True),
    Column("reference", String(128), primary_key=True),
    Column("cart_id", String(36), nullable=False),
    Column("tender_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
