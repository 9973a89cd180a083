"""The event feed on PostgreSQL waits only for transactions that could still write into the
OMS database: an open transaction in another database of the same server holds back nothing
(the feed, webhooks, the NATS relay), one in ours does, and one of our own sessions left idle
in a transaction is ended after OMS_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from oms.adapters.db.engine import make_engine
from oms.adapters.db.event_repositories import StoredEvent, parse_event_id
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.events import utcnow
from oms.services.event_sinks import relay
from oms.services.webhooks import fan_out
from oms.settings import Settings
from tests.conftest import _postgres_database
from tests.helpers import Api, product_body
from tests.ordering import events
from tests.receiver import Receiver

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def other_database() -> Iterator[Engine]:
    """A scratch database on the same server, as another application's would be; dropped
    at the end, with whatever session is still open in it."""
    for url in _postgres_database():
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@contextmanager
def open_transaction(engine: Engine) -> Iterator[tuple[Connection, int]]:
    """A session sitting in a transaction that holds a transaction id, as a client that
    wrote something and went idle; rolled back at the end."""
    with engine.connect() as conn, conn.begin():
        xid = int(conn.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
        yield conn, xid


def put_product(api: Api, sku: str) -> None:
    r = api.put(f"/v1/products/{sku}", json=product_body())
    assert r.status_code in (200, 201), r.text


def feed_after(api: Api, after: str | None) -> dict[str, Any]:
    r = api.get("/v1/events", params={"after": after} if after else {})
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


def caught_up(api: Api) -> str | None:
    """The id of the last event, once the feed holds nothing back."""
    seen = events(api)
    return seen[-1]["id"] if seen else None


def wait_for(found: Callable[[], Any], seconds: float = 10.0) -> Any:
    """`found()` once it is truthy. The outside transaction stays open all along, so a feed
    held back by it never gets there; the wait only absorbs a moment's transaction of our own
    database (autovacuum's, say)."""
    deadline = time.monotonic() + seconds
    while not (result := found()):
        assert time.monotonic() < deadline, f"nothing after {seconds} s"
        time.sleep(0.05)
    return result


def still_running(conn: Connection, xid: int) -> bool:
    status = conn.execute(text("SELECT pg_xact_status(CAST(:xid AS text)::xid8)"),
                          {"xid": xid}).scalar_one()
    return bool(status == "in progress")


def test_another_databases_open_transaction_does_not_hold_the_feed_back(
        api: Api, other_database: Engine) -> None:
    put_product(api, "BEFORE")
    after = caught_up(api)
    with open_transaction(other_database) as (conn, other_xid):
        put_product(api, "AFTER")
        page = wait_for(lambda: (p := feed_after(api, after))["items"] and p)
        assert [(e["type"], e["entity_id"]) for e in page["items"]] == [
            ("product.upserted", "AFTER")]
        assert page["held_back"] == 0
        # The event is younger than the outside transaction, which is still open.
        txid, _ = parse_event_id(page["items"][0]["id"])
        assert txid > other_xid
        assert still_running(conn, other_xid)


def test_webhooks_and_the_relay_pass_another_databases_open_transaction(
        api: Api, engine: Engine, receiver: Receiver, other_database: Engine) -> None:
    r = api.post("/v1/webhooks", json={"url": receiver.url, "event_types": ["product.*"]})
    assert r.status_code == 201, r.text
    caught_up(api)
    with UnitOfWork(engine) as uow:
        relay_start = uow.events.latest()
        uow.webhooks.set_sink_position("nats", relay_start, utcnow())
        uow.commit()

    with open_transaction(other_database) as (conn, other_xid):
        put_product(api, "AFTER")
        assert wait_for(lambda: fan_out(engine)) == 1
        with UnitOfWork(engine, read_only=True) as uow:
            [event] = uow.events.read(after=relay_start, types=[], limit=10)
            assert uow.events.latest() == parse_event_id(event.id)
        sink = Collecting()
        assert asyncio.run(relay(engine, sink, "nats")) == 1
        assert [e.entity_id for e in sink.published] == ["AFTER"]
        assert parse_event_id(event.id)[0] > other_xid
        assert still_running(conn, other_xid)


def test_an_open_transaction_of_our_database_holds_the_feed_back(
        api: Api, engine: Engine) -> None:
    """Whatever a reader has passed, nothing can appear behind it later: a transaction of
    this database still open may yet commit an event older than those written after it."""
    after = caught_up(api)
    with UnitOfWork(engine, read_only=True) as uow:
        latest = uow.events.latest()
    with open_transaction(engine):
        put_product(api, "AFTER")
        page = feed_after(api, after)
        assert page["items"] == []
        assert page["held_back"] == 1
        assert fan_out(engine) == 0
        with UnitOfWork(engine, read_only=True) as uow:
            assert uow.events.latest() == latest
    assert wait_for(lambda: feed_after(api, after)["items"])[0]["entity_id"] == "AFTER"


def test_our_connections_carry_an_idle_in_transaction_timeout(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW idle_in_transaction_session_timeout")
                                ).scalar_one() == "1min"
    finally:
        engine.dispose()


def test_an_idle_transaction_of_ours_stalls_the_feed_only_until_its_timeout(
        api: Api, settings: Settings) -> None:
    after = caught_up(api)
    impatient = make_engine(settings.model_copy(
        update={"db_idle_in_transaction_timeout_seconds": 0.5}))
    try:
        with impatient.connect() as conn:
            conn.begin()
            conn.execute(text("SELECT pg_current_xact_id()"))
            put_product(api, "AFTER")
            assert feed_after(api, after)["held_back"] == 1
            # The server ends the idle session; the event then shows.
            page = wait_for(lambda: (p := feed_after(api, after))["items"] and p)
            assert [e["entity_id"] for e in page["items"]] == ["AFTER"]
            with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):
                conn.execute(text("SELECT 1"))
    finally:
        impatient.dispose()


class Collecting:
    """A sink that keeps what it is given (NATS stands outside this test)."""

    def __init__(self) -> None:
        self.published: list[StoredEvent] = []

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        self.published.extend(events)
