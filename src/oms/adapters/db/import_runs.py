"""Import runs: one row per import, with how far it got (see tables.import_runs)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from oms.adapters.db import tables as t

r = t.import_runs.c


@dataclass(frozen=True)
class ImportRunRecord:
    id: str
    api_key_id: str | None
    idempotency_key: str | None
    file_sha256: str
    kind: str
    mode: str
    format: str
    status: str
    steps_applied: int
    applied_through_line: int
    zeroed_through: str | None
    rows_applied: int
    report: dict[str, Any]
    runner: str | None
    lease_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None


class ImportRunRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, record: ImportRunRecord) -> None:
        self.conn.execute(t.import_runs.insert().values(**record.__dict__))

    def get(self, run_id: str) -> ImportRunRecord | None:
        row = self.conn.execute(select(t.import_runs).where(r.id == run_id)).first()
        return None if row is None else ImportRunRecord(**row._mapping)

    def by_idempotency_key(self, api_key_id: str, key: str) -> ImportRunRecord | None:
        row = self.conn.execute(
            select(t.import_runs).where(r.api_key_id == api_key_id, r.idempotency_key == key)
        ).first()
        return None if row is None else ImportRunRecord(**row._mapping)

    def forget_idempotency_key(self, run_id: str) -> None:
        self.conn.execute(update(t.import_runs).where(r.id == run_id)
                          .values(idempotency_key=None))

    def take_over(self, run_id: str, seen_runner: str | None, runner: str,
                  lease_until: dt.datetime, now: dt.datetime) -> bool:
        """Hand a running import whose lease ran out to a new runner; one taker wins."""
        seen = r.runner.is_(None) if seen_runner is None else r.runner == seen_runner
        result = self.conn.execute(
            update(t.import_runs)
            .where(r.id == run_id, r.status == "running", seen, r.lease_until <= now)
            .values(runner=runner, lease_until=lease_until, updated_at=now)
        )
        return result.rowcount == 1

    def claim_step(self, run_id: str, runner: str, steps_applied: int,
                   lease_until: dt.datetime, now: dt.datetime) -> bool:
        """Lock the run for the next step, if this runner still holds it and no step was
        applied meanwhile (the step's changes then commit with its progress, or not at all)."""
        result = self.conn.execute(
            update(t.import_runs)
            .where(r.id == run_id, r.status == "running", r.runner == runner,
                   r.steps_applied == steps_applied)
            .values(lease_until=lease_until, updated_at=now)
        )
        return result.rowcount == 1

    def record_step(self, run_id: str, values: dict[str, Any]) -> None:
        """Progress of the step claimed by `claim_step`, in the same transaction."""
        self.conn.execute(update(t.import_runs).where(r.id == run_id).values(**values))

    def release(self, run_id: str, runner: str, now: dt.datetime) -> None:
        """End this runner's lease at once: the import stopped, a resend may resume it."""
        self.conn.execute(
            update(t.import_runs)
            .where(r.id == run_id, r.status == "running", r.runner == runner)
            .values(lease_until=now, updated_at=now)
        )
