"""API keys, on the unit of work's connection (like every repository, the only code that
writes their SQL)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.engine import Connection

from oms.adapters.db import tables as t


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    prefix: str
    role: str
    location_ids: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, record: ApiKeyRecord, key_hash: str) -> None:
        self.conn.execute(
            t.api_keys.insert().values(
                id=record.id, name=record.name, key_hash=key_hash, prefix=record.prefix,
                role=record.role, location_ids=list(record.location_ids),
                created_at=record.created_at, revoked_at=None,
            )
        )

    def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = self.conn.execute(
            select(t.api_keys).where(t.api_keys.c.key_hash == key_hash)
        ).first()
        return None if row is None else _api_key(row)

    def get(self, key_id: str) -> ApiKeyRecord | None:
        row = self.conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
        return None if row is None else _api_key(row)

    def all(self) -> list[ApiKeyRecord]:
        return [_api_key(r) for r in self.conn.execute(
            select(t.api_keys).order_by(t.api_keys.c.created_at))]

    def revoke(self, key_id: str, now: dt.datetime) -> bool:
        result = self.conn.execute(
            update(t.api_keys)
            .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1


def _api_key(r: Any) -> ApiKeyRecord:
    return ApiKeyRecord(r.id, r.name, r.prefix, r.role, tuple(r.location_ids), r.created_at,
                        r.revoked_at)
