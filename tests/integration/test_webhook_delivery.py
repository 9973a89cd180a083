"""Webhooks delivered end to end: real `oms worker` processes send to a real HTTP receiver.

Each test starts its own receiver (tests/receiver.py, on 127.0.0.1) and worker processes
pointed at the test database, makes events through the API, and waits, with a deadline, until
the receiver has every event the subscription asked for. On PostgreSQL an event becomes
readable only once every older transaction of its database has ended, hence the deadlines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from standardwebhooks.webhooks import Webhook

from oms.adapters.db import tables as t
from oms.domain.webhooks import matches
from tests.helpers import Api, location_body, product_body
from tests.receiver import Answerer, Received, Receiver, in_turn

OMS = Path(sys.executable).parent / "oms"
#: How long events may take to reach the receiver (PostgreSQL's event feed waits for every
#: older transaction of the test database, the workers' own included).
DEADLINE = 45.0


# -- the receiver ----------------------------------------------------------------------------


def failing_first(count: int) -> Answerer:
    """503 with `Retry-After: 1` to the first `count` requests, then 200."""
    return in_turn(*[(503, {"Retry-After": "1"}, b"try later")] * count)


# -- worker processes ------------------------------------------------------------------------


@dataclass
class Workers:
    processes: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def output(self) -> str:
        return "\n".join(f"--- worker {n} ---\n{log.read_text()[-4000:]}"
                         for n, log in enumerate(self.logs))

    def check_alive(self) -> None:
        for n, p in enumerate(self.processes):
            assert p.poll() is None, f"worker {n} exited with {p.returncode}\n{self.output()}"


@contextmanager
def workers(database_url: str, folder: Path, count: int = 1, **settings: str
            ) -> Iterator[Workers]:
    """`count` `oms worker` processes on the test database (with more `OMS_` settings); each
    is stopped with SIGTERM and must exit cleanly."""
    env = {**os.environ, "OMS_DATABASE_URL": database_url, "OMS_EGRESS_ALLOW_PRIVATE": "true",
           "OMS_WEBHOOK_POLL_SECONDS": "0.1",
           **{f"OMS_{name.upper()}": value for name, value in settings.items()}}
    running = Workers([], [])
    try:
        for n in range(count):
            log = folder / f"worker-{n}.log"
            running.logs.append(log)
            with log.open("wb") as out:
                running.processes.append(subprocess.Popen(
                    [str(OMS), "worker", "--interval", "0.5"], env=env,
                    stdout=out, stderr=subprocess.STDOUT))
        yield running
    finally:
        for p in running.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = []
        for p in running.processes:
            try:
                codes.append(p.wait(timeout=20))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
                codes.append(None)
        assert codes == [0] * len(codes), f"workers ended with {codes}\n{running.output()}"


def wait_for(what: str, done: Callable[[], bool], running: Workers,
             deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not done():
        running.check_alive()
        assert time.monotonic() < end, f"timed out waiting for {what}\n{running.output()}"
        time.sleep(0.1)


# -- the API ---------------------------------------------------------------------------------


def subscribe(api: Api, url: str, event_types: list[str]) -> dict[str, Any]:
    r = api.post("/v1/webhooks", json={"url": url, "event_types": event_types})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def events_of(api: Api, patterns: list[str]) -> list[dict[str, Any]]:
    """Every event the feed shows now whose type the patterns match, oldest first."""
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if after is not None:
            params["after"] = after
        r = api.get("/v1/events", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        found += [e for e in page["items"] if matches(e["type"], patterns)]
        if not page["items"]:
            return found
        after = page["next_after"]


def deliveries_of(api: Api, subscription_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor is not None:
            params["cursor"] = cursor
        r = api.get(f"/v1/webhooks/{subscription_id}/deliveries", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def put_product(api: Api, sku: str, name: str) -> None:
    r = api.put(f"/v1/products/{sku}", json=product_body(name))
    assert r.status_code in (200, 201), r.text


def put_location(api: Api, location_id: str, city: str) -> None:
    r = api.put(f"/v1/locations/{location_id}", json=location_body(city))
    assert r.status_code in (200, 201), r.text


def set_stock(api: Api, location_id: str, sku: str, on_hand: int) -> None:
    r = api.put(f"/v1/inventory/{location_id}/{sku}", json={"on_hand": on_hand})
    assert r.status_code == 200, r.text


def adjust(api: Api, changes: list[tuple[str, str, int]]) -> None:
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": loc, "sku": sku, "delta": delta, "reason": "count"}
        for loc, sku, delta in changes]})
    assert r.status_code == 200, r.text


# -- what every delivery must satisfy --------------------------------------------------------


def check_signed(requests: list[Received], secret: str) -> None:
    """Each request verifies with the subscription's secret and carries its event."""
    hook = Webhook(secret)
    for r in requests:
        hook.verify(r.body, r.headers)  # raises WebhookVerificationError if not
        assert r.event["id"] == r.webhook_id


