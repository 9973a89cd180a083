"""The reservation service on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from oms.adapters.db import tables as t
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.errors import InsufficientStock, NotFound, ValidationFailed
from oms.domain.inventory import ReservationStatus
from oms.services import inventory
from oms.services.inventory import ReserveLine
from tests.integration.seed import level, seed_stock


def _reserve(engine: Engine, *lines: ReserveLine) -> list[str]:
    with UnitOfWork(engine) as uow:
        records = inventory.reserve(uow, list(lines))
        uow.commit()
    return [r.id for r in records]


def _events(engine: Engine, entity_id: str) -> list[tuple[str, int, str]]:
    with UnitOfWork(engine, read_only=True) as uow:
        return [(e.type, e.sequence, e.payload["reason"])
                for e in uow.events.read(after=None, types=["inventory.*"], limit=1000,
                                         entity_id=entity_id)]


def test_reserve_takes_atp_and_records_an_event(engine: Engine) -> None:
    seed_stock(engine, {("berlin", "A"): 10}, safety_stock=2)
    [reservation_id] = _reserve(engine, ReserveLine("berlin", "A", 3, "order-1/1"))
    assert level(engine, "berlin", "A") == (10, 3, 5)
    with UnitOfWork(engine, read_only=True) as uow:
        record = uow.reservations.get(reservation_id)
    assert record is not None
    assert record.status is ReservationStatus.ACTIVE
    assert record.reference == "order-1/1"
    assert _events(engine, "berlin/A") == [
        ("inventory.changed", 1, "set"), ("inventory.changed", 2, "reserved")]


def test_reserve_never_takes_safety_stock_or_more_than_atp(engine: Engine) -> None:
    seed_stock(engine, {("berlin", "A"): 5}, safety_stock=2)
    with pytest.raises(InsufficientStock):
        _reserve(engine, ReserveLine("berlin", "A", 4))
    assert level(engine, "berlin", "A") == (5, 0, 3)
    _reserve(engine, ReserveLine("berlin", "A", 3))
    assert level(engine, "berlin", "A") == (5, 3, 0)


def test_several_lines_are_all_or_nothing(engine: Engine) -> None:
    seed_stock(engine, {("berlin", "A"): 5, ("berlin", "B"): 1, ("munich", "A"): 5})
    with pytest.raises(InsufficientStock) as refused:
        _reserve(engine, ReserveLine("berlin", "A", 2), ReserveLine("munich", "A", 2),
                 ReserveLine("berlin", "B", 2))
    assert refused.value.sku == "B"
    assert level(engine, "berlin", "A") == (5, 0, 5)
    assert level(engine, "munich", "A") == (5, 0, 5)
    with UnitOfWork(engine, read_only=True) as uow:
        assert uow.reservations.active_totals() == {}
        reasons = [e.payload["reason"] for e in uow.events.read(
            after=None, types=["inventory.changed"], limit=100)]
    assert reasons == ["set", "set", "set"]


def test_a_shortfall_gives_back_what_the_same_call_took_within_the_transaction(
        engine: Engine) -> None:
    """Routing tries again in the same transaction after a shortfall: the lines taken
    before the short one are back as they were, version included, before anything rolls
    back."""
    seed_stock(engine, {("berlin", "A"): 5, ("berlin", "B"): 1, ("munich", "A"): 5})
    with UnitOfWork(engine) as uow:
        before = {key: uow.stock.get(*key) for key in [("berlin", "A"), ("munich", "A")]}
        versions = {key: _version(uow, *key) for key in before}
        mark = uow.pending_mark()
        with pytest.raises(InsufficientStock):
            inventory.reserve(uow, [ReserveLine("berlin", "A", 2), ReserveLine("munich", "A", 2),
                                    ReserveLine("berlin", "B", 2)])
        uow.discard_since(mark)  # as the caller does: the events of what was given back
        assert {key: uow.stock.get(*key) for key in before} == before
        assert {key: _version(uow, *key) for key in before} == versions
        # The same transaction can then reserve what is there, and commit it.
        inventory.reserve(uow, [ReserveLine("berlin", "A", 2)])
        uow.commit()
    assert level(engine, "berlin", "A") == (5, 2, 3)
    assert level(engine, "munich", "A") == (5, 0, 5)


def _version(uow: UnitOfWork, location_id: str, sku: str) -> int:
    return int(uow.conn.execute(
        select(t.stock_levels.c.version).where(t.stock_levels.c.location_id == location_id,
                                               t.stock_levels.c.sku == sku)).scalar_one())


def test_two_lines_of_one_sku_are_checked_together(engine: Engine) -> None:
    seed_stock(engine, {("berlin", "A"): 3})
    with pytest.raises(InsufficientStock) as refused:
        _reserve(engine, ReserveLine("berlin", "A", 2), ReserveLine("berlin", "A", 2))
    assert refused.value.requested == 4
    ids = _reserve(engine, ReserveLine("berlin", "A", 2), ReserveLine("berlin", "A", 1))
    assert len(ids) == 2
    assert level(engine, "berlin", "A") == (3, 3, 0)


def test_release_gives_stock_back_once(engine: Engine) -> None:
    seed_stock(engine, {("berlin", "A"): 4})
    [reservation_id] = _reserve(engine, ReserveLine("berlin", "A", 3))
    with UnitOfWork(engine) as uow:
        inventory.release(uow, [reservation_id])
        uow.commit()
    assert level(engine, "berlin", "A") == (4, 0, 4)
    with UnitOfWork(engine) as uow, pytest.raises(ValidationFailed, match="already released"):
        inventory.release(uow, [reservation_id])
    with UnitOfWork(engine) as uow, pytest.raises(NotFound):
        inventory.consume(uow, ["no-such-reservation"])


def test_consume_takes_goods_off_hand(engine: Engine) -> None:
    seed_stock(engine, {("berlin", "A"): 4, ("munich", "A"): 4})
    [at_berlin] = _reserve(engine, ReserveLine("berlin", "A", 3))
    with UnitOfWork(engine) as uow:
        inventory.consume(uow, [at_berlin])
        uow.commit()
    # Consumption names the reservation: only its own location changes.
    assert level(engine, "berlin", "A") == (1, 0, 1)
    assert level(engine, "munich", "A") == (4, 0, 4)
    with UnitOfWork(engine, read_only=True) as uow:
        assert inventory.check_reserved_counters(uow) == []


def test_counter_check_finds_a_drifted_counter(engine: Engine) -> None:
    seed_stock(engine, {("berlin", "A"): 5})
    _reserve(engine, ReserveLine("berlin", "A", 2))
    with UnitOfWork(engine) as uow:
        uow.conn.exec_driver_sql(
            "UPDATE stock_levels SET reserved = 4 WHERE location_id = 'berlin'")
        uow.commit()
    with UnitOfWork(engine, read_only=True) as uow:
        [mismatch] = inventory.check_reserved_counters(uow)
    assert (mismatch.counter, mismatch.from_reservations) == (4, 2)


def test_an_adjustment_below_the_reservations_is_accepted_and_flagged(engine: Engine) -> None:
    from oms.schemas import AdjustmentIn

    seed_stock(engine, {("berlin", "A"): 5})
    _reserve(engine, ReserveLine("berlin", "A", 4))
    with UnitOfWork(engine) as uow:
        [result] = inventory.adjust(uow, [AdjustmentIn(location_id="berlin", sku="A", delta=-3,
                                                       reason="offline sale")])
    assert (result["on_hand"], result["reserved"], result["atp"]) == (2, 4, -2)
    assert result["discrepancy"] is True
    with pytest.raises(InsufficientStock):
        _reserve(engine, ReserveLine("berlin", "A", 1))
