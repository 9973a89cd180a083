"""Inventory over HTTP: levels, adjustments, future stock, availability."""

from __future__ import annotations

from collections.abc import Callable

from tests.helpers import Api, location_body, product_body
from tests.ordering import Shop, order_body, place


def test_put_level_sets_on_hand_and_safety_stock(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 0})
    r = api.put("/v1/inventory/berlin/A", json={"on_hand": 12, "safety_stock": 2})
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("on_hand", "reserved", "safety_stock", "atp")} == {
        "on_hand": 12, "reserved": 0, "safety_stock": 2, "atp": 10}
    assert api.get("/v1/inventory/berlin/A").json()["atp"] == 10


def test_put_level_refuses_negative_numbers_and_unknown_things(
    api: Api, stocked: Callable[..., None]
) -> None:
    stocked({("berlin", "A"): 3})
    r = api.put("/v1/inventory/berlin/A", json={"on_hand": -1})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "on_hand"
    r = api.put("/v1/inventory/berlin/A", json={"on_hand": 1, "safety_stock": -2})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "safety_stock"
    r = api.put("/v1/inventory/nowhere/A", json={"on_hand": 1})
    assert r.status_code == 404
    assert "nowhere" in r.json()["detail"]
    r = api.put("/v1/inventory/berlin/NOPE", json={"on_hand": 1})
    assert r.status_code == 404
    assert "NOPE" in r.json()["detail"]
    assert api.get("/v1/inventory/berlin/A").json()["on_hand"] == 3


def test_adjustments_apply_all_or_nothing(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5, ("berlin", "B"): 2, ("munich", "A"): 1})
    ok = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "berlin", "sku": "A", "delta": 3, "reason": "receipt"},
        {"location_id": "munich", "sku": "A", "delta": -1, "reason": "damaged"},
    ]})
    assert ok.status_code == 200, ok.text
    assert [x["on_hand"] for x in ok.json()["levels"]] == [8, 0]

    refused = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "berlin", "sku": "A", "delta": 10, "reason": "receipt"},
        {"location_id": "berlin", "sku": "B", "delta": -3, "reason": "count"},
    ]})
    # Well formed, but more than the stock has: a conflict with the stock as it is now.
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"] == [
        {"field": "adjustments.1.delta",
         "message": "on_hand is 2; a delta of -3 would make it negative"}]
    assert api.get("/v1/inventory/berlin/A").json()["on_hand"] == 8
    assert api.get("/v1/inventory/berlin/B").json()["on_hand"] == 2


def test_adjustment_of_a_sku_never_stocked_there_creates_the_level(
    api: Api, stocked: Callable[..., None]
) -> None:
    stocked({("berlin", "A"): 5})
    api.put("/v1/locations/munich", json=location_body("Munich"))
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "munich", "sku": "A", "delta": 4, "reason": "transfer in"}]})
    assert r.status_code == 200
    assert api.get("/v1/inventory/munich/A").json()["on_hand"] == 4


def test_adjustments_name_unknown_skus_and_empty_batches(
    api: Api, stocked: Callable[..., None]
) -> None:
    stocked({("berlin", "A"): 5})
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "berlin", "sku": "A", "delta": 1, "reason": "x"},
        {"location_id": "berlin", "sku": "GHOST", "delta": 1, "reason": "x"}]})
    assert r.status_code == 404
    assert r.json()["errors"] == [{"field": "adjustments.1.sku", "message": "no product 'GHOST'"}]
    assert api.post("/v1/inventory/adjustments", json={"adjustments": []}).status_code == 422
    zero = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "berlin", "sku": "A", "delta": 0, "reason": "x"}]})
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["field"] == "adjustments.0.delta"


