"""Rejections, missing items at pick, failed captures and cancellations of items a store is
already working on, through the API: what the store, the order and the event feed show."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.fulfilling import item_statuses, level, requests_of, simulated_psp, step
from tests.helpers import Api, error_fields, problem
from tests.ordering import Shop, atp, events, order_body, place

#: One unit of a line with tax, in cents, and the shipping price (see tests/ordering.py).
LINE = 1990 + 378
SHIPPING = 490


def order_of(api: Api, order_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def request_at(api: Api, order_id: str, location_id: str) -> dict[str, Any]:
    [request] = [r for r in requests_of(api, order_id) if r["location_id"] == location_id]
    return request


def links(request: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """sku -> (the item's part in the request, its reason)."""
    return {x["sku"]: (x["status"], x["reason"]) for x in request["items"]}


def item_of(order: dict[str, Any], sku: str) -> dict[str, Any]:
    [item] = [i for i in order["items"] if i["sku"] == sku]
    found: dict[str, Any] = item
    return found


def ship_all(api: Api, request_id: str) -> dict[str, Any]:
    for name in ("accept", "pick", "pack"):
        step(api, request_id, name)
    return step(api, request_id, "ship")


def test_rejected_item_is_routed_to_the_next_store(api: Api, shop: Shop,
                                                   as_role: Callable[..., Api]) -> None:
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 5, ("potsdam", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1)))
    shirt, socks = item_of(order, "SKU-1")["id"], item_of(order, "SKU-2")["id"]
    [mitte] = requests_of(api, order["id"])
    assert mitte["location_id"] == "mitte"
    assert atp(api, "SKU-2") == {"mitte": 4, "potsdam": 5}
    store = as_role("associate", ["mitte"])
    step(store, mitte["id"], "accept")

    rejected = step(store, mitte["id"], "reject", {"items": [socks], "reason": "damaged"})
    # Mitte keeps the shirt and goes on with it; the socks left its request.
    assert rejected["status"] == "accepted"
    assert links(rejected) == {"SKU-1": ("open", None), "SKU-2": ("rejected", "damaged")}

    potsdam = request_at(api, order["id"], "potsdam")
    assert (potsdam["type"], potsdam["status"]) == ("ship_from_store", "issued")
    assert [(x["item_id"], x["status"]) for x in potsdam["items"]] == [(socks, "open")]
    assert request_at(api, order["id"], "mitte")["status"] == "accepted"
    got = order_of(api, order["id"])
    assert [(i["id"], i["status"], i["location_id"], i["fulfillment_request_id"])
            for i in got["items"]] == [
        (shirt, "in_fulfillment", "mitte", mitte["id"]),
        (socks, "routed", "potsdam", potsdam["id"])]
    assert got["status"] == "in_progress"
    # The socks' stock went back at mitte and is held at potsdam; the shirt's is untouched.
    assert atp(api, "SKU-2") == {"mitte": 5, "potsdam": 4}
    assert atp(api, "SKU-1") == {"mitte": 4}

    runs = api.get(f"/v1/orders/{order['id']}/routing-decisions",
                   params={"location_id": ["mitte", "potsdam"]}).json()["items"]
    assert [r["trigger"] for r in runs] == ["placement", "rejection"]
    rerun = runs[-1]
    assert rerun["assignments"] == {socks: "potsdam"}
    verdicts = {c["location_id"]: (c["verdict"], c["reason"])
                for c in rerun["considerations"] if c["item_id"] == socks}
    assert verdicts["mitte"] == ("ineligible", "location rejected these items before")
    assert verdicts["potsdam"][0] == "chosen"

    seen = events(api)
    rejection = [e for e in seen if e["type"] == "fulfillment_request.rejected"]
    assert [e["entity_id"] for e in rejection] == [mitte["id"]]
    assert rejection[0]["payload"]["rejected_items"] == [socks]
    assert rejection[0]["payload"]["rejection_reason"] == "damaged"
    # After the rejection: the socks routed to potsdam, then potsdam's request issued.
    after = seen[seen.index(rejection[0]) + 1:]
    [routed] = [e for e in after if e["type"] == "order.item_routed"]
    assert (routed["entity_id"], routed["payload"]["item_id"],
            routed["payload"]["location_id"]) == (order["id"], socks, "potsdam")
    [issued] = [e for e in after if e["type"] == "fulfillment_request.issued"]
    assert issued["entity_id"] == potsdam["id"]
    assert [x["item_id"] for x in issued["payload"]["items"]] == [socks]
    assert after.index(routed) < after.index(issued)
    assert [e["type"] for e in events(api, entity_id=potsdam["id"])] == [
        "fulfillment_request.issued"]
    assert [e["type"] for e in events(api, entity_id=mitte["id"])] == [
        "fulfillment_request.issued", "fulfillment_request.accepted",
        "fulfillment_request.rejected"]
    sequences = [e["sequence"] for e in events(api, entity_id=order["id"])]
    assert sequences == list(range(1, len(sequences) + 1))

    # Both stores carry on: each ships what it has.
    assert ship_all(api, potsdam["id"])["status"] == "shipped"
    for name in ("pick", "pack", "ship"):
        step(store, mitte["id"], name)
    assert item_statuses(api, order["id"]) == ["shipped", "shipped"]
    assert order_of(api, order["id"])["status"] == "shipped"


