"""Idempotency-Key on state-changing requests (DESIGN §3.3): the answer commits with the
change, so a retry after any failure replays it or finds nothing done."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, Engine, event, func, select, update
from sqlalchemy.exc import OperationalError

from oms.adapters.db import tables as t
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.errors import InsufficientStock
from oms.domain.events import utcnow
from oms.services import routing
from oms.services.apikeys import authenticate, hash_key
from oms.services.inventory import ReserveLine
from oms.settings import Settings
from tests.helpers import Api, problem
from tests.ordering import Shop, order_body

ADJUST = "/v1/inventory/adjustments"


def _batch(delta: int) -> dict[str, list[dict[str, object]]]:
    return {"adjustments": [{"location_id": "berlin", "sku": "A", "delta": delta,
                             "reason": "receipt"}]}


def _on_hand(api: Api) -> int:
    return int(api.get("/v1/inventory/berlin/A").json()["on_hand"])


def _stored_keys(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(t.idempotency_keys)) or 0)


def test_a_retry_replays_the_first_answer(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    key = {"Idempotency-Key": "retry-1"}
    first = api.post(ADJUST, json=_batch(2), headers=key)
    second = api.post(ADJUST, json=_batch(2), headers=key)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == "application/json"
    assert "idempotent-replayed" not in first.headers
    assert _on_hand(api) == 7


def test_a_replay_keeps_status_and_location(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    body = {"url": "https://erp.example/hook", "event_types": ["order.*"]}
    first = api.post("/v1/webhooks", json=body, headers={"Idempotency-Key": "sub-1"})
    second = api.post("/v1/webhooks", json=body, headers={"Idempotency-Key": "sub-1"})
    assert first.status_code == second.status_code == 201
    assert second.headers["location"] == first.headers["location"]
    assert second.json() == first.json()
    assert len(api.get("/v1/webhooks").json()["items"]) == 1


def test_the_same_key_with_another_body_is_refused(api: Api, stocked: Callable[..., None]
                                                   ) -> None:
    stocked({("berlin", "A"): 5})
    api.post(ADJUST, json=_batch(2), headers={"Idempotency-Key": "k"})
    r = api.post(ADJUST, json=_batch(3), headers={"Idempotency-Key": "k"})
    assert problem(r, 422)["type"] == "urn:oms:problem:idempotency-key-reused"
    assert _on_hand(api) == 7


def test_a_refusal_is_replayed_too(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 1})
    key = {"Idempotency-Key": "too-much"}
    first = api.post(ADJUST, json=_batch(-5), headers=key)
    api.put("/v1/inventory/berlin/A", json={"on_hand": 10})
    second = api.post(ADJUST, json=_batch(-5), headers=key)
    assert first.status_code == second.status_code == 409
    assert second.json() == first.json()
    assert second.headers["content-type"] == "application/problem+json"
    assert _on_hand(api) == 10


def test_keys_are_scoped_to_the_api_key(api: Api, as_role: Callable[..., Api],
                                        stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    other = as_role("integrator")
    api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "shared"})
    r = other.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "shared"})
    assert r.status_code == 200
    assert "idempotent-replayed" not in r.headers
    assert _on_hand(api) == 7


def test_a_key_older_than_its_lifetime_starts_afresh(api: Api, engine: Engine,
                                                     stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "old"})
    with engine.begin() as conn:
        conn.execute(update(t.idempotency_keys).values(
            created_at=utcnow() - dt.timedelta(hours=25)))
    r = api.post(ADJUST, json=_batch(2), headers={"Idempotency-Key": "old"})
    assert r.status_code == 200
    assert "idempotent-replayed" not in r.headers
    assert _on_hand(api) == 8
    again = api.post(ADJUST, json=_batch(2), headers={"Idempotency-Key": "old"})
    assert again.headers["idempotent-replayed"] == "true"
    assert _on_hand(api) == 8


def test_an_overlong_key_is_refused(api: Api) -> None:
    r = api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "x" * 300})
    assert "Idempotency-Key" in problem(r, 400)["detail"]


def test_an_unknown_api_key_stores_nothing(api: Api, engine: Engine,
                                           stocked: Callable[..., None]) -> None:
    """The caller is checked before the key is looked at: a junk token leaves no trace."""
    stocked({("berlin", "A"): 5})
    r = api.client.post(ADJUST, json=_batch(1), headers={
        "Authorization": "Bearer junk", "Idempotency-Key": "junk-1"})
    problem(r, 401)
    r = api.client.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "junk-2"})
    problem(r, 401)
    assert _stored_keys(engine) == 0
    assert _on_hand(api) == 5


def test_a_failed_commit_stores_neither_change_nor_answer(
    api: Api, engine: Engine, stocked: Callable[..., None]
) -> None:
    """The answer and the change commit together: when COMMIT fails, the retry finds
    nothing done and applies the change once."""
    stocked({("berlin", "A"): 5})
    failures = []

    def fail_once(conn: Connection) -> None:
        if not failures:
            failures.append(conn)
            # The connection to the database is lost as COMMIT is sent: the server rolls
            # the transaction back, and the client sees the connection fail.
            conn.invalidate()
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"),
                                   connection_invalidated=True)

    event.listen(engine, "commit", fail_once)
    try:
        first = api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "c-1"})
    finally:
        event.remove(engine, "commit", fail_once)
    assert failures
    body = problem(first, 503)
    assert first.headers["retry-after"] == "1"
    assert "send the request again" in body["detail"]
    assert _on_hand(api) == 5
    assert _stored_keys(engine) == 0
    second = api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "c-1"})
    assert second.status_code == 200
    assert "idempotent-replayed" not in second.headers
    assert _on_hand(api) == 6
    third = api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "c-1"})
    assert third.headers["idempotent-replayed"] == "true"
    assert _on_hand(api) == 6


def _key_id(engine: Engine, api: Api) -> str:
    with UnitOfWork(engine, read_only=True) as uow:
        principal = authenticate(uow, hash_key(api.headers["Authorization"].removeprefix(
            "Bearer ")))
    assert principal is not None
    return principal.key_id


@pytest.mark.postgres_only
def test_a_key_still_running_gets_409(api: Api, engine: Engine,
                                      stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    scope = _key_id(engine, api)
    with UnitOfWork(engine) as running:
        assert running.idempotency.hold(scope, "busy")
        r = api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "busy"})
        assert problem(r, 409)["type"] == "urn:oms:problem:idempotency-key-in-use"
        assert r.headers["retry-after"] == "1"
        assert _on_hand(api) == 5
    # The first request's transaction ended (it crashed, say) without an answer: a retry
    # runs afresh.
    r = api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "busy"})
    assert r.status_code == 200
    assert _on_hand(api) == 6


@pytest.mark.postgres_only
def test_parallel_retries_apply_once(live_url: str, api: Api, stocked: Callable[..., None]
                                     ) -> None:
    stocked({("berlin", "A"): 5})
    barrier = threading.Barrier(20)
    headers = {**api.headers, "Idempotency-Key": "parallel"}

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=live_url, timeout=30) as client:
            barrier.wait()
            return client.post(ADJUST, json=_batch(3), headers=headers)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))
    codes = sorted(a.status_code for a in answers)
    assert set(codes) <= {200, 409}
    successes = [a for a in answers if a.status_code == 200]
    assert successes
    assert all(a.json() == successes[0].json() for a in successes)
    assert _on_hand(api) == 8


# -- a server killed in the middle of requests ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings: Settings, engine: Engine) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    """Start `oms serve` on the test database; every process started is killed at the end."""
    port = _free_port()
    started: list[subprocess.Popen[str]] = []
    env = {**os.environ, "OMS_DATABASE_URL": settings.database_url}

    def start() -> subprocess.Popen[str]:
        oms = Path(sys.executable).parent / "oms"
        process = subprocess.Popen([str(oms), "serve", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   text=True)
        started.append(process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                    process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
                    return process
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("oms serve did not start")

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_a_server_killed_mid_request_applies_each_change_once(
    api: Api, stocked: Callable[..., None],
    server: Callable[[], subprocess.Popen[str]],
) -> None:
    """Requests with keys, a server killed with SIGKILL at random moments while they run,
    and clients retrying with the same keys until each has its answer: every change is
    applied exactly once, and each key's answers agree."""
    stocked({("berlin", "A"): 1000})
    keys = [f"crash-{n}" for n in range(60)]
    answers: dict[str, list[int]] = {k: [] for k in keys}
    rng = random.Random(7)
    deadline = time.monotonic() + 120

    def send(url: str, key: str) -> None:
        try:
            r = httpx.post(url + ADJUST, json=_batch(1), timeout=10,
                           headers={**api.headers, "Idempotency-Key": key})
        except httpx.HTTPError:
            return  # the server died under it: the client will retry
        if r.status_code == 200:
            answers[key].append(r.json()["levels"][0]["version"])

    for _ in range(3):
        process = server()
        url = process.url  # type: ignore[attr-defined]
        waiting = [k for k in keys if not answers[k]] + rng.sample(keys, 5)
        with ThreadPoolExecutor(8) as pool:
            for key in waiting:
                pool.submit(send, url, key)
            time.sleep(rng.uniform(0.05, 0.4))
            process.send_signal(signal.SIGKILL)
        process.wait(10)
    process = server()
    url = process.url  # type: ignore[attr-defined]
    while any(not answers[k] for k in keys):
        assert time.monotonic() < deadline, [k for k in keys if not answers[k]]
        for key in [k for k in keys if not answers[k]]:
            send(url, key)
    for key in rng.sample(keys, 10):
        send(url, key)
    # Each key's answers are one answer, replayed.
    assert all(len(set(v)) == 1 for v in answers.values()), answers
    # And each change was applied once: sixty +1 adjustments.
    assert _on_hand(api) == 1060
    versions = sorted(v[0] for v in answers.values())
    assert versions == sorted(set(versions))  # no two keys saw the same change


