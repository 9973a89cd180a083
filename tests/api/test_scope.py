"""Who reads what: a store key sees the orders that touch its stores and their customers, and
nothing of any other store's; integrator and admin keys see everything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fulfilling import requests_of, step
from tests.helpers import Api, problem
from tests.ordering import Shop, order_body, place

AsRole = Callable[..., Api]

#: The customer of store A's order, and each of their details no other store may read.
ADA = {"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+4930123456"}
ADA_ADDRESS = "Unter den Linden 5"
#: A customer of store B's own order.
GRACE = {"email": "grace@example.com", "name": "Grace Hopper", "phone": "+4940555777"}

#: A valid body for each operation a store role may reach past its role check, so that the
#: walk meets the scope rule and not a 422. A new operation the walk cannot reach this way
#: fails the walk until it is given a body here.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/orders/{order_id}/cancel"): {},
    ("post", "/v1/fulfillment-requests/{request_id}/pick"): {},
    ("post", "/v1/fulfillment-requests/{request_id}/pack"): {},
    ("post", "/v1/fulfillment-requests/{request_id}/ship"): {},
    ("post", "/v1/fulfillment-requests/{request_id}/hand-over"): {},
    ("post", "/v1/fulfillment-requests/{request_id}/reject"): {"reason": "not here"},
    ("put", "/v1/inventory/{location_id}/{sku}"): {"on_hand": 0},
    ("post", "/v1/inventory/adjustments"): {"adjustments": [
        {"location_id": "mitte", "sku": "SKU-1", "delta": -1, "reason": "sold"}]},
    ("post", "/v1/carts"): {"location_id": "mitte", "currency": "EUR"},
    ("patch", "/v1/carts/{cart_id}"): {"customer": GRACE},
    ("post", "/v1/carts/{cart_id}/items"): {"sku": "SKU-1"},
    ("patch", "/v1/carts/{cart_id}/items/{line_id}"): {"quantity": 1},
    ("post", "/v1/carts/{cart_id}/discounts"): {"amount": "1.00", "reason": "staff"},
    ("post", "/v1/carts/{cart_id}/payments"): {"method": "cash", "amount": "1.00"},
    ("post", "/v1/carts/{cart_id}/approvals"): {"rule_ids": ["big-discount"]},
    ("put", "/v1/carts/{cart_id}/shipping"): {"option_id": "standard:dhl", "address": {
        "line1": "Am Kanal 1", "city": "Potsdam", "postal_code": "14467", "country": "DE"}},
}


def _store_a_order(api: Api, shop: Shop, as_role: AsRole) -> dict[str, Any]:
    """Store A (mitte) ships an order to Ada; store B (potsdam) has a pickup order of its own.
    Returns every identifier of A's order, its customer, request and shipment."""
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), external_id="W-A1", email=ADA["email"]))
    place(api, order_body(("SKU-2", 1), external_id="W-B1", pickup_at="potsdam",
                          email=GRACE["email"], customer=GRACE))
    [request] = requests_of(api, order["id"])
    assert request["location_id"] == "mitte"
    for name in ("accept", "pick", "pack"):
        step(api, request["id"], name)
    step(api, request["id"], "ship")
    [shipment] = api.get(f"/v1/fulfillment-requests/{request['id']}").json()["shipments"]
    seen = api.get(f"/v1/orders/{order['id']}").json()
    runs = api.get(f"/v1/orders/{order['id']}/routing-decisions").json()["items"]
    hook = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook",
                                          "event_types": ["*"]})
    assert hook.status_code == 201, hook.text
    counted = api.post("/v1/imports/inventory", content=b"location_id,sku,on_hand\nmitte,SKU-1,9\n",
                       headers={"Content-Type": "text/csv"})
    assert counted.status_code == 200, counted.text
    store_a = as_role("associate", ["mitte"])
    cart = store_a.post("/v1/carts", json={"location_id": "mitte", "currency": "EUR",
                                           "customer": ADA})
    assert cart.status_code == 201, cart.text
    cart = store_a.post(f"/v1/carts/{cart.json()['id']}/items", json={"sku": "SKU-1"})
    assert cart.status_code == 201, cart.text
    cart = store_a.post(f"/v1/carts/{cart.json()['id']}/discounts",
                        json={"percentage": "10", "reason": "staff"})
    assert cart.status_code == 201, cart.text
    cart = store_a.post(f"/v1/carts/{cart.json()['id']}/payments",
                        json={"method": "cash", "amount": "5.00"})
    assert cart.status_code == 201, cart.text
    return {
        "order": seen, "request": request, "shipment": shipment, "runs": runs,
        "subscription_id": hook.json()["id"], "import_id": counted.json()["import_id"],
        "cart": cart.json(),
    }