def test_rejection_without_alternative_holds_the_item_until_rerouted(
        api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-1"): 0})
    order = place(api, order_body(("SKU-1", 1)))
    [item] = order["items"]
    [mitte] = requests_of(api, order["id"])
    step(api, mitte["id"], "accept")

    rejected = step(api, mitte["id"], "reject", {"reason": "shelf empty"})
    assert rejected["status"] == "rejected"
    assert rejected["reason"] == "shelf empty"
    assert links(rejected) == {"SKU-1": ("rejected", "shelf empty")}
    got = order_of(api, order["id"])
    assert got["status"] == "on_hold"
    [held] = got["items"]
    assert (held["status"], held["location_id"], held["fulfillment_request_id"]) == (
        "on_hold", None, None)
    assert held["hold_reason"] == ("no eligible location has 1 of SKU-1 available; "
                                   "rejected before, not asked again: mitte")
    assert atp(api, "SKU-1") == {"mitte": 5, "potsdam": 0}
    [on_hold] = [e for e in events(api, entity_id=order["id"])
                 if e["type"] == "order.item_on_hold"]
    assert on_hold["payload"]["item_id"] == item["id"]
    assert "mitte" in on_hold["payload"]["reason"]
    assert [r["status"] for r in requests_of(api, order["id"])] == ["rejected"]

    # Mitte has the stock, but rejected the item: rerouting does not send it back there.
    r = api.post(f"/v1/orders/{order['id']}/reroute", json={})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["status"] == "on_hold"
    assert "mitte" in r.json()["items"][0]["hold_reason"]

    r = api.put("/v1/inventory/potsdam/SKU-1", json={"on_hand": 2, "safety_stock": 0})
    assert r.status_code == 200, r.text
    r = api.post(f"/v1/orders/{order['id']}/reroute", json={})
    assert r.status_code == 200, r.text
    [routed] = r.json()["items"]
    assert (routed["status"], routed["location_id"], routed["hold_reason"]) == (
        "routed", "potsdam", None)
    assert r.json()["status"] == "routed"
    assert atp(api, "SKU-1") == {"mitte": 5, "potsdam": 1}
    potsdam = request_at(api, order["id"], "potsdam")
    assert (potsdam["status"], [x["item_id"] for x in potsdam["items"]]) == (
        "issued", [item["id"]])
    runs = api.get(f"/v1/orders/{order['id']}/routing-decisions",
                   params={"location_id": "mitte"}).json()["items"]
    assert [r["trigger"] for r in runs] == ["placement", "rejection", "reroute", "reroute"]
    for run in runs[1:]:
        assert {c["location_id"]: c["verdict"] for c in run["considerations"]}["mitte"] == (
            "ineligible")


def test_the_longest_reason_accepted_is_kept(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5})
    order = place(api, order_body(("SKU-1", 1)))
    [mitte] = requests_of(api, order["id"])
    reason = "the shelf is empty, " * 14 + "checked twice" + "." * 7
    assert len(reason) == 300
    rejected = step(api, mitte["id"], "reject", {"reason": reason})
    assert (rejected["status"], rejected["reason"]) == ("rejected", reason)
    assert links(rejected) == {"SKU-1": ("rejected", reason)}
    [held] = order_of(api, order["id"])["items"]
    assert held["status"] == "on_hold"
    assert held["hold_reason"].endswith("not asked again: mitte")
    # One character more is refused before anything happens.
    body = problem(api.post(f"/v1/fulfillment-requests/{mitte['id']}/reject",
                            json={"reason": reason + "!"}), 422)
    assert error_fields(body) == ["reason"]


