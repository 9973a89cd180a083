"""Pickup in store through the API: ready for pickup, hand-over with the capture, pickups
nobody collected expired by the worker; who may work which location's requests; the order of
a store's work queue and its pages."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from oms.adapters.db.tables import fulfillment_requests
from oms.services.orders import expire_uncollected_pickups
from tests.fulfilling import (
    item_statuses,
    level,
    providers_of,
    request_of,
    requests_of,
    simulated_psp,
    step,
)
from tests.helpers import Api, problem
from tests.ordering import Shop, atp, events, order_body, place

AsRole = Callable[..., Api]

#: Two of SKU-1 at 19.90 + 3.78 tax each; a pickup's shipping is free.
PICKUP_TOTAL_MINOR = 2 * (1990 + 378)


def ready_pickup(api: Api, external_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A pickup order at mitte and its request, made ready for pickup."""
    order = place(api, order_body(("SKU-1", 2), external_id=external_id, pickup_at="mitte"))
    [request] = requests_of(api, order["id"])
    step(api, request["id"], "accept")
    step(api, request["id"], "pick")
    ready = step(api, request["id"], "ready-for-pickup")
    assert ready["status"] == "ready_for_pickup"
    return order, ready


def at(stamp: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(stamp)
    assert when.tzinfo is not None
    return when


def made_ready_at(engine: Engine, request_id: str, when: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(fulfillment_requests).where(fulfillment_requests.c.id == request_id)
                     .values(ready_at=when))


def store_midnight(when: dt.datetime, days_later: int, zone: str = "Europe/Berlin"
                   ) -> dt.datetime:
    """The midnight (in UTC) that begins the store's day `days_later` days after `when`'s."""
    day = when.astimezone(ZoneInfo(zone)).date() + dt.timedelta(days=days_later)
    return dt.datetime.combine(day, dt.time(), ZoneInfo(zone)).astimezone(dt.UTC)


# -- pickup and hand-over ----------------------------------------------------------------------


def test_pickup_ready_and_handed_over(api: Api, shop: Shop, app_client: TestClient) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-1"): 5})
    order = place(api, order_body(("SKU-1", 2), pickup_at="mitte"))
    psp = simulated_psp(app_client)

    [request] = requests_of(api, order["id"])
    assert (request["location_id"], request["type"], request["status"]) == (
        "mitte", "pickup", "issued")
    assert order["items"][0]["fulfillment_request_id"] == request["id"]
    assert item_statuses(api, order["id"]) == ["routed"]
    assert level(api) == (5, 2, 3)
    assert atp(api, "SKU-1") == {"mitte": 3, "potsdam": 5}
    rid = request["id"]

    # Handing over what is not ready yet is refused, and changes nothing.
    answer = problem(api.post(f"/v1/fulfillment-requests/{rid}/hand-over",
                              json={"collected_by": "Ada Lovelace"}), 409)
    assert "issued" in answer["detail"]

    assert step(api, rid, "accept")["status"] == "accepted"
    assert item_statuses(api, order["id"]) == ["in_fulfillment"]
    assert level(api) == (5, 2, 3)
    problem(api.post(f"/v1/fulfillment-requests/{rid}/hand-over", json={}), 409)

    assert step(api, rid, "pick")["status"] == "picked"
    assert item_statuses(api, order["id"]) == ["in_fulfillment"]
    assert level(api) == (5, 2, 3)
    # A pickup is never packed nor shipped: those steps do not exist for it.
    answer = problem(api.post(f"/v1/fulfillment-requests/{rid}/ship", json={}), 409)
    assert "pickup" in answer["detail"]
    problem(api.post(f"/v1/fulfillment-requests/{rid}/pack", json={}), 409)
    answer = problem(api.post(f"/v1/fulfillment-requests/{rid}/hand-over", json={}), 409)
    assert "picked" in answer["detail"]
    assert (psp.calls, psp.ledger) == ([], [])

    ready = step(api, rid, "ready-for-pickup")
    assert ready["status"] == "ready_for_pickup"
    assert ready["ready_at"] is not None
    assert item_statuses(api, order["id"]) == ["ready_for_pickup"]
    assert level(api) == (5, 2, 3)
    assert (psp.calls, psp.ledger) == ([], [])
    problem(api.post(f"/v1/fulfillment-requests/{rid}/ship", json={}), 409)
    problem(api.post(f"/v1/fulfillment-requests/{rid}/ready-for-pickup", json={}), 409)

    handed = step(api, rid, "hand-over", {"collected_by": "Ada Lovelace"})
    assert handed["status"] == "picked_up"
    assert handed["collected_by"] == "Ada Lovelace"
    assert [x["status"] for x in handed["items"]] == ["picked_up"]
    assert item_statuses(api, order["id"]) == ["fulfilled"]
    # The goods left the store: on_hand and reserved both went down by 2.
    assert level(api) == (3, 0, 3)
    assert atp(api, "SKU-1") == {"mitte": 3, "potsdam": 5}

    # Captured once, at hand-over, for the whole order.
    [capture] = psp.calls
    assert (capture.reference, capture.amount_minor, capture.currency) == (
        "PSP-W-100234", PICKUP_TOTAL_MINOR, "EUR")
    assert [(e.kind, e.reference, e.amount_minor) for e in psp.ledger] == [
        ("authorization", "PSP-W-100234", PICKUP_TOTAL_MINOR),
        ("capture", "PSP-W-100234", PICKUP_TOTAL_MINOR)]
    got = api.get(f"/v1/orders/{order['id']}").json()
    assert got["status"] == "fulfilled"
    assert (got["payments"][0]["status"], got["payments"][0]["captured"]) == (
        "captured", "47.36")
    assert request_of(api, rid)["status"] == "picked_up"

    # Nothing can happen to it any more.
    problem(api.post(f"/v1/fulfillment-requests/{rid}/hand-over", json={}), 409)
    problem(api.post(f"/v1/fulfillment-requests/{rid}/reject", json={"reason": "x"}), 409)
    assert len(psp.calls) == 1

    request_events = events(api, entity_id=rid)
    assert [(e["type"], e["sequence"]) for e in request_events] == [
        ("fulfillment_request.issued", 1), ("fulfillment_request.accepted", 2),
        ("fulfillment_request.picked", 3), ("fulfillment_request.ready_for_pickup", 4),
        ("fulfillment_request.picked_up", 5)]
    told = request_events[3]["payload"]
    # What a notification service needs to tell the customer the order is waiting.
    assert told["customer"]["email"] == "ada@example.com"
    assert told["customer"]["name"] == "Ada Lovelace"
    assert told["order_display_id"] == order["display_id"]
    assert told["location_id"] == "mitte"
    assert request_events[4]["payload"]["collected_by"] == "Ada Lovelace"
    # The capture and the order's last events were committed with picked_up: all in the feed.
    assert [e["type"] for e in events(api, entity_id=got["payments"][0]["id"])] == [
        "payment.captured"]
    sequences = [e["sequence"] for e in events(api, entity_id=order["id"])]
    assert sequences == list(range(1, len(sequences) + 1))


def test_hand_over_without_a_name_records_the_customer(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 5})
    _, ready = ready_pickup(api, "W-1")
    handed = step(api, ready["id"], "hand-over")
    assert handed["collected_by"] == "Ada Lovelace"