def check_entity_order(requests: list[Received]) -> None:
    """Per entity, events are sent in order: no attempt ever goes back to an earlier event,
    and the accepted ones strictly increase."""
    tried: dict[str, list[int]] = defaultdict(list)
    accepted: dict[str, list[int]] = defaultdict(list)
    for r in sorted(requests, key=lambda r: r.started):
        event = r.event
        tried[event["entity_id"]].append(event["sequence"])
        if r.status == 200:
            accepted[event["entity_id"]].append(event["sequence"])
    for entity, sequences in tried.items():
        assert sequences == sorted(sequences), (entity, sequences)
    for entity, sequences in accepted.items():
        assert all(a < b for a, b in pairwise(sequences)), (entity, sequences)


# -- the tests -------------------------------------------------------------------------------


TYPES = ["product.*", "inventory.changed"]


def test_a_worker_delivers_exactly_the_subscribed_events_signed_and_in_order(
        api: Api, database_url: str, tmp_path: Path) -> None:
    with Receiver() as receiver, workers(database_url, tmp_path) as running:
        sub = subscribe(api, receiver.url, TYPES)
        for location_id, city in (("berlin", "Berlin"), ("munich", "Munich")):
            put_location(api, location_id, city)
        for round_ in range(3):
            for sku in ("SHIRT", "SHOE", "SOCK"):
                put_product(api, sku, f"{sku} v{round_}")
        set_stock(api, "berlin", "SHIRT", 10)
        set_stock(api, "munich", "SHIRT", 5)
        set_stock(api, "berlin", "SHOE", 3)
        for delta in (2, -1, 4, -3):
            adjust(api, [("berlin", "SHIRT", delta), ("munich", "SHIRT", delta + 10),
                         ("berlin", "SHOE", delta + 5)])
        put_location(api, "berlin", "Berlin-Mitte")  # not subscribed
        r = api.post("/v1/inventory/future", json={"entries": [  # nor is this
            {"location_id": "berlin", "sku": "SOCK", "quantity": 5,
             "available_on": "2030-01-01"}]})
        assert r.status_code in (200, 201, 202, 204), r.text
        # 9 product versions, 3 levels set and 4 batches of 3 adjustments.
        expected = 9 + 3 + 12

        wanted: list[dict[str, Any]] = []

        def all_arrived() -> bool:
            nonlocal wanted
            wanted = events_of(api, TYPES)
            got = {r.webhook_id for r in receiver.delivered()}
            return len(wanted) == expected and {e["id"] for e in wanted} <= got

        wait_for(f"{expected} events to arrive", all_arrived, running)
        # Whatever else the worker would send would be on its way by now.
        wait_for("every delivery recorded", lambda: all(
            d["status"] == "delivered" for d in deliveries_of(api, sub["id"])), running)
        time.sleep(0.3)

    requests = receiver.requests()
    assert all(r.status == 200 for r in requests)
    types = {r.event["type"] for r in requests}
    assert types == {"product.upserted", "inventory.changed"}, types
    # Exactly once each, and nothing that was not asked for.
    assert sorted(r.webhook_id for r in requests) == sorted(e["id"] for e in wanted)
    by_id = {e["id"]: e for e in wanted}
    for r in requests:
        event = by_id[r.webhook_id]
        assert (r.event["type"], r.event["entity_id"], r.event["sequence"], r.event["data"]) == (
            event["type"], event["entity_id"], event["sequence"], event["payload"])
        assert r.headers["content-type"] == "application/json"
    check_signed(requests, sub["secret"])
    check_entity_order(requests)
    sequences: dict[str, list[int]] = defaultdict(list)
    for r in sorted(requests, key=lambda r: r.started):
        sequences[r.event["entity_id"]].append(r.event["sequence"])
    assert sequences["SHIRT"] == [1, 2, 3]
    assert len(sequences["berlin/SHIRT"]) == 5
    assert "berlin" not in sequences
    assert "munich" not in sequences


