"""GET /v1/orders/{id}/routing-decisions: per item the location chosen, the best passed over
and counts per reason, as the run kept them; any location's part told on request from what
the run saw, whatever changed since."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from oms.adapters.db import tables as t
from oms.services.orders import reroute_waiting
from tests.helpers import Api, location_body, problem
from tests.ordering import Shop, order_body, place


def runs(api: Api, order_id: str, *location_ids: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/orders/{order_id}/routing-decisions",
                params={"location_id": list(location_ids)})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["items"]
    return found


def said(run: dict[str, Any], location_id: str) -> list[tuple[str, str, str]]:
    """(verdict, code, reason) of a location asked about, per item."""
    return [(c["verdict"], c["code"], c["reason"]) for c in run["considerations"]
            if c["location_id"] == location_id]


def put_location(api: Api, location_id: str, lat: float, lon: float, **overrides: Any) -> None:
    body = location_body(location_id.title(), address={
        "line1": "Hauptstrasse 1", "city": location_id.title(), "postal_code": "10000",
        "country": "DE", "lat": lat, "lon": lon}, **overrides)
    r = api.put(f"/v1/locations/{location_id}", json=body)
    assert r.status_code in (200, 201), r.text


def stock(api: Api, location_id: str, sku: str, on_hand: int) -> None:
    r = api.put(f"/v1/inventory/{location_id}/{sku}", json={"on_hand": on_hand})
    assert r.status_code == 200, r.text


def test_a_run_shows_the_choice_the_best_passed_over_and_counts_per_reason(
        api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 1, ("potsdam", "SKU-1"): 5, ("hamburg", "SKU-1"): 5,
          ("munich", "SKU-1"): 5})
    put_location(api, "leipzig", 51.3397, 12.3731)
    put_location(api, "dresden", 51.0504, 13.7373)
    put_location(api, "closed", 52.52, 13.40, active=False)
    put_location(api, "counter", 52.52, 13.40, capabilities=["pickup"])
    for location_id in ("leipzig", "dresden", "closed", "counter"):
        stock(api, location_id, "SKU-1", 5)
    order = place(api, order_body(("SKU-1", 2)))

    [run] = runs(api, order["id"])
    assert run["considerations"] == []
    [decision] = run["decisions"]
    assert decision["item_id"] == order["items"][0]["id"]
    assert decision["location_id"] == "potsdam"
    assert decision["reason"].startswith("chosen: priority 10, ")
    assert {k: decision["score"][k] for k in ("takes", "rule_group", "priority", "atp_left")} == {
        "takes": 1, "rule_group": None, "priority": 10, "atp_left": 3}
    # Best first: all could take it; they are farther.
    assert [(a["location_id"], a["code"]) for a in decision["alternatives"]] == [
        ("leipzig", "farther"), ("dresden", "farther"), ("hamburg", "farther")]
    assert [a["score"]["distance_km"] for a in decision["alternatives"]] == sorted(
        a["score"]["distance_km"] for a in decision["alternatives"])
    assert decision["not_chosen"] == {"farther": 4, "inactive": 1, "no_shipping": 1,
                                      "not_enough_atp": 1}


def test_any_location_is_explained_as_the_run_saw_it(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 1, ("potsdam", "SKU-1"): 5, ("hamburg", "SKU-1"): 5,
          ("munich", "SKU-1"): 5, ("mitte", "SKU-2"): 3, ("potsdam", "SKU-2"): 3})
    order = place(api, order_body(("SKU-1", 2), ("SKU-2", 1)))
    shirt, socks = (i["id"] for i in order["items"])

    [run] = runs(api, order["id"], "munich", "mitte")
    assert [(c["item_id"], c["location_id"]) for c in run["considerations"]] == [
        (shirt, "munich"), (socks, "munich"), (shirt, "mitte"), (socks, "mitte")]
    assert said(run, "munich") == [
        ("passed_over", "takes_less_of_the_order",
         "another location takes more of the order: fewer shipments"),
        ("passed_over", "not_enough_atp", "not enough ATP: has 0, the item needs 1")]
    assert said(run, "mitte") == [
        ("passed_over", "not_enough_atp", "not enough ATP: has 1, the item needs 2"),
        ("passed_over", "takes_less_of_the_order",
         "another location takes more of the order: fewer shipments")]
    [munich_for_shirt, _] = [c for c in run["considerations"] if c["location_id"] == "munich"]
    assert munich_for_shirt["score"]["takes"] == 1
    assert run["decisions"][0]["score"]["takes"] == 2

    # Stock and locations change afterwards: the run is still told as it was.
    stock(api, "mitte", "SKU-1", 50)
    put_location(api, "munich", 48.1374, 11.5755, active=False)
    put_location(api, "later", 52.52, 13.40)
    [again] = runs(api, order["id"], "munich", "mitte", "later")
    assert said(again, "munich") == said(run, "munich")
    assert said(again, "mitte") == said(run, "mitte")
    assert said(again, "later") == [
        ("ineligible", "not_a_location_yet", "not a location yet when this run ran")] * 2
    assert again["decisions"] == run["decisions"]


def test_asking_about_no_location_is_not_found(api: Api, shop: Shop) -> None:
    shop({("potsdam", "SKU-1"): 5})
    order = place(api, order_body())
    answer = problem(api.get(f"/v1/orders/{order['id']}/routing-decisions",
                             params={"location_id": ["potsdam", "atlantis"]}), 404)
    assert "atlantis" in answer["detail"]
    assert [e["field"] for e in answer["errors"]] == ["location_id.1"]
    problem(api.get(f"/v1/orders/{order['id']}/routing-decisions",
                    params={"location_id": "x" * 65}), 422)


def test_a_run_keeps_no_account_of_locations_that_held_none_of_the_order(
        api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    # Forty stores, three holding the sku: the run keeps those three, not forty.
    stocked({(f"store-{n:02d}", "SKU-1"): 5 + n if n < 3 else 0 for n in range(40)})
    order = place(api, order_body(("SKU-1", 1)))
    with engine.connect() as conn:
        [row] = conn.execute(select(t.routing_runs.c.decisions, t.routing_runs.c.inputs)
                             .where(t.routing_runs.c.order_id == order["id"])).all()
    [decision] = row.decisions
    assert decision["location_id"] == "store-02"  # equal in all but ATP: the most left
    assert [a["location_id"] for a in decision["alternatives"]] == ["store-01", "store-00"]
    assert decision["not_chosen"] == {"less_atp_left": 2, "not_enough_atp": 37}
    assert row.inputs["candidates"]["location_ids"] == ["store-00", "store-01", "store-02"]
    # Yet any of the forty is explained.
    [run] = runs(api, order["id"], "store-39")
    assert said(run, "store-39") == [
        ("passed_over", "not_enough_atp", "not enough ATP: has 0, the item needs 1")]


def test_the_worker_s_runs_are_explained_too(api: Api, engine: Engine,
                                             stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 0, ("hamburg", "A"): 0})
    r = api.post("/v1/orders", json=order_body(("A", 1), fulfillment_location_id="berlin"))
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "on_hold"
    assert reroute_waiting(engine) == 1  # nothing new: no run kept
    stock(api, "hamburg", "A", 4)
    reroute_waiting(engine)
    assert [run["trigger"] for run in runs(api, order["id"])] == ["placement"]
    stock(api, "berlin", "A", 2)
    reroute_waiting(engine)

    placement, worker = runs(api, order["id"], "berlin", "hamburg")
    assert placement["decisions"][0]["location_id"] is None
    assert placement["decisions"][0]["reason"] == "no eligible location has 1 of A available"
    assert placement["decisions"][0]["not_chosen"] == {"not_enough_atp": 1,
                                                       "not_the_named_location": 1}
    assert said(placement, "berlin") == [
        ("passed_over", "not_enough_atp", "not enough ATP: has 0, the item needs 1")]
    assert worker["trigger"] == "worker"
    assert worker["decisions"][0]["location_id"] == "berlin"
    assert said(worker, "berlin")[0][:2] == ("chosen", "chosen")
    assert said(worker, "hamburg") == [
        ("ineligible", "not_the_named_location", "the order names berlin to fulfil it")]
