"""The OpenAPI document tells the truth, so that a client generated from it works.

A day of a shop is walked through the API (products, locations and stock; orders shipped
from a store, picked up, sent by a DC, rejected, rerouted and cancelled; a pre-order; imports;
the event feed; webhooks; and the errors met on the way) and every answer is checked against
/openapi.json: its status and content type must be documented for its operation, and its
body must be valid against the documented schema, whose objects are closed. Every operation
must have answered with success at least once, so every response model is proven.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import Engine

from oms.adapters.carriers.simulated import SimulatedCarrier
from oms.adapters.eventstream.http import HttpTransport
from oms.domain.events import utcnow
from oms.services.fulfillment import notify_providers
from oms.services.webhooks import deliver_due, fan_out
from tests.carting import notify
from tests.fulfilling import providers_of, requests_of
from tests.helpers import Api, location_body, product_body
from tests.ordering import Shop, events, order_body
from tests.receiver import Receiver

SPEC_URI = "urn:oms:openapi"
#: Served beside the API, and not operations of it.
DOCUMENTATION = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
#: Headers of ours that tell a client something: where an answer has them, it documents them.
TELLING_HEADERS = ("location", "retry-after", "www-authenticate", "idempotent-replayed")


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Conformance:
    """Checks each answer against the operation the OpenAPI document gives its request."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry = Registry().with_resource(
            SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
        # Literal paths before templated ones (/v1/inventory/adjustments is no stock level).
        self.operations = sorted(
            ((method.upper(), re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), path)
             for path, operations in spec["paths"].items() for method in operations),
            key=lambda o: o[2].count("{"))
        self.mismatches: list[str] = []
        #: (method, path template, status) of every answer checked.
        self.answered: set[tuple[str, str, int]] = set()

    def operation_of(self, method: str, path: str) -> str | None:
        for op_method, pattern, template in self.operations:
            if op_method == method and pattern.match(path):
                return template
        return None

    def check(self, response: httpx.Response) -> None:
        response.read()
        method, path = response.request.method, response.request.url.path
        if path in DOCUMENTATION:
            return
        where = f"{method} {path} -> {response.status_code}"
        template = self.operation_of(method, path)
        if template is None:
            self.mismatches.append(f"{where}: no such operation in the document")
            return
        self.answered.add((method, template, response.status_code))
        documented = self.spec["paths"][template][method.lower()]["responses"]
        status = str(response.status_code)
        if status not in documented:
            self.mismatches.append(f"{where}: status not documented ({sorted(documented)})")
            return
        headers = {name.lower() for name in documented[status].get("headers", {})}
        undocumented = [h for h in TELLING_HEADERS if h in response.headers and h not in headers]
        if undocumented:
            self.mismatches.append(f"{where}: headers {undocumented} not documented")
        content = documented[status].get("content", {})
        if not response.content:
            if content:
                self.mismatches.append(f"{where}: no body, but {sorted(content)} documented")
            return
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in content:
            self.mismatches.append(f"{where}: content type {media_type!r} not documented "
                                   f"({sorted(content)})")
            return
        pointer = _pointer("paths", template, method.lower(), "responses", status, "content",
                           media_type, "schema")
        validator = Draft202012Validator(
            {"$ref": f"{SPEC_URI}#/{pointer}"}, registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER)
        # A page or a text (a receipt) is checked as the string it is.
        body = response.json() if "json" in media_type else response.text
        error = best_match(validator.iter_errors(body))
        if error is not None:
            self.mismatches.append(f"{where}: {error.message} at {error.json_path}")


@pytest.fixture
def conformance(app_client: TestClient) -> Iterator[Conformance]:
    """Every answer the test client gets from here on is checked."""
    spec = app_client.get("/openapi.json").json()
    checker = Conformance(spec)
    app_client.event_hooks["response"].append(checker.check)
    yield checker
    app_client.event_hooks["response"].remove(checker.check)


def test_the_document_is_valid_openapi_and_its_pages_load(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    docs = app_client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].removeprefix(
            "#/components/schemas/")]
    return schema


