"""Pre-orders sell future stock, and move onto the location's stock when it is due."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.events import utcnow
from oms.domain.locations import local_date
from oms.services.inventory import check_reserved_counters, release_due_preorders
from tests.helpers import Api, location_body, product_body


def berlin_today() -> str:
    """The day it is at the stores of these tests (Europe/Berlin): a delivery is due on the
    store's own day, which begins an hour or two before UTC's."""
    return local_date("Europe/Berlin", utcnow()).isoformat()


def _order(n: int, sku: str, quantity: int) -> dict[str, Any]:
    total = f"{quantity * 10}.00"
    return {
        "channel": "web", "external_id": f"P-{n}", "placed_at": "2026-11-20T10:00:00Z",
        "currency": "EUR", "customer": {"email": f"fan{n}@example.com"},
        "items": [{"sku": sku, "quantity": quantity, "unit_price": "10.00"}],
        "shipping": {"option": {"service_level": "standard"},
                     "address": {"line1": "Unter den Linden 5", "city": "Berlin",
                                 "postal_code": "10117", "country": "DE"}},
        "payments": [{"method": "card", "amount": total, "status": "authorized"}],
        "totals": {"grand_total": total},
    }


def _future(api: Api, sku: str) -> list[dict[str, Any]]:
    item = api.get("/v1/availability", params={"sku": sku}).json()["items"][0]
    return [f for loc in item["locations"] for f in loc["future"]]


def _preorder_product(api: Api, stocked: Callable[..., None], on: str) -> None:
    stocked({("berlin", "NEW"): 0})
    body = product_body("Next season shoe", preorder={"tentative_ship_date": "2099-02-01"})
    assert api.put("/v1/products/NEW", json=body).status_code == 200
    r = api.post("/v1/inventory/future", json={"entries": [
        {"location_id": "berlin", "sku": "NEW", "quantity": 3, "available_on": on}]})
    assert r.status_code == 200, r.text


def test_a_preorder_reserves_future_stock_not_on_hand(api: Api, stocked: Callable[..., None]
                                                      ) -> None:
    _preorder_product(api, stocked, "2099-01-15")
    first = api.post("/v1/orders", json=_order(1, "NEW", 2))
    assert first.status_code == 201, first.text
    item = first.json()["items"][0]
    assert (item["status"], item["location_id"], item["preorder"]) == ("routed", "berlin", True)
    assert item["tentative_ship_date"] == "2099-02-01"
    assert _future(api, "NEW") == [{"quantity": 3, "reserved": 2, "available": 1,
                                    "available_on": "2099-01-15"}]
    assert api.get("/v1/inventory/berlin/NEW").json()["reserved"] == 0

    refused = api.post("/v1/orders", json=_order(2, "NEW", 2))
    assert refused.status_code == 409
    assert "NEW" in refused.json()["detail"]
    # The delivery cannot be cut below what pre-orders bought of it.
    cut = api.post("/v1/inventory/future", json={"entries": [
        {"location_id": "berlin", "sku": "NEW", "quantity": 1, "available_on": "2099-01-15"}]})
    assert cut.status_code == 409
    assert cut.json()["errors"][0]["field"] == "entries.0.quantity"

    api.post(f"/v1/orders/{first.json()['id']}/cancel", json={})
    assert _future(api, "NEW")[0]["available"] == 3


def test_due_preorders_are_served_before_anyone_else(api: Api, engine: Engine,
                                                     stocked: Callable[..., None]) -> None:
    today = berlin_today()
    _preorder_product(api, stocked, today)
    assert api.post("/v1/orders", json=_order(1, "NEW", 2)).status_code == 201
    assert release_due_preorders(engine, utcnow()) == 1
    assert release_due_preorders(engine, utcnow()) == 0
    level = api.get("/v1/inventory/berlin/NEW").json()
    # The delivery has not been booked in yet: the pre-order holds it all the same.
    assert (level["on_hand"], level["reserved"], level["atp"]) == (0, 2, -2)
    assert _future(api, "NEW") == [{"quantity": 1, "reserved": 0, "available": 1,
                                    "available_on": today}]
    api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "berlin", "sku": "NEW", "delta": 3, "reason": "delivery received"}]})
    assert api.get("/v1/inventory/berlin/NEW").json()["atp"] == 1
    with UnitOfWork(engine, read_only=True) as uow:
        assert check_reserved_counters(uow) == []


def test_the_store_queue_puts_due_preorders_first_and_future_ones_last(
        api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    today = berlin_today()
    stocked({("berlin", "NEW"): 0, ("berlin", "LATER"): 0, ("berlin", "OLD"): 5})
    assert api.put("/v1/products/NEW", json=product_body(
        "Next season shoe", preorder={"tentative_ship_date": "2099-02-01"})).status_code == 200
    assert api.put("/v1/products/LATER", json=product_body(
        "Far season shoe", preorder={"tentative_ship_date": "2099-06-01"})).status_code == 200
    r = api.post("/v1/inventory/future", json={"entries": [
        {"location_id": "berlin", "sku": "NEW", "quantity": 3, "available_on": today},
        {"location_id": "berlin", "sku": "LATER", "quantity": 3, "available_on": "2099-05-01"}]})
    assert r.status_code == 200, r.text
    placed = {}
    for n, sku, placed_at in ((1, "LATER", "2026-11-18T09:00:00Z"),
                              (2, "OLD", "2026-11-19T09:00:00Z"),
                              (3, "NEW", "2026-11-20T09:00:00Z")):
        r = api.post("/v1/orders", json={**_order(n, sku, 1), "placed_at": placed_at})
        assert r.status_code == 201, r.text
        placed[sku] = r.json()["items"][0]["fulfillment_request_id"]

    queue = api.get("/v1/fulfillment-requests", params={"location_id": "berlin"}).json()
    # The pre-order whose stock is due today comes first though it was placed last; the one
    # whose stock comes in 2099 cannot ship, so it waits behind everything else.
    assert [x["id"] for x in queue["items"]] == [placed["NEW"], placed["OLD"], placed["LATER"]]
    assert [x["available_on"] for x in queue["items"]] == [today, None, "2099-05-01"]

    for step in ("accept", "pick", "pack"):
        url = f"/v1/fulfillment-requests/{placed['LATER']}/{step}"
        assert api.post(url, json={}).status_code == 200
    refused = api.post(f"/v1/fulfillment-requests/{placed['LATER']}/ship", json={})
    assert refused.status_code == 409
    assert "LATER (expected 2099-05-01)" in refused.json()["detail"]

    # Once the worker moves the due pre-order onto the store's stock, it ships.
    assert release_due_preorders(engine, utcnow()) == 1
    for step in ("accept", "pick", "pack", "ship"):
        r = api.post(f"/v1/fulfillment-requests/{placed['NEW']}/{step}", json={})
        assert r.status_code == 200, r.text
    with UnitOfWork(engine, read_only=True) as uow:
        assert check_reserved_counters(uow) == []


def test_preorders_come_due_on_their_stores_day(api: Api, engine: Engine,
                                                stocked: Callable[..., None]) -> None:
    stocked({("auckland", "NEW"): 0, ("los-angeles", "NEW"): 0})
    for location_id, zone in (("auckland", "Pacific/Auckland"),
                              ("los-angeles", "America/Los_Angeles")):
        body = location_body(location_id.title(), timezone=zone)
        assert api.put(f"/v1/locations/{location_id}", json=body).status_code == 200
    assert api.put("/v1/products/NEW", json=product_body(
        "Next season shoe", preorder={"tentative_ship_date": "2099-02-01"})).status_code == 200
    r = api.post("/v1/inventory/future", json={"entries": [
        {"location_id": loc, "sku": "NEW", "quantity": 1, "available_on": "2099-01-15"}
        for loc in ("auckland", "los-angeles")]})
    assert r.status_code == 200, r.text
    request_at = {}
    for n, location_id in enumerate(("auckland", "los-angeles")):
        r = api.post("/v1/orders", json={**_order(n, "NEW", 1),
                                         "fulfillment_location_id": location_id})
        assert r.status_code == 201, r.text
        request_at[r.json()["items"][0]["fulfillment_request_id"]] = location_id

    def queue_at(now: dt.datetime) -> dict[str, int]:
        with UnitOfWork(engine, read_only=True) as uow:
            rows = uow.fulfillment.page(now=now, after=None, limit=10)
        return {request_at[r["id"]]: r["queue_rank"] for r in rows}

    def reserved(location_id: str) -> int:
        return int(api.get(f"/v1/inventory/{location_id}/NEW").json()["reserved"])

    # Noon UTC on the 14th: already the 15th in Auckland, still the 14th in Los Angeles.
    noon = dt.datetime(2099, 1, 14, 12, tzinfo=dt.UTC)
    assert queue_at(noon) == {"auckland": 0, "los-angeles": 2}
    assert release_due_preorders(engine, noon) == 1
    assert (reserved("auckland"), reserved("los-angeles")) == (1, 0)
    # The 15th has begun in UTC but not yet in Los Angeles (UTC-8): nothing is due there.
    before_la_midnight = dt.datetime(2099, 1, 15, 7, 59, tzinfo=dt.UTC)
    assert queue_at(before_la_midnight)["los-angeles"] == 2
    assert release_due_preorders(engine, before_la_midnight) == 0
    la_midnight = dt.datetime(2099, 1, 15, 8, tzinfo=dt.UTC)
    assert queue_at(la_midnight)["los-angeles"] == 0
    assert release_due_preorders(engine, la_midnight) == 1
    assert reserved("los-angeles") == 1
    with UnitOfWork(engine, read_only=True) as uow:
        assert check_reserved_counters(uow) == []
