"""Locations over HTTP: create, replace, read, validation, filtered lists."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api, error_fields, location_body, problem


def address(**overrides: Any) -> dict[str, Any]:
    return {**location_body()["address"], **overrides}


def test_put_creates_then_replaces(api: Api) -> None:
    created = api.put("/v1/locations/berlin", json=location_body())
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    replaced = api.put("/v1/locations/berlin", json=location_body(
        type="dc", capabilities=["ship"], active=False, priority=3))
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["version"], body["type"], body["capabilities"], body["active"],
            body["priority"]) == (2, "dc", ["ship"], False, 3)


def test_get_returns_what_put_answered(api: Api) -> None:
    put = api.put("/v1/locations/berlin", json=location_body(
        address=address(line2="2nd floor", region="BE")))
    got = api.get("/v1/locations/berlin")
    assert got.status_code == 200
    assert got.json() == put.json()
    body = got.json()
    assert body["id"] == "berlin"
    assert body["address"] == {
        "line1": "Alexanderplatz 1", "line2": "2nd floor", "city": "Berlin", "region": "BE",
        "postal_code": "10178", "country": "DE", "lat": 52.5219, "lon": 13.4132}
    assert body["capabilities"] == ["pickup", "returns", "ship"]
    assert body["timezone"] == "Europe/Berlin"


def test_defaults_of_optional_fields(api: Api) -> None:
    body = {k: v for k, v in location_body().items()
            if k not in ("capabilities", "priority", "active", "timezone")}
    r = api.put("/v1/locations/plain", json=body)
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in ("capabilities", "priority", "active", "timezone")} == {
        "capabilities": [], "priority": 100, "active": True, "timezone": "UTC"}


def test_a_lowercase_country_code_is_stored_in_capitals(api: Api) -> None:
    r = api.put("/v1/locations/berlin", json=location_body(address=address(country="de")))
    assert r.status_code == 201, r.text
    assert api.get("/v1/locations/berlin").json()["address"]["country"] == "DE"


@pytest.mark.parametrize("country", ["XX", "DEU", "D", "", "276", "EU"])
def test_country_must_be_iso_3166_alpha_2(api: Api, country: str) -> None:
    r = api.put("/v1/locations/berlin", json=location_body(address=address(country=country)))
    assert error_fields(problem(r, 422)) == ["address.country"]
    problem(api.get("/v1/locations/berlin"), 404)


@pytest.mark.parametrize(("field", "value"), [
    ("lat", 90.0001), ("lat", -91), ("lon", 180.5), ("lon", -181), ("lat", "north"),
])
def test_coordinates_out_of_range_are_refused(api: Api, field: str, value: Any) -> None:
    r = api.put("/v1/locations/berlin", json=location_body(address=address(**{field: value})))
    assert error_fields(problem(r, 422)) == [f"address.{field}"]


def test_coordinates_on_the_edges_are_accepted(api: Api) -> None:
    r = api.put("/v1/locations/pole", json=location_body(address=address(lat=-90, lon=180)))
    assert r.status_code == 201, r.text
    assert (r.json()["address"]["lat"], r.json()["address"]["lon"]) == (-90, 180)


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "CEST", "", "../etc/passwd", "+02:00"])
def test_an_unknown_timezone_is_refused(api: Api, timezone: str) -> None:
    r = api.put("/v1/locations/berlin", json=location_body(timezone=timezone))
    assert error_fields(problem(r, 422)) == ["timezone"]


def test_an_unknown_capability_is_refused(api: Api) -> None:
    r = api.put("/v1/locations/berlin", json=location_body(capabilities=["ship", "teleport"]))
    assert error_fields(problem(r, 422)) == ["capabilities.1"]
    r = api.put("/v1/locations/berlin", json=location_body(capabilities=["ship", "ship"]))
    assert error_fields(problem(r, 422)) == ["capabilities"]


def test_an_unknown_type_is_refused(api: Api) -> None:
    r = api.put("/v1/locations/berlin", json=location_body(type="warehouse"))
    assert error_fields(problem(r, 422)) == ["type"]


def test_missing_address_fields_are_named(api: Api) -> None:
    incomplete = {k: v for k, v in address().items() if k not in ("city", "postal_code")}
    r = api.put("/v1/locations/berlin", json=location_body(address=incomplete))
    assert sorted(error_fields(problem(r, 422))) == ["address.city", "address.postal_code"]


def test_text_longer_than_its_column_is_refused(api: Api) -> None:
    r = api.put("/v1/locations/berlin", json=location_body(address=address(city="C" * 101)))
    assert error_fields(problem(r, 422)) == ["address.city"]
    r = api.put("/v1/locations/berlin", json=location_body(address=address(city="C" * 100)))
    assert r.status_code == 201, r.text
    assert api.get("/v1/locations/berlin").json()["address"]["city"] == "C" * 100


def test_a_callback_url_of_the_longest_length_is_kept_as_given(api: Api) -> None:
    # Read as a URL and written out again, "http://0?..." would be "http://0.0.0.0/?...":
    # longer than its column.
    url = "http://0?" + "0" * (2000 - len("http://0?"))
    r = api.put("/v1/locations/dc-1", json=location_body(
        type="dc", capabilities=["ship"], fulfillment_callback_url=url))
    assert r.status_code == 201, r.text
    assert api.get("/v1/locations/dc-1").json()["fulfillment_callback_url"] == url


def test_an_unknown_location_is_not_found(api: Api) -> None:
    body = problem(api.get("/v1/locations/atlantis"), 404)
    assert "atlantis" in body["detail"]


@pytest.mark.parametrize("location_id", ["has space", "-dash", "x" * 65])
def test_an_id_outside_the_code_pattern_is_refused(api: Api, location_id: str) -> None:
    r = api.put(f"/v1/locations/{location_id}", json=location_body())
    assert error_fields(problem(r, 422)) == ["path.location_id"]


@pytest.fixture
def network(api: Api) -> None:
    for location_id, body in {
        "berlin": location_body("Berlin"),
        "hamburg": location_body("Hamburg", capabilities=["ship"]),
        "kassel-dc": location_body("Kassel", type="dc", capabilities=["ship", "returns"]),
        "leipzig-dc": location_body("Leipzig", type="dc", active=False),
        "munich": location_body("Munich", active=False, capabilities=["pickup"]),
        "rotterdam-3pl": location_body("Rotterdam", type="3pl", capabilities=["ship"]),
    }.items():
        assert api.put(f"/v1/locations/{location_id}", json=body).status_code == 201


def ids(api: Api, **params: Any) -> list[str]:
    r = api.get("/v1/locations", params=params)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["items"]]


@pytest.mark.usefixtures("network")
def test_list_filters_by_type_active_and_capability(api: Api) -> None:
    assert ids(api) == ["berlin", "hamburg", "kassel-dc", "leipzig-dc", "munich",
                        "rotterdam-3pl"]
    assert ids(api, type="dc") == ["kassel-dc", "leipzig-dc"]
    assert ids(api, type="3pl") == ["rotterdam-3pl"]
    assert ids(api, active="false") == ["leipzig-dc", "munich"]
    assert ids(api, active="true", type="dc") == ["kassel-dc"]
    assert ids(api, capability="pickup") == ["berlin", "leipzig-dc", "munich"]
    assert ids(api, capability="pickup", active="true") == ["berlin"]
    assert ids(api, capability="returns", type="dc") == ["kassel-dc", "leipzig-dc"]


@pytest.mark.usefixtures("network")
@pytest.mark.parametrize(("name", "value"), [
    ("type", "warehouse"), ("active", "maybe"), ("capability", "teleport")])
def test_an_unknown_filter_value_is_refused(api: Api, name: str, value: str) -> None:
    body = problem(api.get("/v1/locations", params={name: value}), 422)
    assert error_fields(body) == [f"query.{name}"]


@pytest.mark.usefixtures("network")
def test_pagination_visits_every_location_once(api: Api) -> None:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/locations", params=params).json()
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["berlin", "hamburg", "kassel-dc", "leipzig-dc", "munich", "rotterdam-3pl"]


@pytest.mark.usefixtures("network")
def test_pagination_keeps_the_filter(api: Api) -> None:
    first = api.get("/v1/locations", params={"type": "dc", "limit": 1}).json()
    assert [x["id"] for x in first["items"]] == ["kassel-dc"]
    second = api.get("/v1/locations", params={
        "type": "dc", "limit": 1, "cursor": first["next_cursor"]}).json()
    assert [x["id"] for x in second["items"]] == ["leipzig-dc"]
    assert second["next_cursor"] is None


def test_a_malformed_cursor_is_refused(api: Api) -> None:
    body = problem(api.get("/v1/locations", params={"cursor": "!!"}), 422)
    assert error_fields(body) == ["cursor"]
