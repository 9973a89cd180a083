"""Import runs: who sent an import, with which Idempotency-Key and file, and how far it got.

An import applies its rows in chunks, one transaction each (one huge transaction would hold
stock rows locked against order placement for its whole length), and writes its progress in
the same transaction as each chunk. A resend with the same Idempotency-Key and the same file
therefore resumes after the last chunk that committed, or replays the report of a run that
completed; the same key with another file is refused.

The request carrying a run out holds a lease on it, renewed by every step; a resend while the
lease holds is told to wait (409), after it has run out (the process died) it takes the run
over. Each step claims the run with its step count, so two runners can never apply the same
chunk: the loser's step finds the count moved on and stops.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from oms.adapters.db.import_runs import ImportRunRecord
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.errors import Conflict, DomainError, NotFound
from oms.domain.events import utcnow
from oms.domain.ids import new_id

RUNNING = "running"
COMPLETED = "completed"
#: How a running import whose lease ran out is shown: stopped, resumable.
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Sender:
    """Who sends an import, and which earlier run it may continue."""

    #: The API key that sent it; None for the command line.
    api_key_id: str | None = None
    idempotency_key: str | None = None
    #: The run to finish (the command line's --resume), instead of an Idempotency-Key.
    resume_id: str | None = None
    #: How long a runner holds its run without completing a step before a resend may take
    #: it over.
    lease: dt.timedelta = dt.timedelta(minutes=5)
    #: A completed run's Idempotency-Key may name a new import after this long.
    key_ttl: dt.timedelta = dt.timedelta(hours=24)


@dataclass(frozen=True)
class ImportJob:
    """What is imported: the same key must come back with the same job."""

    kind: str
    mode: str
    format: str
    file_sha256: str


class ImportKeyReused(DomainError):
    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used for another import (another file, kind, "
                         "mode or format); use a new key", [], "idempotency-key-reused")


class ImportInProgress(DomainError):
    def __init__(self, run_id: str | None, retry_after: int) -> None:
        which = f"import {run_id}" if run_id else "an import with this Idempotency-Key"
        super().__init__(f"{which} is still being carried out elsewhere; send it again in "
                         f"{retry_after} s or later to resume or replay it", [],
                         "idempotency-key-in-use")
        self.run_id = run_id
        self.retry_after = retry_after


class RunTakenOver(Exception):
    """Another request took the run over (this one was taken as dead): stop, apply nothing."""


@dataclass
class RunHandle:
    """A run this process is carrying out, and its progress as last committed."""

    id: str
    runner: str
    lease: dt.timedelta
    steps_applied: int
    applied_through_line: int
    zeroed_through: str | None
    rows_applied: int
    #: The stored report of a resumed run; None for a new one.
    report: dict[str, Any] | None


def previous_run(engine: Engine, sender: Sender, job: ImportJob,
                 now: dt.datetime) -> ImportRunRecord | None:
    """The run that this request sends again: completed (replay its report) or stopped
    (resume it). None: a new import. Refuses a key used for another import and a run that
    another request is still carrying out."""
    with UnitOfWork(engine, read_only=True) as uow:
        if sender.resume_id is not None:
            run = uow.import_runs.get(sender.resume_id)
            if run is None:
                raise NotFound(f"no import {sender.resume_id}")
        elif sender.api_key_id is not None and sender.idempotency_key is not None:
            run = uow.import_runs.by_idempotency_key(sender.api_key_id, sender.idempotency_key)
        else:
            return None
    if run is None:
        return None
    if (run.status == COMPLETED and sender.resume_id is None and run.finished_at is not None
            and run.finished_at < now - sender.key_ttl):
        with UnitOfWork(engine) as uow:
            uow.import_runs.forget_idempotency_key(run.id)
            uow.commit()
        return None
    if (run.file_sha256, run.kind, run.mode, run.format) != (
            job.file_sha256, job.kind, job.mode, job.format):
        if sender.resume_id is not None:
            raise Conflict(f"import {run.id} was of another file, kind, mode or format; "
                           f"it was a {run.mode} import of {run.kind} ({run.format})")
        raise ImportKeyReused()
    if run.status == RUNNING and run.lease_until is not None and run.lease_until > now:
        raise ImportInProgress(run.id, _retry_after(run.lease_until, now))
    return run


def begin(engine: Engine, sender: Sender, job: ImportJob, previous: ImportRunRecord | None,
          report: dict[str, Any]) -> RunHandle:
    """Start a new run, or take over the stopped one that this request resends."""
    runner = new_id()
    now = utcnow()
    lease_until = now + sender.lease
    with UnitOfWork(engine) as uow:
        if previous is None:
            run = ImportRunRecord(
                id=new_id(), api_key_id=sender.api_key_id,
                idempotency_key=sender.idempotency_key, file_sha256=job.file_sha256,
                kind=job.kind, mode=job.mode, format=job.format, status=RUNNING,
                steps_applied=0, applied_through_line=0, zeroed_through=None, rows_applied=0,
                report=report, runner=runner, lease_until=lease_until, created_at=now,
                updated_at=now, finished_at=None,
            )
            try:
                uow.import_runs.add(run)
                uow.commit()
            except IntegrityError as exc:
                # Another request with the same key started a run a moment ago.
                raise ImportInProgress(None, 1) from exc
            return RunHandle(run.id, runner, sender.lease, 0, 0, None, 0, None)
        if not uow.import_runs.take_over(previous.id, previous.runner, runner, lease_until, now):
            raise ImportInProgress(previous.id, 1)
        taken = uow.import_runs.get(previous.id)
        uow.commit()
    assert taken is not None
    return RunHandle(taken.id, runner, sender.lease, taken.steps_applied,
                     taken.applied_through_line, taken.zeroed_through, taken.rows_applied,
                     taken.report)


def claim_step(uow: UnitOfWork, run: RunHandle, now: dt.datetime) -> None:
    """The first statement of a step's transaction: lock the run for this step."""
    if not uow.import_runs.claim_step(run.id, run.runner, run.steps_applied, now + run.lease,
                                      now):
        raise RunTakenOver(run.id)


