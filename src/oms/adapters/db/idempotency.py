"""Stored outcomes of requests sent with an Idempotency-Key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from oms.adapters.db import tables as t

k = t.idempotency_keys.c


@dataclass(frozen=True)
class KeyRecord:
    request_hash: str
    status: str
    response_status: int | None
    response_headers: list[list[str]] | None
    response_body: str | None
    created_at: dt.datetime
    locked_at: dt.datetime | None


class IdempotencyStore:
    RUNNING = "running"
    DONE = "done"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(
        self, scope: str, key: str, request_hash: str, method: str, path: str, now: dt.datetime
    ) -> KeyRecord | None:
        """Insert the key as running; None if this request now owns it, else the stored one."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.idempotency_keys.insert().values(
                        scope=scope, key=key, request_hash=request_hash, method=method,
                        path=path, status=self.RUNNING, created_at=now, locked_at=now,
                    )
                )
            return None
        except IntegrityError:
            pass
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.idempotency_keys).where(k.scope == scope, k.key == key)
            ).first()
        if row is None:  # expired and purged in between: try once more
            return self.claim(scope, key, request_hash, method, path, now)
        return KeyRecord(row.request_hash, row.status, row.response_status,
                         row.response_headers, row.response_body, row.created_at, row.locked_at)

    def take_over(self, scope: str, key: str, request_hash: str, seen_locked_at: dt.datetime | None,
                  now: dt.datetime, *, reset_created: bool) -> bool:
        """Take a key whose first request crashed or that expired; only one taker wins."""
        values: dict[str, Any] = {"status": self.RUNNING, "locked_at": now,
                                  "request_hash": request_hash, "response_status": None,
                                  "response_headers": None, "response_body": None}
        if reset_created:
            values["created_at"] = now
        stmt = update(t.idempotency_keys).where(k.scope == scope, k.key == key).values(**values)
        stmt = stmt.where(k.locked_at.is_(None) if seen_locked_at is None
                          else k.locked_at == seen_locked_at)
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def finish(self, scope: str, key: str, status: int, headers: list[list[str]],
               body: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.idempotency_keys)
                .where(k.scope == scope, k.key == key)
                .values(status=self.DONE, response_status=status, response_headers=headers,
                        response_body=body, locked_at=None)
            )

    def forget(self, scope: str, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.idempotency_keys).where(k.scope == scope, k.key == key))

    def purge(self, older_than: dt.datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                delete(t.idempotency_keys).where(k.created_at < older_than)
            ).rowcount
