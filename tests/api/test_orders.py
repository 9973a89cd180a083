"""Orders over the HTTP API: placement with routing and reservation, the checks that refuse
an order, duplicates, customers, listing, cancellation, routing rules and the event feed."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.app import create_app
from oms.services import inventory
from oms.settings import Settings
from tests.helpers import Api, error_fields, problem
from tests.ordering import (
    Shop,
    atp,
    events,
    order_body,
    place,
)


def decisions(api: Api, order_id: str, *location_ids: str) -> list[dict[str, Any]]:
    """The order's routing runs, each saying why these locations were or were not chosen."""
    r = api.get(f"/v1/orders/{order_id}/routing-decisions",
                params={"location_id": list(location_ids)})
    assert r.status_code == 200, r.text
    runs: list[dict[str, Any]] = r.json()["items"]
    return runs


def reasons(run: dict[str, Any], item_id: str) -> dict[str, tuple[str, str]]:
    """location -> (verdict, reason) for one item in one routing run."""
    return {c["location_id"]: (c["verdict"], c["reason"])
            for c in run["considerations"] if c["item_id"] == item_id}


def listed(api: Api, url: str = "/v1/orders", **params: Any) -> list[str]:
    """External ids of a one-page list, in the order shown."""
    r = api.get(url, params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    return [o["external_id"] for o in r.json()["items"]]


# -- routing -----------------------------------------------------------------------------------


def test_an_order_no_store_can_fill_alone_is_split(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 0,
          ("munich", "SKU-1"): 0, ("munich", "SKU-2"): 4})
    order = place(api, order_body(("SKU-1", 2), ("SKU-2", 1)))

    assert order["status"] == "routed"
    assert [(i["sku"], i["status"], i["location_id"]) for i in order["items"]] == [
        ("SKU-1", "routed", "mitte"), ("SKU-2", "routed", "munich")]
    assert atp(api, "SKU-1") == {"mitte": 3, "munich": 0}
    assert atp(api, "SKU-2") == {"mitte": 0, "munich": 3}


def test_one_store_takes_the_whole_order_when_it_can(api: Api, shop: Shop) -> None:
    # Mitte is nearer but has only SKU-1: one shipment from Munich beats two.
    shop({("mitte", "SKU-1"): 5, ("munich", "SKU-1"): 5, ("munich", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1)))

    assert {i["location_id"] for i in order["items"]} == {"munich"}
    assert atp(api, "SKU-1") == {"mitte": 5, "munich": 4}
    [run] = decisions(api, order["id"], "mitte")
    verdict, reason = reasons(run, order["items"][0]["id"])["mitte"]
    assert verdict == "passed_over"
    assert "fewer shipments" in reason


def test_the_nearer_of_two_equal_stores_ships(api: Api, shop: Shop) -> None:
    shop({("potsdam", "SKU-1"): 5, ("hamburg", "SKU-1"): 5})
    order = place(api, order_body())

    [item] = order["items"]
    assert item["location_id"] == "potsdam"
    assert atp(api, "SKU-1") == {"hamburg": 5, "potsdam": 3}
    [run] = decisions(api, order["id"], "potsdam", "hamburg")
    assert run["trigger"] == "placement"
    assert run["assignments"] == {item["id"]: "potsdam"}
    by_location = reasons(run, item["id"])
    assert by_location["potsdam"][0] == "chosen"
    verdict, reason = by_location["hamburg"]
    assert verdict == "passed_over"
    assert reason.startswith("farther")


def test_priority_comes_before_distance(api: Api, shop: Shop) -> None:
    shop({("potsdam", "SKU-1"): 5, ("hamburg", "SKU-1"): 5},
         priorities={"hamburg": 1, "potsdam": 10})
    order = place(api, order_body())

    assert order["items"][0]["location_id"] == "hamburg"
    [run] = decisions(api, order["id"], "potsdam")
    verdict, reason = reasons(run, order["items"][0]["id"])["potsdam"]
    assert verdict == "passed_over"
    assert reason == "lower priority (10 against 1)"


