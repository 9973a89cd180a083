"""Calls to PSPs and carriers waiting to be carried out, and what became of them."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, RowMapping

from oms.adapters.db import tables as t

c = t.provider_calls.c


class ProviderCallRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(t.provider_calls.insert(), row)

    def get(self, call_id: str) -> RowMapping | None:
        return self.conn.execute(
            select(t.provider_calls).where(c.id == call_id)).mappings().first()

    def of_order(self, order_id: str) -> list[RowMapping]:
        return list(self.conn.execute(
            select(t.provider_calls).where(c.order_id == order_id)
            .order_by(c.created_at, c.id)).mappings())

    def pending_amounts(self, payment_ids: Sequence[str]) -> dict[tuple[str, str], int]:
        """What is asked of the PSP and not answered yet, per (payment, kind)."""
        if not payment_ids:
            return {}
        rows = self.conn.execute(
            select(c.payment_id, c.kind, func.sum(c.amount_minor).label("amount"))
            .where(c.payment_id.in_(list(payment_ids)), c.status == "pending")
            .group_by(c.payment_id, c.kind))
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for r in rows:
            totals[(r.payment_id, r.kind)] = int(r.amount or 0)
        return totals

    def count(self, *, kind: str, payment_id: str | None = None,
              shipment_id: str | None = None, status: str | None = None) -> int:
        stmt = select(func.count()).select_from(t.provider_calls).where(c.kind == kind)
        if payment_id is not None:
            stmt = stmt.where(c.payment_id == payment_id)
        if shipment_id is not None:
            stmt = stmt.where(c.shipment_id == shipment_id)
        if status is not None:
            stmt = stmt.where(c.status == status)
        return int(self.conn.scalar(stmt) or 0)

    def claim_due(self, now: dt.datetime, lease_until: dt.datetime, limit: int
                  ) -> list[RowMapping]:
        """Pending calls whose time has come and that nobody holds; held until
        `lease_until` by whoever claims them."""
        stmt = (select(c.id).where(c.status == "pending", c.next_attempt_at <= now,
                                   (c.lease_until.is_(None)) | (c.lease_until < now))
                .order_by(c.next_attempt_at, c.id).limit(limit))
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        ids = [r.id for r in self.conn.execute(stmt)]
        if not ids:
            return []
        self.conn.execute(update(t.provider_calls).where(c.id.in_(ids))
                          .values(lease_until=lease_until))
        return list(self.conn.execute(
            select(t.provider_calls).where(c.id.in_(ids))
            .order_by(c.next_attempt_at, c.id)).mappings())

    def lock_pending(self, call_id: str) -> RowMapping | None:
        """The call, locked, if it still waits for its outcome."""
        stmt = select(t.provider_calls).where(c.id == call_id, c.status == "pending")
        return self.conn.execute(stmt.with_for_update()).mappings().first()

    def complete(self, call_id: str, status: str, now: dt.datetime, error: str | None) -> None:
        self.conn.execute(update(t.provider_calls).where(c.id == call_id).values(
            status=status, attempts=c.attempts + 1, completed_at=now, lease_until=None,
            last_error=error))

    def retry_later(self, call_id: str, next_at: dt.datetime, error: str) -> int:
        """Another attempt at `next_at`; returns the attempts made so far."""
        row = self.conn.execute(
            update(t.provider_calls).where(c.id == call_id)
            .values(attempts=c.attempts + 1, next_attempt_at=next_at, lease_until=None,
                    last_error=error)
            .returning(c.attempts)).one()
        return int(row.attempts)
