"""Repositories of webhook subscriptions, their deliveries and attempts, and event sinks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, exists, select, tuple_, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import aliased

from oms.adapters.db import tables as t
from oms.adapters.db.upsert import insert_for

S = t.webhook_subscriptions.c
D = t.webhook_deliveries.c
A = t.webhook_attempts.c


class WebhookRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- subscriptions

    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(t.webhook_subscriptions.insert(), row)

    def get(self, subscription_id: str, *, for_update: bool = False) -> RowMapping | None:
        stmt = select(t.webhook_subscriptions).where(S.id == subscription_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.conn.execute(stmt).mappings().first()

    def page(self, *, after: str | None, limit: int, status: str | None = None
             ) -> list[RowMapping]:
        stmt = select(t.webhook_subscriptions).order_by(S.id).limit(limit)
        if after is not None:
            stmt = stmt.where(S.id > after)
        if status is not None:
            stmt = stmt.where(S.status == status)
        return list(self.conn.execute(stmt).mappings())

    def update(self, subscription_id: str, now: dt.datetime, **values: Any) -> None:
        self.conn.execute(update(t.webhook_subscriptions).where(S.id == subscription_id)
                          .values(**values, version=S.version + 1, updated_at=now))

    def remove(self, subscription_id: str) -> bool:
        deliveries = select(D.id).where(D.subscription_id == subscription_id)
        self.conn.execute(delete(t.webhook_attempts).where(A.delivery_id.in_(deliveries)))
        self.conn.execute(delete(t.webhook_deliveries)
                          .where(D.subscription_id == subscription_id))
        result = self.conn.execute(delete(t.webhook_subscriptions)
                                   .where(S.id == subscription_id))
        return result.rowcount == 1

    def to_fan_out(self, latest: tuple[int, int]) -> list[str]:
        """Subscriptions not disabled that have not yet seen the event `latest`."""
        return list(self.conn.scalars(
            select(S.id).where(S.status != "disabled",
                               tuple_(S.fanout_txid, S.fanout_position) < tuple_(*latest))
            .order_by(S.id)))

    def advance(self, subscription_id: str, key: tuple[int, int]) -> None:
        self.conn.execute(update(t.webhook_subscriptions).where(S.id == subscription_id)
                          .values(fanout_txid=key[0], fanout_position=key[1]))

    def lock_for_fan_out(self, subscription_id: str) -> RowMapping | None:
        """The subscription, locked; None if another worker is fanning it out."""
        stmt = select(t.webhook_subscriptions).where(S.id == subscription_id,
                                                     S.status != "disabled")
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return self.conn.execute(stmt).mappings().first()

    # -- deliveries

    def add_deliveries(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            stmt = insert_for(self.conn, t.webhook_deliveries).on_conflict_do_nothing(
                index_elements=[D.subscription_id, D.event_txid, D.event_position])
            self.conn.execute(stmt, list(rows))

    def any_due(self, now: dt.datetime) -> bool:
        return self.conn.execute(
            select(D.id).where(D.status == "pending", D.next_attempt_at <= now).limit(1)
        ).first() is not None

    def claim(self, now: dt.datetime, until: dt.datetime, limit: int) -> list[RowMapping]:
        """Deliveries due now, at most one per (subscription, entity): the earliest pending
        event of each entity. They are held until `until` so no other worker sends them."""
        earlier = aliased(t.webhook_deliveries)
        stmt = (
            select(t.webhook_deliveries)
            .join(t.webhook_subscriptions, S.id == D.subscription_id)
            .where(D.status == "pending", D.next_attempt_at <= now,
                   (D.claimed_until.is_(None)) | (D.claimed_until < now),
                   S.status == "active",
                   ~exists().where(
                       earlier.c.subscription_id == D.subscription_id,
                       earlier.c.entity_id == D.entity_id,
                       earlier.c.status == "pending",
                       tuple_(earlier.c.event_txid, earlier.c.event_position)
                       < tuple_(D.event_txid, D.event_position)))
            .order_by(D.next_attempt_at, D.event_txid, D.event_position)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=t.webhook_deliveries, skip_locked=True)
        rows = list(self.conn.execute(stmt).mappings())
        if rows:
            self.conn.execute(update(t.webhook_deliveries)
                              .where(D.id.in_([r["id"] for r in rows]))
                              .values(claimed_until=until))
        return rows

    def record_attempts(self, attempts: Sequence[dict[str, Any]],
                        outcomes: Sequence[dict[str, Any]]) -> None:
        """Each attempt, and where it leaves its delivery."""
        if attempts:
            self.conn.execute(t.webhook_attempts.insert(), list(attempts))
        if outcomes:
            self.conn.execute(
                update(t.webhook_deliveries).where(D.id == bindparam("delivery_id")).values(
                    status=bindparam("new_status"), attempts=bindparam("new_attempts"),
                    next_attempt_at=bindparam("new_next_attempt_at"), claimed_until=None,
                    last_attempt_at=bindparam("new_last_attempt_at"),
                    last_status_code=bindparam("new_status_code"),
                    delivered_at=bindparam("new_delivered_at")),
                list(outcomes))

    def release(self, delivery_ids: Sequence[str]) -> None:
        """Give back deliveries taken but not sent: any worker may send them now."""
        if delivery_ids:
            self.conn.execute(update(t.webhook_deliveries)
                              .where(D.id.in_(list(delivery_ids)))
                              .values(claimed_until=None))

    def deliveries(self, subscription_id: str, *, status: str | None,
                   before: tuple[int, int] | None, limit: int) -> list[RowMapping]:
        """Newest event first."""
        stmt = (select(t.webhook_deliveries).where(D.subscription_id == subscription_id)
                .order_by(D.event_txid.desc(), D.event_position.desc()).limit(limit))
        if status is not None:
            stmt = stmt.where(D.status == status)
        if before is not None:
            stmt = stmt.where(tuple_(D.event_txid, D.event_position) < tuple_(*before))
        return list(self.conn.execute(stmt).mappings())

    def attempts(self, delivery_ids: Sequence[str]) -> list[RowMapping]:
        return list(self.conn.execute(
            select(t.webhook_attempts).where(A.delivery_id.in_(list(delivery_ids)))
            .order_by(A.delivery_id, A.attempted_at)).mappings())

    def requeue(self, subscription_id: str, keys: Sequence[tuple[int, int]], now: dt.datetime
                ) -> int:
        """Deliveries of these events, existing ones due again now."""
        if not keys:
            return 0
        result = self.conn.execute(
            update(t.webhook_deliveries)
            .where(D.subscription_id == subscription_id,
                   tuple_(D.event_txid, D.event_position).in_(list(keys)))
            .values(status="pending", next_attempt_at=now, due_at=now, claimed_until=None,
                    delivered_at=None))
        return int(result.rowcount)

    def existing_keys(self, subscription_id: str, keys: Sequence[tuple[int, int]]
                      ) -> set[tuple[int, int]]:
        if not keys:
            return set()
        rows = self.conn.execute(
            select(D.event_txid, D.event_position)
            .where(D.subscription_id == subscription_id,
                   tuple_(D.event_txid, D.event_position).in_(list(keys))))
        return {(r.event_txid, r.event_position) for r in rows}

    def given_up(self, subscription_id: str, now: dt.datetime) -> None:
        """A disabled subscription's pending deliveries end as failed (replay resends)."""
        self.conn.execute(update(t.webhook_deliveries)
                          .where(D.subscription_id == subscription_id, D.status == "pending")
                          .values(status="failed", next_attempt_at=None, claimed_until=None))

    # -- sinks

    def sink_position(self, name: str) -> tuple[int, int] | None:
        row = self.conn.execute(select(t.event_sinks).where(t.event_sinks.c.name == name)
                                ).first()
        return None if row is None else (int(row.after_txid), int(row.after_position))

    def set_sink_position(self, name: str, key: tuple[int, int], now: dt.datetime) -> None:
        stmt = insert_for(self.conn, t.event_sinks)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.event_sinks.c.name],
            set_={"after_txid": stmt.excluded.after_txid,
                  "after_position": stmt.excluded.after_position,
                  "updated_at": stmt.excluded.updated_at})
        self.conn.execute(stmt, {"name": name, "after_txid": key[0], "after_position": key[1],
                                 "updated_at": now})
