"""Settings read from the environment (prefix OMS_)."""

from __future__ import annotations

import datetime as dt
import logging
import os
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from oms.domain.orders import PlacementWindow


class Settings(BaseSettings):
    # populate_by_name: a field with aliases can still be set by its name in code.
    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore", populate_by_name=True)

    #: SQLite file in the working folder by default; PostgreSQL in production, e.g.
    #: postgresql+psycopg://oms@db/oms
    database_url: str = "sqlite:///./oms.db"
    #: Idempotency keys are kept at least this long (DESIGN §3.3: at least 24 h).
    idempotency_ttl_hours: int = 24
    #: What the check of an API key answered is kept this long in each process: a revoked
    #: key may still be taken for that long (0: check every request).
    api_key_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    #: Locations and routing rules are kept this long in each process for routing: a change
    #: made by another process reaches it within that while (0: read them for every order).
    reference_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    #: A request body larger than this is refused (413) before it is read; imports have
    #: their own limit.
    max_body_bytes: int = 1024 * 1024
    #: The same for an import file.
    max_import_bytes: int = 200 * 1024 * 1024
    #: An import that has made no progress for this long is taken as stopped (its process
    #: died): a resend with the same Idempotency-Key resumes it.
    import_lease_seconds: int = Field(default=300, ge=1, le=86_400)
    #: Connection pool per process (PostgreSQL).
    db_pool_size: int = 20
    db_max_overflow: int = 10
    #: Units of work of one API process that talk to the database at once; the other
    #: requests wait their turn, asleep (0: no limit). One per process is the fastest: see
    #: oms.adapters.db.gate.
    db_concurrency: int = Field(default=1, ge=0, le=1000)
    #: Threads per API process that run requests (their waits for a provider's answer
    #: included).
    request_threads: int = Field(default=8, ge=1, le=1000)
    #: A pooled connection older than this is closed and opened anew when next taken.
    db_pool_recycle_seconds: int = Field(default=1800, ge=1)
    #: PostgreSQL ends a session of ours that sits this long inside a transaction without
    #: running a statement (0: never). Such a transaction holds the event feed back, and
    #: locks, while it stays open.
    db_idle_in_transaction_timeout_seconds: float = Field(default=60.0, ge=0, le=2_000_000)
    #: A statement waiting longer than this for a row lock fails, and its request is
    #: answered 503 with Retry-After (PostgreSQL; 0: wait for ever).
    db_lock_timeout_seconds: float = Field(default=5.0, ge=0, le=3600)
    #: A live (not historical) order placed longer ago than this is refused.
    live_order_max_age_days: int = 30
    #: An order placed this far ahead of the OMS's clock is taken as a sender's clock running
    #: fast; further ahead, it is refused.
    order_clock_skew_seconds: int = 300
    #: Rows per transaction in bulk imports.
    import_chunk_size: int = 1000
    #: Adapters per carrier code, e.g. {"dhl": "mycompany.carriers:Dhl", "*": "..."}; codes
    #: not named use the simulated carrier.
    carrier_adapters: dict[str, str] = {}
    #: Adapters per PSP code, as for carriers; the simulated PSP by default.
    psp_adapters: dict[str, str] = {}
    #: The carrier booked when an order names none.
    default_carrier: str = "standard"
    #: A parcel packed without a weight is booked with this one.
    default_parcel_weight_grams: int = 1000
    #: A pickup not collected within this many days of being ready is cancelled.
    pickup_expiry_days: int = 7
    #: The PSP code a store's card payments are authorised with (OMS_PSP_ADAPTERS says which
    #: adapter serves it).
    store_psp: str = "simulated"
    #: A payment link sent to a customer's phone can be paid this long.
    payment_link_minutes: int = Field(default=30, ge=1, le=1440)
    #: Per PSP code, the secret its notifications are signed with (HMAC-SHA256 of the body,
    #: hex, in X-Oms-Signature); a PSP without one cannot notify.
    psp_notification_secrets: dict[str, str] = {}
    #: A cart's take-now and pickup lines hold their stock this long after its last change.
    cart_hold_minutes: int = Field(default=15, ge=1, le=60)
    #: The tax rate (percent) a cart uses where the tax provider gives none, marking its tax
    #: estimated; and whether prices include it.
    tax_fallback_rate: Decimal = Field(default=Decimal(0), ge=0, le=100)
    tax_fallback_prices_include_tax: bool = True
    #: Threads per process that carry out PSP and carrier calls once their step committed.
    provider_call_threads: int = Field(default=8, ge=1, le=256)
    #: How long a request waits for those calls (a label to show) before it answers with
    #: them still pending; the worker finishes them.
    provider_answer_wait_seconds: float = Field(default=10.0, ge=0, le=120)
    #: How long a DC's or 3PL's endpoint may take to answer a notification.
    provider_timeout_seconds: float = 10.0
    #: Whether outgoing requests (webhooks, DC/3PL callbacks, HTTP adapters) may go to
    #: loopback, private, link-local and metadata addresses (true for development).
    #: OMS_WEBHOOK_ALLOW_PRIVATE is its old name, still read when the new one is not set.
    egress_allow_private: bool = Field(default=False, validation_alias=AliasChoices(
        "OMS_EGRESS_ALLOW_PRIVATE", "OMS_WEBHOOK_ALLOW_PRIVATE"))
    #: How long a subscriber may take to answer a webhook.
    webhook_timeout_seconds: float = 10.0
    #: Webhook requests a worker has in flight at once.
    webhook_concurrency: int = 8
    #: How often an idle worker looks for events to deliver.
    webhook_poll_seconds: float = 0.5
    #: With a NATS server, e.g. nats://127.0.0.1:4222, the worker publishes every event to
    #: JetStream.
    nats_url: str | None = None
    nats_stream: str = "OMS"
    #: Events go to subjects `<prefix>.<event type>`; the stream holds `<prefix>.>`. Two
    #: JetStream streams cannot share subjects, so each stream needs its own prefix.
    nats_subject_prefix: str = "oms"
    #: JetStream drops a message whose id it saw within this window (a worker's restart
    #: publishes again what it had not recorded as acknowledged).
    nats_duplicate_window_seconds: int = 3600
    #: Logs of `oms serve` and `oms worker`, on stderr: one JSON object a line, or `text`.
    log_format: Literal["json", "text"] = "json"
    #: DEBUG, INFO, WARNING or ERROR.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def placement_window(self) -> PlacementWindow:
        return PlacementWindow(dt.timedelta(days=self.live_order_max_age_days),
                               dt.timedelta(seconds=self.order_clock_skew_seconds))


#: Old names of settings, still read, and their new ones.
DEPRECATED_NAMES = {"OMS_WEBHOOK_ALLOW_PRIVATE": "OMS_EGRESS_ALLOW_PRIVATE"}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    set_names = {name.upper() for name in os.environ}
    for old, new in DEPRECATED_NAMES.items():
        if old in set_names:
            logging.getLogger("oms.settings").warning(
                "%s is deprecated; set %s instead%s", old, new,
                f"; {new} is set too and wins" if new in set_names else "")
    return Settings()