def test_routing_decisions_say_why_a_store_was_passed_over(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 1, ("potsdam", "SKU-1"): 5, ("hamburg", "SKU-1"): 5})
    order = place(api, order_body())

    [item] = order["items"]
    [run] = decisions(api, order["id"], "potsdam", "mitte", "hamburg")
    by_location = reasons(run, item["id"])
    assert by_location["potsdam"][0] == "chosen"
    assert by_location["mitte"] == ("passed_over",
                                    "not enough ATP: has 1, the item needs 2")
    assert by_location["hamburg"][0] == "passed_over"
    assert "farther" in by_location["hamburg"][1]


def test_stores_equal_in_rank_are_told_apart_truthfully(api: Api,
                                                        stocked: Callable[..., None]) -> None:
    # Same address and priority: only the stock decides, whatever the location ids.
    stocked({("a-store", "SKU-1"): 5, ("b-store", "SKU-1"): 9})
    single = place(api, order_body(("SKU-1", 2)))
    assert single["items"][0]["location_id"] == "b-store"
    [run] = decisions(api, single["id"], "a-store")
    assert reasons(run, single["items"][0]["id"])["a-store"] == (
        "passed_over", "less ATP left after the order than the chosen location")

    stocked({("c-store", "SKU-1"): 9, ("c-store", "SKU-2"): 9, ("d-store", "SKU-1"): 9})
    both = place(api, order_body(("SKU-1", 1), ("SKU-2", 1), external_id="W-2"))
    assert {i["location_id"] for i in both["items"]} == {"c-store"}
    [run] = decisions(api, both["id"], "d-store")
    assert reasons(run, both["items"][0]["id"])["d-store"] == (
        "passed_over", "another location takes more of the order: fewer shipments")


def test_a_pickup_order_goes_only_to_its_pickup_store(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 1, ("mitte", "SKU-2"): 5,
          ("potsdam", "SKU-1"): 50, ("potsdam", "SKU-2"): 0})
    order = place(api, order_body(("SKU-1", 1), pickup_at="mitte"))

    assert order["shipping"]["service_level"] == "pickup"
    assert order["shipping"]["address"] is None
    assert order["items"][0]["location_id"] == "mitte"
    assert atp(api, "SKU-1") == {"mitte": 0, "potsdam": 50}
    [run] = decisions(api, order["id"], "potsdam")
    assert reasons(run, order["items"][0]["id"])["potsdam"] == (
        "ineligible", "a pickup item goes only to its pickup store")

    # Potsdam has no SKU-2, and Mitte's may not be sent there for pickup.
    body = problem(api.post("/v1/orders", json=order_body(
        ("SKU-2", 1), external_id="W-2", pickup_at="potsdam")), 409)
    assert "SKU-2" in body["detail"]
    assert error_fields(body) == ["items.0.sku"]
    assert atp(api, "SKU-2") == {"mitte": 5, "potsdam": 0}


def test_a_pre_routed_order_waits_for_its_store(api: Api, shop: Shop,
                                               as_role: Callable[..., Api]) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-1"): 3})
    first = place(api, order_body(fulfillment_location_id="potsdam"))
    assert first["status"] == "routed"
    assert first["items"][0]["location_id"] == "potsdam"  # not nearer Mitte

    second = place(api, order_body(external_id="W-2", fulfillment_location_id="potsdam"))
    [item] = second["items"]
    assert second["status"] == "on_hold"
    assert item["status"] == "on_hold"
    assert item["location_id"] is None
    assert "SKU-1" in item["hold_reason"]
    assert atp(api, "SKU-1") == {"mitte": 5, "potsdam": 1}

    assert api.put("/v1/inventory/potsdam/SKU-1", json={"on_hand": 5}).status_code == 200
    associate = as_role("associate", ["potsdam"])
    problem(associate.post(f"/v1/orders/{second['id']}/reroute"), 403)
    assert api.get(f"/v1/orders/{second['id']}").json()["status"] == "on_hold"

    r = api.post(f"/v1/orders/{second['id']}/reroute")
    assert r.status_code == 200, r.text
    rerouted = r.json()
    assert rerouted["status"] == "routed"
    [item] = rerouted["items"]
    assert (item["status"], item["location_id"], item["hold_reason"]) == (
        "routed", "potsdam", None)
    assert atp(api, "SKU-1") == {"mitte": 5, "potsdam": 1}
    assert [run["trigger"] for run in decisions(api, second["id"])] == ["placement", "reroute"]