def test_availability_per_location_with_future_and_totals(
    api: Api, stocked: Callable[..., None]
) -> None:
    stocked({("berlin", "A"): 10, ("munich", "A"): 4, ("berlin", "B"): 1}, safety_stock=1)
    r = api.post("/v1/inventory/future", json={"entries": [
        {"location_id": "munich", "sku": "A", "quantity": 20, "available_on": "2099-03-01"},
        {"location_id": "berlin", "sku": "A", "quantity": 5, "available_on": "2099-02-01"},
        {"location_id": "berlin", "sku": "A", "quantity": 9, "available_on": "2001-01-01"},
    ]})
    assert r.status_code == 200, r.text
    r = api.get("/v1/availability", params=[("sku", "A"), ("sku", "B")])
    assert r.status_code == 200
    a, b = r.json()["items"]
    assert a["sku"] == "A"
    berlin, munich = a["locations"]
    assert (berlin["location_id"], berlin["on_hand"], berlin["safety_stock"], berlin["atp"]) == (
        "berlin", 10, 1, 9)
    # Stock expected in the past is no longer future stock.
    assert berlin["future"] == [{"quantity": 5, "reserved": 0, "available": 5,
                                "available_on": "2099-02-01"}]
    assert munich["future"] == [{"quantity": 20, "reserved": 0, "available": 20,
                                "available_on": "2099-03-01"}]
    assert a["totals"] == {"on_hand": 14, "reserved": 0, "atp": 12, "future": 25}
    assert b["totals"]["atp"] == 0

    only_munich = api.get("/v1/availability", params={"sku": "A", "location_id": "munich"})
    assert [x["location_id"] for x in only_munich.json()["items"][0]["locations"]] == ["munich"]


def test_availability_totals_leave_out_the_negative_atp_of_a_location_in_discrepancy(
    api: Api, shop: Shop
) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-1"): 3})
    place(api, order_body(("SKU-1", 2)))  # reserved at mitte, the nearest
    # A count finds one left at mitte: fewer than the two reserved there.
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "mitte", "sku": "SKU-1", "delta": -4, "reason": "count"}]})
    assert r.status_code == 200, r.text
    # Stock only expected at a third store still lists that store.
    api.put("/v1/locations/hamburg", json=location_body("Hamburg"))
    r = api.post("/v1/inventory/future", json={"entries": [
        {"location_id": "hamburg", "sku": "SKU-1", "quantity": 6, "available_on": "2099-01-01"}]})
    assert r.status_code == 200, r.text

    [item] = api.get("/v1/availability", params={"sku": "SKU-1"}).json()["items"]
    rows = {row["location_id"]: row for row in item["locations"]}
    assert list(rows) == ["hamburg", "mitte", "potsdam"]
    assert (rows["mitte"]["on_hand"], rows["mitte"]["reserved"], rows["mitte"]["atp"],
            rows["mitte"]["discrepancy"]) == (1, 2, -1, True)
    assert (rows["hamburg"]["on_hand"], rows["hamburg"]["atp"]) == (0, 0)
    assert item["totals"] == {"on_hand": 4, "reserved": 2, "atp": 3, "future": 6}


def test_future_entries_are_replaced_per_date(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 0})
    for quantity in (5, 8):
        api.post("/v1/inventory/future", json={"entries": [
            {"location_id": "berlin", "sku": "A", "quantity": quantity,
             "available_on": "2099-01-01"}]})
    item = api.get("/v1/availability", params={"sku": "A"}).json()["items"][0]
    assert item["locations"][0]["future"] == [{"quantity": 8, "reserved": 0, "available": 8,
                                                   "available_on": "2099-01-01"}]


def test_availability_of_an_unknown_sku_is_404(api: Api) -> None:
    api.put("/v1/products/A", json=product_body())
    r = api.get("/v1/availability", params=[("sku", "A"), ("sku", "ZZ")])
    assert r.status_code == 404
    assert "ZZ" in r.json()["detail"]
    assert api.get("/v1/availability").status_code == 422


def test_inventory_changes_appear_in_the_event_feed(api: Api, stocked: Callable[..., None]
                                                    ) -> None:
    stocked({("berlin", "A"): 5})
    api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "berlin", "sku": "A", "delta": -2, "reason": "damaged"}]})
    feed = api.get("/v1/events", params={"type": "inventory.*"}).json()
    changes = [(e["entity_id"], e["sequence"], e["payload"]["on_hand"], e["payload"]["reason"])
               for e in feed["items"]]
    assert changes == [("berlin/A", 1, 5, "set"), ("berlin/A", 2, 3, "adjustment")]
    assert feed["items"][1]["payload"]["note"] == "damaged"
    later = api.get("/v1/events", params={"after": feed["next_after"]}).json()
    assert later["items"] == []
    assert later["next_after"] == feed["next_after"]
    everything = api.get("/v1/events").json()["items"]
    # The test's own API key was made first: that is an event too.
    assert {e["type"] for e in everything} == {
        "api_key.created", "location.upserted", "product.upserted", "inventory.changed"}
    assert api.get("/v1/events", params={"after": "nonsense"}).status_code == 422