def test_failed_attempts_are_retried_in_order_until_delivered(
        api: Api, database_url: str, tmp_path: Path) -> None:
    failures = 8
    with Receiver(failing_first(failures)) as receiver, workers(database_url, tmp_path) as running:
        sub = subscribe(api, receiver.url, TYPES)
        put_location(api, "berlin", "Berlin")
        for round_ in range(3):
            for sku in ("SHIRT", "SHOE", "SOCK"):
                put_product(api, sku, f"{sku} v{round_}")
        for on_hand in (4, 7, 1):
            set_stock(api, "berlin", "SHIRT", on_hand)
            set_stock(api, "berlin", "SOCK", on_hand + 1)
        expected = 9 + 6

        wanted: list[dict[str, Any]] = []

        def all_arrived() -> bool:
            nonlocal wanted
            wanted = events_of(api, TYPES)
            got = {r.webhook_id for r in receiver.delivered()}
            return len(wanted) == expected and {e["id"] for e in wanted} <= got

        wait_for(f"{expected} events to arrive despite {failures} failures", all_arrived,
                 running)
        wait_for("every delivery recorded", lambda: all(
            d["status"] == "delivered" for d in deliveries_of(api, sub["id"])), running)
        deliveries = deliveries_of(api, sub["id"])

    requests = receiver.requests()
    assert sum(r.status == 503 for r in requests) == failures
    delivered = [r for r in requests if r.status == 200]
    # Nothing lost, nothing extra, each accepted once.
    assert sorted(r.webhook_id for r in delivered) == sorted(e["id"] for e in wanted)
    check_signed(requests, sub["secret"])
    check_entity_order(requests)
    # Every request of one event: its 503s, then the 200 that ended them.
    per_id: dict[str, list[int]] = defaultdict(list)
    for r in sorted(requests, key=lambda r: r.started):
        per_id[r.webhook_id].append(r.status)
    for webhook_id, statuses in per_id.items():
        assert statuses == [503] * (len(statuses) - 1) + [200], (webhook_id, statuses)

    # The delivery log shows the same.
    assert sorted(d["event_id"] for d in deliveries) == sorted(e["id"] for e in wanted)
    logged_failures = 0
    for d in deliveries:
        codes = [a["status_code"] for a in d["attempts"]]
        assert d["status"] == "delivered", d
        assert d["delivered_at"], d
        assert codes == [503] * (len(codes) - 1) + [200], d
        assert d["attempt_count"] == len(codes) == len(per_id[d["event_id"]]), d
        stamps = [a["attempted_at"] for a in d["attempts"]]
        assert stamps == sorted(stamps), d
        logged_failures += len(codes) - 1
    assert logged_failures == failures
    # Retry-After: 1 was honoured: no event was asked again sooner.
    for webhook_id in per_id:
        tries = sorted((r for r in requests if r.webhook_id == webhook_id),
                       key=lambda r: r.started)
        for before, after in pairwise(tries):
            assert after.started - before.ended >= 0.9, (webhook_id, before, after)


@pytest.mark.postgres_only
def test_two_workers_never_send_one_delivery_twice_at_once(
        api: Api, database_url: str, engine: Engine, tmp_path: Path) -> None:
    skus = [f"SKU-{n:02}" for n in range(50)]
    rounds = 20
    put_location(api, "dc", "Berlin")
    for sku in skus:
        put_product(api, sku, sku)
    with Receiver(delay=0.005) as receiver:
        sub = subscribe(api, receiver.url, ["inventory.changed"])
        # A burst of 1,000 events: 20 adjustments of each of 50 levels, in 20 transactions.
        for n in range(rounds):
            adjust(api, [("dc", sku, n + 1) for sku in skus])
        expected = len(skus) * rounds
        # Each worker claims 8 per concurrency at a time: with 4, fewer than the 50 entities
        # whose next event is due, so both workers always find work.
        with workers(database_url, tmp_path, count=2, webhook_concurrency="4") as running:
            started = time.monotonic()

            def all_arrived() -> bool:
                return len({r.webhook_id for r in receiver.delivered()}) >= expected

            wait_for(f"{expected} events to arrive", all_arrived, running)
            took = time.monotonic() - started
            wanted = events_of(api, ["inventory.changed"])
            # Both workers took part.
            for log in running.logs:
                assert "delivered " in log.read_text(), running.output()
            time.sleep(0.5)  # a re-delivery, were there one, would show now

    requests = receiver.requests()
    per_id: dict[str, list[Received]] = defaultdict(list)
    for r in requests:
        per_id[r.webhook_id].append(r)
    overlapping = []
    for webhook_id, tries in per_id.items():
        tries.sort(key=lambda r: r.started)
        overlapping += [(webhook_id, round(after.started - before.ended, 4))
                        for before, after in pairwise(tries) if after.started < before.ended]
    duplicates = sum(len(tries) - 1 for tries in per_id.values())
    print(f"\n{expected} events delivered by two workers in {took:.1f} s: {len(requests)} "
          f"requests, {duplicates} duplicate deliveries, {len(overlapping)} overlapping")

    # No webhook-id was ever in flight twice at the same time...
    assert not overlapping, f"{len(overlapping)} overlaps, e.g. {overlapping[:5]}"
    # ...nor, both workers being healthy, sent twice at all.
    assert duplicates == 0, f"{duplicates} events were delivered more than once"
    # Nothing lost, each level's events in order.
    assert len(wanted) == expected
    assert {r.webhook_id for r in requests} == {e["id"] for e in wanted}
    assert all(r.status == 200 for r in requests)
    check_signed(requests[:50], sub["secret"])
    check_entity_order(requests)
    with engine.connect() as conn:
        d = t.webhook_deliveries.c
        statuses = dict(conn.execute(select(d.status, func.count()).group_by(d.status)).all())
        attempts = conn.execute(select(func.count()).select_from(t.webhook_attempts)).scalar()
    assert statuses == {"delivered": expected}
    assert attempts == expected
