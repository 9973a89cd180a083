"""Orders on hold are routed again by the worker when something routing reads could let them
through (the ATP of their skus rising somewhere, a location, the routing rules), and left
alone otherwise: a pass that changes nothing writes no routing run and sends no event, and
an order with nothing new is not even looked at every pass."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Engine

from oms.domain.events import utcnow
from oms.services.orders import reroute_waiting
from tests.helpers import Api, location_body, product_body

#: How long an event may take to show in the feed (on PostgreSQL, once every older
#: transaction of the server has ended, other test runs' included).
DEADLINE = 45.0
MINUTE = dt.timedelta(minutes=1)


def pre_routed(n: int, sku: str = "A", quantity: int = 2, location_id: str = "berlin"
               ) -> dict[str, Any]:
    """An order whose web shop already chose the location that fulfils it."""
    total = f"{quantity * 10}.00"
    return {
        "channel": "web", "external_id": f"H-{n}", "placed_at": utcnow().isoformat(),
        "currency": "EUR", "customer": {"email": f"ada{n}@example.com"},
        "items": [{"sku": sku, "quantity": quantity, "unit_price": "10.00"}],
        "shipping": {"option": {"service_level": "standard", "price": "0"},
                     "address": {"line1": "Unter den Linden 5", "city": "Berlin",
                                 "postal_code": "10117", "country": "DE"}},
        "payments": [{"method": "card", "amount": total, "status": "authorized"}],
        "totals": {"grand_total": total},
        "fulfillment_location_id": location_id,
    }


def place(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/v1/orders", json=body)
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    return order


def place_on_hold(api: Api, n: int = 1, **kw: Any) -> dict[str, Any]:
    order = place(api, pre_routed(n, **kw))
    assert order["status"] == "on_hold", order
    return order


def runs(api: Api, order_id: str) -> list[str]:
    """The triggers of the order's routing runs, oldest first."""
    r = api.get(f"/v1/orders/{order_id}/routing-decisions")
    assert r.status_code == 200, r.text
    return [run["trigger"] for run in r.json()["items"]]


def events_after(api: Api, after: str | None) -> list[dict[str, Any]]:
    """Every event after `after`, once the feed holds none back."""
    end = time.monotonic() + DEADLINE
    while True:
        found: list[dict[str, Any]] = []
        cursor = after
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor is not None:
                params["after"] = cursor
            r = api.get("/v1/events", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            found += page["items"]
            cursor = page["next_after"]
            if len(page["items"]) < 1000:
                break
        if page["held_back"] == 0:
            return found
        assert time.monotonic() < end, "the event feed kept holding events back"
        time.sleep(0.1)


def last_event(api: Api) -> str | None:
    events = events_after(api, None)
    return events[-1]["id"] if events else None


def types(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["type"] for e in events)


def item(api: Api, order_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api.get(f"/v1/orders/{order_id}").json()["items"][0]
    return found


def test_passes_that_find_nothing_new_write_no_run_and_no_event(
        api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 0, ("munich", "A"): 50})
    order = place_on_hold(api)
    reason = item(api, order["id"])["hold_reason"]
    mark = last_event(api)
    start = utcnow()
    # Passes every 30 s for three hours: some of them look at the order again (its wait is
    # over), none finds anything new.
    looks = sum(reroute_waiting(engine, now=start + n * MINUTE / 2) for n in range(360))
    assert 0 < looks < 15
    assert runs(api, order["id"]) == ["placement"]
    assert events_after(api, mark) == []
    assert item(api, order["id"])["hold_reason"] == reason

    # Stock arrives: the next pass routes the order, with one run and its events.
    assert api.put("/v1/inventory/berlin/A", json={"on_hand": 5}).status_code == 200
    assert reroute_waiting(engine, now=start + 180 * MINUTE) == 1
    routed = item(api, order["id"])
    assert (routed["status"], routed["location_id"]) == ("routed", "berlin")
    assert runs(api, order["id"]) == ["placement", "worker"]
    # The count, then the routing: the item's reservation and its request at berlin.
    assert types(events_after(api, mark)) == [
        "fulfillment_request.issued", "inventory.changed", "inventory.changed",
        "order.item_routed"]
    assert reroute_waiting(engine, now=start + 180 * MINUTE) == 0


def test_an_order_with_nothing_new_is_looked_at_less_and_less_often(
        api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 0})
    place_on_hold(api)
    start = utcnow()
    looked_at = [n for n in range(6 * 120)  # six hours of passes every 30 s
                 if reroute_waiting(engine, now=start + n * MINUTE / 2)]
    minutes_between = [(b - a) / 2 for a, b in pairwise(looked_at)]
    # At once, then after 1, 2, 4, ... minutes, at most an hour apart.
    assert looked_at[0] == 0
    assert minutes_between[:6] == [1, 2, 4, 8, 16, 32]
    assert set(minutes_between[6:]) == {60}


