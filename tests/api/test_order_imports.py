"""Bulk order loading: JSON Lines over HTTP and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.helpers import Api


def _order(n: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "historical", "external_id": f"H-{n}", "historical": True,
        "placed_at": f"2025-03-{n % 28 + 1:02d}T09:30:00Z", "currency": "EUR",
        "customer": {"email": f"Customer{n % 3}@Example.com", "name": f"Customer {n % 3}"},
        "items": [{"sku": "A", "quantity": 2, "unit_price": "10.00", "tax": "3.80",
                   "status": "fulfilled"}],
        "totals": {"grand_total": "23.80"},
    }
    body.update(overrides)
    return body


def _send(api: Api, lines: list[str]) -> dict[str, Any]:
    r = api.post("/v1/imports/orders", content="\n".join(lines).encode(),
                 headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_history_loads_without_touching_stock(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    lines = [json.dumps(_order(n)) for n in range(6)]
    lines.insert(2, "{broken")
    lines.append(json.dumps(_order(99, totals={"grand_total": "1.00"})))
    lines.append(json.dumps(_order(98, items=[{"sku": "GHOST", "quantity": 1,
                                               "unit_price": "1.00", "status": "fulfilled"}],
                                   totals={"grand_total": "1.00"})))
    report = _send(api, lines)
    assert (report["rows"], report["imported"], report["failed"]) == (9, 6, 3)
    reasons = {e["line"]: e["reason"] for e in report["errors"]}
    assert sorted(reasons) == [3, 8, 9]
    assert "not valid JSON" in reasons[3]
    assert "23.80" in reasons[8]
    assert "1.00" in reasons[8]
    assert "GHOST" in reasons[9]

    level = api.get("/v1/inventory/berlin/A").json()
    assert (level["on_hand"], level["reserved"]) == (5, 0)
    listed = api.get("/v1/orders", params={"channel": "historical", "limit": 100}).json()
    assert len(listed["items"]) == 6
    assert {i["status"] for o in listed["items"] for i in o["items"]} == {"fulfilled"}
    assert {o["status"] for o in listed["items"]} == {"fulfilled"}
    # Three customers, found by email whatever its case.
    assert len({o["customer"]["id"] for o in listed["items"]}) == 3
    customer = api.get("/v1/customers", params={"email": "customer1@example.com"}).json()
    [found] = customer["items"]
    history = api.get(f"/v1/customers/{found['id']}/orders").json()["items"]
    assert sorted(o["external_id"] for o in history) == ["H-1", "H-4"]


def test_loading_the_same_file_again_changes_nothing(api: Api, stocked: Callable[..., None]
                                                     ) -> None:
    stocked({("berlin", "A"): 5})
    lines = [json.dumps(_order(n)) for n in range(4)]
    assert _send(api, lines)["imported"] == 4
    again = _send(api, [*lines, json.dumps(_order(2, totals={"grand_total": "23.80"},
                                                   placed_at="2025-04-01T00:00:00Z"))])
    assert (again["imported"], again["duplicates"], again["failed"]) == (0, 4, 1)
    assert "other content" in again["errors"][0]["reason"]
    events = api.get("/v1/events", params={"type": "order.created", "limit": 100}).json()
    assert len(events["items"]) == 4


def test_current_orders_in_a_file_are_routed(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    current = _order(1, channel="web", external_id="W-1", historical=False,
                     items=[{"sku": "A", "quantity": 2, "unit_price": "10.00", "tax": "3.80"}],
                     payments=[{"method": "card", "amount": "23.80", "status": "captured"}],
                     shipping={"option": {"service_level": "pickup",
                                          "pickup_location_id": "berlin"}})
    report = _send(api, [json.dumps(current)])
    assert report["imported"] == 1, report
    order = api.get("/v1/orders", params={"q": "W-1"}).json()["items"][0]
    assert order["items"][0]["location_id"] == "berlin"
    assert api.get("/v1/inventory/berlin/A").json()["reserved"] == 2


def test_an_order_file_resent_with_its_key_places_nothing_twice(
        api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 10})
    # Live orders without an external id: nothing but the key tells a resend from new orders.
    live = _order(1, channel="store", external_id=None, historical=False,
                  items=[{"sku": "A", "quantity": 1, "unit_price": "10.00", "tax": "1.90"}],
                  payments=[{"method": "cash", "amount": "11.90", "status": "captured"}],
                  totals={"grand_total": "11.90"},
                  shipping={"option": {"service_level": "pickup",
                                       "pickup_location_id": "berlin"}})
    body = "\n".join([json.dumps(live)] * 3).encode()
    headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": "till-7"}
    first = api.post("/v1/imports/orders", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["imported"] == 3
    again = api.post("/v1/imports/orders", content=body, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert api.get("/v1/inventory/berlin/A").json()["reserved"] == 3


def test_an_order_line_nested_too_deep_refuses_the_file(api: Api,
                                                        stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    lines = [json.dumps(_order(1)), json.dumps(_order(2)), "[" * 50_000 + "]" * 50_000]
    r = api.post("/v1/imports/orders", content="\n".join(lines).encode(),
                 headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 422, r.text
    assert "line 3: JSON nested deeper than 32 levels" in r.json()["detail"]
    assert api.get("/v1/orders", params={"channel": "historical"}).json()["items"] == []
