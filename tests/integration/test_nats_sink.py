"""Events published to NATS JetStream end to end: a real `oms worker` process relays the event
log to the NATS server at OMS_TEST_NATS_URL (default nats://127.0.0.1:4222), and the official
client (nats-py) reads the stream back with an ordered consumer.

Each test has its own stream `OMS_TEST_<random>` on subjects `oms_test_<random>.>` (two
JetStream streams cannot share subjects) and deletes it at the end. Where no NATS server
answers the tests are skipped with the reason shown; on CI (CI=true) that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import DeliverPolicy, StreamInfo
from nats.js.errors import NotFoundError
from sqlalchemy import Engine, func, select

from oms.adapters.db import tables as t
from oms.adapters.db.event_repositories import parse_event_id
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.events import utcnow
from tests.helpers import Api, location_body, product_body

NATS_URL = os.environ.get("OMS_TEST_NATS_URL", "nats://127.0.0.1:4222")
OMS = Path(sys.executable).parent / "oms"
#: How long events may take to reach the stream (on PostgreSQL the event feed waits for
#: every older transaction in the cluster, other test runs' included).
DEADLINE = 30.0


# -- NATS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    name: str
    prefix: str


@dataclass(frozen=True)
class Received:
    stream_seq: int
    subject: str
    msg_id: str | None
    body: dict[str, Any]


async def _connect() -> nats.NATS:
    # nats-py tries a server max_reconnect_attempts times even on the first connect (60
    # times, 2 s apart, by default): one retry, soon, where no server answers.
    return await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False,
                              max_reconnect_attempts=1, reconnect_time_wait=0.1)


async def _reachable() -> None:
    nc = await _connect()
    try:
        await nc.jetstream().account_info()  # fails where JetStream is not enabled
    finally:
        await nc.close()


def stream_info(stream: Stream) -> StreamInfo | None:
    """The stream's state, or None before the worker made it."""
    async def info() -> StreamInfo | None:
        nc = await _connect()
        try:
            return await nc.jetstream().stream_info(stream.name)
        except NotFoundError:
            return None
        finally:
            await nc.close()

    return asyncio.run(info())


def stored(stream: Stream) -> int:
    info = stream_info(stream)
    return 0 if info is None else info.state.messages


def read_all(stream: Stream) -> list[Received]:
    """Every message the stream holds, in stream order, read with an ordered consumer."""
    async def read() -> list[Received]:
        nc = await _connect()
        try:
            js = nc.jetstream()
            last = (await js.stream_info(stream.name)).state.last_seq
            if last == 0:
                return []
            sub = await js.subscribe(f"{stream.prefix}.>", stream=stream.name,
                                     ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
            found: list[Received] = []
            while not found or found[-1].stream_seq < last:
                msg = await sub.next_msg(timeout=5)
                found.append(Received(msg.metadata.sequence.stream, msg.subject,
                                      (msg.headers or {}).get("Nats-Msg-Id"),
                                      json.loads(msg.data)))
            await sub.unsubscribe()
            return found
        finally:
            await nc.close()

    return asyncio.run(read())


@pytest.fixture
def stream() -> Iterator[Stream]:
    try:
        asyncio.run(_reachable())
    except Exception as exc:
        reason = f"NATS JetStream not reachable at {NATS_URL}: {exc.__class__.__name__}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must test NATS)")
        pytest.skip(reason)
    suffix = uuid.uuid4().hex[:12]
    made = Stream(f"OMS_TEST_{suffix.upper()}", f"oms_test_{suffix}")
    yield made

    async def delete() -> None:
        nc = await _connect()
        try:
            await nc.jetstream().delete_stream(made.name)
        except NotFoundError:
            pass
        finally:
            await nc.close()

    asyncio.run(delete())


# -- the worker ------------------------------------------------------------------------------