def test_a_historical_order_is_neither_routed_nor_reserved(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 0})
    body = order_body(("SKU-1", 2), ("SKU-2", 1), external_id="H-1",
                      placed_at="2024-02-01T08:00:00Z", historical=True, payments=[])
    for line in body["items"]:
        line["status"] = "fulfilled"
    order = place(api, body)

    assert order["historical"] is True
    assert order["status"] == "fulfilled"
    assert [(i["status"], i["location_id"]) for i in order["items"]] == [
        ("fulfilled", None), ("fulfilled", None)]
    assert atp(api, "SKU-1") == {"mitte": 5}
    assert atp(api, "SKU-2") == {"mitte": 0}
    assert decisions(api, order["id"]) == []
    assert {e["payload"]["reason"] for e in events(api, type="inventory.changed")} == {"set"}


# -- refusals ----------------------------------------------------------------------------------


def _nothing_written(api: Api, events_before: int, atp_before: dict[str, int]) -> None:
    assert listed(api) == []
    assert api.get("/v1/customers", params={"email": "ada@example.com"}).json()["items"] == []
    assert atp(api, "SKU-1") == atp_before
    assert len(events(api)) == events_before


def test_no_backorders_and_nothing_is_written(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-2"): 0})
    before = len(events(api))

    # Well formed, but no location has the stock: a conflict with the stock as it is now.
    body = problem(api.post("/v1/orders", json=order_body(("SKU-1", 2), ("SKU-2", 1))), 409)
    assert body["type"] == "urn:oms:problem:insufficient-stock"
    assert error_fields(body) == ["items.1.sku"]
    assert "SKU-2" in body["detail"]
    assert "backorders are not accepted" in body["detail"]
    _nothing_written(api, before, {"mitte": 5})

    body = problem(api.post("/v1/orders", json=order_body(("GHOST", 1))), 422)
    assert error_fields(body) == ["items.0.sku"]
    assert "GHOST" in body["detail"]
    _nothing_written(api, before, {"mitte": 5})


def test_an_unpaid_order_is_refused(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5})
    before = len(events(api))
    unpaid = order_body(payments=[])
    short = order_body()
    short["payments"][0]["amount"] = "52.00"
    for body in (unpaid, short):
        answer = problem(api.post("/v1/orders", json=body), 422)
        assert "payment must be authorized before the order is placed" in answer["detail"]
        assert error_fields(answer) == ["payments"]
        _nothing_written(api, before, {"mitte": 5})

    split = order_body()
    split["payments"] = [{"method": "gift_card", "amount": "20.00", "status": "captured"},
                         {"method": "card", "amount": "32.26", "status": "authorized"}]
    assert place(api, split)["status"] == "routed"


def test_a_fully_discounted_order_needs_no_payment(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5})
    body = order_body(payments=[], totals={"grand_total": "0.00"})
    body["items"][0].update(discount="39.80", tax="0.00")
    body["shipping"]["option"]["price"] = "0.00"
    order = place(api, body)

    assert order["status"] == "routed"
    assert order["payments"] == []
    assert order["totals"] == {"grand_total": "0.00"}
    assert atp(api, "SKU-1") == {"mitte": 3}


