"""Engines for the embedded SQLite default and for PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection

from oms.adapters.db.reference import keep_reference
from oms.settings import Settings

READ_ONLY = "oms_read_only"


def make_engine(settings: Settings) -> Engine:
    engine = _engine(settings)
    keep_reference(engine, settings.reference_cache_seconds)
    return engine


def _engine(settings: Settings) -> Engine:
    url = settings.database_url
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # No ping on every checkout (a round trip each): a connection found dead fails its
        # statement, which is answered 503 and retried by the client; idle connections are
        # renewed before servers or proxies drop them.
        pool_recycle=settings.db_pool_recycle_seconds,
    )
    # Rows inserted with executemany go as one INSERT ... VALUES statement a page (SQLAlchemy's
    # "insertmanyvalues"), not a statement per row: one round trip, and less work for both.
    engine.dialect.use_insertmanyvalues_wo_returning = True
    idle_ms = math.ceil(settings.db_idle_in_transaction_timeout_seconds * 1000)
    lock_ms = math.ceil(settings.db_lock_timeout_seconds * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # A transaction of ours left open holds the event feed back for every reader (see
        # EventRepository): the server ends the session instead. SET rather than the
        # `options` startup parameter, which a URL's own `?options=` would lose.
        # A lock waited for longer than lock_timeout fails the statement; the request is
        # answered 503 with Retry-After instead of hanging on (DESIGN §3.8).
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false),"
                           " set_config('lock_timeout', %s, false)",
                           (str(idle_ms), str(lock_ms)))
        dbapi_connection.commit()

    return engine


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own would be deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front: a deferred transaction that reads and then
        # writes can fail with SQLITE_BUSY at the upgrade, which busy_timeout does not retry.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