def test_pick_with_missing_items_rejects_them_and_picks_the_rest(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 5, ("potsdam", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1)))
    shirt, socks = item_of(order, "SKU-1")["id"], item_of(order, "SKU-2")["id"]
    [mitte] = requests_of(api, order["id"])
    step(api, mitte["id"], "accept")

    # Nothing would be left to pick: refused, and nothing changed.
    body = problem(api.post(f"/v1/fulfillment-requests/{mitte['id']}/pick",
                            json={"missing": [shirt, socks], "reason": "not found"}), 409)
    assert error_fields(body) == ["missing"]
    assert "reject" in body["detail"]
    assert request_at(api, order["id"], "mitte")["status"] == "accepted"
    assert item_statuses(api, order["id"]) == ["in_fulfillment", "in_fulfillment"]
    assert len(requests_of(api, order["id"])) == 1

    picked = step(api, mitte["id"], "pick", {"missing": [socks], "reason": "not found"})
    assert picked["status"] == "picked"
    assert links(picked) == {"SKU-1": ("open", None), "SKU-2": ("rejected", "not found")}
    potsdam = request_at(api, order["id"], "potsdam")
    assert (potsdam["status"], [x["item_id"] for x in potsdam["items"]]) == (
        "issued", [socks])
    got = order_of(api, order["id"])
    assert [(i["status"], i["location_id"]) for i in got["items"]] == [
        ("in_fulfillment", "mitte"), ("routed", "potsdam")]
    assert atp(api, "SKU-2") == {"mitte": 5, "potsdam": 4}
    assert [e["type"] for e in events(api, entity_id=mitte["id"])] == [
        "fulfillment_request.issued", "fulfillment_request.accepted",
        "fulfillment_request.rejected", "fulfillment_request.picked"]
    [rejection] = events(api, entity_id=mitte["id"], type="fulfillment_request.rejected")
    assert rejection["payload"]["rejected_items"] == [socks]
    assert rejection["payload"]["rejection_reason"] == "not found"

    # What mitte ships is the shirt alone.
    step(api, mitte["id"], "pack")
    shipped = step(api, mitte["id"], "ship")
    assert shipped["shipment"]["item_ids"] == [shirt]
    assert level(api, "mitte", "SKU-1") == (4, 0, 4)
    assert level(api, "mitte", "SKU-2") == (5, 0, 5)


def test_failed_capture_keeps_the_shipment_and_the_amount_owed(
        api: Api, shop: Shop, app_client: TestClient) -> None:
    # The shirt ships from mitte, the socks from potsdam: two requests.
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1), external_id="W-DECLINE"))
    psp = simulated_psp(app_client)
    psp.declined.add("PSP-W-DECLINE")
    mitte = request_at(api, order["id"], "mitte")
    potsdam = request_at(api, order["id"], "potsdam")

    shipped = ship_all(api, mitte["id"])
    assert shipped["status"] == "shipped"
    assert shipped["shipment"]["tracking_number"].startswith("SIM")
    assert level(api, "mitte", "SKU-1") == (4, 0, 4)
    got = order_of(api, order["id"])
    assert [s["id"] for s in got["shipments"]] == [shipped["shipment"]["id"]]
    [payment] = got["payments"]
    assert (payment["status"], payment["captured"]) == ("capture_failed", "0.00")
    assert payment["failure_reason"] == "declined by the issuer"
    assert item_statuses(api, order["id"]) == ["shipped", "routed"]
    [failed] = events(api, entity_id=payment["id"])
    assert failed["type"] == "payment.capture_failed"
    assert failed["payload"]["reason"] == "declined by the issuer"
    assert failed["payload"]["amount"] == f"{(LINE + SHIPPING) / 100:.2f}"
    assert [c.amount_minor for c in psp.calls] == [LINE + SHIPPING]
    assert psp.captured("PSP-W-DECLINE") == 0

    # The issuer accepts again: the next departure captures what both shipments owe.
    psp.declined.discard("PSP-W-DECLINE")
    assert ship_all(api, potsdam["id"])["status"] == "shipped"
    [payment] = order_of(api, order["id"])["payments"]
    assert (payment["status"], payment["captured"], payment["failure_reason"]) == (
        "captured", payment["amount"], None)
    assert psp.captured("PSP-W-DECLINE") == 2 * LINE + SHIPPING
    assert [c.amount_minor for c in psp.calls] == [LINE + SHIPPING, 2 * LINE + SHIPPING]
    assert [e["type"] for e in events(api, entity_id=payment["id"])] == [
        "payment.capture_failed", "payment.captured"]


def test_failed_capture_is_retried_through_the_order(api: Api, shop: Shop,
                                                     app_client: TestClient) -> None:
    shop({("mitte", "SKU-1"): 5})
    order = place(api, order_body(("SKU-1", 2), external_id="W-RETRY"))
    psp = simulated_psp(app_client)
    psp.declined.add("PSP-W-RETRY")
    [request] = requests_of(api, order["id"])
    ship_all(api, request["id"])
    owed = 2 * LINE + SHIPPING
    assert order_of(api, order["id"])["payments"][0]["status"] == "capture_failed"

    # Still declined: the retry answers with the order, the payment still failed.
    r = api.post(f"/v1/orders/{order['id']}/capture", json={})
    assert r.status_code == 200, r.text
    assert r.json()["payments"][0]["status"] == "capture_failed"

    psp.declined.discard("PSP-W-RETRY")
    r = api.post(f"/v1/orders/{order['id']}/capture", json={})
    assert r.status_code == 200, r.text
    [payment] = r.json()["payments"]
    assert (payment["status"], payment["captured"], payment["failure_reason"]) == (
        "captured", f"{owed / 100:.2f}", None)
    assert psp.captured("PSP-W-RETRY") == owed
    # Nothing more is owed: a further retry asks the PSP for nothing.
    calls = len(psp.calls)
    r = api.post(f"/v1/orders/{order['id']}/capture", json={})
    assert r.status_code == 200, r.text
    assert len(psp.calls) == calls
    assert [e["type"] for e in events(api, entity_id=payment["id"])] == [
        "payment.capture_failed", "payment.capture_failed", "payment.captured"]


