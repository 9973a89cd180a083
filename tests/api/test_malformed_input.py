"""Whatever a client sends, the answer is never a 5xx, and every refusal is problem+json."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Api, error_fields, location_body, problem, product_body

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


def test_a_body_of_another_content_type_is_refused(api: Api) -> None:
    r = api.put("/v1/products/X", content=json.dumps(product_body()).encode(), headers={
        "content-type": "text/plain"})
    assert r.status_code in (415, 422)
    problem(r, r.status_code)
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
    body = problem(r, 422)
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