def test_a_grand_total_that_does_not_add_up_is_refused(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5})
    before = len(events(api))
    body = order_body(totals={"grand_total": "60.00"})
    body["payments"][0]["amount"] = "60.00"

    answer = problem(api.post("/v1/orders", json=body), 422)
    assert error_fields(answer) == ["totals.grand_total"]
    [error] = answer["errors"]
    assert "60.00" in error["message"]
    assert "52.26" in error["message"]
    _nothing_written(api, before, {"mitte": 5})


# -- duplicates --------------------------------------------------------------------------------


def test_an_order_sent_again_is_answered_even_when_it_would_now_be_refused(
        api: Api, shop: Shop, engine: Engine, settings: Settings,
        make_key: Callable[..., str]) -> None:
    """A resend is answered with the order placed before, though the same body placed
    anew would be refused by now (here: its time is older than a live order may be)."""
    shop({("mitte", "SKU-1"): 5})
    body = order_body(("SKU-1", 1), placed_at="2026-11-20T10:15:00Z")
    placed = place(api, body)
    strict = settings.model_copy(update={"live_order_max_age_days": 1})
    with TestClient(create_app(strict, engine), raise_server_exceptions=False) as client:
        later = Api(client, make_key("integrator"))
        again = later.post("/v1/orders", json=body)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == placed["id"]
        fresh = later.post("/v1/orders", json={**body, "external_id": "W-NEW"})
        assert "placed_at" in error_fields(problem(fresh, 422))
    assert atp(api, "SKU-1") == {"mitte": 4}


def test_the_same_order_sent_twice_is_placed_once(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5})
    first = api.post("/v1/orders", json=order_body())
    again = api.post("/v1/orders", json=order_body())

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == f"/v1/orders/{first.json()['id']}"
    assert atp(api, "SKU-1") == {"mitte": 3}
    assert listed(api) == ["W-100234"]
    assert len(events(api, type="order.created")) == 1


def test_another_order_under_a_taken_external_id_is_a_conflict(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5})
    first = place(api, order_body())
    answer = problem(api.post("/v1/orders", json=order_body(("SKU-1", 1))), 409)

    assert first["display_id"] in answer["detail"]
    assert "W-100234" in answer["detail"]
    assert error_fields(answer) == ["external_id"]
    assert first["id"] in answer["errors"][0]["message"]
    assert atp(api, "SKU-1") == {"mitte": 3}
    assert listed(api) == ["W-100234"]


def test_a_retry_with_an_idempotency_key_is_replayed(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5})
    key = {"Idempotency-Key": "checkout-7f3a"}
    first = api.post("/v1/orders", json=order_body(), headers=key)
    retry = api.post("/v1/orders", json=order_body(), headers=key)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["location"] == first.headers["location"]
    assert atp(api, "SKU-1") == {"mitte": 3}
    assert listed(api) == ["W-100234"]


# -- customers and lists -----------------------------------------------------------------------


def test_a_customer_is_found_by_email_whatever_its_case(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5})
    older = place(api, order_body(("SKU-1", 1), external_id="W-1", email="Ada@Example.com",
                                  placed_at="2026-11-01T09:00:00Z"))
    newer = place(api, order_body(("SKU-1", 1), external_id="W-2", email="ada@example.com",
                                  placed_at="2026-11-02T09:00:00Z"))

    customer = older["customer"]
    assert newer["customer"]["id"] == customer["id"]
    assert newer["customer"]["display_id"] == customer["display_id"]
    assert customer["email"] == "Ada@Example.com"
    for ref in (customer["id"], customer["display_id"]):
        r = api.get(f"/v1/customers/{ref}")
        assert r.status_code == 200, r.text
        assert r.json() == customer
    found = api.get("/v1/customers", params={"email": "ADA@example.COM"}).json()["items"]
    assert found == [customer]
    assert listed(api, f"/v1/customers/{customer['id']}/orders") == ["W-2", "W-1"]
    assert len(events(api, type="customer.created")) == 1
    problem(api.get("/v1/customers/C-NOBODY00"), 404)


