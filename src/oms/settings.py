"""Settings read from the environment (prefix OMS_)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from oms.domain.orders import PlacementWindow


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    #: SQLite file in the working folder by default; PostgreSQL in production, e.g.
    #: postgresql+psycopg://oms@db/oms
    database_url: str = "sqlite:///./oms.db"
    #: Idempotency keys are kept at least this long (DESIGN §3.3: at least 24 h).
    idempotency_ttl_hours: int = 24
    #: A request holding an idempotency key this long without finishing is taken as crashed.
    idempotency_stale_seconds: int = 300
    #: Connection pool per process (PostgreSQL).
    db_pool_size: int = 10
    db_max_overflow: int = 20
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
    #: How long a DC's or 3PL's endpoint may take to answer a notification.
    provider_timeout_seconds: float = 10.0
    #: Whether webhooks may target loopback and private addresses (true for development).
    webhook_allow_private: bool = False
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


    def placement_window(self) -> PlacementWindow:
        return PlacementWindow(dt.timedelta(days=self.live_order_max_age_days),
                               dt.timedelta(seconds=self.order_clock_skew_seconds))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
