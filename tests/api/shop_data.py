"""A small shop in the middle of its day, made through the API: what the schemathesis run
fuzzes against, so that ids in paths can name real resources in every state."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from oms.adapters.carriers.simulated import SimulatedCarrier
from oms.domain.events import utcnow
from oms.services.fulfillment import notify_providers
from oms.services.webhooks import fan_out
from tests.fulfilling import providers_of, requests_of
from tests.helpers import Api, location_body, product_body
from tests.ordering import COORDINATES, order_body

REQUESTS = "/v1/fulfillment-requests/{request_id}"


@dataclass
class ShopData:
    """What the shop holds: ids by the path parameter that names them; for operations that
    move a resource on (a step, a cancellation, a deletion), the resources in the state the
    operation starts from, by "METHOD path"; the item ids of each order and fulfilment
    request; its stores (that take pickups); event ids; a cursor of each list (by path)."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    targets: dict[str, list[str]] = field(default_factory=dict)
    items: dict[str, list[str]] = field(default_factory=dict)
    stores: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)

    def add(self, parameter: str, *values: str) -> None:
        known = self.ids.setdefault(parameter, [])
        known.extend(v for v in values if v not in known)

    def target(self, operation: str, value: str) -> None:
        self.targets.setdefault(operation, []).append(value)


def _ok(response: Any, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200,)), (
        f"{response.request.method} {response.request.url}: "
        f"{response.status_code} {response.text}")
    return response.json() if response.content else None


def _store(location_id: str) -> dict[str, Any]:
    lat, lon = COORDINATES[location_id]
    return location_body(location_id.title(), address={
        "line1": "Hauptstrasse 1", "city": location_id.title(), "postal_code": "10000",
        "country": "DE", "lat": lat, "lon": lon})