def test_orders_are_filtered(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 50, ("potsdam", "SKU-1"): 0})
    w1 = place(api, order_body(("SKU-1", 1), external_id="W-1",
                               placed_at="2026-11-01T09:00:00Z"))
    w2 = place(api, order_body(("SKU-1", 1), external_id="W-2", email="bob@example.com",
                               placed_at="2026-11-02T09:00:00Z"))
    place(api, order_body(("SKU-1", 1), external_id="S-3", channel="store",
                          placed_at="2026-11-03T09:00:00Z"))
    place(api, order_body(("SKU-1", 1), external_id="W-4", email="carol@example.com",
                          placed_at="2026-11-04T09:00:00Z", fulfillment_location_id="potsdam"))
    assert api.post(f"/v1/orders/{w2['id']}/cancel", json={}).status_code == 200

    assert listed(api) == ["W-4", "S-3", "W-2", "W-1"]
    assert listed(api, status="routed") == ["S-3", "W-1"]
    assert listed(api, status="cancelled") == ["W-2"]
    assert listed(api, status="on_hold") == ["W-4"]
    assert listed(api, channel="store") == ["S-3"]
    assert listed(api, channel="web") == ["W-4", "W-2", "W-1"]
    assert listed(api, customer_id=w1["customer"]["id"]) == ["S-3", "W-1"]
    assert listed(api, placed_from="2026-11-02T09:00:00Z",
                  placed_to="2026-11-04T09:00:00Z") == ["S-3", "W-2"]
    assert listed(api, placed_from="2026-11-03T10:00:00+01:00") == ["W-4", "S-3"]
    assert listed(api, q=w1["display_id"]) == ["W-1"]
    assert listed(api, q=w1["display_id"].lower()) == ["W-1"]
    assert listed(api, q="W-4") == ["W-4"]
    assert listed(api, q="Bob@Example.com") == ["W-2"]
    assert listed(api, q="nobody@example.com") == []
    assert listed(api, status="routed", channel="web") == ["W-1"]


def test_the_list_pages_newest_first_visiting_each_order_once(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 50})
    days = ["01", "02", "02", "02", "03", "04", "04"]
    for n, day in enumerate(days):
        place(api, order_body(("SKU-1", 1), external_id=f"W-{n}",
                              placed_at=f"2026-11-{day}T09:00:00Z"))

    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = api.get("/v1/orders", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [(o["placed_at"], o["external_id"]) for o in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 4
    assert sorted(x for _, x in seen) == sorted(f"W-{n}" for n in range(len(days)))
    placed = [p for p, _ in seen]
    assert placed == sorted(placed, reverse=True)
    problem(api.get("/v1/orders", params={"cursor": "not-a-cursor"}), 422)


# -- cancellation ------------------------------------------------------------------------------


def _cancelled_events(api: Api, order_id: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in events(api, type="order.items_cancelled", entity_id=order_id)]


def test_cancelling_an_item_and_then_the_rest(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 2), ("SKU-2", 1)))
    first, second = order["items"]
    assert atp(api, "SKU-1") == {"mitte": 3}
    assert atp(api, "SKU-2") == {"mitte": 4}

    r = api.post(f"/v1/orders/{order['id']}/cancel",
                 json={"items": [second["id"]], "reason": "customer changed their mind"})
    assert r.status_code == 200, r.text
    partly = r.json()
    assert partly["status"] == "routed"
    assert [i["status"] for i in partly["items"]] == ["routed", "cancelled"]
    assert atp(api, "SKU-1") == {"mitte": 3}
    assert atp(api, "SKU-2") == {"mitte": 5}
    [event] = _cancelled_events(api, order["id"])
    assert event["item_ids"] == [second["id"]]
    assert (event["amount_to_void_or_refund"], event["currency"]) == ("23.68", "EUR")

    r = api.post(f"/v1/orders/{order['id']}/cancel", json={})
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["status"] == "cancelled"
    assert [i["status"] for i in cancelled["items"]] == ["cancelled", "cancelled"]
    assert atp(api, "SKU-1") == {"mitte": 5}
    # The last items take the shipping with them: nothing of the order is left to ship.
    assert _cancelled_events(api, order["id"])[-1] == {
        "order_id": order["id"], "item_ids": [first["id"]], "reason": None,
        "amount_to_void_or_refund": "52.26", "currency": "EUR"}
    assert sum(Decimal(e["amount_to_void_or_refund"])
               for e in _cancelled_events(api, order["id"])) == Decimal(
        order["totals"]["grand_total"])

    # What is left of the order, not the request, refuses these.
    answer = problem(api.post(f"/v1/orders/{order['id']}/cancel", json={}), 409)
    assert "nothing left to cancel" in answer["detail"]
    answer = problem(api.post(f"/v1/orders/{order['id']}/cancel",
                              json={"items": [first["id"]]}), 409)
    assert error_fields(answer) == ["items.0"]
    assert "cancelled" in answer["detail"]
    assert atp(api, "SKU-1") == {"mitte": 5}
    assert len(_cancelled_events(api, order["id"])) == 2


