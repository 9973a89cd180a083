"""Two changes of one order at once: the second waits for the order's lock and then works on
the order as the first left it, its items included (on PostgreSQL a statement that waited for
a lock sees the locked row as committed since, but not the other rows it joined; on SQLite the
lock is the single writer's, taken before the order is read)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from oms.adapters.db.order_repositories import OrderRepository
from oms.domain.events import utcnow
from oms.services import fulfillment
from oms.services.orders import reroute_waiting
from tests.api.test_holds import MINUTE, place_on_hold
from tests.fulfilling import requests_of, step
from tests.helpers import Api
from tests.ordering import Shop, atp, events, order_body, place


def _first_one_waits(monkeypatch: pytest.MonkeyPatch, name: str
                     ) -> tuple[threading.Event, threading.Event]:
    """Make the first call of `fulfillment.<name>` wait, inside its transaction and holding
    the order's lock, until told to go on: (it is waiting, go on)."""
    waiting, go = threading.Event(), threading.Event()
    original = getattr(fulfillment, name)
    calls: list[int] = []

    def held(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            waiting.set()
            assert go.wait(10)
        return original(*args)

    monkeypatch.setattr(fulfillment, name, held)
    return waiting, go


def _race(waiting: threading.Event, go: threading.Event,
          first: Callable[[], httpx.Response], second: Callable[[], httpx.Response]
          ) -> list[httpx.Response]:
    """`first` holds the order's lock while `second` asks for it; then both finish."""
    answers: dict[int, httpx.Response] = {}
    threads = [threading.Thread(target=lambda n=n, call=call: answers.__setitem__(n, call()))
               for n, call in enumerate((first, second))]
    threads[0].start()
    assert waiting.wait(10)
    threads[1].start()
    time.sleep(0.5)  # the second request is waiting for the order's lock by now
    go.set()
    for thread in threads:
        thread.join(30)
    return [answers[0], answers[1]]


@pytest.mark.postgres_only
def test_two_cancels_of_an_orders_two_items_cancel_it_and_give_back_the_shipping(
        live_url: str, api: Api, shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1), external_id="W-TWO-CANCELS"))
    first, second = [i["id"] for i in order["items"]]
    waiting, go = _first_one_waits(monkeypatch, "withdraw_items")

    def cancel(item_id: str) -> Callable[[], httpx.Response]:
        return lambda: httpx.post(f"{live_url}/v1/orders/{order['id']}/cancel",
                                  json={"items": [item_id]}, headers=api.headers, timeout=30)

    answers = _race(waiting, go, cancel(first), cancel(second))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    now = api.get(f"/v1/orders/{order['id']}").json()
    assert now["status"] == "cancelled"
    given_back = [Decimal(e["payload"]["amount_to_void_or_refund"])
                  for e in events(api, type="order.items_cancelled", entity_id=order["id"])]
    # The second cancel left nothing to ship: the shipping went back with its item.
    assert sum(given_back) == Decimal(order["totals"]["grand_total"])


@pytest.mark.postgres_only
def test_two_shipments_of_one_order_at_once_ship_it_and_capture_all_it_owes(
        live_url: str, api: Api, shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1), external_id="W-TWO-SHIPS"))
    requests = requests_of(api, order["id"])
    assert len(requests) == 2
    for request in requests:
        step(api, request["id"], "accept")
        step(api, request["id"], "pick")
        step(api, request["id"], "pack", {"parcels": [{"weight_grams": 500}]})
    waiting, go = _first_one_waits(monkeypatch, "capture_owed")

    def ship(request_id: str) -> Callable[[], httpx.Response]:
        return lambda: httpx.post(f"{live_url}/v1/fulfillment-requests/{request_id}/ship",
                                  json={}, headers=api.headers, timeout=30)

    answers = _race(waiting, go, ship(requests[0]["id"]), ship(requests[1]["id"]))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    now = api.get(f"/v1/orders/{order['id']}").json()
    assert now["status"] == "shipped"
    [payment] = now["payments"]
    asked = Decimal(payment["captured"]) + Decimal(payment["pending"]["capture"])
    assert asked == Decimal(order["totals"]["grand_total"])


def test_an_order_cancelled_while_the_worker_routes_it_again_stays_cancelled(
        live_url: str, api: Api, engine: Engine, stocked: Callable[..., None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    stocked({("berlin", "A"): 0})
    order = place_on_hold(api)
    start = utcnow()
    assert reroute_waiting(engine, now=start) == 1  # still nothing to route
    assert api.put("/v1/inventory/berlin/A", json={"on_hand": 5}).status_code == 200
    load_if_free = OrderRepository.load_if_free
    cancelling: list[threading.Thread] = []
    answers: list[httpx.Response] = []

    def cancel_meanwhile(self: OrderRepository, order_id: str) -> Any:
        taken = load_if_free(self, order_id)
        # The worker has taken the order: a store cancels it now, and waits for the worker.
        cancelling.append(threading.Thread(target=lambda: answers.append(httpx.post(
            f"{live_url}/v1/orders/{order['id']}/cancel", json={}, headers=api.headers,
            timeout=30))))
        cancelling[0].start()
        time.sleep(0.3)
        return taken

    monkeypatch.setattr(OrderRepository, "load_if_free", cancel_meanwhile)
    assert reroute_waiting(engine, now=start + 2 * MINUTE) == 1
    cancelling[0].join(30)
    assert [a.status_code for a in answers] == [200], [a.text for a in answers]
    now = api.get(f"/v1/orders/{order['id']}").json()
    assert (now["status"], [i["status"] for i in now["items"]]) == ("cancelled", ["cancelled"])
    # The worker's reservation went back with the cancel.
    assert atp(api, "A") == {"berlin": 5}
