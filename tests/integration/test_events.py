"""The event log: written with the change, read in an order that never skips."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine

from oms.adapters.db.event_repositories import parse_event_id
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.errors import Conflict
from oms.domain.events import utcnow
from oms.schemas import AdjustmentIn
from oms.services import inventory
from tests.integration.seed import level, seed_stock


def _read(engine: Engine, after: tuple[int, int] | None = None) -> list[str]:
    with UnitOfWork(engine, read_only=True) as uow:
        events = uow.events.read(after=after, types=["inventory.changed"], limit=100)
    assert all(parse_event_id(e.id) for e in events)
    return [e.payload["reason"] + ":" + e.entity_id for e in events]


def test_a_refused_batch_writes_neither_levels_nor_events(engine: Engine) -> None:
    seed_stock(engine, {("berlin", "A"): 5, ("berlin", "B"): 1})
    before = _read(engine)
    with UnitOfWork(engine) as uow, pytest.raises(Conflict) as refused:
        inventory.adjust(uow, [
            AdjustmentIn(location_id="berlin", sku="A", delta=+4, reason="receipt"),
            AdjustmentIn(location_id="berlin", sku="B", delta=-2, reason="damage"),
        ])
    assert refused.value.errors[0].field == "adjustments.1.delta"
    assert level(engine, "berlin", "A") == (5, 0, 5)
    assert _read(engine) == before


def test_event_ids_sort_in_reading_order(engine: Engine) -> None:
    seed_stock(engine, {("berlin", "A"): 5, ("munich", "A"): 5})
    wait_until_nothing_held_back(engine)
    with UnitOfWork(engine, read_only=True) as uow:
        events = uow.events.read(after=None, types=[], limit=100)
        ids = [e.id for e in events]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
        rest = uow.events.read(after=parse_event_id(ids[1]), types=[], limit=100)
    assert [e.id for e in rest] == ids[2:]


def wait_until_nothing_held_back(engine: Engine) -> None:
    """On PostgreSQL another transaction of the test database (autovacuum's, say) may hold
    the feed back for a moment; this test is about order, so it waits for it."""
    deadline = time.monotonic() + 30
    while True:
        with UnitOfWork(engine, read_only=True) as uow:
            if not uow.events.held_back():
                return
        assert time.monotonic() < deadline, "events held back for 30 s"
        time.sleep(0.01)


@pytest.mark.postgres_only
def test_an_event_committed_late_is_not_skipped(engine: Engine) -> None:
    """Transaction T1 writes first but commits last. A reader polling in between must not
    move past T1's place, or it would never see T1's event."""
    seed_stock(engine, {("berlin", "A"): 5, ("berlin", "B"): 5})
    seen_before = len(_read(engine))
    with UnitOfWork(engine) as slow:
        now = utcnow()
        changed = slow.stock.set_levels(
            [{"location_id": "berlin", "sku": "A", "on_hand": 1}], now, add=True)
        inventory.record_change(slow, changed[("berlin", "A")], "slow", now)
        slow.flush_events()  # T1 now holds a position and a transaction id, uncommitted

        with UnitOfWork(engine) as fast:
            inventory.adjust(fast, [AdjustmentIn(location_id="berlin", sku="B", delta=1,
                                                 reason="fast")])
        # T2 committed, but T1 (older) still runs: the reader must wait for both.
        assert len(_read(engine)) == seen_before
        # Nor may T1 itself read past its place: its event is not committed yet.
        assert len(slow.events.read(after=None, types=["inventory.changed"], limit=100)
                   ) == seen_before
        slow.commit()
    assert _read(engine)[seen_before:] == ["slow:berlin/A", "adjustment:berlin/B"]