def test_cancelling_the_whole_order_at_once(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 2), ("SKU-2", 1)))

    r = api.post(f"/v1/orders/{order['id']}/cancel", json={})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert atp(api, "SKU-1") == {"mitte": 5}
    assert atp(api, "SKU-2") == {"mitte": 5}
    [event] = _cancelled_events(api, order["id"])
    assert sorted(event["item_ids"]) == sorted(i["id"] for i in order["items"])
    assert event["amount_to_void_or_refund"] == order["totals"]["grand_total"] == "75.94"


def test_cancelling_the_item_on_hold_leaves_a_routed_order(api: Api, shop: Shop) -> None:
    shop({("potsdam", "SKU-1"): 5, ("potsdam", "SKU-2"): 0})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1),
                                  fulfillment_location_id="potsdam"))
    assert order["status"] == "on_hold"
    waiting = order["items"][1]
    assert waiting["status"] == "on_hold"

    r = api.post(f"/v1/orders/{order['id']}/cancel", json={"items": [waiting["id"]]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "routed"
    assert atp(api, "SKU-1") == {"potsdam": 4}
    problem(api.post(f"/v1/orders/{order['id']}/cancel", json={"items": ["nope"]}), 422)
    problem(api.post("/v1/orders/no-such-order/cancel", json={}), 404)


def test_a_cancellation_names_each_item_once(api: Api, shop: Shop) -> None:
    shop({("potsdam", "SKU-1"): 5, ("potsdam", "SKU-2"): 0})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1),
                                  fulfillment_location_id="potsdam"))
    routed, waiting = order["items"]

    # An empty list is not "every item", and an item listed twice is not refunded twice.
    for items in ([], [waiting["id"], waiting["id"]], [routed["id"], routed["id"]]):
        answer = problem(api.post(f"/v1/orders/{order['id']}/cancel", json={"items": items}),
                         422)
        assert error_fields(answer) == ["items"]
    shown = api.get(f"/v1/orders/{order['id']}").json()
    assert [i["status"] for i in shown["items"]] == ["routed", "on_hold"]
    assert atp(api, "SKU-1") == {"potsdam": 4}
    assert _cancelled_events(api, order["id"]) == []

    r = api.post(f"/v1/orders/{order['id']}/cancel", json={"items": [waiting["id"]]})
    assert r.status_code == 200, r.text
    [event] = _cancelled_events(api, order["id"])
    assert (event["item_ids"], event["amount_to_void_or_refund"]) == ([waiting["id"]], "23.68")


# -- routing rules -----------------------------------------------------------------------------


