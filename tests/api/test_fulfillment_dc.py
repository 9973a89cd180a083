"""A DC through the API: its requests POSTed, signed, to a real HTTP receiver (retried when it
fails, kept when the DC has no URL yet), acknowledged and shipped in parts by its integrator
with the stock consumed and the payment captured per shipment, and items it rejects routed to
a store."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from standardwebhooks.webhooks import Webhook

from oms.adapters.payments.simulated import SimulatedPsp
from oms.domain.events import utcnow
from oms.services.fulfillment import notify_providers
from tests.api.test_fulfillment_ship import item_statuses, requests_of, step
from tests.helpers import Api, location_body, problem
from tests.ordering import Shop, atp, events, order_body, place
from tests.receiver import Answerer, Receiver, in_turn

#: One unit of a line with tax, in cents, and the shipping price (see tests/ordering.py).
LINE = 1990 + 378
SHIPPING = 490
#: The DC, in Berlin-Schoenefeld (~20 km from the customer).
DC_COORDINATES = (52.3667, 13.5033)


# -- the provider's endpoint -----------------------------------------------------------------


PLAIN = {"content-type": "text/plain"}


def failing(*statuses: int) -> Answerer:
    """The DC answers with `statuses`, in turn, that it is busy; then 200."""
    return in_turn(*[(status, PLAIN, b"busy, try later") for status in statuses],
                   then=(200, PLAIN, b"ok"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A DC's HTTP endpoint on 127.0.0.1."""
    with Receiver(failing(), path="/oms/fulfillment") as receiver:
        yield receiver


# -- helpers ---------------------------------------------------------------------------------

Notify = Callable[..., int]


@pytest.fixture
def notify(engine: Engine, app_client: TestClient) -> Notify:
    """One pass of the worker's provider notifications, at `now` (default: the real now)."""

    def run(now: dt.datetime | None = None) -> int:
        providers = app_client.app.state.providers  # type: ignore[attr-defined]
        return notify_providers(engine, providers, now or utcnow())

    return run


DcShop = Callable[..., None]


@pytest.fixture
def dc_shop(api: Api, stocked: Callable[..., None]) -> DcShop:
    """Stock at dc-1, a DC near Berlin that ships, told of its requests at `callback_url`."""

    def make(levels: dict[str, int], callback_url: str | None) -> None:
        stocked({("dc-1", sku): on_hand for sku, on_hand in levels.items()})
        put_dc(api, callback_url)

    return make


