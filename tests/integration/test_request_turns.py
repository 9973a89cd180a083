"""One request's transaction at a time per process (`OMS_DB_CONCURRENCY`), and on SQLite a
writer's reads taken before its write lock: what makes a process fast must not let two
writers of one row both go ahead, nor keep a request waiting on itself."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from oms.adapters.db import tables as t
from oms.adapters.db.engine import make_engine
from oms.adapters.db.gate import Turn, gate_for, limit_units_of_work
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.app import create_app
from oms.settings import Settings
from tests.helpers import location_body, served
from tests.integration.seed import level, seed_stock
from tests.ordering import order_body

#: Long enough for a thread that is not held back to have got on with it.
SETTLE = 0.4


@pytest.fixture
def own_engine(engine: Engine, settings: Settings) -> Iterator[Engine]:
    """An engine of its own (the tests' shared one lets every transaction in at once)."""
    fresh = make_engine(settings)
    yield fresh
    fresh.dispose()


def _request(engine: Engine) -> UnitOfWork:
    """A request's own read, with the turn it waited for."""
    gate = gate_for(engine)
    return UnitOfWork(engine, read_only=True, turn=Turn(gate, gate.enter()))


def _in_thread(work: object) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def run() -> None:
        work()  # type: ignore[operator]
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


@pytest.mark.parametrize("turns", [1, 2])
def test_a_request_waits_for_a_turn_while_every_turn_is_taken(own_engine: Engine,
                                                              turns: int) -> None:
    limit_units_of_work(own_engine, turns)
    with _request(own_engine):
        second = threading.Event()

        def another_request() -> None:
            with _request(own_engine):
                second.set()

        thread, _ = _in_thread(another_request)
        if turns == 1:
            assert not second.wait(SETTLE), "a second request's work ran beside the first's"
            # What the request opens besides its own unit of work does not wait for the
            # turn the request itself holds.
            with UnitOfWork(own_engine, read_only=True) as aside:
                assert aside.conn.execute(select(1)).scalar() == 1
        else:
            assert second.wait(5), "with two turns, the second request waited"
    assert second.wait(5), "the second request never got its turn"
    thread.join(5)


def test_the_app_takes_its_turns_and_threads_from_the_settings(
        own_engine: Engine, settings: Settings) -> None:
    limited = settings.model_copy(update={"db_concurrency": 1, "request_threads": 3})
    with TestClient(create_app(limited, own_engine)) as client:
        assert gate_for(own_engine).limit == 1
        tokens = client.portal.call(
            lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
        assert tokens == 3
        assert client.get("/healthz").status_code == 200


def _add_on_hand(uow: UnitOfWork, units: int) -> None:
    s = t.stock_levels.c
    uow.conn.execute(update(t.stock_levels).where(s.location_id == "store-1", s.sku == "A")
                     .values(on_hand=s.on_hand + units))


def _another_writer(engine: Engine) -> tuple[threading.Thread, threading.Event]:
    """Another writer adding 5 to store-1's A, on a thread of its own."""
    def write() -> None:
        with UnitOfWork(engine) as uow:
            _add_on_hand(uow, 5)
            uow.commit()

    return _in_thread(write)


def test_a_writer_that_has_only_read_keeps_no_other_writer_waiting(
        engine: Engine, own_engine: Engine) -> None:
    seed_stock(engine, {("store-1", "A"): 10})
    with UnitOfWork(own_engine) as first:
        assert first.stock.get("store-1", "A") is not None

        thread, done = _another_writer(own_engine)
        assert done.wait(5), "a writer that had only read held the others back"
        thread.join(5)
        # Its own write comes after the other's, and sees it.
        _add_on_hand(first, 1)
        first.commit()
    assert level(engine, "store-1", "A")[0] == 16


@pytest.mark.parametrize("first_step", ["write", "locking read"])
def test_after_its_first_write_or_locking_read_a_writer_holds_the_row(
        engine: Engine, own_engine: Engine, first_step: str) -> None:
    seed_stock(engine, {("store-1", "A"): 10})
    with UnitOfWork(own_engine) as first:
        if first_step == "write":
            _add_on_hand(first, 1)
        else:
            s = t.stock_levels.c
            first.conn.execute(select(s.on_hand).where(s.location_id == "store-1", s.sku == "A")
                               .with_for_update()).one()

        thread, done = _another_writer(own_engine)
        assert not done.wait(SETTLE), "another writer changed the row the first one holds"
        _add_on_hand(first, 100)
        first.commit()
    assert done.wait(5), "the other writer never went on"
    thread.join(5)
    assert level(engine, "store-1", "A")[0] == (116 if first_step == "write" else 115)


def test_many_requests_at_once_on_few_threads_all_get_their_turn(
        own_engine: Engine, settings: Settings, make_key: Callable[..., str]) -> None:
    # More requests than threads: those waiting for the turn must not hold the threads the
    # request with the turn needs to finish (which once left every request hanging).
    limited = settings.model_copy(update={"db_concurrency": 1, "request_threads": 2})
    key = make_key("admin")
    with served(create_app(limited, own_engine)) as url:
        headers = {"authorization": f"Bearer {key}"}

        def call(n: int) -> int:
            with httpx.Client(base_url=url, headers=headers,
                              timeout=10) as client:
                if n % 3:
                    return client.get("/v1/locations").status_code
                return client.put(f"/v1/locations/store-{n}",
                                  json=location_body()).status_code

        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(call, range(48)))
        assert sorted(set(answers)) == [200, 201]
        assert answers.count(201) == 16


def test_a_writer_cut_off_inside_a_statement_keeps_no_other_writer_waiting(
        engine: Engine, own_engine: Engine) -> None:
    """A statement interrupted mid-way (Ctrl-C) leaves its connection invalidated, and its
    result still held by the traceback: the transaction's write lock must go with it."""
    seed_stock(engine, {("store-1", sku): 10 for sku in ("A", "B", "C", "D")})
    with pytest.raises(KeyboardInterrupt), UnitOfWork(own_engine) as first:  # noqa: PT012
        _add_on_hand(first, 1)
        unfinished = first.conn.execute(select(t.stock_levels.c.sku))
        assert unfinished.fetchone() is not None
        first.conn.invalidate()
        raise KeyboardInterrupt

    thread, done = _another_writer(own_engine)
    assert done.wait(5), "the cut-off writer still held the write lock"
    thread.join(5)
    del unfinished  # held until here, as the traceback of an interrupt holds it
    # The cut-off write was undone; the other one went through.
    assert level(engine, "store-1", "A")[0] == 15


@pytest.mark.parametrize("turns", [1, 0])
def test_orders_and_reads_on_the_event_loop_and_writes_on_threads_all_go_through(
        own_engine: Engine, settings: Settings, make_key: Callable[..., str],
        turns: int) -> None:
    """Placing orders and reading availability run on the event loop with the process's only
    turn (on threads without a limit), among writes that run on threads: every request is
    answered, and the stock is never sold twice."""
    seed_stock(own_engine, {("berlin", "SKU-1"): 10})
    limited = settings.model_copy(update={"db_concurrency": turns, "request_threads": 2})
    key = make_key("admin")
    with served(create_app(limited, own_engine)) as url:
        def call(n: int) -> int:
            with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"},
                              timeout=30) as client:
                if n % 3 == 0:
                    return client.post("/v1/orders", json=order_body(
                        ("SKU-1", 1), external_id=f"W-{n}", email=f"c{n}@example.com"),
                    ).status_code
                if n % 3 == 1:
                    return client.get("/v1/availability", params={"sku": "SKU-1"}).status_code
                return client.put(f"/v1/locations/store-{n}", json=location_body()).status_code

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(call, range(42)))
    placed = answers[0::3]
    assert sorted(placed) == [201] * 10 + [409] * 4
    assert set(answers[1::3]) == {200}
    assert set(answers[2::3]) == {201}
    assert level(own_engine, "berlin", "SKU-1")[:2] == (10, 10)


def test_the_late_rollback_of_an_invalidated_writer_leaves_the_next_writer_its_transaction(
        engine: Engine, own_engine: Engine) -> None:
    """An invalidated connection's pool slot serves the next writer at once; the rollback
    of the invalidated one, which comes later, must not end that writer's transaction."""
    seed_stock(engine, {("store-1", "A"): 10})
    first = own_engine.connect()
    first_tx = first.begin()
    first.execute(update(t.stock_levels).values(on_hand=t.stock_levels.c.on_hand + 1))
    first.invalidate()
    with own_engine.connect() as second:
        second_tx = second.begin()
        first_tx.rollback()
        second.execute(update(t.stock_levels).values(on_hand=t.stock_levels.c.on_hand + 5))
        second_tx.rollback()
    first.close()
    # Neither write stayed: the second was rolled back as a whole.
    assert level(engine, "store-1", "A")[0] == 10