def test_a_routing_rule_sends_orders_to_its_first_group(api: Api, shop: Shop,
                                                       as_role: Callable[..., Api]) -> None:
    shop({("mitte", "SKU-1"): 100, ("munich", "SKU-1"): 2, ("hamburg", "SKU-1"): 5})
    rules = {"rules": [{"service_level": "standard", "country": "DE",
                        "groups": [["munich"], ["hamburg"]]}]}
    problem(as_role("integrator").put("/v1/routing/rules", json=rules), 403)
    r = api.put("/v1/routing/rules", json=rules)
    assert r.status_code == 200, r.text
    assert r.json() == rules
    assert api.get("/v1/routing/rules").json() == rules

    far = place(api, order_body(("SKU-1", 2), external_id="W-1"))
    assert far["items"][0]["location_id"] == "munich"  # Mitte is ~500 km nearer
    [run] = decisions(api, far["id"], "mitte", "munich")
    by_location = reasons(run, far["items"][0]["id"])
    assert by_location["mitte"] == ("ineligible", "not in the routing rule for standard to DE")
    assert by_location["munich"] == ("chosen", "chosen: rule group 1, priority 10, 503.7 km away")

    second_group = place(api, order_body(("SKU-1", 2), external_id="W-2"))
    assert second_group["items"][0]["location_id"] == "hamburg"

    answer = problem(api.post("/v1/orders", json=order_body(("SKU-1", 4), external_id="W-3")),
                     409)
    assert error_fields(answer) == ["items.0.sku"]
    assert atp(api, "SKU-1") == {"hamburg": 3, "mitte": 100, "munich": 0}


def test_a_rule_naming_an_unknown_location_is_refused(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 1})
    rules = {"rules": [{"service_level": "standard", "country": "DE",
                        "groups": [["mitte", "atlantis"]]}]}
    answer = problem(api.put("/v1/routing/rules", json=rules), 404)
    assert "atlantis" in answer["detail"]
    assert error_fields(answer) == ["rules.0.groups"]
    assert api.get("/v1/routing/rules").json() == {"rules": []}


# -- events ------------------------------------------------------------------------------------


def _sequences(api: Api, entity_id: str) -> list[int]:
    return [e["sequence"] for e in events(api, entity_id=entity_id)]


