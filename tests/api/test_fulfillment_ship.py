"""Ship from store through the API: a request per location, accept, pick, pack and ship with
the carrier booked, stock consumed, payment captured, tracking updates until delivery."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from oms.adapters.carriers.simulated import SimulatedCarrier
from tests.fulfilling import item_statuses, request_of, requests_of, simulated_psp, step
from tests.helpers import Api, problem
from tests.ordering import Shop, atp, events, order_body, place


def test_ship_from_store_end_to_end(api: Api, shop: Shop, app_client: TestClient) -> None:
    shop({("mitte", "SKU-1"): 5})
    order = place(api, order_body(("SKU-1", 2)))
    [request] = requests_of(api, order["id"])
    assert (request["location_id"], request["type"], request["status"]) == (
        "mitte", "ship_from_store", "issued")
    assert order["items"][0]["fulfillment_request_id"] == request["id"]
    assert atp(api, "SKU-1") == {"mitte": 3}

    accepted = step(api, request["id"], "accept")
    assert accepted["status"] == "accepted"
    assert item_statuses(api, order["id"]) == ["in_fulfillment"]
    assert step(api, request["id"], "pick")["status"] == "picked"
    packed = step(api, request["id"], "pack")
    assert packed["parcels"] == [{"weight_grams": 1000, "length_mm": None, "width_mm": None,
                                  "height_mm": None}]
    shipped = step(api, request["id"], "ship")
    assert shipped["status"] == "shipped"
    shipment = shipped["shipment"]
    assert shipment["tracking_number"].startswith("SIM")
    assert (shipment["carrier"], shipment["label_status"]) == ("dhl", "booked")
    assert base64.b64decode(shipment["label"]["content"]).startswith(b"^XA")
    assert item_statuses(api, order["id"]) == ["shipped"]

    carrier = app_client.app.state.providers.carrier("dhl")  # type: ignore[attr-defined]
    assert isinstance(carrier, SimulatedCarrier)
    [booking] = carrier.calls
    assert booking.ship_to["city"] == "Berlin"
    assert [p.weight_grams for p in booking.parcels] == [1000]

    # The goods left: on_hand and reserved both went down by 2.
    level = api.get("/v1/inventory/mitte/SKU-1").json()
    assert (level["on_hand"], level["reserved"], level["atp"]) == (3, 0, 3)

    [capture] = simulated_psp(app_client).calls
    got = api.get(f"/v1/orders/{order['id']}").json()
    assert capture.amount_minor == 2 * (1990 + 378) + 490
    assert got["payments"][0]["status"] == "captured"
    assert got["status"] == "shipped"

    for status, when in (("in_transit", "2026-11-21T08:00:00Z"),
                         ("delivered", "2026-11-22T12:00:00Z"),
                         ("out_for_delivery", "2026-11-22T07:00:00Z")):
        r = api.post(f"/v1/shipments/{shipment['id']}/tracking-events",
                     json={"status": status, "occurred_at": when})
        assert r.status_code == 200, r.text
    # The late out_for_delivery update does not turn the delivered parcel back.
    assert r.json()["status"] == "delivered"
    assert item_statuses(api, order["id"]) == ["delivered"]
    got = api.get(f"/v1/orders/{order['id']}").json()
    assert got["status"] == "fulfilled"
    assert [e["status"] for e in got["shipments"][0]["tracking_events"]] == [
        "in_transit", "out_for_delivery", "delivered"]

    request_events = events(api, entity_id=request["id"])
    assert [(e["type"], e["sequence"]) for e in request_events] == [
        ("fulfillment_request.issued", 1), ("fulfillment_request.accepted", 2),
        ("fulfillment_request.picked", 3), ("fulfillment_request.packed", 4),
        ("fulfillment_request.shipped", 5)]
    # Booked once the step committed: created without a label, then booked.
    shipment_events = events(api, entity_id=shipment["id"])
    assert [e["type"] for e in shipment_events] == [
        "shipment.created", "shipment.booked", "shipment.updated", "shipment.updated"]
    assert [(e["payload"]["label_status"], e["payload"]["tracking_number"])
            for e in shipment_events[:2]] == [
        ("pending", None), ("booked", shipment["tracking_number"])]
    assert [e["type"] for e in events(api, entity_id=got["payments"][0]["id"])] == [
        "payment.captured"]
    sequences = [e["sequence"] for e in events(api, entity_id=order["id"])]
    assert sequences == sorted(sequences) == list(range(1, len(sequences) + 1))

    problem(api.post(f"/v1/fulfillment-requests/{request['id']}/accept", json={}), 409)


def test_each_step_answers_the_request_as_it_is_then_read(api: Api, shop: Shop) -> None:
    """A step answers with the request as it wrote it, items and all: the same as reading it
    right after, and the same as its event carries."""
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 2), ("SKU-2", 1)))
    [request] = requests_of(api, order["id"])
    for name, body in (("accept", None), ("pick", None),
                       ("pack", {"parcels": [{"weight_grams": 700, "length_mm": 300}]})):
        answer = step(api, request["id"], name, body)
        read = request_of(api, request["id"])  # with its shipments besides
        assert answer == {k: read[k] for k in answer}, name
        [event] = [e for e in events(api, entity_id=request["id"])
                   if e["sequence"] == answer["version"]]
        assert {k: event["payload"][k] for k in answer} == answer, name
    assert [i["item_status"] for i in answer["items"]] == ["in_fulfillment"] * 2