def _identifiers(a: dict[str, Any]) -> set[str]:
    """What identifies A's order and its customer: none of it may reach store B's keys."""
    order = a["order"]
    return {
        order["id"], order["display_id"], order["external_id"],
        order["customer"]["id"], order["customer"]["display_id"],
        a["request"]["id"], a["shipment"]["id"], a["shipment"]["tracking_number"],
        *(i["id"] for i in order["items"]), *(p["id"] for p in order["payments"]),
        *(r["id"] for r in a["runs"]), *(e["id"] for e in order["events"]),
        a["cart"]["id"], *(x["id"] for x in a["cart"]["lines"]),
    }


def _values(a: dict[str, Any]) -> dict[str, str]:
    """What to put in each path and query parameter the API names: A's real ids."""
    order = a["order"]
    return {
        "order_id": order["id"], "customer_id": order["customer"]["id"],
        "request_id": a["request"]["id"], "shipment_id": a["shipment"]["id"],
        "subscription_id": a["subscription_id"], "location_id": "mitte", "sku": "SKU-1",
        "kind": "orders", "email": ADA["email"], "q": ADA["email"],
        "entity_id": order["id"], "import_id": a["import_id"], "cart_id": a["cart"]["id"],
        "line_id": a["cart"]["lines"][0]["id"], "discount_id": a["cart"]["discounts"][0]["id"],
        "payment_id": a["cart"]["payments"][0]["id"], "code": "GIFT-A1", "psp": "simulated",
        "X-Oms-Signature": "0" * 64,
    }