def _raw_post(url: str, path: str, headers: dict[str, str], declared: int,
              sent: bytes) -> bytes:
    """Declare a body of `declared` bytes, send only `sent`, and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {declared}",
                "Content-Type: application/json",
                *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        s.sendall("\r\n".join(head).encode() + sent)
        return s.recv(65536)


def test_an_oversized_body_is_refused_before_it_is_read(live_url: str, api: Api) -> None:
    """A body over the limit is answered 413 at once: the server does not wait for (or
    keep) the rest of it."""
    answer = _raw_post(live_url, ADJUST, api.headers, 50 * 1024 * 1024, b'{"adjustments"')
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer
    answer = _raw_post(live_url, "/v1/imports/inventory", api.headers, 300 * 1024 * 1024,
                       b"location_id,sku,on_hand\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Without a valid key nothing is read at all.
    answer = _raw_post(live_url, ADJUST, {"Authorization": "Bearer junk"}, 1000, b"{")
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_a_body_over_the_limit_is_413(api: Api) -> None:
    r = api.post(ADJUST, content=b'{"adjustments": [' + b" " * (1024 * 1024) + b"]}",
                 headers={"Content-Type": "application/json"})
    assert problem(r, 413)["type"] == "urn:oms:problem:payload-too-large"


def test_a_refusal_that_says_send_again_is_not_kept(
        api: Api, shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stock changing under routing is refused with "send the order again": the same key
    sent again runs again instead of replaying that refusal."""
    shop({("mitte", "SKU-1"): 5})

    def always_taken_meanwhile(uow: object, lines: list[ReserveLine]) -> None:
        raise InsufficientStock(lines[0].location_id, lines[0].sku, lines[0].quantity)

    monkeypatch.setattr(routing.inventory, "reserve", always_taken_meanwhile)
    key = {"Idempotency-Key": "order-W-9"}
    body = order_body(("SKU-1", 1), external_id="W-9")
    assert "send the order again" in problem(api.post("/v1/orders", json=body, headers=key),
                                             409)["detail"]
    monkeypatch.undo()
    again = api.post("/v1/orders", json=body, headers=key)
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