def _on_hold_after_a_first_look(api: Api, engine: Engine, start: dt.datetime, **kw: Any
                                ) -> dict[str, Any]:
    """An order on hold that the worker already looked at and will leave alone a while."""
    order = place_on_hold(api, **kw)
    assert reroute_waiting(engine, now=start) == 1
    assert reroute_waiting(engine, now=start + MINUTE / 2) == 0
    return order


def _routed_at_the_next_pass(api: Api, engine: Engine, order: dict[str, Any],
                             now: dt.datetime, location_id: str = "berlin") -> None:
    assert reroute_waiting(engine, now=now) == 1
    routed = item(api, order["id"])
    assert (routed["status"], routed["location_id"]) == ("routed", location_id)
    assert runs(api, order["id"]) == ["placement", "worker"]


def _put_level(api: Api, on_hand: int, safety_stock: int = 0) -> None:
    r = api.put("/v1/inventory/berlin/A", json={"on_hand": on_hand, "safety_stock": safety_stock})
    assert r.status_code == 200, r.text


def _adjust(api: Api, delta: int) -> None:
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "berlin", "sku": "A", "delta": delta, "reason": "count"}]})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("arrives", [
    pytest.param(lambda api: _put_level(api, 5), id="on_hand set higher"),
    pytest.param(lambda api: _adjust(api, 2), id="on_hand adjusted up"),
    pytest.param(lambda api: _put_level(api, 3, safety_stock=0), id="safety stock lowered"),
])
def test_stock_rising_at_a_location_routes_the_order_at_the_next_pass(
        api: Api, engine: Engine, stocked: Callable[..., None],
        arrives: Callable[[Api], None]) -> None:
    stocked({("berlin", "A"): 3}, safety_stock=3)
    start = utcnow()
    order = _on_hold_after_a_first_look(api, engine, start)
    arrives(api)
    _routed_at_the_next_pass(api, engine, order, start + MINUTE / 2)


def test_a_released_reservation_routes_the_order_at_the_next_pass(
        api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 2})
    first = place(api, pre_routed(1))
    assert first["status"] == "routed"
    start = utcnow()
    second = _on_hold_after_a_first_look(api, engine, start, n=2)
    r = api.post(f"/v1/orders/{first['id']}/cancel", json={})
    assert r.status_code == 200, r.text
    _routed_at_the_next_pass(api, engine, second, start + MINUTE / 2)


def test_future_stock_added_routes_a_preorder_at_the_next_pass(
        api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "NEW"): 0})
    body = product_body("Next season shoe", preorder={"tentative_ship_date": "2099-02-01"})
    assert api.put("/v1/products/NEW", json=body).status_code == 200
    start = utcnow()
    order = _on_hold_after_a_first_look(api, engine, start, sku="NEW")
    r = api.post("/v1/inventory/future", json={"entries": [
        {"location_id": "berlin", "sku": "NEW", "quantity": 3, "available_on": "2099-01-15"}]})
    assert r.status_code == 200, r.text
    _routed_at_the_next_pass(api, engine, order, start + MINUTE / 2)


def test_stock_that_cannot_help_does_not_wake_an_order_on_hold(
        api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 1, ("munich", "A"): 50})
    start = utcnow()
    order = _on_hold_after_a_first_look(api, engine, start)
    # Stock falling, and another order reserving what is left: ATP only went down.
    _adjust(api, -1)
    assert api.put("/v1/inventory/munich/A", json={"on_hand": 40}).status_code == 200
    assert place(api, pre_routed(2, quantity=30, location_id="munich"))["status"] == "routed"
    assert reroute_waiting(engine, now=start + MINUTE / 2) == 0
    assert runs(api, order["id"]) == ["placement"]


def test_a_changed_routing_rule_routes_the_order_at_the_next_pass(
        api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5, ("munich", "A"): 0})
    rules = {"rules": [{"service_level": "standard", "country": "DE", "groups": [["munich"]]}]}
    assert api.put("/v1/routing/rules", json=rules).status_code == 200
    start = utcnow()
    order = _on_hold_after_a_first_look(api, engine, start)
    rules["rules"][0]["groups"] = [["munich"], ["berlin"]]
    assert api.put("/v1/routing/rules", json=rules).status_code == 200
    _routed_at_the_next_pass(api, engine, order, start + MINUTE / 2)


def test_a_location_activated_routes_the_order_at_the_next_pass(
        api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    assert api.put("/v1/locations/berlin", json=location_body(active=False)).status_code == 200
    start = utcnow()
    order = _on_hold_after_a_first_look(api, engine, start)

    # A new location does not help this order (it names berlin), but the worker looks.
    assert api.put("/v1/locations/hamburg", json=location_body("Hamburg")).status_code == 201
    assert reroute_waiting(engine, now=start + MINUTE / 2) == 1
    assert runs(api, order["id"]) == ["placement"]

    assert api.put("/v1/locations/berlin", json=location_body(active=True)).status_code == 200
    _routed_at_the_next_pass(api, engine, order, start + MINUTE / 2)