@pytest.mark.parametrize("role", ["associate", "manager"])
def test_a_store_key_reads_and_changes_nothing_of_another_stores_orders(
        api: Api, shop: Shop, as_role: AsRole, app_client: TestClient, role: str) -> None:
    """Every operation of the API, called by a key of store B with store A's ids: refused
    (403, 404), or a list without A's rows; no answer holds A's customer's details."""
    a = _store_a_order(api, shop, as_role)
    ids, values = _identifiers(a), _values(a)
    secrets = [*ADA.values(), ADA_ADDRESS]
    store_b = as_role(role, ["potsdam"])
    spec = app_client.app.openapi()  # type: ignore[attr-defined]
    walked: list[str] = []
    failures: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            missing = [p["name"] for p in params if p["name"] not in values
                       and (p["in"] == "path" or p.get("required"))]
            assert not missing, f"{method} {path}: the walk has no value for {missing}"
            url = path.format(**{p["name"]: values[p["name"]] for p in params
                                 if p["in"] == "path"})
            required = {p["name"]: values[p["name"]] for p in params
                        if p["in"] == "query" and p.get("required")}
            every = {p["name"]: values[p["name"]] for p in params
                     if p["in"] == "query" and p["name"] in values}
            kw: dict[str, Any] = {}
            if "requestBody" in operation:
                content = operation["requestBody"]["content"]
                if "application/json" in content:
                    kw["json"] = BODIES.get((method, path), {})
                else:
                    kw["content"] = b""
                    kw["headers"] = {"Content-Type": next(iter(content))}
            for query in ([required, every] if every != required else [required]):
                name = f"{method.upper()} {url} {query or ''}"
                walked.append(f"{method} {path}")
                r = store_b.client.request(method, url, params=query,
                                           headers={**store_b.headers,
                                                    **kw.get("headers", {})},
                                           **{k: v for k, v in kw.items() if k != "headers"})
                leaked = [s for s in secrets if s.lower() in r.text.lower()]
                if leaked:
                    failures.append(f"{name}: {r.status_code} shows {leaked}")
                if r.status_code in (403, 404):
                    continue
                if r.status_code == 401 and path.startswith("/v1/psp/"):
                    continue  # signed by the PSP, not taken with an API key at all
                if r.status_code == 422:
                    failures.append(f"{name}: 422 {r.text[:200]}: give the walk a valid body "
                                    "in BODIES so that it reaches the scope rule")
                elif method != "get" or r.status_code != 200:
                    failures.append(f"{name}: {r.status_code} {r.text[:200]}")
                else:
                    shown = sorted(i for i in ids if i in r.text)
                    if shown:
                        failures.append(f"{name}: 200 shows store A's {shown}")
    assert not failures, "\n".join(failures)
    assert {"get /v1/orders/{order_id}", "get /v1/orders", "get /v1/customers",
            "post /v1/orders/{order_id}/cancel",
            "get /v1/shipments/{shipment_id}"} <= set(walked)
    # Nothing of A's order changed.
    after = api.get(f"/v1/orders/{a['order']['id']}").json()
    assert (after["status"], after["events"]) == (a["order"]["status"], a["order"]["events"])
    cart = api.get(f"/v1/carts/{a['cart']['id']}").json()
    assert (cart["version"], cart["lines"]) == (a["cart"]["version"], a["cart"]["lines"])