class Worker:
    """`oms worker` processes relaying the test database to `stream`, one at a time."""

    def __init__(self, database_url: str, stream: Stream, folder: Path) -> None:
        self.env = {**os.environ, "OMS_DATABASE_URL": database_url, "OMS_NATS_URL": NATS_URL,
                    "OMS_NATS_STREAM": stream.name, "OMS_NATS_SUBJECT_PREFIX": stream.prefix,
                    "OMS_WEBHOOK_POLL_SECONDS": "0.05"}
        self.folder = folder
        self.logs: list[Path] = []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        log = self.folder / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen([str(OMS), "worker", "--interval", "5"],
                                            env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last position stored."""
        assert self.process is not None
        self.process.kill()
        assert self.process.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        """SIGTERM; the worker must exit cleanly."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            code = None
        assert code == 0, f"worker ended with {code}\n{self.output()}"

    def check_alive(self) -> None:
        assert self.process is not None
        assert self.process.poll() is None, (
            f"worker exited with {self.process.returncode}\n{self.output()}")

    def output(self) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text()[-4000:]}" for log in self.logs)


@pytest.fixture
def worker(stream: Stream, database_url: str, engine: Engine, tmp_path: Path
           ) -> Iterator[Worker]:
    running = Worker(database_url, stream, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def wait_for(what: str, done: Callable[[], bool], worker: Worker, pause: float = 0.05
             ) -> None:
    end = time.monotonic() + DEADLINE
    while not done():
        worker.check_alive()
        assert time.monotonic() < end, f"timed out waiting for {what}\n{worker.output()}"
        time.sleep(pause)


# -- the OMS ---------------------------------------------------------------------------------


def feed(api: Api) -> list[dict[str, Any]]:
    """Every event `GET /v1/events` shows now, oldest first."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        r = api.get("/v1/events", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        if not page["items"]:
            return found
        found += page["items"]
        params["after"] = page["next_after"]


def committed(engine: Engine) -> int:
    """Events committed (whether or not the feed shows them yet)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.events)).scalar_one())


def position(engine: Engine) -> tuple[int, int]:
    """The last event the worker recorded as acknowledged by JetStream."""
    with UnitOfWork(engine, read_only=True) as uow:
        return uow.webhooks.sink_position("nats") or (0, 0)


def all_published(api: Api, engine: Engine, stream: Stream, worker: Worker
                  ) -> list[dict[str, Any]]:
    """Wait until the feed shows every committed event and the stream holds as many
    messages; returns the feed."""
    expected = committed(engine)
    shown: list[dict[str, Any]] = []

    def done() -> bool:
        nonlocal shown
        shown = feed(api)
        return len(shown) == expected and stored(stream) >= expected

    wait_for(f"{expected} events in the stream", done, worker)
    return shown


def assert_exactly_once_in_order(received: list[Received], events: list[dict[str, Any]],
                                 stream: Stream) -> None:
    ids = [m.body["id"] for m in received]
    assert len(set(ids)) == len(ids), "an event was stored twice"
    assert len(ids) == len(events)
    assert ids == [e["id"] for e in events], "the stream is not the feed, in order"
    assert [m.stream_seq for m in received] == list(range(1, len(events) + 1))
    for m, e in zip(received, events, strict=True):
        assert m.subject == f"{stream.prefix}.{e['type']}"
        assert m.msg_id == e["id"]
        assert m.body == {"id": e["id"], "type": e["type"], "occurred_at": e["occurred_at"],
                          "entity_id": e["entity_id"], "sequence": e["sequence"],
                          "data": e["payload"]}


# -- tests -----------------------------------------------------------------------------------