def _open_objects(spec: dict[str, Any], schema: dict[str, Any], where: str,
                  seen: set[str]) -> Iterator[str]:
    """Where an object of the schema accepts fields no model names."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return
        seen.add(name)
        yield from _open_objects(spec, _resolve(spec, schema), name, seen)
        return
    if "properties" in schema and schema.get("additionalProperties") is not False:
        yield where
    if schema.get("type") == "object" and "properties" not in schema and (
            schema.get("additionalProperties", True) is True):
        yield where
    for name, sub in schema.get("properties", {}).items():
        yield from _open_objects(spec, sub, f"{where}.{name}", seen)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            yield from _open_objects(spec, sub, where, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _open_objects(spec, schema[key], f"{where}[]", seen)


def test_every_answer_is_typed_and_every_error_is_a_problem(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    untyped, open_objects, not_problems, missing = [], set(), [], []
    seen: set[str] = set()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            responses = operation["responses"]
            for status, response in responses.items():
                content = response.get("content", {})
                if int(status) >= 400:
                    if content != {"application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}}}:
                        not_problems.append(f"{where} {status}")
                    continue
                if status == "204":
                    continue
                schema = content.get("application/json", {}).get("schema", {})
                if "$ref" not in schema:
                    untyped.append(f"{where} {status}")
                    continue
                open_objects.update(_open_objects(spec, schema, where, seen))
            shared = {"422", "503"} | ({"401"} if path.startswith("/v1/") else set())
            if not shared <= responses.keys():
                missing.append(f"{where}: {sorted(shared - responses.keys())}")
    assert untyped == []
    assert not_problems == []
    assert missing == []
    # Event payloads are the entity's state, whose shape depends on the event's type.
    assert open_objects == {"Event.payload"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_every_change_takes_an_idempotency_key(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    without = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            # A PSP's notification is not a client's request: a replay of it is ignored.
            if method == "get" or path.startswith("/v1/psp/"):
                continue
            keys = [p for p in operation.get("parameters", [])
                    if p["in"] == "header" and p["name"] == "Idempotency-Key"]
            strings = [s for s in keys[0]["schema"].get("anyOf", [])
                       if s.get("type") == "string"] if keys else []
            if not strings or strings[0].get("maxLength") != 255 or keys[0]["required"]:
                without.append(f"{method.upper()} {path}")
                continue
            assert {"400", "409", "422"} <= operation["responses"].keys(), path
    assert without == []


# -- a day of a shop -------------------------------------------------------------------------


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, f"{response.status_code}: {response.text}"


def setup_catalog(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 20, ("mitte", "SKU-2"): 3, ("potsdam", "SKU-1"): 5})
    ok(api.put("/v1/products/SKU-3", json=product_body("Rain jacket",
                                                       barcode="4006381333931")), 201)
    ok(api.put("/v1/products/SKU-3", json=product_body("Rain jacket",
                                                       barcode="4006381333931")))
    due = (utcnow() + dt.timedelta(days=30)).date().isoformat()
    ok(api.put("/v1/products/PRE-1", json=product_body(
        "Next season's shoe", preorder={"tentative_ship_date": due})), 201)
    dc = location_body("Schoenefeld", type="dc", name="Berlin DC", capabilities=["ship"],
                       address={"line1": "Logistikring 1", "city": "Schoenefeld",
                                "postal_code": "12529", "country": "DE", "lat": 52.3667,
                                "lon": 13.5033})
    ok(api.put("/v1/locations/dc-1", json=dc), 201)
    ok(api.put("/v1/inventory/dc-1/SKU-3", json={"on_hand": 4, "safety_stock": 1}))
    ok(api.put("/v1/inventory/dc-1/SKU-1", json={"on_hand": 4}))
    ok(api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "mitte", "sku": "SKU-2", "delta": 1, "reason": "found in the back"}]}))
    ok(api.post("/v1/inventory/future", json={"entries": [
        {"location_id": "mitte", "sku": "PRE-1", "quantity": 10, "available_on": due}]}))
    ok(api.put("/v1/routing/rules", json={"rules": [
        {"service_level": "express", "country": "DE", "groups": [["mitte"], ["dc-1"]]}]}))


def read_catalog(api: Api) -> None:
    first = ok(api.get("/v1/products", params={"limit": 1}))
    ok(api.get("/v1/products", params={"cursor": first["next_cursor"]}))
    ok(api.get("/v1/products/PRE-1"))
    page = ok(api.get("/v1/locations", params={"limit": 1, "type": "store"}))
    ok(api.get("/v1/locations", params={"cursor": page["next_cursor"]}))
    ok(api.get("/v1/locations/mitte"))
    ok(api.get("/v1/locations/dc-1/callback-secret"))
    ok(api.get("/v1/inventory/mitte/SKU-1"))
    ok(api.get("/v1/availability", params={"sku": ["SKU-1", "PRE-1", "SKU-3"]}))
    ok(api.get("/v1/routing/rules"))


def ship_from_store(api: Api, app_client: TestClient, store: Api) -> dict[str, Any]:
    """Placed (and sent again), accepted, picked, packed, shipped with a label the carrier
    first refuses, tracked to the door, and captured."""
    body = order_body(("SKU-1", 2), external_id="W-1")
    order = ok(api.post("/v1/orders", json=body), 201)
    ok(api.post("/v1/orders", json=body))
    [request] = requests_of(api, order["id"])
    for step, payload in (("accept", {}), ("pick", {}),
                          ("pack", {"parcels": [{"weight_grams": 800, "length_mm": 300}]})):
        ok(store.post(f"/v1/fulfillment-requests/{request['id']}/{step}", json=payload))
    carrier = providers_of(app_client).carrier("dhl")
    assert isinstance(carrier, SimulatedCarrier)
    carrier.refusing["dhl"] = "dhl does not serve this postal code"
    shipped = ok(store.post(f"/v1/fulfillment-requests/{request['id']}/ship", json={}))
    shipment_id = shipped["shipment"]["id"]
    assert shipped["shipment"]["label_status"] == "failed"
    booked = ok(store.post(f"/v1/shipments/{shipment_id}/label", json={"carrier": "ups"}))
    assert booked["label_status"] == "booked"
    for status in ("in_transit", "delivered"):
        ok(api.post(f"/v1/shipments/{shipment_id}/tracking-events", json={
            "status": status, "occurred_at": utcnow().isoformat(), "place": "Berlin"}))
    ok(api.get(f"/v1/shipments/{shipment_id}"))
    ok(api.get(f"/v1/fulfillment-requests/{request['id']}"))
    ok(api.post(f"/v1/orders/{order['id']}/capture"))
    return dict(order)


def pickup(api: Api, store: Api) -> None:
    order = ok(api.post("/v1/orders", json=order_body(
        ("SKU-1", 1), external_id="W-2", email="grace@example.com", pickup_at="mitte")), 201)
    [request] = requests_of(api, order["id"])
    for step in ("accept", "pick", "ready-for-pickup"):
        ok(store.post(f"/v1/fulfillment-requests/{request['id']}/{step}", json={}))
    ok(store.post(f"/v1/fulfillment-requests/{request['id']}/hand-over",
                  json={"collected_by": "Grace Hopper"}))


def a_cart(api: Api, store: Api, manager: Api) -> None:
    """A cart at mitte built by scanning, with a discount, a changed line, a pickup line
    removed, and the settings it is priced and scanned by."""
    ok(api.put("/v1/tax/rates", json={"rates": [
        {"country": "DE", "tax_class": "standard", "rate": "19", "prices_include_tax": True}]}))
    ok(store.get("/v1/tax/rates"))
    ok(api.put("/v1/settings/barcode-types", json={"types": ["ean13", "upca"]}))
    ok(store.get("/v1/settings/barcode-types"))
    cart = ok(store.post("/v1/carts", json={"location_id": "mitte", "currency": "EUR"}), 201)
    url = f"/v1/carts/{cart['id']}"
    ok(store.patch(url, json={"customer": {"email": "ada@example.com"}}))
    ok(store.post(f"{url}/items", json={"sku": "SKU-1"}), 201)
    cart = ok(store.post(f"{url}/items", json={"sku": "SKU-1"}))
    line = cart["lines"][0]["id"]
    ok(store.patch(f"{url}/items/{line}", json={
        "quantity": 1, "price_override": {"price": "9.00", "reason": "display model"}}))
    cart = ok(store.post(f"{url}/items", json={
        "sku": "SKU-1", "fulfillment": {"type": "pickup", "location_id": "potsdam"}}), 201)
    ok(store.delete(f"{url}/items/{cart['lines'][1]['id']}"))
    cart = ok(store.post(f"{url}/discounts", json={"percentage": "10", "reason": "staff"}),
              201)
    ok(store.delete(f"{url}/discounts/{cart['discounts'][0]['id']}"))
    ok(api.put("/v1/shipping/rates", json={"rates": [
        {"country": "DE", "service_level": "standard", "carrier": "dhl", "price": "4.90",
         "free_above": "100.00", "transit_days": 2, "cutoff": "16:00"}]}))
    ok(store.get("/v1/shipping/rates"))
    ok(store.post(f"{url}/items", json={"sku": "SKU-3", "fulfillment": {"type": "ship"}}), 201)
    ok(store.get(f"{url}/shipping-options", params={"country": "DE"}))
    ok(store.put(f"{url}/shipping", json={"option_id": "standard:dhl", "address": {
        "line1": "Unter den Linden 5", "city": "Berlin", "postal_code": "10117",
        "country": "DE"}}))
    ok(store.get(url))
    ok(store.get("/v1/carts?location_id=mitte"))
    refused(store.delete(url), 204)
    ok(api.put("/v1/approval-rules", json={"rules": [
        {"id": "discount", "name": "Any discount", "criteria": {"has_discount": True}}]}))
    ok(store.get("/v1/approval-rules"))
    cart = ok(store.post("/v1/carts", json={"location_id": "mitte", "currency": "EUR",
                                            "customer": {"email": "ada@example.com"}}), 201)
    url = f"/v1/carts/{cart['id']}"
    cart = ok(store.post(f"{url}/items", json={"sku": "SKU-1"}), 201)
    ok(store.patch(url, json={"tax_exemption": {"certificate": "DIPL-1"}}))
    ok(store.patch(url, json={"tax_exemption": None}))
    ok(store.post(f"{url}/discounts", json={"amount": "1.00", "reason": "loyalty"}), 201)
    cart = ok(store.post(f"{url}/payments", json={"method": "card", "amount": "1.00"}), 201)
    ok(store.delete(f"{url}/payments/{cart['payments'][0]['id']}"))
    ok(api.post("/v1/gift-cards", json={"amount": "5.00", "currency": "EUR",
                                        "code": "GIFT-DAY1"}), 201)
    ok(store.get("/v1/gift-cards/GIFT-DAY1"))
    ok(store.post(f"{url}/payments", json={"method": "gift_card", "gift_card": "GIFT-DAY1",
                                           "amount": "1.00"}), 201)
    cart = ok(store.post(f"{url}/payments", json={"method": "pay_by_link", "amount": "1.00"}),
              201)
    ok(notify(api.client, cart["payments"][-1]["reference"], "authorized"))
    ok(store.post(f"{url}/payments", json={"method": "cash", "amount": "50.00"}), 201)
    ok(manager.post(f"{url}/approvals", json={"rule_ids": ["discount"]}), 201)
    order = ok(store.post(f"{url}/checkout"), 201)
    ok(store.get(f"/v1/orders/{order['id']}/receipt", headers={"Accept": "application/json"}))
    page = store.get(f"/v1/orders/{order['id']}/receipt")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


def from_a_dc(api: Api, engine: Engine, app_client: TestClient) -> None:
    """Told (the DC has no callback URL yet: the notification waits), acknowledged, and
    shipped in two parts by its integrator."""
    order = ok(api.post("/v1/orders", json=order_body(("SKU-3", 1), ("SKU-1", 1),
                                                      external_id="W-3",
                                                      fulfillment_location_id="dc-1")), 201)
    notify_providers(engine, providers_of(app_client), utcnow())
    [request] = requests_of(api, order["id"])
    assert request["type"] == "third_party"
    ok(api.post(f"/v1/fulfillment-requests/{request['id']}/acknowledge"))
    first = request["items"][0]["item_id"]
    ok(api.post(f"/v1/fulfillment-requests/{request['id']}/shipments", json={
        "items": [first], "carrier": "dhl", "tracking_number": "DC-1",
        "tracking_url": "https://tracking.example/DC-1"}), 201)
    ok(api.post(f"/v1/fulfillment-requests/{request['id']}/shipments", json={
        "carrier": "dhl", "tracking_number": "DC-2"}), 201)
    ok(api.get(f"/v1/fulfillment-requests/{request['id']}"))


def rejected_and_cancelled(api: Api, store: Api) -> None:
    """A store cannot find one item: it waits on hold, is routed again in vain, and the
    order is cancelled."""
    order = ok(api.post("/v1/orders", json=order_body(("SKU-1", 1), ("SKU-2", 4),
                                                      external_id="W-4")), 201)
    [request] = requests_of(api, order["id"])
    [missing] = [i["item_id"] for i in request["items"] if i["sku"] == "SKU-2"]
    ok(store.post(f"/v1/fulfillment-requests/{request['id']}/reject",
                  json={"items": [missing], "reason": "damaged"}))
    ok(api.post(f"/v1/orders/{order['id']}/reroute"))
    ok(api.get(f"/v1/orders/{order['id']}/routing-decisions"))
    ok(api.get(f"/v1/orders/{order['id']}/routing-decisions",
               params={"location_id": ["mitte", "dc-1"]}))
    ok(api.post(f"/v1/orders/{order['id']}/cancel", json={"reason": "customer asked"}))
    ok(api.get(f"/v1/orders/{order['id']}"))


def preorder(api: Api) -> None:
    order = ok(api.post("/v1/orders", json=order_body(("PRE-1", 1), external_id="W-5")), 201)
    ok(api.get(f"/v1/orders/{order['id']}"))
    ok(api.get("/v1/fulfillment-requests", params={"order_id": order["id"]}))


def imports(api: Api) -> None:
    def send(kind: str, text: str, content_type: str, **params: str) -> None:
        report = ok(api.post(f"/v1/imports/{kind}", content=text.encode(), params=params,
                             headers={"Content-Type": content_type}))
        ok(api.get(f"/v1/imports/{report['import_id']}"))

    send("products", "sku,name,price,currency,tax_class,barcodes,preorder_ship_date\n"
                     "IMP-1,Socks,4.90,EUR,standard,,\nIMP-2,Cap,twelve,EUR,,,\n", "text/csv")
    location = {"id": "hamburg", "type": "store", "name": "Hamburg",
                "address": {"line1": "Jungfernstieg 1", "city": "Hamburg",
                            "postal_code": "20354", "country": "DE", "lat": 53.5511,
                            "lon": 9.9937}, "capabilities": ["ship"]}
    send("locations", json.dumps(location) + "\n{not json\n", "application/x-ndjson")
    send("inventory", "location_id,sku,on_hand\nhamburg,IMP-1,5\nhamburg,NOPE,1\n",
         "text/csv", mode="delta")
    history = order_body(("IMP-1", 1), external_id="H-1", channel="historical",
                         placed_at="2025-03-01T09:00:00Z", payments=[])
    history["items"][0]["status"] = "fulfilled"
    send("orders", json.dumps(history) + "\n", "application/x-ndjson")


def read_orders(api: Api, order: dict[str, Any]) -> None:
    page = ok(api.get("/v1/orders", params={"limit": 1}))
    ok(api.get("/v1/orders", params={"cursor": page["next_cursor"], "channel": "web"}))
    ok(api.get("/v1/orders", params={"q": "ada@example.com", "status": "shipped"}))
    ok(api.get(f"/v1/orders/{order['id']}"))
    customers = ok(api.get("/v1/customers", params={"email": "ada@example.com"}))
    customer_id = customers["items"][0]["id"]
    ok(api.get(f"/v1/customers/{customer_id}"))
    ok(api.get(f"/v1/customers/{order['customer']['display_id']}/orders"))
    queue = ok(api.get("/v1/fulfillment-requests", params={"limit": 1}))
    ok(api.get("/v1/fulfillment-requests", params={"cursor": queue["next_cursor"]}))
    ok(api.get("/v1/fulfillment-requests", params={"location_id": "mitte",
                                                   "status": "shipped"}))


def subscribe(api: Api, receiver: Receiver) -> str:
    subscription = ok(api.post("/v1/webhooks", json={
        "url": receiver.url, "event_types": ["order.*", "shipment.*"],
        "description": "ERP"}), 201)
    return str(subscription["id"])


def webhooks(api: Api, engine: Engine, receiver: Receiver, sid: str) -> None:
    """Delivered, listed, changed, replayed, deleted."""
    transport = HttpTransport(5.0, allow_private=True)
    try:
        deadline = time.monotonic() + 30
        while len(receiver.requests()) < 2:  # two, to read the deliveries in pages
            assert time.monotonic() < deadline, "not delivered in 30 s"
            fan_out(engine)
            deliver_due(engine, transport)
    finally:
        transport.close()
    page = ok(api.get(f"/v1/webhooks/{sid}/deliveries", params={"limit": 1}))
    ok(api.get(f"/v1/webhooks/{sid}/deliveries", params={"cursor": page["next_cursor"]}))
    ok(api.get("/v1/webhooks"))
    ok(api.get(f"/v1/webhooks/{sid}"))
    ok(api.client.patch(f"/v1/webhooks/{sid}", headers=api.headers,
                        json={"description": None, "paused": True}))
    ok(api.post(f"/v1/webhooks/{sid}/rotate-secret"))
    first = page["items"][0]["event_id"]
    ok(api.post(f"/v1/webhooks/{sid}/replay", json={"event_ids": [first]}), 202)
    ok(api.client.delete(f"/v1/webhooks/{sid}", headers=api.headers), 204)


def errors(api: Api, app_client: TestClient, stranger: Api, order: dict[str, Any]) -> None:
    """A refusal of each kind, each answered as the document says."""
    refused(app_client.get("/v1/orders"), 401)
    refused(app_client.get("/v1/orders", headers={"Authorization": "Bearer junk"}), 401)
    refused(stranger.put("/v1/products/SKU-9", json=product_body()), 403)
    refused(stranger.get("/v1/fulfillment-requests", params={"location_id": "mitte"}), 403)
    refused(stranger.get("/v1/events"), 403)
    refused(stranger.post(f"/v1/orders/{order['id']}/reroute"), 403)
    refused(stranger.get(f"/v1/orders/{order['id']}"), 404)
    for path in ("/v1/orders/nope", "/v1/products/NOPE", "/v1/shipments/nope",
                 "/v1/webhooks/nope", "/v1/locations/nope/callback-secret",
                 "/v1/fulfillment-requests/nope", "/v1/customers/nope/orders"):
        refused(api.get(path), 404)
    refused(api.post("/v1/fulfillment-requests/nope/accept"), 404)
    [request] = requests_of(api, order["id"])
    refused(api.post(f"/v1/fulfillment-requests/{request['id']}/accept"), 409)
    refused(api.put("/v1/products/SKU-9", json=product_body(barcode="4006381333931")), 409)
    refused(api.post("/v1/orders", json=order_body(("SKU-1", 3), external_id="W-1")), 409)
    refused(api.post("/v1/orders", json={"channel": "web"}), 422)
    refused(api.get("/v1/orders", params={"limit": 0}), 422)
    refused(api.get("/v1/webhooks", params={"cursor": "Ilx1ZDgwMCI"}), 422)
    refused(api.get("/v1/routing/rules", params={"x": "\x00"}), 422)
    refused(api.post("/v1/inventory/adjustments", content=b"{",
                     headers={"Content-Type": "application/json"}), 400)
    refused(api.post("/v1/inventory/adjustments", content=b"x" * (1024 * 1024 + 1),
                     headers={"Content-Type": "application/json"}), 413)
    wrong_type = api.post("/v1/inventory/adjustments", content=b"adjustments=1",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert wrong_type.status_code in (415, 422), wrong_type.text
    batch = {"adjustments": [{"location_id": "mitte", "sku": "SKU-1", "delta": 1,
                              "reason": "count"}]}
    refused(api.post("/v1/inventory/adjustments", json=batch,
                     headers={"Idempotency-Key": "k" * 256}), 400)
    ok(api.post("/v1/inventory/adjustments", json=batch, headers={"Idempotency-Key": "k-1"}))
    replayed = api.post("/v1/inventory/adjustments", json=batch,
                        headers={"Idempotency-Key": "k-1"})
    ok(replayed)
    assert replayed.headers["idempotent-replayed"] == "true"
    refused(api.post("/v1/inventory/adjustments", json={**batch, "adjustments": [
        {**batch["adjustments"][0], "delta": 2}]}, headers={"Idempotency-Key": "k-1"}), 422)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_every_answer_of_a_day_is_what_the_document_says(
        api: Api, app_client: TestClient, engine: Engine, shop: Shop,
        as_role: Callable[..., Api], conformance: Conformance, receiver: Receiver) -> None:
    ok(app_client.get("/healthz"))
    subscription_id = subscribe(api, receiver)
    setup_catalog(api, shop)
    read_catalog(api)
    store = as_role("associate", ["mitte"])
    order = ship_from_store(api, app_client, store)
    pickup(api, store)
    a_cart(api, store, as_role("manager", ["mitte"]))
    from_a_dc(api, engine, app_client)
    rejected_and_cancelled(api, store)
    preorder(api)
    imports(api)
    read_orders(api, order)
    events(api)
    webhooks(api, engine, receiver, subscription_id)
    errors(api, app_client, as_role("associate", ["potsdam"]), order)

    assert not conformance.mismatches, "\n".join(conformance.mismatches)
    succeeded = {(method, path) for method, path, status in conformance.answered
                 if status < 300}
    never = sorted(f"{method.upper()} {path}" for path, operations
                   in conformance.spec["paths"].items() for method in operations
                   if (method.upper(), path) not in succeeded)
    assert never == []
