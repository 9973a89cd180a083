"""Relaying the event log, in order, to a sink such as NATS JetStream, resuming after a
restart from the last event the sink acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Engine

from oms.adapters.db.event_repositories import StoredEvent, parse_event_id
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.events import utcnow

BATCH = 500


class Sink(Protocol):
    async def publish(self, events: Sequence[StoredEvent]) -> None: ...


async def relay(engine: Engine, sink: Sink, name: str, batch: int = BATCH) -> int:
    """Publish the next events after the sink's position; returns how many. The position
    moves only once the sink acknowledged them all, so a crash re-sends, never skips (the
    sink drops what it has seen by event id)."""
    with UnitOfWork(engine, read_only=True) as uow:
        after = uow.webhooks.sink_position(name) or (0, 0)
        events = uow.events.read(after=after, types=[], limit=batch)
    if not events:
        return 0
    await sink.publish(events)
    with UnitOfWork(engine) as uow:
        current = uow.webhooks.sink_position(name) or (0, 0)
        last = parse_event_id(events[-1].id)
        # Another worker relaying too may have gone further; never move back.
        if last > current:
            uow.webhooks.set_sink_position(name, last, utcnow())
        uow.commit()
    return len(events)
