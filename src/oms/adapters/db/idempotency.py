"""Stored answers of requests sent with an Idempotency-Key.

A request's answer is written in the same transaction as the change it made, so a change
is never committed without its answer (a retry after any crash replays it or finds nothing
done). While a request runs it holds its key: on PostgreSQL a transaction-scoped advisory
lock, which a second request with the same key fails to take (409) and which goes away with
the transaction however it ends; on SQLite the single writer lock does the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from oms.adapters.db import tables as t
from oms.adapters.db.upsert import insert_for

k = t.idempotency_keys.c


@dataclass(frozen=True)
class StoredAnswer:
    request_hash: str
    status: int
    headers: list[list[str]]
    body: str
    created_at: dt.datetime


class IdempotencyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def hold(self, scope: str, key: str) -> bool:
        """Take the key for this transaction; False if another running request holds it."""
        if self.conn.dialect.name != "postgresql":
            return True  # BEGIN IMMEDIATE: this transaction is the only writer
        return bool(self.conn.scalar(select(func.pg_try_advisory_xact_lock(
            func.hashtextextended(scope + "\x1f" + key, 0)))))

    def get(self, scope: str, key: str) -> StoredAnswer | None:
        row = self.conn.execute(
            select(k.request_hash, k.response_status, k.response_headers, k.response_body,
                   k.created_at).where(k.scope == scope, k.key == key)).first()
        if row is None:
            return None
        return StoredAnswer(row.request_hash, row.response_status, row.response_headers,
                            row.response_body, row.created_at)

    def store(self, scope: str, key: str, request_hash: str, method: str, path: str,
              status: int, headers: list[list[str]], body: str, now: dt.datetime,
              expired_before: dt.datetime) -> None:
        """Keep the answer, in place of an answer of the same key stored before
        `expired_before`; never in place of a live one."""
        values = {"request_hash": request_hash, "method": method, "path": path,
                  "response_status": status, "response_headers": headers,
                  "response_body": body, "created_at": now}
        stmt = insert_for(self.conn, t.idempotency_keys).values(scope=scope, key=key, **values)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=[k.scope, k.key], set_=values,
            where=t.idempotency_keys.c.created_at < expired_before))

    def replace_answer(self, scope: str, key: str, request_hash: str, status: int,
                       headers: list[list[str]], body: str) -> None:
        """A fuller answer of the same request, known once its work after commit was done."""
        self.conn.execute(
            update(t.idempotency_keys)
            .where(k.scope == scope, k.key == key, k.request_hash == request_hash)
            .values(response_status=status, response_headers=headers, response_body=body))

    def purge(self, older_than: dt.datetime) -> int:
        return self.conn.execute(
            delete(t.idempotency_keys).where(k.created_at < older_than)).rowcount
