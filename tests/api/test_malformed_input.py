"""Whatever a client sends, the answer is never a 5xx, and every refusal is problem+json."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from oms.api.app import create_app
from oms.api.deps import encode_cursor
from oms.services.webhooks import fan_out
from oms.settings import Settings
from tests.fulfilling import requests_of
from tests.fulfilling import step as take_step
from tests.helpers import Api, error_fields, location_body, problem, product_body
from tests.ordering import Shop, events, order_body, place

# The `api` fixture is created once per test, not per example: the examples share a
# database, which only makes more of them meet existing rows.
fuzz = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers()
           | st.floats(allow_nan=False, allow_infinity=False) | st.text())
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
# Values that look like what the fields expect, so that more examples get past the shape.
plausible = (json_values | st.sampled_from(["", " ", "\u0000", "EUR", "DE", "ean13",
                                             "4006381333931", "2099-01-01", "UTC", "A", "dc"])
             | st.integers(min_value=-(2**63), max_value=2**63) | st.just("x" * 600))

# A valid body for each endpoint that takes one, by (method, path).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/v1/products/X"): product_body(
        barcodes=[{"type": "ean13", "value": "4006381333931"}],
        preorder={"tentative_ship_date": "2099-01-01"}),
    ("PUT", "/v1/locations/X"): location_body(),
    ("PUT", "/v1/inventory/X/X"): {"on_hand": 5, "safety_stock": 1},
    ("POST", "/v1/inventory/adjustments"): {"adjustments": [
        {"location_id": "X", "sku": "X", "delta": 1, "reason": "count"}]},
    ("POST", "/v1/inventory/future"): {"entries": [
        {"location_id": "X", "sku": "X", "quantity": 3, "available_on": "2099-01-01"}]},
}
targets = st.sampled_from(sorted(BODIES))


def send(api: Api, target: tuple[str, str], **kw: Any) -> Any:
    method, path = target
    return api.put(path, **kw) if method == "PUT" else api.post(path, **kw)


def assert_well_behaved(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        problem(response, response.status_code)


def leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value could be swapped, the containers included."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += leaf_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += leaf_paths(child, (*prefix, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


@pytest.fixture
def known(stocked: Callable[..., None]) -> None:
    """A location and a product called X, so that bodies naming them can succeed."""
    stocked({("X", "X"): 5})


@pytest.mark.usefixtures("known")
@fuzz
@given(target=targets, body=json_values)
def test_any_json_body_is_answered_without_a_server_error(
    api: Api, target: tuple[str, str], body: Any
) -> None:
    assert_well_behaved(send(api, target, json=body))


@pytest.mark.usefixtures("known")
@fuzz
@given(data=st.data(), target=targets, value=plausible)
def test_a_valid_body_with_one_value_swapped_is_answered_without_a_server_error(
    api: Api, data: st.DataObject, target: tuple[str, str], value: Any
) -> None:
    body = BODIES[target]
    where = data.draw(st.sampled_from(leaf_paths(body)), label="where")
    assert_well_behaved(send(api, target, json=replaced(body, where, value)))


@pytest.mark.usefixtures("known")
@fuzz
@given(target=targets, body=st.binary(max_size=200),
       content_type=st.sampled_from(["application/json", "text/plain",
                                     "application/x-www-form-urlencoded", ""]))
def test_any_bytes_are_answered_without_a_server_error(
    api: Api, target: tuple[str, str], body: bytes, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    assert_well_behaved(send(api, target, content=body, headers=headers))


QUERY_NAMES = {
    "/v1/availability": ["sku", "location_id"],
    "/v1/products": ["q", "barcode", "cursor", "limit"],
    "/v1/events": ["after", "type", "entity_id", "limit"],
    "/v1/locations": ["type", "active", "capability", "cursor", "limit"],
}

# Random text seldom hits the values parsers and databases treat specially.
TRICKY_QUERY_VALUES = st.sampled_from([
    "\u0000", "a\u0000b", "f" * 32, "7" + "f" * 31, "%", "_", "'", "\\", "-1", "0", "1e309",
    "true", "null", "x" * 300, "order.*", ".*", "store", "pickup", "AAAA", "eyJhIjoxfQ",
])


query_values = st.text(max_size=40) | TRICKY_QUERY_VALUES


@pytest.mark.usefixtures("known")
@fuzz
@given(data=st.data(), path=st.sampled_from(sorted(QUERY_NAMES)), value=query_values)
def test_any_value_of_one_query_parameter_is_answered_without_a_server_error(
    api: Api, data: st.DataObject, path: str, value: str
) -> None:
    # Alone, the parameter is not refused for another one's sake and reaches the query.
    name = data.draw(st.sampled_from(QUERY_NAMES[path]), label="name")
    assert_well_behaved(api.get(path, params={name: value}))


@pytest.mark.usefixtures("known")
@fuzz
@given(data=st.data(), path=st.sampled_from(sorted(QUERY_NAMES)))
def test_any_query_string_is_answered_without_a_server_error(
    api: Api, data: st.DataObject, path: str
) -> None:
    names = st.sampled_from(QUERY_NAMES[path]) | st.text(max_size=8)
    params = data.draw(st.lists(st.tuples(names, query_values), max_size=5), label="params")
    assert_well_behaved(api.get(path, params=params))


@pytest.mark.usefixtures("known")
@fuzz
@given(path=st.sampled_from(["/v1/availability", "/v1/products", "/v1/events"]),
       raw=st.binary(max_size=60))
def test_any_raw_query_bytes_are_answered_without_a_server_error(api: Api, path: str,
                                                                 raw: bytes) -> None:
    encoded = "".join(f"%{b:02X}" if b not in b"=&" else chr(b) for b in raw)
    assert_well_behaved(api.get(f"{path}?{encoded}"))


def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    r = api.put("/v1/products/X", content=b'{"name": "shirt",', headers={
        "content-type": "application/json"})
    body = problem(r, 400)
    assert body["type"] == "urn:oms:problem:invalid-request"
    problem(api.get("/v1/products/X"), 404)


def test_a_missing_body_is_refused(api: Api) -> None:
    body = problem(api.put("/v1/products/X"), 422)
    assert error_fields(body) == ["body"]


def test_an_unknown_route_is_404_problem(api: Api) -> None:
    body = problem(api.get("/v1/nothing-here"), 404)
    assert body["type"] == "urn:oms:problem:not-found"
    problem(api.client.get("/v2/products"), 404)


def test_a_wrong_method_is_405_problem(api: Api) -> None:
    r = api.client.delete("/v1/products/X", headers=api.headers)
    body = problem(r, 405)
    assert body["type"] == "urn:oms:problem:method-not-allowed"
    assert "PUT" in r.headers["allow"]
    problem(api.post("/v1/locations/X", json=location_body()), 405)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/v1/products/X", "GET, PUT"),
    ("OPTIONS", "/v1/webhooks", "GET, POST"),
    ("PUT", "/v1/webhooks/X", "DELETE, GET, PATCH"),
    ("GET", "/v1/imports/orders", "POST"),
])
def test_a_405_names_every_method_of_the_path(api: Api, method: str, path: str,
                                              allowed: str) -> None:
    # Each method of a path is a route of its own: the answer names them all, not only
    # those of the first route that matched.
    r = api.client.request(method, path, headers=api.headers)
    problem(r, 405)
    assert r.headers["allow"] == allowed


@pytest.mark.parametrize("path", ["/v1/products/X", "/v1/locations/X"])
def test_nul_in_a_text_field_is_refused_and_named(api: Api, path: str) -> None:
    # PostgreSQL cannot store NUL in text; SQLite could, so both refuse it alike.
    body = (product_body("shirt\u0000") if "products" in path
            else location_body(name="store\u0000"))
    assert error_fields(problem(api.put(path, json=body), 422)) == ["name"]
    problem(api.get(path), 404)


@pytest.mark.usefixtures("known")
def test_nul_in_an_adjustment_reason_is_refused(api: Api) -> None:
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "X", "sku": "X", "delta": 1, "reason": "lost\u0000"}]})
    assert error_fields(problem(r, 422)) == ["adjustments.0.reason"]
    assert api.get("/v1/inventory/X/X").json()["on_hand"] == 5


@pytest.mark.parametrize(("path", "name"), [
    ("/v1/products", "q"), ("/v1/products", "barcode"), ("/v1/availability", "sku"),
    ("/v1/events", "type"), ("/v1/events", "entity_id"),
])
def test_nul_in_a_query_parameter_is_refused_and_named(api: Api, path: str, name: str) -> None:
    body = problem(api.get(path, params={name: "a\u0000b"}), 422)
    assert error_fields(body) == [f"query.{name}"]


def test_nul_in_the_path_of_an_idempotent_request_is_a_client_error(api: Api) -> None:
    r = api.put("/v1/products/%00", json=product_body(), headers={"Idempotency-Key": "nul-1"})
    assert error_fields(problem(r, 422)) == ["path.sku"]


@pytest.mark.parametrize("after", [
    "f" * 32,                        # beyond a BIGINT
    "8000000000000000" + "0" * 16,
    "-" + "0" * 31,
    "0x" + "0" * 30,
    "00000000_0000000" + "0" * 16,
    "g" * 32,
    "0" * 31,
])
def test_an_event_id_that_was_never_issued_is_refused(api: Api, after: str) -> None:
    body = problem(api.get("/v1/events", params={"after": after}), 422)
    assert error_fields(body) == ["after"]


def test_the_largest_event_id_reads_nothing(api: Api) -> None:
    api.put("/v1/products/X", json=product_body())
    r = api.get("/v1/events", params={"after": "7" + "f" * 15 + "7" + "f" * 15})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


@pytest.mark.usefixtures("known")
def test_stock_cannot_be_adjusted_past_the_largest_quantity(api: Api) -> None:
    assert api.put("/v1/inventory/X/X", json={"on_hand": 1_000_000_000}).status_code == 200
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "X", "sku": "X", "delta": 1_000_000_000, "reason": "receipt"}]})
    # Well formed, but more than the level can hold as it is now: a conflict.
    body = problem(r, 409)
    assert body["errors"] == [{
        "field": "adjustments.0.delta",
        "message": "on_hand is 1000000000; a delta of 1000000000 would take it above 1000000000",
    }]
    assert api.get("/v1/inventory/X/X").json()["on_hand"] == 1_000_000_000
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "X", "sku": "X", "delta": -1, "reason": "sold"}]})
    assert r.status_code == 200, r.text
    assert r.json()["levels"][0]["on_hand"] == 999_999_999


@pytest.mark.usefixtures("known")
def test_a_quantity_beyond_the_largest_is_refused(api: Api) -> None:
    body = problem(api.put("/v1/inventory/X/X", json={"on_hand": 1_000_000_001}), 422)
    assert error_fields(body) == ["on_hand"]
    r = api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "X", "sku": "X", "delta": 2**63, "reason": "typo"}]})
    assert error_fields(problem(r, 422)) == ["adjustments.0.delta"]


# -- fulfilment, shipments, capture, webhooks, callback secrets: endpoints that need real ids --

Ids = dict[str, str]


@dataclass(frozen=True)
class World:
    """Real rows for the deeper endpoints: `ids` fill the `{name}` of paths and bodies,
    `cursors` hold a real next_cursor of each list (by its path template)."""

    ids: Ids
    cursors: dict[str, str]

    def url(self, template: str) -> str:
        return template.format(**self.ids)


def _request(api: Api, order: dict[str, Any]) -> str:
    [found] = requests_of(api, order["id"])
    request_id: str = found["id"]
    return request_id


@pytest.fixture
def world(api: Api, shop: Shop, stocked: Callable[..., None], engine: Engine) -> World:
    """Requests in every state a step starts from: ship-from-store issued, accepted, picked and
    packed at mitte; one shipped (its shipment, its order); pickups picked and ready; one at a
    DC; two webhook subscriptions that saw all of this (so they have deliveries)."""
    for n in (1, 2):
        r = api.post("/v1/webhooks", json={"url": f"https://erp.example/oms/{n}",
                                           "event_types": ["*"]})
        assert r.status_code == 201, r.text
    shop({("mitte", "SKU-1"): 100, ("mitte", "SKU-2"): 100, ("potsdam", "SKU-2"): 100})
    stocked({("dc-1", "SKU-3"): 100, ("dc-1", "SKU-4"): 100})
    assert api.put("/v1/locations/dc-1", json=location_body(
        "Schoenefeld", type="dc", capabilities=["ship"])).status_code == 200

    ids: Ids = {}
    steps: dict[str, list[str]] = {
        "issued": [], "accepted": ["accept"], "picked": ["accept", "pick"],
        "packed": ["accept", "pick", "pack"], "shipped": ["accept", "pick", "pack", "ship"]}
    for name, done in steps.items():
        order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1), external_id=f"W-{name}"))
        ids[name] = _request(api, order)
        ids[f"{name}_item"] = order["items"][1]["id"]
        for step_name in done:
            last = take_step(api, ids[name], step_name)
            if step_name == "ship":
                ids["shipment"] = last["shipment"]["id"]
                ids["shipped_order"] = order["id"]
    for name, done in {"pickup_picked": ["accept", "pick"],
                       "pickup_ready": ["accept", "pick", "ready-for-pickup"]}.items():
        order = place(api, order_body(("SKU-1", 1), external_id=f"W-{name}",
                                      pickup_at="mitte"))
        ids[name] = _request(api, order)
        for step_name in done:
            take_step(api, ids[name], step_name)
    order = place(api, order_body(("SKU-3", 1), ("SKU-4", 1), external_id="W-dc"))
    ids["dc"] = _request(api, order)
    ids["dc_item"] = order["items"][0]["id"]
    ids["dc_location"] = "dc-1"

    fan_out(engine)
    subscriptions = api.get("/v1/webhooks", params={"limit": 1}).json()
    ids["subscription"] = subscriptions["items"][0]["id"]
    ids["event"] = events(api)[0]["id"]
    cursors = {"/v1/webhooks": subscriptions["next_cursor"]}
    for path in ("/v1/fulfillment-requests", "/v1/orders",
                 "/v1/webhooks/{subscription}/deliveries"):
        r = api.get(path.format(**ids), params={"limit": 1})
        assert r.status_code == 200, r.text
        cursors[path] = r.json()["next_cursor"]
    assert all(cursors.values()), cursors
    return World(ids, cursors)


def call(api: Api, method: str, url: str, **kw: Any) -> Any:
    return api.client.request(method, url, headers={**api.headers, **kw.pop("headers", {})},
                              **kw)


DeepBody = Callable[[Ids], Any]

#: Each endpoint with a valid body (None: it reads none), made from the world's ids.
DEEP: dict[str, tuple[str, str, DeepBody]] = {
    "accept": ("POST", "/v1/fulfillment-requests/{issued}/accept", lambda ids: None),
    "pick": ("POST", "/v1/fulfillment-requests/{accepted}/pick", lambda ids: {
        "missing": [ids["accepted_item"]], "reason": "not on the shelf"}),
    "pack": ("POST", "/v1/fulfillment-requests/{picked}/pack", lambda ids: {"parcels": [
        {"weight_grams": 800, "length_mm": 300, "width_mm": 200, "height_mm": 100}]}),
    "ship": ("POST", "/v1/fulfillment-requests/{packed}/ship", lambda ids: {"carrier": "dhl"}),
    "ready-for-pickup": ("POST", "/v1/fulfillment-requests/{pickup_picked}/ready-for-pickup",
                         lambda ids: None),
    "hand-over": ("POST", "/v1/fulfillment-requests/{pickup_ready}/hand-over",
                  lambda ids: {"collected_by": "Ada Lovelace"}),
    "acknowledge": ("POST", "/v1/fulfillment-requests/{dc}/acknowledge", lambda ids: None),
    "shipments": ("POST", "/v1/fulfillment-requests/{dc}/shipments", lambda ids: {
        "items": [ids["dc_item"]], "carrier": "dhl", "tracking_number": "JD0001",
        "tracking_url": "https://track.example/JD0001"}),
    "reject": ("POST", "/v1/fulfillment-requests/{issued}/reject", lambda ids: {
        "items": [ids["issued_item"]], "reason": "damaged"}),
    "tracking": ("POST", "/v1/shipments/{shipment}/tracking-events", lambda ids: {
        "status": "in_transit", "occurred_at": "2026-11-21T08:00:00Z",
        "description": "left the hub", "place": "Berlin"}),
    "capture": ("POST", "/v1/orders/{shipped_order}/capture", lambda ids: None),
    "subscribe": ("POST", "/v1/webhooks", lambda ids: {
        "url": "https://erp.example/oms", "event_types": ["order.*", "shipment.created"],
        "description": "ERP"}),
    "change": ("PATCH", "/v1/webhooks/{subscription}", lambda ids: {
        "url": "https://erp.example/v2", "event_types": ["*"], "description": "ERP v2",
        "paused": False}),
    "rotate-secret": ("POST", "/v1/webhooks/{subscription}/rotate-secret", lambda ids: None),
    "replay": ("POST", "/v1/webhooks/{subscription}/replay",
               lambda ids: {"event_ids": [ids["event"]]}),
    "replay-after": ("POST", "/v1/webhooks/{subscription}/replay",
                     lambda ids: {"after": ids["event"]}),
}
WITH_BODY = sorted(DEEP.keys() - {"accept", "ready-for-pickup", "acknowledge", "capture",
                                   "rotate-secret"})
#: Endpoints that only read, for the tests of absurd ids in paths.
READS: dict[str, tuple[str, str, DeepBody]] = {
    "request": ("GET", "/v1/fulfillment-requests/{issued}", lambda ids: None),
    "shipment": ("GET", "/v1/shipments/{shipment}", lambda ids: None),
    "subscription": ("GET", "/v1/webhooks/{subscription}", lambda ids: None),
    "deliveries": ("GET", "/v1/webhooks/{subscription}/deliveries", lambda ids: None),
    "unsubscribe": ("DELETE", "/v1/webhooks/{subscription}", lambda ids: None),
    "callback-secret": ("GET", "/v1/locations/{dc_location}/callback-secret",
                        lambda ids: None),
}


def send_deep(api: Api, world: World, name: str, body: Any = ..., **kw: Any) -> Any:
    method, template, make = DEEP[name]
    if body is ...:
        body = make(world.ids)
    if body is not None:
        kw["json"] = body
    return call(api, method, world.url(template), **kw)


#: Values beyond what a field or column holds: long text, numbers past 64 bits, times at the
#: ends of the calendar (with offsets that push them past it in UTC), NUL.
deep_plausible = plausible | st.sampled_from([
    "x" * 37, "x" * 65, "x" * 101, "x" * 201, "x" * 301, "x" * 501, "x" * 2001, "ü" * 300,
    2**63, 2**64, -(2**63) - 1, 10**30, 1e308, -1, 0, True, "dhl", "in_transit", "delivered",
    "created", "*", "order.*", "a\u0000b", "https://erp.example/\u0000",
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2026-11-21T08:00:00",
    "f" * 32, "7" + "f" * 31, "0" * 32, "http://[::1", "https://x:99999/", "http://user:pw@x/",
])


@fuzz
@given(name=st.sampled_from(sorted(DEEP)), body=json_values)
def test_any_json_body_to_the_deeper_endpoints_is_answered_without_a_server_error(
    api: Api, world: World, name: str, body: Any
) -> None:
    assert_well_behaved(send_deep(api, world, name, body))


@settings(fuzz, max_examples=80)
@given(data=st.data(), name=st.sampled_from(WITH_BODY), value=deep_plausible)
def test_a_valid_deeper_body_with_one_value_swapped_is_answered_without_a_server_error(
    api: Api, world: World, data: st.DataObject, name: str, value: Any
) -> None:
    body = DEEP[name][2](world.ids)
    where = data.draw(st.sampled_from(leaf_paths(body)), label="where")
    assert_well_behaved(send_deep(api, world, name, replaced(body, where, value)))


def string_leaves(value: Any) -> list[tuple[Any, ...]]:
    return [p for p in leaf_paths(value) if isinstance(_at(value, p), str)]


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def test_nul_in_any_text_of_the_deeper_bodies_is_refused(api: Api, world: World) -> None:
    for name in WITH_BODY:
        body = DEEP[name][2](world.ids)
        for where in string_leaves(body):
            bad = replaced(body, where, _at(body, where) + "\u0000")
            r = send_deep(api, world, name, bad)
            fields = error_fields(problem(r, 422))
            label = ".".join(map(str, where))
            assert any(f in (label, str(where[0])) for f in fields), (name, label, fields)


#: A few absurd ids besides random text: past the columns, NUL, unicode, SQL and path syntax.
ABSURD_IDS = st.sampled_from([
    "x" * 37, "x" * 65, "7" * 1000, "\u0000", "a\u0000b", "ü" * 37, "\U0001f600" * 20, "%",
    "%00", "_", "'", "\\", "null", "-1", "0", " ", "a b", "../x", "..", ".", "*",
    "\u202e\u0041", "\ufeff",
]) | st.text(max_size=80)


@settings(fuzz, max_examples=80)
@given(data=st.data(), name=st.sampled_from(sorted(DEEP.keys() - {"subscribe"})),
       absurd=ABSURD_IDS)
def test_an_absurd_id_in_a_deeper_path_is_answered_without_a_server_error(
    api: Api, world: World, data: st.DataObject, name: str, absurd: str
) -> None:
    # The real id of another kind of row must not be taken for one of these either.
    absurd = data.draw(st.just(absurd) | st.sampled_from(sorted(world.ids.values())),
                       label="id")
    method, template, make = DEEP[name]
    ids = {key: quote(absurd, safe="") for key in world.ids}
    body = make(world.ids)
    r = call(api, method, template.format(**ids), **({"json": body} if body is not None else {}))
    assert_well_behaved(r)


@settings(fuzz, max_examples=60)
@given(name=st.sampled_from(sorted(READS)), absurd=ABSURD_IDS)
def test_an_absurd_id_in_a_path_that_reads_is_answered_without_a_server_error(
    api: Api, world: World, name: str, absurd: str
) -> None:
    method, template, _ = READS[name]
    ids = {key: quote(absurd, safe="") for key in world.ids}
    assert_well_behaved(call(api, method, template.format(**ids)))


DEEP_QUERY_NAMES = {
    "/v1/fulfillment-requests": ["location_id", "status", "type", "order_id", "cursor",
                                 "limit"],
    "/v1/orders": ["customer_id", "status", "channel", "placed_from", "placed_to", "q",
                   "cursor", "limit"],
    "/v1/webhooks": ["status", "cursor", "limit"],
    "/v1/webhooks/{subscription}/deliveries": ["status", "cursor", "limit"],
}
ISO_TIMES = st.sampled_from([
    "2026-11-20T10:15:00+00:00", "0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+00:00", "2026-11-20T10:15:00",
    "2026-11-20", "yesterday", "",
])
#: Cursors this API never issued: any JSON, and the shapes it issues with odd parts.
forged_cursors = (
    json_values.map(encode_cursor)
    | st.tuples(st.integers() | json_values, ISO_TIMES | json_values,
                st.text(max_size=40) | json_values).map(lambda t: encode_cursor(list(t)))
    | st.tuples(st.sampled_from([0, 1, 2]), ISO_TIMES,
                st.sampled_from(["x", "x" * 36, "x" * 37, "a\u0000b", "\u0000", "ü" * 36, ""]))
    .map(lambda t: encode_cursor(list(t)))
    | st.sampled_from(["x" * 36, "a\u0000b", "\u0000", "ü" * 36, "", "f" * 32, "7" + "f" * 31,
                       "0" * 32, "g" * 32, "-" + "0" * 31]).map(encode_cursor)
    | st.text(max_size=60)
)


@fuzz
@given(data=st.data(), path=st.sampled_from(sorted(DEEP_QUERY_NAMES)),
       value=query_values | forged_cursors)
def test_any_value_of_one_query_parameter_of_the_deeper_lists_is_answered_without_a_server_error(
    api: Api, world: World, data: st.DataObject, path: str, value: str
) -> None:
    name = data.draw(st.sampled_from(DEEP_QUERY_NAMES[path]), label="name")
    value = data.draw(st.just(value) | st.sampled_from(sorted(world.ids.values())),
                      label="value")
    assert_well_behaved(api.get(world.url(path), params={name: value}))


@fuzz
@given(data=st.data(), path=st.sampled_from(sorted(DEEP_QUERY_NAMES)))
def test_any_query_string_of_the_deeper_lists_is_answered_without_a_server_error(
    api: Api, world: World, data: st.DataObject, path: str
) -> None:
    names = st.sampled_from(DEEP_QUERY_NAMES[path]) | st.text(max_size=8)
    values = query_values | forged_cursors | st.sampled_from(sorted(world.ids.values()))
    params = data.draw(st.lists(st.tuples(names, values), max_size=5), label="params")
    assert_well_behaved(api.get(world.url(path), params=params))


@settings(fuzz, max_examples=60)
@given(data=st.data(), path=st.sampled_from(sorted(DEEP_QUERY_NAMES)), cursor=forged_cursors)
def test_a_forged_cursor_of_the_deeper_lists_is_answered_without_a_server_error(
    api: Api, world: World, data: st.DataObject, path: str, cursor: str
) -> None:
    # A real cursor, cut or with a character changed, is as good as forged.
    real = world.cursors[path]
    cut = data.draw(st.integers(0, len(real)), label="cut")
    cursor = data.draw(st.sampled_from([cursor, real[:cut], real[:cut] + "A" + real[cut + 1:]]),
                       label="cursor")
    r = api.get(world.url(path), params={"cursor": cursor, "limit": 1})
    assert_well_behaved(r)
    if r.status_code >= 400:
        # NUL is refused for any query parameter, before the cursor is read.
        assert error_fields(r.json()) in (["cursor"], ["query.cursor"]), r.text


def test_nul_in_a_query_parameter_of_the_deeper_lists_is_refused_and_named(
    api: Api, world: World
) -> None:
    for path, names in DEEP_QUERY_NAMES.items():
        for name in names:
            body = problem(api.get(world.url(path), params={name: "a\u0000b"}), 422)
            assert error_fields(body) == [f"query.{name}"], (path, body)


# -- what the fuzzing above found, pinned ---------------------------------------------------


def test_nul_in_an_id_in_a_path_is_refused_and_named(api: Api, world: World) -> None:
    # PostgreSQL cannot compare text holding NUL: each id is refused before it is looked up.
    for name, (method, template, make) in {**DEEP, **READS}.items():
        if "{" not in template:
            continue
        body = make(world.ids)
        url = template.format(**dict.fromkeys(world.ids, "a%00b"))
        r = call(api, method, url, **({"json": body} if body is not None else {}))
        fields = error_fields(problem(r, 422))
        assert [f.split(".")[0] for f in fields] == ["path"], (name, fields)


def test_a_time_that_is_no_date_in_utc_is_refused(api: Api, world: World) -> None:
    # Year 1 at +14:00 is still year 0 in UTC, which no datetime holds.
    body = DEEP["tracking"][2](world.ids)
    for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        r = send_deep(api, world, "tracking", {**body, "occurred_at": when})
        assert error_fields(problem(r, 422)) == ["occurred_at"]
        r = api.post("/v1/orders", json=order_body(("SKU-1", 1), external_id="W-late",
                                                   placed_at=when))
        assert error_fields(problem(r, 422)) == ["placed_at"]
        for name in ("placed_from", "placed_to"):
            r = api.get("/v1/orders", params={name: when})
            assert error_fields(problem(r, 422)) == [f"query.{name}"]
    # The ends of the calendar in UTC itself are times like any other.
    for edge in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        r = send_deep(api, world, "tracking", {**body, "occurred_at": edge})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(("path", "cursor"), [
    ("/v1/fulfillment-requests", encode_cursor([1, "2026-11-20T10:15:00+00:00", "a\u0000b"])),
    ("/v1/webhooks", encode_cursor("a\u0000b")),
    ("/v1/orders", encode_cursor(["2026-11-20T10:15:00+00:00", "a\u0000b"])),
])
def test_a_cursor_holding_nul_is_refused(api: Api, path: str, cursor: str) -> None:
    assert error_fields(problem(api.get(path, params={"cursor": cursor}), 422)) == ["cursor"]


@pytest.mark.parametrize(("path", "cursor"), [
    # JSON's "\ud800", as a forged cursor sends it: a lone surrogate is no character.
    ("/v1/webhooks", "Ilx1ZDgwMCI"),
    ("/v1/orders", encode_cursor(["2026-11-20T10:15:00+00:00", "a\ud800"])),
    ("/v1/fulfillment-requests", encode_cursor([1, "2026-11-20T10:15:00+00:00", "\udfff"])),
    ("/v1/products", encode_cursor("\ud83d")),
])
def test_a_cursor_holding_a_lone_surrogate_is_refused(api: Api, path: str, cursor: str
                                                      ) -> None:
    assert error_fields(problem(api.get(path, params={"cursor": cursor}), 422)) == ["cursor"]


@pytest.mark.parametrize("url", ["https://" + "a" * 64 + ".example/hook", "https://a..b/hook",
                                 "https://" + "\u00fc" * 70 + ".example/hook"])
def test_a_webhook_host_that_is_no_dns_name_is_refused(
    engine: Engine, settings: Settings, make_key: Callable[..., str], url: str
) -> None:
    # Only with private targets refused is the host resolved; these fail before any lookup.
    strict = settings.model_copy(update={"egress_allow_private": False})
    with TestClient(create_app(strict, engine), raise_server_exceptions=False) as client:
        guarded = Api(client, make_key("admin"))
        r = guarded.post("/v1/webhooks", json={"url": url, "event_types": ["*"]})
        assert error_fields(problem(r, 422)) == ["url"]


# -- lax input: a value is taken as JSON writes it, and only what the API documents -----------


def _raw(api: Api, method: str, path: str, text: str, **headers: str) -> Any:
    return call(api, method, path, content=text.encode(),
                headers={"content-type": "application/json", **headers})


def test_a_key_given_twice_is_refused_and_named(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 10})
    r = _raw(api, "PUT", "/v1/inventory/mitte/SKU-1", '{"on_hand": 1, "on_hand": 5}')
    body = problem(r, 422)
    assert body["errors"] == [{"field": "on_hand", "message": "is given more than once"}]
    assert api.get("/v1/inventory/mitte/SKU-1").json()["on_hand"] == 10

    order = json.dumps(order_body(("SKU-1", 1)))
    twice = order.replace('"quantity": 1', '"quantity": 1, "quantity": 5')
    assert twice != order
    r = _raw(api, "POST", "/v1/orders", twice)
    assert error_fields(problem(r, 422)) == ["items.0.quantity"]
    assert api.get("/v1/orders").json()["items"] == []


def test_a_number_beyond_any_quantity_is_refused_and_named(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 10})
    r = _raw(api, "PUT", "/v1/inventory/mitte/SKU-1", '{"on_hand": ' + "9" * 5000 + "}")
    assert error_fields(problem(r, 422)) == ["on_hand"]
    assert api.get("/v1/inventory/mitte/SKU-1").json()["on_hand"] == 10
    # JSON has one kind of number: 2.0 is the integer 2 (as JSON Schema counts it), 2.5 is not.
    r = _raw(api, "PUT", "/v1/inventory/mitte/SKU-1", '{"on_hand": 2.0}')
    assert r.status_code == 200, r.text
    assert r.json()["on_hand"] == 2
    r = _raw(api, "PUT", "/v1/inventory/mitte/SKU-1", '{"on_hand": 2.5}')
    assert error_fields(problem(r, 422)) == ["on_hand"]


def test_a_json_syntax_error_names_its_line_and_column(api: Api) -> None:
    text = '{\n  "name": "shirt",\n  "price": \n}'
    body = problem(_raw(api, "PUT", "/v1/products/X", text), 400)
    assert body["type"] == "urn:oms:problem:invalid-request"
    assert (body["line"], body["column"]) == (4, 1)
    assert "line 4, column 1" in body["detail"]
    assert error_fields(body) == ["body"]
    problem(api.get("/v1/products/X"), 404)


def test_a_body_not_in_utf8_names_where_it_stops_being_text(api: Api) -> None:
    latin1 = '{"name": "T-Shirt gr\u00fcn"}'.encode("latin-1")
    r = call(api, "PUT", "/v1/products/X", content=latin1,
             headers={"content-type": "application/json"})
    body = problem(r, 400)
    assert (body["line"], body["column"]) == (1, 21)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "text/csv", None])
def test_a_body_of_a_content_type_the_route_does_not_take_is_415(
    api: Api, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = call(api, "PUT", "/v1/products/X", content=json.dumps(product_body()).encode(),
             headers=headers)
    body = problem(r, 415)
    assert body["type"] == "urn:oms:problem:unsupported-media-type"
    assert "application/json" in body["detail"]
    problem(api.get("/v1/products/X"), 404)
    # JSON by another name is JSON.
    r = call(api, "PUT", "/v1/products/X", content=json.dumps(product_body()).encode(),
             headers={"content-type": "application/vnd.oms+json; charset=utf-8"})
    assert r.status_code == 201, r.text


def _item(body: dict[str, Any], **values: Any) -> dict[str, Any]:
    return {**body, "items": [{**body["items"][0], **values}]}


#: A value of another JSON type than the field's, that a lenient reader would convert.
LAX_VALUES: dict[str, tuple[str, str, Callable[[], dict[str, Any]], str]] = {
    "quantity true": ("POST", "/v1/orders",
                      lambda: _item(order_body(("SKU-1", 1)), quantity=True), "items.0.quantity"),
    "quantity '1'": ("POST", "/v1/orders",
                     lambda: _item(order_body(("SKU-1", 1)), quantity="1"), "items.0.quantity"),
    "placed_at 12345": ("POST", "/v1/orders",
                        lambda: order_body(("SKU-1", 1), placed_at=12345), "placed_at"),
    "placed_at '12345'": ("POST", "/v1/orders",
                          lambda: order_body(("SKU-1", 1), placed_at="12345"), "placed_at"),
    "historical 'yes'": ("POST", "/v1/orders",
                         lambda: order_body(("SKU-1", 1), historical="yes"), "historical"),
    "on_hand '5'": ("PUT", "/v1/inventory/mitte/SKU-1", lambda: {"on_hand": "5"}, "on_hand"),
    "on_hand true": ("PUT", "/v1/inventory/mitte/SKU-1", lambda: {"on_hand": True}, "on_hand"),
    "active 'yes'": ("PUT", "/v1/locations/mitte",
                     lambda: location_body(active="yes"), "active"),
    "priority '10'": ("PUT", "/v1/locations/mitte",
                      lambda: location_body(priority="10"), "priority"),
    "available_on as a time": ("POST", "/v1/inventory/future", lambda: {"entries": [
        {"location_id": "mitte", "sku": "SKU-1", "quantity": 3,
         "available_on": "2099-01-01T00:00:00"}]}, "entries.0.available_on"),
}


@pytest.mark.parametrize("case", sorted(LAX_VALUES))
def test_a_value_of_another_json_type_is_refused_and_named(api: Api, shop: Shop,
                                                            case: str) -> None:
    shop({("mitte", "SKU-1"): 10})
    method, path, make, field = LAX_VALUES[case]
    before = api.get(path).json() if method == "PUT" else None
    r = call(api, method, path, json=make())
    assert error_fields(problem(r, 422)) == [field], r.text
    if before is not None:
        assert api.get(path).json() == before
    assert api.get("/v1/orders").json()["items"] == []


@pytest.mark.parametrize("code", ["XXX", "XTS", "XAU", "XDR", "CLF"])
def test_a_code_of_no_currency_is_refused(api: Api, shop: Shop, code: str) -> None:
    shop({("mitte", "SKU-1"): 10})
    r = api.post("/v1/orders", json=order_body(("SKU-1", 1), currency=code))
    assert error_fields(problem(r, 422)) == ["currency"]
    r = api.put("/v1/products/Y", json=product_body(price={"amount": "1.00", "currency": code}))
    assert error_fields(problem(r, 422)) == ["price.currency"]
    problem(api.get("/v1/products/Y"), 404)
    # Currencies of places that once used their own are still money: history is imported.
    r = api.put("/v1/products/Y", json=product_body(price={"amount": "1.00", "currency": "HRK"}))
    assert r.status_code == 201, r.text


def _now(**shift: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**shift)).isoformat()


@pytest.mark.parametrize("placed_at", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_a_live_order_placed_at_the_ends_of_the_calendar_is_refused(
    api: Api, shop: Shop, placed_at: str
) -> None:
    shop({("mitte", "SKU-1"): 10})
    r = api.post("/v1/orders", json=order_body(("SKU-1", 1), placed_at=placed_at))
    assert error_fields(problem(r, 422)) == ["placed_at"]
    assert api.get("/v1/orders").json()["items"] == []
    assert api.get("/v1/inventory/mitte/SKU-1").json()["reserved"] == 0


def test_a_live_order_is_placed_near_now_and_a_historical_one_in_the_past(
    engine: Engine, settings: Settings, make_key: Callable[..., str]
) -> None:
    window = settings.model_copy(update={"live_order_max_age_days": 30,
                                         "order_clock_skew_seconds": 300})
    with TestClient(create_app(window, engine), raise_server_exceptions=False) as client:
        api = Api(client, make_key("admin"))
        api.put("/v1/locations/mitte", json=location_body())
        api.put("/v1/products/SKU-1", json=product_body())
        api.put("/v1/inventory/mitte/SKU-1", json={"on_hand": 10})

        refused = {"31 days ago": _now(days=-31), "10 minutes ahead": _now(minutes=10)}
        for n, when in enumerate(refused.values()):
            r = api.post("/v1/orders", json=order_body(("SKU-1", 1), external_id=f"L-{n}",
                                                       placed_at=when))
            assert error_fields(problem(r, 422)) == ["placed_at"]
        assert "historical" in problem(api.post("/v1/orders", json=order_body(
            ("SKU-1", 1), external_id="L-old", placed_at=refused["31 days ago"])), 422)["detail"]
        # A sender's clock a little fast, and last week's order, are live orders like any.
        for n, when in enumerate([_now(minutes=2), _now(days=-7)]):
            place(api, order_body(("SKU-1", 1), external_id=f"L-ok-{n}", placed_at=when))

        history = {"channel": "historical", "historical": True, "payments": [], "shipping": None,
                   "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": "19.90",
                              "tax": "3.78", "status": "fulfilled"}],
                   "totals": {"grand_total": "23.68"}}
        r = api.post("/v1/orders", json=order_body(external_id="H-1", **history,
                                                   placed_at="2001-02-03T04:05:06Z"))
        assert r.status_code == 201, r.text
        r = api.post("/v1/orders", json=order_body(external_id="H-2", **history,
                                                   placed_at=_now(days=1)))
        assert error_fields(problem(r, 422)) == ["placed_at"]
        assert api.get("/v1/inventory/mitte/SKU-1").json()["reserved"] == 2


@pytest.mark.parametrize("types", [["no.such.type"], ["nosuch.*"], ["order.*", "order.shipped"]])
def test_a_webhook_for_an_event_type_that_does_not_exist_is_refused(api: Api,
                                                                    types: list[str]) -> None:
    r = api.post("/v1/webhooks", json={"url": "https://erp.example/oms", "event_types": types})
    body = problem(r, 422)
    assert error_fields(body) == ["event_types"]
    assert "order.*" in body["errors"][0]["message"]
    assert api.get("/v1/webhooks").json()["items"] == []


def test_a_routing_rule_with_an_empty_group_is_refused(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 10})
    rules = {"rules": [{"service_level": "standard", "country": "DE",
                        "groups": [["mitte"], []]}]}
    assert error_fields(problem(api.put("/v1/routing/rules", json=rules), 422)) == [
        "rules.0.groups.1"]
    assert api.get("/v1/routing/rules").json()["rules"] == []


def test_the_tracking_statuses_the_spec_lists_are_those_a_carrier_may_report(
    api: Api, world: World
) -> None:
    spec = api.get("/openapi.json").json()
    schema = spec["components"]["schemas"]["TrackingEventIn"]["properties"]["status"]
    statuses = schema["enum"] if "enum" in schema else spec["components"]["schemas"][
        schema["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert "created" not in statuses
    body = DEEP["tracking"][2](world.ids)
    for status in statuses:
        r = send_deep(api, world, "tracking", {**body, "status": status})
        assert r.status_code == 200, (status, r.text)
    r = send_deep(api, world, "tracking", {**body, "status": "created"})
    assert error_fields(problem(r, 422)) == ["status"]


def test_the_feed_goes_on_from_an_after_written_in_capitals(api: Api) -> None:
    r = api.get("/v1/events", params={"after": "7FFFFFFFFFFFFFFE000000000000000A"})
    assert r.status_code == 200, r.text
    # Nothing follows it: the id is given back as ids are written, as the document says.
    assert r.json()["next_after"] == "7ffffffffffffffe000000000000000a"


@pytest.mark.parametrize("key", ["clé-1".encode("latin-1"), b" ", b"\t", b"k" * 255 + b" "])
def test_an_idempotency_key_is_printable_ascii_on_every_route(api: Api, key: bytes) -> None:
    # As the document says (and the IETF draft: a structured-field string): an import and
    # any other change refuse the same keys alike.
    change = api.put("/v1/products/K", json=product_body(), headers={"Idempotency-Key": key})
    assert "printable ASCII" in problem(change, 400)["detail"]
    file = api.post("/v1/imports/inventory", content=b"location_id,sku,on_hand\n",
                    headers={"Content-Type": "text/csv", "Idempotency-Key": key})
    assert "printable ASCII" in problem(file, 400)["detail"]
    problem(api.get("/v1/products/K"), 404)


def test_an_idempotency_key_may_hold_spaces_within(api: Api) -> None:
    r = api.put("/v1/products/K", json=product_body(), headers={"Idempotency-Key": "order 42"})
    assert r.status_code == 201, r.text