def put_dc(api: Api, callback_url: str | None) -> None:
    lat, lon = DC_COORDINATES
    body = location_body(
        "Schoenefeld", type="dc", name="Berlin DC", capabilities=["ship"],
        address={"line1": "Logistikring 1", "city": "Schoenefeld", "postal_code": "12529",
                 "country": "DE", "lat": lat, "lon": lon},
        fulfillment_callback_url=callback_url)
    r = api.put("/v1/locations/dc-1", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["fulfillment_callback_url"] == callback_url


def secret_of(api: Api, location_id: str) -> str:
    r = api.get(f"/v1/locations/{location_id}/callback-secret")
    assert r.status_code == 200, r.text
    secret: str = r.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


def request_of(api: Api, request_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/fulfillment-requests/{request_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def order_of(api: Api, order_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def item_id(order: dict[str, Any], sku: str) -> str:
    [item] = [i for i in order["items"] if i["sku"] == sku]
    found: str = item["id"]
    return found


def level(api: Api, location_id: str, sku: str) -> tuple[int, int]:
    """(on_hand, reserved)"""
    r = api.get(f"/v1/inventory/{location_id}/{sku}")
    assert r.status_code == 200, r.text
    return r.json()["on_hand"], r.json()["reserved"]


def psp_of(app_client: TestClient) -> SimulatedPsp:
    psp = app_client.app.state.providers.psp("adyen")  # type: ignore[attr-defined]
    assert isinstance(psp, SimulatedPsp)
    return psp


def settled_events(api: Api, engine: Engine, **params: Any) -> list[dict[str, Any]]:
    """The event feed once it shows every event committed so far: on PostgreSQL the feed holds
    back events until every older transaction of the server has ended (other test runs' too)."""
    if engine.dialect.name == "postgresql":
        hidden = text("SELECT count(*) FROM events WHERE txid >= "
                      "pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        deadline = time.monotonic() + 30
        with engine.connect() as conn:
            while conn.execute(hidden).scalar_one():
                conn.rollback()
                assert time.monotonic() < deadline, "events stayed hidden for 30 s"
                time.sleep(0.01)
    return events(api, **params)


def at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


# -- tests -----------------------------------------------------------------------------------


def test_dc_is_told_acknowledges_and_ships_in_parts(
        api: Api, dc_shop: DcShop, receiver: Receiver, notify: Notify, engine: Engine,
        app_client: TestClient, as_role: Callable[..., Api]) -> None:
    dc_shop({"SKU-1": 5, "SKU-2": 5}, receiver.url)
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1)))
    shirt, socks = item_id(order, "SKU-1"), item_id(order, "SKU-2")
    [request] = requests_of(api, order["id"])
    assert (request["location_id"], request["type"], request["status"]) == (
        "dc-1", "third_party", "issued")
    assert [x["item_id"] for x in request["items"]] == [shirt, socks]
    assert request["notification"] == {"state": "pending", "attempts": 0, "last_error": None,
                                       "next_attempt_at": request["notification"][
                                           "next_attempt_at"]}
    assert atp(api, "SKU-1") == {"dc-1": 4}

    # The worker's pass POSTs the request to the DC, signed with the location's secret.
    assert notify() == 1
    [post] = receiver.requests("POST")
    assert len(receiver.requests()) == 1
    assert post.path == "/oms/fulfillment"
    assert post.headers["content-type"] == "application/json"
    assert post.headers["webhook-id"] == request["id"]
    payload = Webhook(secret_of(api, "dc-1")).verify(post.body, post.headers)
    assert payload == post.json
    assert payload["id"] == request["id"]
    assert payload["order_id"] == order["id"]
    assert payload["type"] == "third_party"
    assert [(x["item_id"], x["sku"], x["quantity"]) for x in payload["items"]] == [
        (shirt, "SKU-1", 1), (socks, "SKU-2", 1)]
    assert payload["ship_to"]["line1"] == "Unter den Linden 5"
    assert payload["ship_to"]["city"] == "Berlin"
    assert payload["service_level"] == "standard"
    assert payload["order_display_id"] == order["display_id"]
    # Whether we reached it is ours to know, not the provider's.
    assert "notification" not in payload
    # Another location's secret does not verify it.
    assert api.put("/v1/locations/other", json=location_body()).status_code == 201
    with pytest.raises(Exception, match="signature"):
        Webhook(secret_of(api, "other")).verify(post.body, post.headers)

    got = request_of(api, request["id"])
    assert got["notification"] == {"state": "delivered", "attempts": 1, "last_error": None,
                                   "next_attempt_at": None}
    # Delivered once: later passes send nothing more.
    assert notify() == 0
    assert notify(utcnow() + dt.timedelta(days=1)) == 0
    assert len(receiver.requests()) == 1

    # The DC's integrator acknowledges, then reports two shipments.
    dc = as_role("integrator")
    acknowledged = step(dc, request["id"], "acknowledge")
    assert acknowledged["status"] == "acknowledged"
    assert item_statuses(api, order["id"]) == ["in_fulfillment", "in_fulfillment"]
    assert (level(api, "dc-1", "SKU-1"), level(api, "dc-1", "SKU-2")) == ((5, 1), (5, 1))

    first = step(dc, request["id"], "shipments",
                 {"items": [shirt], "carrier": "dhl", "tracking_number": "T1"}, status=201)
    assert first["status"] == "partially_shipped"
    assert first["shipment"]["item_ids"] == [shirt]
    assert (first["shipment"]["carrier"], first["shipment"]["tracking_number"]) == ("dhl", "T1")
    assert {x["item_id"]: x["status"] for x in first["items"]} == {shirt: "shipped",
                                                                  socks: "open"}
    assert item_statuses(api, order["id"]) == ["shipped", "in_fulfillment"]
    # The shirt left: its stock is consumed, the socks' still held.
    assert (level(api, "dc-1", "SKU-1"), level(api, "dc-1", "SKU-2")) == ((4, 0), (5, 1))
    psp = psp_of(app_client)
    [capture] = psp.calls
    # The first departure pays for the shipping too.
    assert capture.amount_minor == LINE + SHIPPING
    assert order_of(api, order["id"])["payments"][0]["status"] == "partially_captured"

    # What left already (the request's state: 409), and what was never in the request
    # (422), cannot be shipped.
    problem(dc.post(f"/v1/fulfillment-requests/{request['id']}/shipments",
                    json={"items": [shirt], "carrier": "dhl", "tracking_number": "T9"}), 409)
    problem(dc.post(f"/v1/fulfillment-requests/{request['id']}/shipments",
                    json={"items": ["no-such-item"], "carrier": "dhl",
                          "tracking_number": "T9"}), 422)
    other = place(api, order_body(("SKU-1", 1), external_id="W-100235"))
    [other_request] = requests_of(api, other["id"])
    problem(dc.post(f"/v1/fulfillment-requests/{request['id']}/shipments",
                    json={"items": [other["items"][0]["id"]], "carrier": "dhl",
                          "tracking_number": "T9"}), 422)
    assert len(psp.calls) == 1

    second = step(dc, request["id"], "shipments",
                  {"items": [socks], "carrier": "dhl", "tracking_number": "T2"}, status=201)
    assert second["status"] == "shipped"
    assert {x["item_id"]: x["status"] for x in second["items"]} == {shirt: "shipped",
                                                                   socks: "shipped"}
    assert item_statuses(api, order["id"]) == ["shipped", "shipped"]
    # The other order still holds one SKU-1.
    assert (level(api, "dc-1", "SKU-1"), level(api, "dc-1", "SKU-2")) == ((4, 1), (4, 0))
    assert [c.amount_minor for c in psp.calls] == [LINE + SHIPPING, LINE]
    got_order = order_of(api, order["id"])
    grand_total = 2 * LINE + SHIPPING
    assert got_order["totals"]["grand_total"] == f"{grand_total / 100:.2f}"
    assert sum(c.amount_minor for c in psp.calls) == grand_total
    assert psp.captured(f"PSP-{order_body()['external_id']}") == grand_total
    [payment] = got_order["payments"]
    assert (payment["status"], payment["captured"]) == ("captured", f"{grand_total / 100:.2f}")
    assert got_order["status"] == "shipped"
    shipments = request_of(api, request["id"])["shipments"]
    assert [(s["id"], s["tracking_number"], s["item_ids"]) for s in shipments] == [
        (first["shipment"]["id"], "T1", [shirt]), (second["shipment"]["id"], "T2", [socks])]
    # Nothing is left to ship.
    problem(dc.post(f"/v1/fulfillment-requests/{request['id']}/shipments",
                    json={"items": [socks], "carrier": "dhl", "tracking_number": "T9"}), 409)

    request_events = settled_events(api, engine, entity_id=request["id"])
    assert [(e["type"], e["sequence"]) for e in request_events] == [
        ("fulfillment_request.issued", 1), ("fulfillment_request.acknowledged", 2),
        ("fulfillment_request.shipped", 3), ("fulfillment_request.shipped", 4)]
    assert [e["payload"]["status"] for e in request_events] == [
        "issued", "acknowledged", "partially_shipped", "shipped"]
    for shipment in (first["shipment"], second["shipment"]):
        assert [(e["type"], e["sequence"]) for e in settled_events(
            api, engine, entity_id=shipment["id"])] == [("shipment.created", 1)]
    captured = settled_events(api, engine, entity_id=payment["id"])
    assert [e["type"] for e in captured] == ["payment.captured", "payment.captured"]
    assert captured[0]["sequence"] < captured[1]["sequence"]
    assert [(e["payload"]["amount"], e["payload"]["status"]) for e in captured] == [
        (f"{(LINE + SHIPPING) / 100:.2f}", "partially_captured"),
        (f"{LINE / 100:.2f}", "captured")]
    sequences = [e["sequence"] for e in settled_events(api, engine, entity_id=order["id"])]
    assert sequences == sorted(sequences) == list(range(1, len(sequences) + 1))
    # Told of this request once; the other order's request is news.
    assert notify() == 1
    assert [p.headers["webhook-id"] for p in receiver.requests("POST")] == [
        request["id"], other_request["id"]]


def test_failed_notification_is_retried_when_due(
        api: Api, dc_shop: DcShop, receiver: Receiver, notify: Notify) -> None:
    dc_shop({"SKU-1": 5}, receiver.url)
    order = place(api, order_body(("SKU-1", 1)))
    [request] = requests_of(api, order["id"])
    receiver.answer = failing(503)

    before = utcnow()
    assert notify() == 0
    [refused] = receiver.requests("POST")
    after = utcnow()
    notification = request_of(api, request["id"])["notification"]
    assert notification["state"] == "pending"
    assert notification["attempts"] == 1
    # The DC's status, never its answer's body.
    assert notification["last_error"] == "HTTP 503 Service Unavailable"
    # Standard Webhooks' schedule: the second attempt 5 s (+-10%) after the first failed.
    next_at = at(notification["next_attempt_at"])
    assert before + dt.timedelta(seconds=4.5) <= next_at <= after + dt.timedelta(seconds=5.5)

    # Not due yet: nothing is sent.
    assert notify(next_at - dt.timedelta(seconds=1)) == 0
    assert len(receiver.requests("POST")) == 1

    # The receiver is back and the time has come: delivered, with the same message id.
    assert notify(next_at + dt.timedelta(seconds=1)) == 1
    assert len(receiver.requests("POST")) == 2
    delivered = receiver.requests("POST")[1]
    assert delivered.headers["webhook-id"] == refused.headers["webhook-id"] == request["id"]
    assert delivered.json == refused.json
    Webhook(secret_of(api, "dc-1")).verify(delivered.body, delivered.headers)
    assert request_of(api, request["id"])["notification"] == {
        "state": "delivered", "attempts": 2, "last_error": None, "next_attempt_at": None}

    assert notify(next_at + dt.timedelta(hours=1)) == 0
    assert len(receiver.requests("POST")) == 2
    # Each outcome was recorded with its event.
    outcomes = events(api, entity_id=f"{request['id']}/notification")
    assert [(e["type"], e["sequence"], e["payload"]["state"]) for e in outcomes] == [
        ("fulfillment_request.notification_failed", 1, "pending"),
        ("fulfillment_request.notified", 2, "delivered")]
    assert outcomes[0]["payload"]["last_error"] == notification["last_error"]


def test_dc_without_callback_url_keeps_its_notification(
        api: Api, dc_shop: DcShop, receiver: Receiver, notify: Notify) -> None:
    dc_shop({"SKU-1": 5}, None)
    order = place(api, order_body(("SKU-1", 1)))
    [request] = requests_of(api, order["id"])

    assert notify() == 0
    notification = request_of(api, request["id"])["notification"]
    assert (notification["state"], notification["attempts"]) == ("pending", 1)
    assert notification["last_error"] == (
        "location dc-1 has no fulfillment_callback_url; set one to have its requests "
        "delivered")
    assert notification["next_attempt_at"] is not None
    assert receiver.requests() == []

    # Once the DC has a URL, the next pass that is due delivers it.
    put_dc(api, receiver.url)
    assert notify(at(notification["next_attempt_at"]) + dt.timedelta(seconds=1)) == 1
    [post] = receiver.requests("POST")
    assert post.json["id"] == request["id"]
    Webhook(secret_of(api, "dc-1")).verify(post.body, post.headers)
    got = request_of(api, request["id"])["notification"]
    assert (got["state"], got["attempts"], got["last_error"]) == ("delivered", 2, None)


def test_item_the_dc_rejects_goes_to_a_store(
        api: Api, dc_shop: DcShop, shop: Shop, receiver: Receiver, notify: Notify,
        engine: Engine, as_role: Callable[..., Api]) -> None:
    shop({("mitte", "SKU-2"): 5})
    dc_shop({"SKU-1": 5, "SKU-2": 5}, receiver.url)
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1)))
    shirt, socks = item_id(order, "SKU-1"), item_id(order, "SKU-2")
    # The DC has both: one location for the whole order beats the nearer store.
    [dc_request] = requests_of(api, order["id"])
    assert (dc_request["location_id"], dc_request["type"]) == ("dc-1", "third_party")
    assert atp(api, "SKU-2") == {"dc-1": 4, "mitte": 5}
    assert notify() == 1

    dc = as_role("integrator")
    step(dc, dc_request["id"], "acknowledge")
    rejected = step(dc, dc_request["id"], "reject", {"items": [socks], "reason": "damaged"})
    # The DC keeps the shirt and goes on with it; the socks left its request.
    assert rejected["status"] == "acknowledged"
    assert {x["item_id"]: (x["status"], x["reason"]) for x in rejected["items"]} == {
        shirt: ("open", None), socks: ("rejected", "damaged")}

    [mitte] = [r for r in requests_of(api, order["id"]) if r["location_id"] == "mitte"]
    assert (mitte["type"], mitte["status"]) == ("ship_from_store", "issued")
    assert [(x["item_id"], x["status"]) for x in mitte["items"]] == [(socks, "open")]
    assert "notification" not in mitte
    got = order_of(api, order["id"])
    assert [(i["id"], i["status"], i["location_id"], i["fulfillment_request_id"])
            for i in got["items"]] == [
        (shirt, "in_fulfillment", "dc-1", dc_request["id"]),
        (socks, "routed", "mitte", mitte["id"])]
    # The socks' stock went back at the DC and is held at mitte.
    assert atp(api, "SKU-2") == {"dc-1": 5, "mitte": 4}
    assert level(api, "dc-1", "SKU-1") == (5, 1)
    # The store's request is not sent anywhere; the DC was told once.
    assert notify() == 0
    assert len(receiver.requests("POST")) == 1

    # The DC ships what it kept: that closes its request.
    shipped = step(dc, dc_request["id"], "shipments",
                   {"items": [shirt], "carrier": "dhl", "tracking_number": "T1"}, status=201)
    assert shipped["status"] == "shipped"
    assert item_statuses(api, order["id"]) == ["shipped", "routed"]

    assert [e["type"] for e in settled_events(api, engine, entity_id=dc_request["id"])] == [
        "fulfillment_request.issued", "fulfillment_request.acknowledged",
        "fulfillment_request.rejected", "fulfillment_request.shipped"]
    runs = api.get(f"/v1/orders/{order['id']}/routing-decisions").json()["items"]
    assert [r["trigger"] for r in runs] == ["placement", "rejection"]