def record_step(uow: UnitOfWork, run: RunHandle, report: dict[str, Any], rows_applied: int,
                now: dt.datetime, *, through_line: int | None = None,
                zeroed_through: str | None = None) -> RunHandle:
    """The step's progress, written in the step's transaction; the handle as it will be once
    the transaction commits."""
    after = replace(
        run, steps_applied=run.steps_applied + 1, rows_applied=rows_applied,
        applied_through_line=(run.applied_through_line if through_line is None
                              else through_line),
        zeroed_through=zeroed_through if zeroed_through is not None else run.zeroed_through,
    )
    uow.import_runs.record_step(run.id, {
        "steps_applied": after.steps_applied, "rows_applied": rows_applied,
        "applied_through_line": after.applied_through_line,
        "zeroed_through": after.zeroed_through, "report": report, "updated_at": now,
    })
    return after


def finish(engine: Engine, run: RunHandle, report: dict[str, Any], last_line: int) -> None:
    with UnitOfWork(engine) as uow:
        now = utcnow()
        claim_step(uow, run, now)
        uow.import_runs.record_step(run.id, {
            "status": COMPLETED, "applied_through_line": max(last_line,
                                                             run.applied_through_line),
            "report": report, "runner": None, "lease_until": None, "updated_at": now,
            "finished_at": now,
        })
        uow.commit()


def release(engine: Engine, run: RunHandle) -> None:
    """The run stopped here: let a resend take it over at once rather than when the lease
    runs out."""
    with UnitOfWork(engine) as uow:
        uow.import_runs.release(run.id, run.runner, utcnow())
        uow.commit()


def get_run(engine: Engine, run_id: str) -> ImportRunRecord:
    with UnitOfWork(engine, read_only=True) as uow:
        run = uow.import_runs.get(run_id)
    if run is None:
        raise NotFound(f"no import {run_id}")
    return run


def status_of(run: ImportRunRecord, now: dt.datetime) -> str:
    if run.status == RUNNING and (run.lease_until is None or run.lease_until <= now):
        return INTERRUPTED
    return run.status


def _retry_after(lease_until: dt.datetime, now: dt.datetime) -> int:
    return max(1, min(60, int((lease_until - now).total_seconds()) + 1))