def _ids(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [x["id"] for x in answer.json()["items"]]


def test_a_store_key_sees_its_stores_orders_and_their_customers(
        api: Api, shop: Shop, as_role: AsRole) -> None:
    a = _store_a_order(api, shop, as_role)
    order, customer = a["order"], a["order"]["customer"]
    for role in ("associate", "manager"):
        store_a = as_role(role, ["mitte"])
        r = store_a.get(f"/v1/orders/{order['display_id']}")
        assert r.status_code == 200, r.text
        assert r.json()["customer"]["email"] == ADA["email"]
        assert r.json()["shipping"]["address"]["line1"] == ADA_ADDRESS
        assert _ids(store_a.get("/v1/orders")) == [order["id"]]
        assert _ids(store_a.get("/v1/orders", params={"q": ADA["email"]})) == [order["id"]]
        assert _ids(store_a.get(f"/v1/orders/{order['id']}/routing-decisions")) == [
            run["id"] for run in a["runs"]]
        for lookup in (customer["id"], customer["display_id"]):
            r = store_a.get(f"/v1/customers/{lookup}")
            assert (r.status_code, r.json()["phone"]) == (200, ADA["phone"]), r.text
            assert _ids(store_a.get(f"/v1/customers/{lookup}/orders")) == [order["id"]]
        assert _ids(store_a.get("/v1/customers", params={"email": ADA["email"]})) == [
            customer["id"]]
        assert _ids(store_a.get("/v1/fulfillment-requests")) == [a["request"]["id"]]
        assert store_a.get(f"/v1/shipments/{a['shipment']['id']}").status_code == 200
        # Store B's order and customer are not store A's to see.
        assert _ids(store_a.get("/v1/customers", params={"email": GRACE["email"]})) == []
        assert _ids(store_a.get("/v1/orders", params={"q": GRACE["email"]})) == []

    store_b = as_role("associate", ["potsdam"])
    [theirs] = store_b.get("/v1/orders").json()["items"]
    assert (theirs["external_id"], theirs["customer"]["email"]) == ("W-B1", GRACE["email"])
    problem(store_b.get(f"/v1/customers/{customer['display_id']}"), 404)


@pytest.mark.parametrize("role", ["admin", "integrator"])
def test_admin_and_integrator_keys_see_every_stores_orders(
        api: Api, shop: Shop, as_role: AsRole, role: str) -> None:
    a = _store_a_order(api, shop, as_role)
    key = api if role == "admin" else as_role(role)
    orders = key.get("/v1/orders").json()["items"]
    assert sorted(o["external_id"] for o in orders) == ["W-A1", "W-B1"]
    for email in (ADA["email"], GRACE["email"]):
        [found] = key.get("/v1/customers", params={"email": email}).json()["items"]
        assert found["email"] == email
    assert key.get(f"/v1/orders/{a['order']['id']}").json()["customer"]["name"] == ADA["name"]
    assert len(_ids(key.get("/v1/fulfillment-requests"))) == 2
    assert key.get(f"/v1/shipments/{a['shipment']['id']}").status_code == 200


def test_an_order_is_seen_by_every_store_with_a_part_in_it(
        api: Api, shop: Shop, as_role: AsRole) -> None:
    """An item, a request (rejected since), a pickup or a pre-routing at a store each make
    the order and its customer that store's to see; changing it needs all of it."""
    shop({("mitte", "SKU-1"): 5, ("mitte", "SKU-2"): 5, ("potsdam", "SKU-2"): 5,
          ("hamburg", "SKU-3"): 5, ("munich", "SKU-4"): 0})
    mitte, potsdam = as_role("manager", ["mitte"]), as_role("manager", ["potsdam"])
    hamburg, munich = as_role("associate", ["hamburg"]), as_role("associate", ["munich"])

    # Mitte rejects the socks: they go to Potsdam. Both see the order, each its own request.
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1), external_id="W-1"))
    [at_mitte] = requests_of(api, order["id"])
    socks = next(i["id"] for i in order["items"] if i["sku"] == "SKU-2")
    step(mitte, at_mitte["id"], "reject", {"items": [socks], "reason": "damaged"})
    [at_potsdam] = [r for r in requests_of(api, order["id"]) if r["location_id"] == "potsdam"]
    for store in (mitte, potsdam):
        assert _ids(store.get("/v1/orders")) == [order["id"]]
        assert store.get(f"/v1/customers/{order['customer']['id']}").status_code == 200
    problem(mitte.get(f"/v1/fulfillment-requests/{at_potsdam['id']}"), 404)
    problem(potsdam.get(f"/v1/fulfillment-requests/{at_mitte['id']}"), 404)
    # It is fulfilled at both: neither store may cancel it alone.
    for store in (mitte, potsdam):
        problem(store.post(f"/v1/orders/{order['id']}/cancel", json={}), 403)
    assert _ids(hamburg.get("/v1/orders")) == []

    # A pickup at Hamburg, and an order pre-routed to Munich that waits on hold, with no
    # item routed anywhere.
    pickup = place(api, order_body(("SKU-3", 1), external_id="W-2", pickup_at="hamburg",
                                   email="pickup@example.com"))
    waiting = place(api, order_body(("SKU-4", 1), external_id="W-3",
                                    fulfillment_location_id="munich",
                                    email="waiting@example.com"))
    assert [i["location_id"] for i in waiting["items"]] == [None]
    assert _ids(hamburg.get("/v1/orders")) == [pickup["id"]]
    assert _ids(munich.get("/v1/orders")) == [waiting["id"]]
    assert _ids(munich.get("/v1/customers", params={"email": "waiting@example.com"})) == [
        waiting["customer"]["id"]]
    assert _ids(munich.get("/v1/customers", params={"email": "pickup@example.com"})) == []
    assert _ids(mitte.get("/v1/orders")) == [order["id"]]