# -- pickups nobody collected ------------------------------------------------------------------


def test_uncollected_pickup_expires(api: Api, shop: Shop, engine: Engine,
                                    app_client: TestClient) -> None:
    shop({("mitte", "SKU-1"): 10})
    order, ready = ready_pickup(api, "W-1")
    later_order, later = ready_pickup(api, "W-2")
    assert level(api) == (10, 4, 6)
    first_ready, second_ready = at(ready["ready_at"]), at(later["ready_at"])
    assert first_ready < second_ready
    providers = providers_of(app_client)
    # The first was made ready the store's day before the second.
    first_ready -= dt.timedelta(days=1)
    made_ready_at(engine, ready["id"], first_ready)
    # Kept through the seventh day after the day it was ready: until the store's midnight.
    expires = store_midnight(first_ready, days_later=8)
    assert expire_uncollected_pickups(engine, providers, first_ready + dt.timedelta(days=7),
                                      7) == 0
    assert expire_uncollected_pickups(engine, providers, expires - dt.timedelta(seconds=1),
                                      7) == 0
    assert request_of(api, ready["id"])["status"] == "ready_for_pickup"

    # Past the first pickup's expiry, before the second one's.
    now = expires
    assert expire_uncollected_pickups(engine, providers, now, 7) == 1

    expired = request_of(api, ready["id"])
    assert expired["status"] == "cancelled"
    assert expired["reason"] == "not collected within 7 days"
    assert [x["status"] for x in expired["items"]] == ["cancelled"]
    assert item_statuses(api, order["id"]) == ["cancelled"]
    assert api.get(f"/v1/orders/{order['id']}").json()["status"] == "cancelled"
    # Its reservation went back to ATP; the stock never left.
    assert level(api) == (10, 2, 8)
    assert atp(api, "SKU-1") == {"mitte": 8}

    [cancelled] = events(api, type="order.items_cancelled", entity_id=order["id"])
    assert cancelled["payload"] == {
        "order_id": order["id"], "item_ids": [order["items"][0]["id"]],
        "reason": "not collected within 7 days",
        "amount_to_void_or_refund": "47.36", "currency": "EUR"}
    request_events = events(api, entity_id=ready["id"])
    assert [(e["type"], e["sequence"]) for e in request_events] == [
        ("fulfillment_request.issued", 1), ("fulfillment_request.accepted", 2),
        ("fulfillment_request.picked", 3), ("fulfillment_request.ready_for_pickup", 4),
        ("fulfillment_request.items_cancelled", 5)]
    payload = request_events[-1]["payload"]
    assert payload["status"] == "cancelled"
    assert payload["cancelled_items"] == [order["items"][0]["id"]]

    # The later pickup is left alone, and may still be collected.
    assert request_of(api, later["id"])["status"] == "ready_for_pickup"
    assert item_statuses(api, later_order["id"]) == ["ready_for_pickup"]
    assert events(api, type="order.items_cancelled", entity_id=later_order["id"]) == []

    # Running it again finds nothing more to do; a late customer is turned away.
    assert expire_uncollected_pickups(engine, providers, now, 7) == 0
    problem(api.post(f"/v1/fulfillment-requests/{ready['id']}/hand-over", json={}), 409)
    psp = simulated_psp(app_client)
    assert psp.calls == []
    # Nothing of it will be collected: its authorisation is released at the PSP.
    assert [(c.reference, c.amount_minor) for c in psp.void_calls] == [("PSP-W-1", 4736)]
    [voided] = events(api, type="payment.voided", entity_id=order["payments"][0]["id"])
    assert (voided["payload"]["amount"], voided["payload"]["status"]) == ("47.36", "voided")
    assert step(api, later["id"], "hand-over")["status"] == "picked_up"
    assert level(api) == (8, 0, 8)


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Auckland"])
def test_a_pickup_is_kept_by_its_stores_calendar(api: Api, shop: Shop, engine: Engine,
                                                 app_client: TestClient, zone: str) -> None:
    providers = providers_of(app_client)
    shop({("mitte", "SKU-1"): 5})
    store = api.get("/v1/locations/mitte").json()
    moved = {k: store[k] for k in ("type", "name", "address", "capabilities", "priority",
                                    "active")}
    assert api.put("/v1/locations/mitte", json={**moved, "timezone": zone}).status_code == 200
    _, ready = ready_pickup(api, "W-1")
    expires = store_midnight(at(ready["ready_at"]), days_later=8, zone=zone)
    # Los Angeles' midnight is 07:00 or 08:00 UTC, Auckland's 11:00 or 12:00 UTC the day
    # before: the store's seventh day after the ready day ends then, not at UTC's midnight.
    assert expires.time() not in (dt.time(0), dt.time(1), dt.time(2))

    assert expire_uncollected_pickups(engine, providers, expires - dt.timedelta(seconds=1),
                                      7) == 0
    assert request_of(api, ready["id"])["status"] == "ready_for_pickup"
    assert expire_uncollected_pickups(engine, providers, expires, 7) == 1
    assert request_of(api, ready["id"])["status"] == "cancelled"


