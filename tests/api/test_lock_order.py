"""Stock rows are locked in one order by every path (DESIGN §3.8), so concurrent work on the
same skus waits instead of deadlocking; a lock that is still waited for too long answers 503
with Retry-After, never 500."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from oms.adapters.db.engine import make_engine
from oms.api.app import create_app
from oms.services import routing
from oms.settings import Settings
from tests.fulfilling import requests_of
from tests.helpers import Api, problem
from tests.ordering import Shop, order_body, place


@pytest.mark.postgres_only
def test_cancels_of_the_same_skus_in_opposite_order_all_succeed(
        live_url: str, api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 100, ("mitte", "SKU-2"): 100})
    pairs = []
    for n in range(12):
        forward = place(api, order_body(("SKU-1", 1), ("SKU-2", 1), external_id=f"F-{n}"))
        backward = place(api, order_body(("SKU-2", 1), ("SKU-1", 1), external_id=f"B-{n}"))
        pairs.append((forward["id"], backward["id"]))

    def cancel_pair(pair: tuple[str, str]) -> list[int]:
        barrier = threading.Barrier(2)

        def cancel(order_id: str) -> int:
            with httpx.Client(base_url=live_url, headers=api.headers, timeout=60) as client:
                barrier.wait()
                return client.post(f"/v1/orders/{order_id}/cancel", json={}).status_code

        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(cancel, pair))

    with ThreadPoolExecutor(4) as pool:
        codes = [c for pair in pool.map(cancel_pair, pairs) for c in pair]
    assert codes == [200] * 24
    for sku in ("SKU-1", "SKU-2"):
        level = api.get(f"/v1/inventory/mitte/{sku}").json()
        assert (level["on_hand"], level["reserved"]) == (100, 0)


@pytest.mark.postgres_only
def test_a_lock_held_too_long_answers_503_and_changes_nothing(
        engine: Engine, settings: Settings, make_key: Callable[..., str],
        stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    impatient = settings.model_copy(update={"db_lock_timeout_seconds": 0.3})
    impatient_engine = make_engine(impatient)
    adjust = {"adjustments": [{"location_id": "berlin", "sku": "A", "delta": 1,
                               "reason": "receipt"}]}
    try:
        with TestClient(create_app(impatient, impatient_engine),
                        raise_server_exceptions=False) as client:
            api = Api(client, make_key("admin"))
            with engine.connect() as holder:
                holder.execute(text("SELECT on_hand FROM stock_levels WHERE location_id = "
                                    "'berlin' AND sku = 'A' FOR UPDATE"))
                started = time.monotonic()
                r = api.post("/v1/inventory/adjustments", json=adjust,
                             headers={"Idempotency-Key": "held"})
                waited = time.monotonic() - started
                body = problem(r, 503)
                assert r.headers["retry-after"] == "1"
                assert body["type"] == "urn:oms:problem:service-unavailable"
                assert waited < 5
                holder.rollback()
            assert api.get("/v1/inventory/berlin/A").json()["on_hand"] == 5
            # Nothing was stored under the key: the retry runs and applies it once.
            r = api.post("/v1/inventory/adjustments", json=adjust,
                         headers={"Idempotency-Key": "held"})
            assert r.status_code == 200, r.text
            assert "idempotent-replayed" not in r.headers
            assert api.get("/v1/inventory/berlin/A").json()["on_hand"] == 6
    finally:
        impatient_engine.dispose()


@pytest.mark.postgres_only
def test_a_rejection_routed_elsewhere_takes_its_rows_in_key_order(
        live_url: str, api: Api, shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rejection gives stock back at potsdam and takes it at hamburg; an adjustment of both
    locks hamburg first. Held at the worst moment, neither deadlocks the other."""
    shop({("potsdam", "SKU-1"): 5, ("hamburg", "SKU-1"): 5})
    order = place(api, order_body(("SKU-1", 1), external_id="W-D"))
    [request] = requests_of(api, order["id"])
    assert request["location_id"] == "potsdam"
    released, go = threading.Event(), threading.Event()
    reserve = routing.inventory.reserve

    def reserve_when_told(uow: Any, lines: Any) -> Any:
        released.set()
        go.wait(5)
        return reserve(uow, lines)

    # Pauses the rejection between giving back potsdam's stock and taking hamburg's.
    monkeypatch.setattr(routing.inventory, "reserve", reserve_when_told)
    answers: dict[str, httpx.Response] = {}

    def reject() -> None:
        answers["reject"] = httpx.post(
            f"{live_url}/v1/fulfillment-requests/{request['id']}/reject",
            json={"reason": "broken"}, headers=api.headers, timeout=30)

    def adjust() -> None:
        answers["adjust"] = httpx.post(f"{live_url}/v1/inventory/adjustments", json={
            "adjustments": [
                {"location_id": "hamburg", "sku": "SKU-1", "delta": 1, "reason": "count"},
                {"location_id": "potsdam", "sku": "SKU-1", "delta": 1, "reason": "count"}]},
            headers=api.headers, timeout=30)

    rejecting = threading.Thread(target=reject)
    rejecting.start()
    assert released.wait(5)
    adjusting = threading.Thread(target=adjust)
    adjusting.start()
    time.sleep(0.5)
    go.set()
    rejecting.join()
    adjusting.join()
    assert {name: r.status_code for name, r in answers.items()} == {"reject": 200,
                                                                     "adjust": 200}