def test_every_event_is_published_once_in_order(stream: Stream, worker: Worker, api: Api,
                                                engine: Engine) -> None:
    # Some events before the worker starts (a backlog), the rest while it runs.
    for city in ("berlin", "munich"):
        r = api.put(f"/v1/locations/{city}", json=location_body(city.title()))
        assert r.status_code == 201, r.text
    for sku in ("A", "B", "C"):
        assert api.put(f"/v1/products/{sku}", json=product_body()).status_code == 201
    worker.start()
    for city in ("berlin", "munich"):
        for sku in ("A", "B", "C"):
            r = api.put(f"/v1/inventory/{city}/{sku}", json={"on_hand": 10})
            assert r.status_code == 200, r.text
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "berlin", "sku": sku, "delta": -2, "reason": "damaged"}
        for sku in ("A", "B", "C")]})
    assert r.status_code == 200, r.text
    assert api.put("/v1/products/A", json=product_body("Running shirt, blue")
                   ).status_code == 200
    assert api.put("/v1/inventory/munich/A", json={"on_hand": 4}).status_code == 200

    events = all_published(api, engine, stream, worker)
    # The test's API key, 2 locations, 3 products (one replaced), 6 + 3 + 1 stock changes.
    assert len(events) == 17
    assert {e["type"] for e in events} == {"api_key.created", "location.upserted",
                                           "product.upserted", "inventory.changed"}
    time.sleep(0.5)  # ten polls more: nothing is published again
    received = read_all(stream)
    assert_exactly_once_in_order(received, events, stream)

    info = stream_info(stream)
    assert info is not None
    assert info.config.subjects == [f"{stream.prefix}.>"]
    assert info.config.duplicate_window == 3600


def test_a_killed_worker_resumes_without_loss_or_duplicates(
        stream: Stream, worker: Worker, api: Api, engine: Engine) -> None:
    skus = [f"S{n}" for n in range(5)]
    assert api.put("/v1/locations/berlin", json=location_body()).status_code == 201
    for sku in skus:
        assert api.put(f"/v1/products/{sku}", json=product_body()).status_code == 201

    # The burst: batches of five stock adjustments (one event each), made until told to stop
    # and at least 1,500 are made. The worker starts once 600 are waiting, so its first pass
    # publishes a full batch of 500 (event_sinks.BATCH), and is killed in the middle of it,
    # before it could record any position: the next worker must publish those again.
    stop = threading.Event()
    made = 0
    failures: list[BaseException] = []

    def burst() -> None:
        nonlocal made
        try:
            while not (stop.is_set() and made >= 1500):
                r = api.post("/v1/inventory/adjustments", json={"adjustments": [
                    {"location_id": "berlin", "sku": sku, "delta": 1, "reason": "count"}
                    for sku in skus]})
                assert r.status_code == 200, r.text
                made += len(skus)
        except BaseException as exc:
            failures.append(exc)

    producer = threading.Thread(target=burst, daemon=True)
    producer.start()
    try:
        end = time.monotonic() + DEADLINE
        while made < 600:
            assert not failures, failures
            assert time.monotonic() < end, "the burst is too slow"
            time.sleep(0.01)
        worker.start()
        wait_for("the worker to publish 100 events", lambda: stored(stream) >= 100, worker,
                 pause=0.005)
        worker.kill()
        assert producer.is_alive(), "the burst ended before the worker was killed"
        at_kill = stored(stream)
        # The position moves only after JetStream acknowledged: the stream is never behind
        # it (and is ahead where the worker died between publishing and recording).
        acknowledged = sum(1 for e in feed(api) if parse_event_id(e["id"]) <= position(engine))
        assert at_kill >= acknowledged
        time.sleep(0.2)  # the burst goes on without a worker
        worker.start()
        wait_for("the restarted worker to publish new events",
                 lambda: stored(stream) > at_kill + 100, worker)
    finally:
        stop.set()
        producer.join(30)
    assert not failures, failures
    assert made >= 1500

    events = all_published(api, engine, stream, worker)
    assert len(events) == 1 + len(skus) + 1 + made  # the test's API key first
    time.sleep(0.5)  # ten polls more: nothing is published again
    received = read_all(stream)
    assert_exactly_once_in_order(received, events, stream)
    info = stream_info(stream)
    assert info is not None
    assert info.state.messages == info.state.last_seq == len(events)

    # The worst case of a crash: nothing recorded. The next worker publishes every event
    # again, and JetStream drops each by its Nats-Msg-Id.
    worker.kill()
    with UnitOfWork(engine) as uow:
        uow.webhooks.set_sink_position("nats", (0, 0), utcnow())
        uow.commit()
    worker.start()
    last = parse_event_id(events[-1]["id"])
    wait_for("the worker to publish every event again", lambda: position(engine) == last,
             worker)
    assert read_all(stream) == received
