"""Stored answers of Idempotency-Keys: kept for their lifetime, then dropped."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from oms.adapters.db.unit_of_work import UnitOfWork


def purge_answers(engine: Engine, older_than: dt.datetime) -> int:
    with UnitOfWork(engine) as uow:
        dropped = uow.idempotency.purge(older_than)
        uow.commit()
    return dropped