def test_cancelling_items_in_fulfillment_takes_them_out_of_the_request(
        api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 2)))
    shirt, socks = item_of(order, "SKU-1")["id"], item_of(order, "SKU-2")["id"]
    [request] = requests_of(api, order["id"])
    step(api, request["id"], "accept")
    assert item_statuses(api, order["id"]) == ["in_fulfillment", "in_fulfillment"]
    assert atp(api, "SKU-2") == {"mitte": 3}

    r = api.post(f"/v1/orders/{order['id']}/cancel",
                 json={"items": [socks], "reason": "customer changed their mind"})
    assert r.status_code == 200, r.text
    assert [i["status"] for i in r.json()["items"]] == ["in_fulfillment", "cancelled"]
    assert atp(api, "SKU-2") == {"mitte": 5}
    assert atp(api, "SKU-1") == {"mitte": 4}
    still = request_at(api, order["id"], "mitte")
    assert still["status"] == "accepted"
    assert links(still) == {"SKU-1": ("open", None),
                            "SKU-2": ("cancelled", "customer changed their mind")}
    [withdrawn] = events(api, entity_id=request["id"], type="fulfillment_request.items_cancelled")
    assert withdrawn["payload"]["cancelled_items"] == [socks]
    assert withdrawn["payload"]["status"] == "accepted"

    r = api.post(f"/v1/orders/{order['id']}/cancel", json={"items": [shirt]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert atp(api, "SKU-1") == {"mitte": 5}
    gone = request_at(api, order["id"], "mitte")
    assert gone["status"] == "cancelled"
    assert {s for s, _ in links(gone).values()} == {"cancelled"}
    assert [e["type"] for e in events(api, entity_id=request["id"])] == [
        "fulfillment_request.issued", "fulfillment_request.accepted",
        "fulfillment_request.items_cancelled", "fulfillment_request.items_cancelled"]
    last = events(api, entity_id=request["id"])[-1]["payload"]
    assert (last["status"], last["cancelled_items"]) == ("cancelled", [shirt])

    # The store can do nothing more with it.
    for name in ("accept", "pick", "pack", "ship"):
        body = problem(api.post(f"/v1/fulfillment-requests/{request['id']}/{name}",
                                json={}), 409)
        assert "cancelled" in body["detail"], body
    body = problem(api.post(f"/v1/fulfillment-requests/{request['id']}/reject",
                            json={"reason": "too late"}), 409)
    assert "cancelled" in body["detail"], body
    assert (level(api, "mitte", "SKU-1"), level(api, "mitte", "SKU-2")) == (
        (5, 0, 5), (5, 0, 5))


def test_rejection_is_refused_after_shipping_and_for_foreign_items(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1)))
    shirt, socks = item_of(order, "SKU-1")["id"], item_of(order, "SKU-2")["id"]
    mitte = request_at(api, order["id"], "mitte")
    url = f"/v1/fulfillment-requests/{mitte['id']}/reject"

    # The socks are potsdam's: mitte cannot reject them; nor an item of no order at all.
    body = problem(api.post(url, json={"items": [shirt, socks, "no-such-item"],
                                       "reason": "damaged"}), 422)
    assert error_fields(body) == ["items.1", "items.2"]
    assert "not in this request" in body["errors"][0]["message"]
    assert socks in body["errors"][0]["message"]
    assert request_at(api, order["id"], "mitte")["status"] == "issued"
    assert item_statuses(api, order["id"]) == ["routed", "routed"]
    assert events(api, type="fulfillment_request.rejected") == []

    ship_all(api, mitte["id"])
    body = problem(api.post(url, json={"reason": "damaged"}), 409)
    assert body["detail"] == ("the request is shipped; items can be rejected only before "
                              "they leave the location")
    body = problem(api.post(url, json={"items": [shirt], "reason": "damaged"}), 409)
    assert "shipped" in body["detail"]
    assert request_at(api, order["id"], "mitte")["status"] == "shipped"
    assert item_statuses(api, order["id"]) == ["shipped", "routed"]
    assert len(requests_of(api, order["id"])) == 2
    assert level(api, "mitte", "SKU-1") == (4, 0, 4)
