"""Engines for the embedded SQLite default and for PostgreSQL."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
import weakref
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from oms.adapters.db.reference import keep_reference
from oms.adapters.db.types import dumps, loads
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
        json_serializer=dumps,
        json_deserializer=loads,
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
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           json_serializer=dumps, json_deserializer=loads)

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

    # One writer of this process at a time asks SQLite for the write lock; the others wait
    # for it here, asleep, instead of all asking every millisecond (which cost more CPU than
    # the writes). Writers of other processes are still met by asking (_begin_immediate).
    writers = threading.Lock()
    # Each pooled connection's writer transaction is kept in its pool record's `info`, and
    # each Connection's (record dict, transaction) here as it begins: an interrupt (Ctrl-C)
    # can invalidate a Connection so that its own `info` cannot be read, or land inside
    # SQLAlchemy's commit or rollback before their events fire; the pool's events (reset,
    # invalidate, close) then still give the write turn back. A Connection ends only its own
    # transaction: an invalidated one's pool record may already serve another by the time
    # its rollback comes.
    record_infos: weakref.WeakKeyDictionary[
        Connection, tuple[dict[Any, Any], _WriterTransaction]] = weakref.WeakKeyDictionary()

    def _end(info: dict[Any, Any], only: _WriterTransaction | None = None) -> None:
        transaction = info.get(_STAGE)
        if transaction is None or (only is not None and transaction is not only):
            return
        del info[_STAGE]
        if transaction.writing:
            transaction.writing = False
            writers.release()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        # A writer's reads run before its transaction begins, each on its own snapshot (as
        # every statement does on PostgreSQL under READ COMMITTED, which the code is written
        # for): the write lock is taken at its first write or locking read, so a placement's
        # reads and routing are not done while every other writer waits.
        info = conn.connection.info
        transaction = _WriterTransaction()
        record_infos[conn] = (info, transaction)
        info[_STAGE] = transaction

    @event.listens_for(engine, "before_cursor_execute")
    def _before_statement(conn: Connection, _cursor: Any, statement: str, _parameters: Any,
                          context: Any, _executemany: bool) -> None:
        entry = record_infos.get(conn)
        if entry is None:
            return
        info, transaction = entry
        if (info.get(_STAGE) is not transaction or transaction.writing
                or _reads_only(statement, context)):
            return
        # The transaction begins here, with the write lock, at once: a deferred transaction
        # that reads and then writes can fail with SQLITE_BUSY at the upgrade, which
        # busy_timeout does not retry.
        if not writers.acquire(timeout=WRITE_LOCK_WAIT):
            raise OperationalError("BEGIN IMMEDIATE", None,
                                   sqlite3.OperationalError("database is locked"))
        # Marked first: an interrupt right after BEGIN IMMEDIATE returned would otherwise
        # leave the turn taken with nothing to give it back.
        transaction.writing = True
        try:
            _begin_immediate(conn.connection.dbapi_connection)
        except BaseException:
            if transaction.writing:  # not given back meanwhile
                transaction.writing = False
                writers.release()
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: Connection) -> None:
        entry = record_infos.pop(conn, None)
        if entry is not None:
            _end(*entry)

    # Returned to the pool (rolled back), invalidated or closed: whatever transaction the
    # connection had is over.
    @event.listens_for(engine.pool, "reset")
    def _on_reset(_dbapi_connection: Any, record: Any, _state: Any) -> None:
        _end(record.info)

    @event.listens_for(engine.pool, "invalidate")
    @event.listens_for(engine.pool, "close")
    def _on_close(dbapi_connection: Any, record: Any, *_: Any) -> None:
        # Rolled back before it is closed: a statement interrupted mid-way keeps its cursor
        # (the traceback holds it), and SQLite closes a connection with a statement still
        # open only once that is freed; its transaction, and the database's write lock,
        # would stay with the process until then.
        if dbapi_connection is not None:
            with contextlib.suppress(sqlite3.Error):
                dbapi_connection.rollback()
        _end(record.info)

    return engine


#: The key of a pooled connection's writer transaction in its record's `info`.
_STAGE = "oms_sqlite_writer"


class _WriterTransaction:
    """A writer's transaction on a pooled connection: begun on SQLite, holding the
    process's turn to write, from its first write or locking read on."""

    __slots__ = ("writing",)

    def __init__(self) -> None:
        self.writing = False


def _reads_only(statement: str, context: Any) -> bool:
    """A plain SELECT: not a write, not a SAVEPOINT (which would begin a deferred
    transaction), not a read that locks its rows (FOR UPDATE, which SQLite's SQL leaves out:
    the statement it was compiled from says so)."""
    if not statement.lstrip(" \n(").upper().startswith("SELECT"):
        return False
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is None


#: How long a writer waits for SQLite's write lock before its request is answered 503.
WRITE_LOCK_WAIT = 30.0


def _begin_immediate(dbapi_connection: Any) -> None:
    """Take the write lock, asking again every millisecond or so while another writer holds
    it. SQLite's own busy handler sleeps up to 100 ms between tries once it has waited a
    while, so under load a writer would sleep on long after the lock came free; here it
    takes it within a few milliseconds."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=0")
        deadline = time.monotonic() + WRITE_LOCK_WAIT
        pause = 0.0005
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    # As SQLAlchemy raises what the driver does: a busy database is a 503.
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.004)
    finally:
        # Statements inside the transaction wait as before (a checkpoint may hold them).
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