def seed_shop(api: Api, as_role: Callable[..., Api], app_client: TestClient, engine: Engine
              ) -> ShopData:
    """Stores and a DC, products (one a pre-order), stock and future stock, a routing rule;
    orders whose fulfilment requests wait at every step (and one shipped and tracked, one on
    hold, one cancelled, a pre-order); webhooks with deliveries; imports."""
    data = ShopData()
    _subscriptions(api, data)
    now = utcnow()
    placed = now.isoformat()
    for location_id in ("mitte", "potsdam"):
        _ok(api.put(f"/v1/locations/{location_id}", json=_store(location_id)), 201)
    dc = location_body("Schoenefeld", type="dc", name="Berlin DC", capabilities=["ship"],
                       address={"line1": "Logistikring 1", "city": "Schoenefeld",
                                "postal_code": "12529", "country": "DE", "lat": 52.3667,
                                "lon": 13.5033})
    _ok(api.put("/v1/locations/dc-1", json=dc), 201)
    data.add("location_id", "mitte", "potsdam", "dc-1")
    data.stores = ["mitte", "potsdam"]
    store = as_role("associate", ["mitte"])

    due = (now + dt.timedelta(days=30)).date().isoformat()
    for sku, body in (("SKU-1", product_body()), ("SKU-2", product_body("Cap")),
                      ("SKU-3", product_body("Rain jacket", barcode="4006381333931")),
                      ("PRE-1", product_body("Next season's shoe",
                                             preorder={"tentative_ship_date": due}))):
        _ok(api.put(f"/v1/products/{sku}", json=body), 201)
        data.add("sku", sku)
    for (location_id, sku), on_hand in {("mitte", "SKU-1"): 100, ("mitte", "SKU-2"): 5,
                                        ("potsdam", "SKU-1"): 20, ("potsdam", "SKU-3"): 5,
                                        ("dc-1", "SKU-1"): 40, ("dc-1", "SKU-3"): 10}.items():
        _ok(api.put(f"/v1/inventory/{location_id}/{sku}",
                    json={"on_hand": on_hand, "safety_stock": 1}))
    _ok(api.post("/v1/inventory/future", json={"entries": [
        {"location_id": "mitte", "sku": "PRE-1", "quantity": 10, "available_on": due}]}))
    _ok(api.put("/v1/routing/rules", json={"rules": [
        {"service_level": "express", "country": "DE", "groups": [["mitte"], ["dc-1"]]}]}))

    _ok(api.put("/v1/shipping/rates", json={"rates": [
        {"country": "DE", "service_level": "standard", "carrier": "dhl", "price": "4.90",
         "free_above": "100.00", "transit_days": 2, "cutoff": "16:00"}]}))
    for n in range(2):
        cart = _ok(store.post("/v1/carts", json={"location_id": "mitte", "currency": "EUR"}),
                   201)
        _ok(store.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SKU-1"}), 201)
        _ok(store.post(f"/v1/carts/{cart['id']}/items", json={
            "barcode": "4006381333931", "fulfillment": {"type": "ship"}}), 201)
        cart = _ok(store.post(f"/v1/carts/{cart['id']}/discounts", json={
            "percentage": str(5 + n), "reason": "loyalty"}), 201)
        data.add("cart_id", cart["id"])
        data.add("line_id", *(x["id"] for x in cart["lines"]))
        data.add("discount_id", cart["discounts"][0]["id"])
        cart = _ok(store.post(f"/v1/carts/{cart['id']}/payments",
                              json={"method": "cash", "amount": "1.00"}), 201)
        data.add("payment_id", cart["payments"][0]["id"])

    orders = iter(range(1, 1000))

    def order(*lines: tuple[str, int], **kw: Any) -> tuple[dict[str, Any], str]:
        """An order, and the id of its (first) fulfilment request."""
        body = _ok(api.post("/v1/orders", json=order_body(
            *lines, placed_at=placed, external_id=f"W-{next(orders)}", **kw)), 201)
        data.add("order_id", body["id"])
        data.add("customer_id", body["customer"]["id"], body["customer"]["display_id"])
        requests = [r["id"] for r in requests_of(api, body["id"])]
        data.add("request_id", *requests)
        return dict(body), requests[0] if requests else ""

    def take(request_id: str, *steps: str) -> Any:
        """Take the request through `steps` at its store; the last step's answer."""
        answer = None
        for name in steps:
            body = {"parcels": [{"weight_grams": 800, "length_mm": 300}]} if (
                name == "pack") else {}
            answer = _ok(store.post(f"{REQUESTS.format(request_id=request_id)}/{name}",
                                    json=body))
        return answer

    def waiting_at(step: str, request_id: str, *done: str) -> None:
        """Take the request through `done`: it then waits for `step`."""
        take(request_id, *done)
        data.target(f"POST {REQUESTS}/{step}", request_id)

    # A request of each type waiting at each of its steps.
    waiting_at("accept", order(("SKU-1", 1))[1])
    waiting_at("pick", order(("SKU-1", 1))[1], "accept")
    waiting_at("pack", order(("SKU-1", 1))[1], "accept", "pick")
    waiting_at("ship", order(("SKU-1", 1))[1], "accept", "pick", "pack")
    waiting_at("accept", order(("SKU-1", 1), pickup_at="mitte")[1])
    waiting_at("ready-for-pickup", order(("SKU-1", 1), pickup_at="mitte")[1], "accept", "pick")
    waiting_at("hand-over", order(("SKU-1", 1), email="grace@example.com", pickup_at="mitte")[1],
               "accept", "pick", "ready-for-pickup")
    dc_orders = [order(("SKU-3", 1), fulfillment_location_id="dc-1") for _ in range(2)]
    notify_providers(engine, providers_of(app_client), utcnow())
    data.target(f"POST {REQUESTS}/acknowledge", dc_orders[0][1])
    _ok(api.post(f"{REQUESTS.format(request_id=dc_orders[1][1])}/acknowledge"))
    data.target(f"POST {REQUESTS}/shipments", dc_orders[1][1])
    waiting_at("reject", order(("SKU-1", 1), ("SKU-2", 1), email="alan@example.com")[1])

    shipment = take(order(("SKU-1", 2))[1], "accept", "pick", "pack", "ship")["shipment"]
    data.add("shipment_id", shipment["id"])
    _ok(api.post(f"/v1/shipments/{shipment['id']}/tracking-events", json={
        "status": "in_transit", "occurred_at": placed, "place": "Berlin"}))

    # A parcel whose label the carrier refused: it waits for a label booked again.
    carrier = providers_of(app_client).carrier("dhl")
    assert isinstance(carrier, SimulatedCarrier)
    carrier.refusing["dhl"] = "dhl does not serve this postal code"
    shipment = take(order(("SKU-1", 1))[1], "accept", "pick", "pack", "ship")["shipment"]
    del carrier.refusing["dhl"]
    data.add("shipment_id", shipment["id"])
    data.target("POST /v1/shipments/{shipment_id}/label", shipment["id"])

    # One item waits on hold, rejected where it was and in stock nowhere else.
    on_hold, request_id = order(("SKU-1", 1), ("SKU-2", 2))
    request = _ok(api.get(REQUESTS.format(request_id=request_id)))
    [missing] = [i["item_id"] for i in request["items"] if i["sku"] == "SKU-2"]
    _ok(store.post(f"{REQUESTS.format(request_id=request_id)}/reject",
                   json={"items": [missing], "reason": "damaged"}))
    data.target("POST /v1/orders/{order_id}/reroute", on_hold["id"])
    for _ in range(2):
        data.target("POST /v1/orders/{order_id}/cancel", order(("SKU-1", 1))[0]["id"])
    cancelled, _ = order(("SKU-1", 1))
    _ok(api.post(f"/v1/orders/{cancelled['id']}/cancel", json={"reason": "customer asked"}))
    order(("PRE-1", 1))

    _imports(api, data)
    fan_out(engine)
    survey(api, data)
    return data


def _subscriptions(api: Api, data: ShopData) -> None:
    """Made first, so that they have deliveries of what follows. Nothing is sent: deliveries
    wait for a worker that does not run here."""
    erp = _ok(api.post("/v1/webhooks", json={
        "url": "https://erp.example/oms", "event_types": ["order.*"], "description": "ERP"}),
        201)
    paused = _ok(api.post("/v1/webhooks", json={
        "url": "https://wms.example/events", "event_types": ["*"]}), 201)
    _ok(api.client.patch(f"/v1/webhooks/{paused['id']}", headers=api.headers,
                         json={"paused": True}))
    data.add("subscription_id", erp["id"], paused["id"])
    # The others keep their subscription for what follows in the run.
    for _ in range(2):
        unwanted = _ok(api.post("/v1/webhooks", json={
            "url": "https://old.example/hook", "event_types": ["product.*"]}), 201)
        data.target("DELETE /v1/webhooks/{subscription_id}", unwanted["id"])


def _imports(api: Api, data: ShopData) -> None:
    report = _ok(api.post("/v1/imports/inventory", content=b"location_id,sku,on_hand\n"
                          b"potsdam,SKU-2,4\n", headers={"Content-Type": "text/csv"}))
    data.add("import_id", report["import_id"])
    history = order_body(("SKU-1", 1), external_id="H-1", channel="historical",
                         placed_at="2025-03-01T09:00:00Z", payments=[])
    history["items"][0]["status"] = "fulfilled"
    report = _ok(api.post("/v1/imports/orders", content=json.dumps(history).encode() + b"\n",
                          headers={"Content-Type": "application/x-ndjson"}))
    data.add("import_id", report["import_id"])


#: The lists that page with a cursor.
LISTS = ("/v1/products", "/v1/locations", "/v1/orders", "/v1/customers/{customer_id}/orders",
         "/v1/fulfillment-requests", "/v1/webhooks", "/v1/webhooks/{subscription_id}/deliveries",
         "/v1/carts")


def survey(api: Api, data: ShopData) -> None:
    """Read back what the seeding made: items, events, and a cursor of every list."""
    for order_id in data.ids["order_id"]:
        order = _ok(api.get(f"/v1/orders/{order_id}"))
        data.items[order_id] = [i["id"] for i in order["items"]]
    for request_id in data.ids["request_id"]:
        request = _ok(api.get(REQUESTS.format(request_id=request_id)))
        data.items[request_id] = [i["item_id"] for i in request["items"]]
    data.event_ids = [e["id"] for e in _ok(api.get("/v1/events", params={"limit": 1000}))[
        "items"]]
    ids = {name: values[0] for name, values in data.ids.items()}
    for template in LISTS:
        page = _ok(api.get(template.format(**ids), params={"limit": 1}))
        assert page["next_cursor"], f"{template} has one page only"
        data.cursors[template] = page["next_cursor"]
