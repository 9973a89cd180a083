"""Idempotency-Key on state-changing requests (DESIGN §3.3)."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine, update

from oms.adapters.db import tables as t
from oms.adapters.db.idempotency import IdempotencyStore
from oms.domain.events import utcnow
from tests.helpers import Api

ADJUST = "/v1/inventory/adjustments"


def _batch(delta: int) -> dict[str, list[dict[str, object]]]:
    return {"adjustments": [{"location_id": "berlin", "sku": "A", "delta": delta,
                             "reason": "receipt"}]}


def _on_hand(api: Api) -> int:
    return int(api.get("/v1/inventory/berlin/A").json()["on_hand"])


def test_a_retry_replays_the_first_answer(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    key = {"Idempotency-Key": "retry-1"}
    first = api.post(ADJUST, json=_batch(2), headers=key)
    second = api.post(ADJUST, json=_batch(2), headers=key)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _on_hand(api) == 7


def test_the_same_key_with_another_body_is_refused(api: Api, stocked: Callable[..., None]
                                                   ) -> None:
    stocked({("berlin", "A"): 5})
    api.post(ADJUST, json=_batch(2), headers={"Idempotency-Key": "k"})
    r = api.post(ADJUST, json=_batch(3), headers={"Idempotency-Key": "k"})
    assert r.status_code == 422
    assert r.json()["type"] == "urn:oms:problem:idempotency-key-reused"
    assert _on_hand(api) == 7


def test_a_refusal_is_replayed_too(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 1})
    key = {"Idempotency-Key": "too-much"}
    first = api.post(ADJUST, json=_batch(-5), headers=key)
    api.put("/v1/inventory/berlin/A", json={"on_hand": 10})
    second = api.post(ADJUST, json=_batch(-5), headers=key)
    assert first.status_code == second.status_code == 422
    assert second.json() == first.json()
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


def _scope(api: Api) -> str:
    return hashlib.sha256(api.headers["Authorization"].encode()).hexdigest()


def test_a_key_still_running_gets_409_and_a_crashed_one_is_taken_over(
    api: Api, engine: Engine, stocked: Callable[..., None]
) -> None:
    stocked({("berlin", "A"): 5})
    store = IdempotencyStore(engine)
    body = api.client.build_request("POST", ADJUST, json=_batch(1)).content
    request_hash = hashlib.sha256(b"\n".join([b"POST", ADJUST.encode(), body])).hexdigest()
    assert store.claim(_scope(api), "busy", request_hash, "POST", ADJUST, utcnow()) is None

    r = api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "busy"})
    assert r.status_code == 409
    assert r.json()["type"] == "urn:oms:problem:idempotency-key-in-use"
    assert _on_hand(api) == 5

    # The first request's process died ten minutes ago: a retry may take the key over.
    with engine.begin() as conn:
        conn.execute(update(t.idempotency_keys).values(
            locked_at=utcnow() - dt.timedelta(minutes=10)))
    r = api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "busy"})
    assert r.status_code == 200
    assert _on_hand(api) == 6


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


def test_an_overlong_key_is_refused(api: Api) -> None:
    r = api.post(ADJUST, json=_batch(1), headers={"Idempotency-Key": "x" * 300})
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["detail"]


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
