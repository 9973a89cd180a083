"""Settings read from the environment (prefix OMS_)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


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
    #: Rows per transaction in bulk imports.
    import_chunk_size: int = 1000


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
