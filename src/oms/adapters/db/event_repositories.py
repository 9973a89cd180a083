"""The event table, appended with each change and read as the feed, on the unit of work's
connection (like every repository, the only code that writes its SQL)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    func,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Connection

from oms.adapters.db import tables as t
from oms.adapters.db.upsert import HeldInserts
from oms.domain.events import Event


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    entity_id: str
    sequence: int
    occurred_at: dt.datetime
    payload: dict[str, Any]

    def document(self) -> str:
        """The event as pushed to webhooks and NATS: compact JSON, its state under `data`."""
        return json.dumps({
            "id": self.id, "type": self.type, "occurred_at": self.occurred_at.isoformat(),
            "entity_id": self.entity_id, "sequence": self.sequence, "data": self.payload,
        }, separators=(",", ":"))


_EVENT_ID = re.compile(r"[0-9a-fA-F]{32}")


def event_id(txid: int, position: int) -> str:
    """A sortable, opaque event id: the writing transaction, then the insert order."""
    return f"{txid:016x}{position:016x}"


def parse_event_id(value: str) -> tuple[int, int]:
    if not _EVENT_ID.fullmatch(value):
        raise ValueError("not an event id")
    txid, position = int(value[:16], 16), int(value[16:], 16)
    # Both halves are compared with BIGINT columns, which a larger number would overflow.
    if max(txid, position) >= 2**63:
        raise ValueError("not an event id")
    return txid, position


# The first transaction id whose events a reader may not be shown yet, in the statement's
# own snapshot: the oldest transaction still running that could belong to this database
# (the reader's own included), else the snapshot's xmax, below which every transaction has
# ended. See EventRepository.
_FEED_HORIZON = text("""(
WITH elsewhere AS (
    SELECT backend_xid::text::bigint AS xid FROM pg_stat_activity
     WHERE backend_xid IS NOT NULL AND datname <> current_database()
    UNION ALL
    SELECT transaction::text::bigint FROM pg_prepared_xacts
     WHERE database <> current_database()
)
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_snapshot_xmin(snapshot)
        ELSE least((SELECT min(running) FROM pg_snapshot_xip(snapshot) AS running
                     WHERE running::text::bigint % 4294967296
                           NOT IN (SELECT xid FROM elsewhere)),
                   pg_current_xact_id_if_assigned(),
                   pg_snapshot_xmax(snapshot))
        END)::text::bigint
  FROM pg_current_snapshot() AS snapshot
)""")


class EventRepository:
    """The append-only event log.

    On PostgreSQL, transactions commit in another order than they were given positions, so a
    reader ordering by position alone could pass over an event that commits later with a
    smaller one. Each event therefore carries its transaction id, readers order by
    (txid, position), and a reader is shown only events below a horizon that no transaction
    able to write an event can still commit under. Whatever a reader has seen, nothing can
    later appear before it.

    The horizon is the oldest transaction of *this database* still running in the reader's
    snapshot (pg_snapshot_xip, plus the reader's own), else the snapshot's xmax. Other
    databases' transactions are left out: a session is bound to one database and cannot write
    our events table, so another application's idle transaction on the same server does not
    stall the feed (the server-wide pg_snapshot_xmin would wait for it). A running xid is left
    out only when it is *known* to be another database's: the backend_xid of a session of
    another database in pg_stat_activity, or a transaction prepared in another database
    (pg_prepared_xacts). That fact cannot go stale (an xid belongs to one transaction of one
    database for good), so reading pg_stat_activity at a slightly different moment than the
    snapshot can only make a reader wait longer, never skip: whatever is unknown (a session not
    listed yet, a process without a database) counts as ours. Those views give 32-bit xids and
    the snapshot 64-bit ones, compared on their low 32 bits; transactions running at once are
    less than 2^31 apart, so that is unambiguous.
    A snapshot taken on a hot standby lists no running xids, so there the horizon stays the
    server-wide xmin.

    Weighed and not taken: a commit sequence of our own (a counter row every writer bumps)
    orders events by commit but serialises every writing transaction on that row until it
    commits; skipping held-back positions after a bounded wait breaks the guarantee for any
    transaction slower than the bound. What remains to bound is a transaction of this
    database left open: our connections carry idle_in_transaction_session_timeout
    (engine.py), and the README says what to set for other clients of the database.
    """

    def __init__(self, conn: Connection, inserts: HeldInserts | None = None) -> None:
        self.conn = conn
        self.inserts = inserts or HeldInserts(conn)

    def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        # PostgreSQL: the writing transaction's id, which readers order by (see above).
        txid = ("pg_current_xact_id()::text::bigint" if self.conn.dialect.name == "postgresql"
                else "0")
        self.inserts.add(t.events, [
            {"type": e.type, "entity_id": e.entity_id, "sequence": e.sequence,
             "occurred_at": e.occurred_at, "payload": e.payload} for e in events],
            every_row={"txid": txid})

    def read(
        self, *, after: tuple[int, int] | None, types: Sequence[str], limit: int,
        entity_id: str | None = None,
    ) -> list[StoredEvent]:
        e = t.events.c
        stmt = select(t.events).order_by(e.txid, e.position).limit(limit)
        if after is not None:
            stmt = stmt.where(tuple_(e.txid, e.position) > tuple_(*after))
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.where(e.txid < _FEED_HORIZON)
        if types:
            exact = [x for x in types if not x.endswith(".*")]
            prefixes = [x[:-1] for x in types if x.endswith(".*")]
            stmt = stmt.where(or_(e.type.in_(exact), *(e.type.startswith(p) for p in prefixes)))
        if entity_id is not None:
            stmt = stmt.where(e.entity_id == entity_id)
        return [_stored_event(r) for r in self.conn.execute(stmt)]

    def held_back(self) -> int:
        """Committed events no reader is shown yet, because a transaction of this database
        older than theirs is still running (PostgreSQL only; a reader asks again shortly)."""
        if self.conn.dialect.name != "postgresql":
            return 0
        e = t.events.c
        return int(self.conn.scalar(select(func.count()).select_from(t.events).where(
            e.txid >= _FEED_HORIZON)) or 0)

    def latest(self) -> tuple[int, int]:
        """The last event a reader can see now ((0, 0) if none): whatever commits later
        comes after it."""
        e = t.events.c
        stmt = select(e.txid, e.position).order_by(e.txid.desc(), e.position.desc()).limit(1)
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.where(e.txid < _FEED_HORIZON)
        row = self.conn.execute(stmt).first()
        return (0, 0) if row is None else (int(row.txid), int(row.position))

    def last_sequence(self, entity_id: str) -> int:
        """The sequence of the entity's last event (0 if none)."""
        e = t.events.c
        return int(self.conn.scalar(select(func.max(e.sequence))
                                    .where(e.entity_id == entity_id)) or 0)

    def by_keys(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], StoredEvent]:
        if not keys:
            return {}
        e = t.events.c
        # position alone is the primary key; txid only confirms it is the same event.
        rows = self.conn.execute(
            select(t.events).where(e.position.in_([p for _, p in keys])))
        wanted = set(keys)
        return {(r.txid, r.position): _stored_event(r) for r in rows
                if (r.txid, r.position) in wanted}


def _stored_event(r: Any) -> StoredEvent:
    return StoredEvent(event_id(r.txid, r.position), r.type, r.entity_id, r.sequence,
                       r.occurred_at, r.payload)