def test_placing_an_order_streams_its_events(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-1"): 0})
    start = len(events(api))
    order = place(api, order_body())
    new = events(api)[start:]

    assert [e["type"] for e in new] == [
        "customer.created", "order.created", "inventory.changed", "order.item_routed",
        "fulfillment_request.issued"]
    created, reserved, routed, issued = new[1:]
    assert issued["payload"]["location_id"] == "mitte"
    assert issued["payload"]["order_id"] == order["id"]
    assert [i["item_id"] for i in issued["payload"]["items"]] == [order["items"][0]["id"]]
    assert created["entity_id"] == order["id"]
    assert created["payload"]["id"] == order["id"]
    assert created["payload"]["items"][0]["location_id"] == "mitte"
    assert new[0]["entity_id"] == order["customer"]["id"]
    assert reserved["entity_id"] == "mitte/SKU-1"
    assert (reserved["payload"]["reason"], reserved["payload"]["quantity"],
            reserved["payload"]["atp"]) == ("reserved", 2, 3)
    assert routed["payload"] == {"order_id": order["id"], "item_id": order["items"][0]["id"],
                                 "sku": "SKU-1", "quantity": 2, "location_id": "mitte"}

    waiting = place(api, order_body(external_id="W-2", fulfillment_location_id="potsdam"))
    assert [e["type"] for e in events(api, entity_id=waiting["id"])] == [
        "order.created", "order.item_on_hold"]
    assert events(api, type="order.item_on_hold")[0]["payload"]["reason"] == (
        waiting["items"][0]["hold_reason"])

    api.put("/v1/inventory/potsdam/SKU-1", json={"on_hand": 2})
    assert api.post(f"/v1/orders/{waiting['id']}/reroute").status_code == 200
    assert api.post(f"/v1/orders/{order['id']}/cancel", json={}).status_code == 200
    for order_id in (order["id"], waiting["id"]):
        sequences = _sequences(api, order_id)
        assert sequences == list(range(1, len(sequences) + 1))
        shown = api.get(f"/v1/orders/{order_id}").json()["events"]
        assert [e["sequence"] for e in shown] == sequences
    assert [e["type"] for e in events(api, entity_id=waiting["id"])] == [
        "order.created", "order.item_on_hold", "order.item_routed"]
    assert _sequences(api, order["customer"]["id"]) == [1]


# -- concurrency -------------------------------------------------------------------------------


@pytest.mark.postgres_only
def test_the_same_order_sent_at_once_is_placed_once(live_url: str, api: Api,
                                                    stocked: Callable[..., None]) -> None:
    stocked({("mitte", "SKU-1"): 10})
    clients = 8
    barrier = threading.Barrier(clients)

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=live_url, headers=api.headers, timeout=60) as client:
            barrier.wait()
            return client.post("/v1/orders", json=order_body())

    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(send, range(clients)))

    assert sorted(a.status_code for a in answers) == [200] * (clients - 1) + [201], [
        a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert atp(api, "SKU-1") == {"mitte": 8}
    assert listed(api) == ["W-100234"]
    assert len(events(api, type="order.created")) == 1
    assert len(events(api, type="customer.created")) == 1


@pytest.mark.postgres_only
@pytest.mark.parametrize("beyond_pool", [False, True],
                         ids=["32-clients", "more-clients-than-connections"])
def test_concurrent_orders_never_oversell(live_url: str, api: Api, engine: Engine,
                                         settings: Settings, stocked: Callable[..., None],
                                         beyond_pool: bool) -> None:
    stocked({("mitte", "SKU-1"): 10})
    # Beyond the pool, requests must queue for a connection rather than time out holding one.
    clients = settings.db_pool_size + settings.db_max_overflow + 50 if beyond_pool else 32
    barrier = threading.Barrier(clients)

    def send(n: int) -> httpx.Response:
        # A few customers shared between clients: their first orders race to create them.
        body = order_body(("SKU-1", 1), external_id=f"W-RACE-{n}",
                          email=f"buyer{n % 4}@example.com")
        with httpx.Client(base_url=live_url, headers=api.headers, timeout=60) as client:
            barrier.wait()
            return client.post("/v1/orders", json=body)

    with ThreadPoolExecutor(clients) as pool:
        answers: Sequence[httpx.Response] = list(pool.map(send, range(clients)))

    assert Counter(a.status_code for a in answers) == {201: 10, 409: clients - 10}, [
        a.text for a in answers if a.status_code not in (201, 409)]
    for refused in (a for a in answers if a.status_code == 409):
        body = problem(refused, 409)
        assert error_fields(body) == ["items.0.sku"]
        assert "SKU-1" in body["detail"]
    level = api.get("/v1/inventory/mitte/SKU-1").json()
    assert (level["on_hand"], level["reserved"], level["atp"]) == (10, 10, 0)
    placed = [a.json() for a in answers if a.status_code == 201]
    assert sorted(listed(api)) == sorted(o["external_id"] for o in placed)
    assert {o["status"] for o in placed} == {"routed"}
    with UnitOfWork(engine, read_only=True) as uow:
        assert inventory.check_reserved_counters(uow) == []


def test_store_staff_act_only_on_orders_of_their_stores(
    api: Api, shop: Shop, as_role: Callable[..., Api]
) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-1"): 0})
    order = place(api, order_body(("SKU-1", 1)))
    assert order["items"][0]["location_id"] == "mitte"
    # Another store does not see the order: for its keys there is no such order.
    elsewhere = as_role("manager", ["potsdam"])
    problem(elsewhere.post(f"/v1/orders/{order['id']}/cancel", json={}), 404)
    problem(elsewhere.post(f"/v1/orders/{order['id']}/reroute"), 404)
    assert api.get(f"/v1/orders/{order['id']}").json()["status"] == "routed"
    here = as_role("associate", ["mitte"])
    r = here.post(f"/v1/orders/{order['id']}/cancel", json={})
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
