"""API keys and roles: who may call what, and at which locations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select

from oms.adapters.db import tables as t
from oms.adapters.db.engine import make_engine
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.app import create_app
from oms.domain.access import Role
from oms.domain.errors import NotFound, ValidationFailed
from oms.domain.events import utcnow
from oms.services.apikeys import create_key
from oms.settings import Settings
from tests.helpers import Api, error_fields, location_body, problem, product_body, served

AsRole = Callable[..., Api]
ADJUSTMENTS = "/v1/inventory/adjustments"


@pytest.fixture
def two_stores(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("store-a", "SKU-1"): 10, ("store-b", "SKU-1"): 20})


def level(api: Api, location_id: str, sku: str) -> int:
    r = api.get(f"/v1/inventory/{location_id}/{sku}")
    assert r.status_code == 200, r.text
    on_hand: int = r.json()["on_hand"]
    return on_hand


def test_no_authorization_header_is_401(app_client: TestClient) -> None:
    r = app_client.get("/v1/products")
    body = problem(r, 401)
    assert body["type"] == "urn:oms:problem:unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    problem(app_client.put("/v1/products/A", json=product_body()), 401)


@pytest.mark.parametrize("authorization", [
    "Bearer oms_not-a-key",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "oms_no-scheme",
])
def test_a_wrong_key_is_401(app_client: TestClient, authorization: str) -> None:
    r = app_client.get("/v1/products", headers={"Authorization": authorization})
    problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


def test_the_right_key_with_another_scheme_is_401(app_client: TestClient,
                                                   make_key: Callable[..., str]) -> None:
    key = make_key("admin")
    assert app_client.get("/v1/products", headers={"Authorization": f"Bearer {key}"}
                          ).status_code == 200
    problem(app_client.get("/v1/products", headers={"Authorization": f"Token {key}"}), 401)


def _revoke_all(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        (record,) = uow.api_keys.all()
        assert uow.api_keys.revoke(record.id, utcnow())
        uow.commit()


def test_a_revoked_key_is_401_once_the_check_kept_has_run_out(
        engine: Engine, settings: Settings, make_key: Callable[..., str]) -> None:
    """The key check's answer is kept a short while in each process: a revoked key is still
    taken within that while, and refused after it."""
    kept = settings.model_copy(update={"api_key_cache_seconds": 0.5})
    with TestClient(create_app(kept, engine), raise_server_exceptions=False) as client:
        key = make_key("integrator")
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/products", headers=headers).status_code == 200
        revoked = time.monotonic()
        _revoke_all(engine)
        # Within the while: the answer kept says yes (the database is not asked).
        r = client.get("/v1/products", headers=headers)
        assert time.monotonic() - revoked < 0.5
        assert r.status_code == 200
        time.sleep(0.6)
        problem(client.get("/v1/products", headers=headers), 401)


def test_with_no_check_kept_a_revoked_key_is_401_at_once(
        engine: Engine, settings: Settings, make_key: Callable[..., str]) -> None:
    fresh = settings.model_copy(update={"api_key_cache_seconds": 0})
    with TestClient(create_app(fresh, engine), raise_server_exceptions=False) as client:
        key = make_key("integrator")
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/products", headers=headers).status_code == 200
        _revoke_all(engine)
        problem(client.get("/v1/products", headers=headers), 401)


@pytest.fixture
def slow_key_lookups(settings: Settings) -> Iterator[tuple[Engine, list[str]]]:
    """An engine of its own whose key lookups take 0.3 s: requests sent together all arrive
    while the first check is under way. The lookups made are listed."""
    engine = make_engine(settings)
    lookups: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def slow_key_lookup(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM api_keys" in statement:
            lookups.append(statement)
            time.sleep(0.3)

    yield engine, lookups
    engine.dispose()


def test_requests_that_miss_the_kept_check_together_wait_for_one_check(
        settings: Settings, make_key: Callable[..., str],
        slow_key_lookups: tuple[Engine, list[str]]) -> None:
    """When a busy client's kept answer runs out, its requests in flight are checked once, not
    once each (a thread and a connection each)."""
    engine, lookups = slow_key_lookups
    kept = settings.model_copy(update={"api_key_cache_seconds": 30})
    key = make_key("integrator")
    with served(create_app(kept, engine)) as url, ThreadPoolExecutor(8) as pool:
        def read(_: int) -> int:
            return httpx.get(f"{url}/v1/products",
                             headers={"Authorization": f"Bearer {key}"}).status_code

        assert list(pool.map(read, range(8))) == [200] * 8
    assert len(lookups) == 1


def test_requests_on_event_loops_of_their_own_are_each_checked(
        settings: Settings, make_key: Callable[..., str],
        slow_key_lookups: tuple[Engine, list[str]]) -> None:
    """A test client used without `with` runs each request on a loop of its own: a check
    under way on one loop is not waited for from another."""
    engine, lookups = slow_key_lookups
    kept = settings.model_copy(update={"api_key_cache_seconds": 30})
    key = make_key("integrator")
    client = TestClient(create_app(kept, engine), raise_server_exceptions=False)
    with ThreadPoolExecutor(4) as pool:
        def read(_: int) -> int:
            return client.get("/v1/products",
                              headers={"Authorization": f"Bearer {key}"}).status_code

        assert list(pool.map(read, range(4))) == [200] * 4
    assert 1 <= len(lookups) <= 4


def test_an_associate_may_read_products_but_not_write_them(api: Api, as_role: AsRole) -> None:
    api.put("/v1/locations/store-a", json=location_body())
    api.put("/v1/products/A", json=product_body())
    associate = as_role("associate", ["store-a"])
    body = problem(associate.put("/v1/products/A", json=product_body("Changed")), 403)
    assert body["type"] == "urn:oms:problem:forbidden"
    assert "associate" in body["detail"]
    problem(associate.put("/v1/products/NEW", json=product_body()), 403)
    r = associate.get("/v1/products/A")
    assert r.status_code == 200
    assert r.json()["name"] == "Running shirt"
    assert [p["sku"] for p in associate.get("/v1/products").json()["items"]] == ["A"]
    problem(associate.get("/v1/products/NEW"), 404)


def test_an_integrator_may_write_the_catalog_and_locations(as_role: AsRole) -> None:
    integrator = as_role("integrator")
    r = integrator.put("/v1/products/A", json=product_body())
    assert r.status_code == 201, r.text
    assert integrator.get("/v1/products/A").json()["version"] == 1
    assert integrator.put("/v1/locations/dc-1", json=location_body(type="dc")).status_code == 201


def test_a_manager_may_not_write_the_catalog_or_read_events(api: Api, as_role: AsRole) -> None:
    api.put("/v1/locations/store-a", json=location_body())
    manager = as_role("manager", ["store-a"])
    problem(manager.put("/v1/products/A", json=product_body()), 403)
    problem(manager.put("/v1/locations/store-a", json=location_body("Elsewhere")), 403)
    problem(manager.get("/v1/events"), 403)
    assert api.get("/v1/locations/store-a").json()["name"] == "Berlin store"


@pytest.mark.usefixtures("two_stores")
def test_a_manager_sets_stock_only_at_their_store(api: Api, as_role: AsRole) -> None:
    manager = as_role("manager", ["store-a"])
    r = manager.put("/v1/inventory/store-a/SKU-1", json={"on_hand": 7})
    assert r.status_code == 200, r.text
    assert r.json()["on_hand"] == 7
    body = problem(manager.put("/v1/inventory/store-b/SKU-1", json={"on_hand": 1}), 403)
    assert "store-b" in body["detail"]
    assert level(api, "store-a", "SKU-1") == 7
    assert level(api, "store-b", "SKU-1") == 20


@pytest.mark.usefixtures("two_stores")
def test_a_manager_adjusts_only_at_their_store(api: Api, as_role: AsRole) -> None:
    manager = as_role("manager", ["store-a"])
    ok = manager.post(ADJUSTMENTS, json={"adjustments": [
        {"location_id": "store-a", "sku": "SKU-1", "delta": -2, "reason": "damaged"}]})
    assert ok.status_code == 200, ok.text
    assert level(api, "store-a", "SKU-1") == 8

    only_b = manager.post(ADJUSTMENTS, json={"adjustments": [
        {"location_id": "store-b", "sku": "SKU-1", "delta": 5, "reason": "count"}]})
    assert "store-b" in problem(only_b, 403)["detail"]
    mixed = manager.post(ADJUSTMENTS, json={"adjustments": [
        {"location_id": "store-a", "sku": "SKU-1", "delta": 1, "reason": "count"},
        {"location_id": "store-b", "sku": "SKU-1", "delta": 1, "reason": "count"}]})
    problem(mixed, 403)
    # All or nothing: the line at the manager's own store was not applied either.
    assert level(api, "store-a", "SKU-1") == 8
    assert level(api, "store-b", "SKU-1") == 20
    changes = api.get("/v1/events", params={"type": "inventory.*"}).json()["items"]
    assert [e["payload"]["reason"] for e in changes] == ["set", "set", "adjustment"]


@pytest.mark.usefixtures("two_stores")
def test_a_manager_of_two_stores_may_act_at_both(api: Api, as_role: AsRole) -> None:
    manager = as_role("manager", ["store-a", "store-b"])
    r = manager.post(ADJUSTMENTS, json={"adjustments": [
        {"location_id": "store-a", "sku": "SKU-1", "delta": 1, "reason": "count"},
        {"location_id": "store-b", "sku": "SKU-1", "delta": 1, "reason": "count"}]})
    assert r.status_code == 200, r.text
    assert (level(api, "store-a", "SKU-1"), level(api, "store-b", "SKU-1")) == (11, 21)


@pytest.mark.usefixtures("two_stores")
def test_an_associate_may_read_but_not_change_stock(api: Api, as_role: AsRole) -> None:
    associate = as_role("associate", ["store-a"])
    problem(associate.put("/v1/inventory/store-a/SKU-1", json={"on_hand": 0}), 403)
    problem(associate.post(ADJUSTMENTS, json={"adjustments": [
        {"location_id": "store-a", "sku": "SKU-1", "delta": -1, "reason": "sold"}]}), 403)
    problem(associate.post("/v1/inventory/future", json={"entries": [
        {"location_id": "store-a", "sku": "SKU-1", "quantity": 1,
         "available_on": "2099-01-01"}]}), 403)
    assert level(associate, "store-a", "SKU-1") == 10
    r = associate.get("/v1/availability", params={"sku": "SKU-1"})
    assert r.status_code == 200
    assert r.json()["items"][0]["totals"]["on_hand"] == 30


@pytest.mark.usefixtures("two_stores")
def test_only_integrators_record_future_stock(api: Api, as_role: AsRole) -> None:
    entries = {"entries": [{"location_id": "store-a", "sku": "SKU-1", "quantity": 4,
                            "available_on": "2099-01-01"}]}
    problem(as_role("manager", ["store-a"]).post("/v1/inventory/future", json=entries), 403)
    r = as_role("integrator").post("/v1/inventory/future", json=entries)
    assert r.status_code == 200, r.text
    totals = api.get("/v1/availability", params={"sku": "SKU-1"}).json()["items"][0]["totals"]
    assert totals["future"] == 4


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ASSOCIATE])
def test_a_store_role_key_needs_a_location(engine: Engine, role: Role) -> None:
    with UnitOfWork(engine) as uow, pytest.raises(ValidationFailed) as refused:
        create_key(uow, role, [], "no store")
    assert [e.field for e in refused.value.errors] == ["location"]
    with UnitOfWork(engine, read_only=True) as uow:
        assert uow.api_keys.all() == []


def test_an_admin_key_is_bound_to_no_location(api: Api, engine: Engine) -> None:
    api.put("/v1/locations/store-a", json=location_body())
    with UnitOfWork(engine) as uow, pytest.raises(ValidationFailed):
        create_key(uow, Role.ADMIN, ["store-a"], "bound admin")


def test_a_key_for_an_unknown_location_is_refused(engine: Engine) -> None:
    with UnitOfWork(engine) as uow, pytest.raises(NotFound) as refused:
        create_key(uow, Role.MANAGER, ["atlantis"], "nowhere")
    assert "atlantis" in refused.value.detail


def test_the_key_is_stored_only_as_a_hash(engine: Engine, app_client: TestClient) -> None:
    with UnitOfWork(engine) as uow:
        record, key = create_key(uow, Role.INTEGRATOR, [], "erp")
    assert key.startswith("oms_")
    assert len(key) > 40
    with engine.connect() as conn:
        rows = conn.execute(select(t.api_keys)).mappings().all()
    assert [r["id"] for r in rows] == [record.id]
    stored = [str(value) for value in rows[0].values()]
    assert not [value for value in stored if key in value]
    # Only a short prefix, for telling keys apart in `oms apikey list`.
    assert key.startswith(rows[0]["prefix"])
    assert len(rows[0]["prefix"]) < 16
    r = app_client.get("/v1/events", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text


def test_an_anonymous_invalid_body_is_refused_as_unauthenticated(
    app_client: TestClient,
) -> None:
    # The key is checked before the body, so an anonymous caller learns nothing of the rules.
    body = problem(app_client.put("/v1/products/A", json={"name": 1}), 401)
    assert error_fields(body) == []