def test_a_pickup_not_yet_ready_does_not_expire(api: Api, shop: Shop, engine: Engine,
                                                app_client: TestClient) -> None:
    shop({("mitte", "SKU-1"): 5})
    order = place(api, order_body(("SKU-1", 2), pickup_at="mitte"))
    [request] = requests_of(api, order["id"])
    step(api, request["id"], "accept")
    step(api, request["id"], "pick")
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    assert expire_uncollected_pickups(engine, providers_of(app_client), far, 7) == 0
    assert request_of(api, request["id"])["status"] == "picked"
    assert level(api) == (5, 2, 3)


@pytest.mark.usefixtures("cli_env")
def test_the_worker_process_expires_pickups(api: Api, shop: Shop, engine: Engine) -> None:
    shop({("mitte", "SKU-1"): 5})
    order, ready = ready_pickup(api, "W-1")
    # Ready yesterday, and kept through the day it was ready only.
    made_ready_at(engine, ready["id"], at(ready["ready_at"]) - dt.timedelta(days=1))
    oms = Path(sys.executable).parent / "oms"
    # cli_env put OMS_DATABASE_URL in this process's environment; the worker inherits it.
    env = {**os.environ, "OMS_PICKUP_EXPIRY_DAYS": "0"}
    done = subprocess.run([str(oms), "worker", "--once"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cancelled 1 pickups not collected within 0 days" in done.stderr
    assert request_of(api, ready["id"])["status"] == "cancelled"
    assert item_statuses(api, order["id"]) == ["cancelled"]
    assert level(api) == (5, 0, 5)
    assert [e["type"] for e in events(api, entity_id=ready["id"])][-1] == (
        "fulfillment_request.items_cancelled")
    assert len(events(api, type="order.items_cancelled", entity_id=order["id"])) == 1


# -- who may work which requests ---------------------------------------------------------------


def test_store_staff_work_only_their_own_store(api: Api, shop: Shop, as_role: AsRole) -> None:
    shop({("mitte", "SKU-1"): 5, ("potsdam", "SKU-2"): 5})
    mine_order = place(api, order_body(("SKU-1", 1), external_id="W-1", pickup_at="mitte"))
    # Only Potsdam has SKU-2: shipped from there.
    theirs_order = place(api, order_body(("SKU-2", 1), external_id="W-2"))
    [mine] = requests_of(api, mine_order["id"])
    [theirs] = requests_of(api, theirs_order["id"])
    assert (mine["location_id"], theirs["location_id"]) == ("mitte", "potsdam")
    assert theirs["type"] == "ship_from_store"

    # Potsdam's request does not exist for Mitte's keys: not even where it is is told.
    associate = as_role("associate", ["mitte"])
    url = f"/v1/fulfillment-requests/{theirs['id']}"
    problem(associate.get(url), 404)
    for name, body in (("accept", {}), ("pick", {}), ("pack", {}), ("ship", {}),
                       ("reject", {"reason": "not ours"}), ("ready-for-pickup", {}),
                       ("hand-over", {})):
        answer = problem(associate.post(f"{url}/{name}", json=body), 404)
        assert "potsdam" not in answer["detail"], name
    # Nothing happened to Potsdam's request.
    untouched = request_of(api, theirs["id"])
    assert (untouched["status"], untouched["version"]) == ("issued", theirs["version"])
    assert [i["status"] for i in untouched["items"]] == ["open"]

    # Its own store's request, it may see and work.
    assert associate.get(f"/v1/fulfillment-requests/{mine['id']}").status_code == 200
    assert step(associate, mine["id"], "accept")["status"] == "accepted"

    r = associate.get("/v1/fulfillment-requests")
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["items"]] == [mine["id"]]
    r = associate.get("/v1/fulfillment-requests", params={"location_id": "mitte"})
    assert [x["id"] for x in r.json()["items"]] == [mine["id"]]
    r = associate.get("/v1/fulfillment-requests", params={"order_id": theirs_order["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []
    problem(associate.get("/v1/fulfillment-requests", params={"location_id": "potsdam"}), 403)
    # An admin sees both stores' queues.
    r = api.get("/v1/fulfillment-requests")
    assert sorted(x["id"] for x in r.json()["items"]) == sorted([mine["id"], theirs["id"]])

    # The DC and 3PL steps are not the store's.
    problem(associate.post(f"/v1/fulfillment-requests/{mine['id']}/acknowledge", json={}), 403)
    problem(associate.post(f"/v1/fulfillment-requests/{mine['id']}/shipments",
                           json={"carrier": "dhl", "tracking_number": "T-1"}), 403)
    # And an integrator does not work in a store.
    integrator = as_role("integrator")
    problem(integrator.post(f"/v1/fulfillment-requests/{theirs['id']}/accept", json={}), 403)
    problem(integrator.post(f"/v1/fulfillment-requests/{mine['id']}/pick", json={}), 403)
    assert request_of(api, theirs["id"])["status"] == "issued"
    assert request_of(api, mine["id"])["status"] == "accepted"


# -- the work queue ----------------------------------------------------------------------------


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_the_queue_lists_older_orders_first_and_pages(api: Api, shop: Shop) -> None:
    shop({("mitte", "SKU-1"): 20, ("potsdam", "SKU-1"): 20})
    placed = {"W-1": "2026-11-20T12:00:00Z", "W-2": "2026-11-18T09:00:00Z",
              "W-3": "2026-11-19T15:30:00+01:00", "W-4": "2026-11-18T09:00:00Z",
              "W-5": "2026-11-19T14:00:00Z"}
    request_ids: dict[str, str] = {}
    for external_id, when in placed.items():
        order = place(api, order_body(("SKU-1", 1), external_id=external_id, placed_at=when,
                                      pickup_at="mitte"))
        [request] = requests_of(api, order["id"])
        request_ids[external_id] = request["id"]
    # Another store's queue is not mitte's.
    other = place(api, order_body(("SKU-1", 1), external_id="W-9",
                                  placed_at="2026-11-01T00:00:00Z", pickup_at="potsdam"))

    r = api.get("/v1/fulfillment-requests", params={"location_id": "mitte"})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["next_cursor"] is None
    # W-2 and W-4 were placed at the same time: the request id decides.
    tied = sorted([request_ids["W-2"], request_ids["W-4"]])
    expected = [*tied, request_ids["W-5"], request_ids["W-3"], request_ids["W-1"]]
    assert [x["id"] for x in page["items"]] == expected
    assert [x["placed_at"] for x in page["items"]] == [
        "2026-11-18T09:00:00+00:00", "2026-11-18T09:00:00+00:00",
        "2026-11-19T14:00:00+00:00", "2026-11-19T14:30:00+00:00",
        "2026-11-20T12:00:00+00:00"]
    assert other["id"] not in {x["order_id"] for x in page["items"]}

    walked: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"location_id": "mitte", "limit": 1}
        if cursor is not None:
            params["cursor"] = cursor
        r = api.get("/v1/fulfillment-requests", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["items"]) == 1
        walked += [x["id"] for x in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "the pages do not end"
    assert walked == expected
    assert len(set(walked)) == len(walked) == pages == 5

    # Pages of two, with a status filter: the same order.
    r = api.get("/v1/fulfillment-requests",
                params={"location_id": "mitte", "limit": 2, "status": "issued"})
    first = r.json()
    assert [x["id"] for x in first["items"]] == expected[:2]
    r = api.get("/v1/fulfillment-requests", params={
        "location_id": "mitte", "limit": 2, "status": "issued", "cursor": first["next_cursor"]})
    assert [x["id"] for x in r.json()["items"]] == expected[2:4]


FORGED_CURSORS = {
    "not base64": "not-a-cursor!",
    "an object": _cursor({"a": 1}),
    "null": _cursor(None),
    "a number": _cursor(10**30),
    "rank a string": _cursor(["1", "2026-11-20T10:00:00+00:00", "x"]),
    "rank true": _cursor([True, "2026-11-20T10:00:00+00:00", "x"]),
    "rank negative": _cursor([-5, "2026-11-20T10:00:00+00:00", "x"]),
    "rank unknown": _cursor([3, "2026-11-20T10:00:00+00:00", "x"]),
    "rank beyond bigint": _cursor([2**63, "2026-11-20T10:00:00+00:00", "x"]),
    "rank huge": _cursor([10**30, "2026-11-20T10:00:00+00:00", "x"]),
    "time not a time": _cursor([1, "yesterday", "x"]),
    "time without zone": _cursor([1, "2026-11-20T10:00:00", "x"]),
    "time a number": _cursor([1, 20261120, "x"]),
    "id a number": _cursor([1, "2026-11-20T10:00:00+00:00", 7]),
    "id too long": _cursor([1, "2026-11-20T10:00:00+00:00", "x" * 37]),
    "too short": _cursor([1, "2026-11-20T10:00:00+00:00"]),
    "too long": _cursor([1, "2026-11-20T10:00:00+00:00", "x", "y"]),
}


@pytest.mark.parametrize("cursor", FORGED_CURSORS.values(), ids=FORGED_CURSORS.keys())
def test_a_forged_queue_cursor_is_refused(api: Api, shop: Shop, cursor: str) -> None:
    shop({("mitte", "SKU-1"): 5})
    place(api, order_body(("SKU-1", 1), pickup_at="mitte"))
    answer = problem(api.get("/v1/fulfillment-requests",
                             params={"location_id": "mitte", "cursor": cursor}), 422)
    assert answer["errors"][0]["field"] == "cursor"
