"""Webhooks: subscriptions over HTTP, signed delivery to a real receiver, order per entity,
Retry-After and 410, the delivery log, replay, secret rotation, and the `oms webhooks`
commands.

Delivery runs in-process through the services (`fan_out`, `deliver_due`) with a real
HttpTransport sending to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from oms.adapters.db import tables as t
from oms.adapters.eventstream.http import HttpTransport
from oms.api.app import create_app
from oms.services.webhooks import deliver_due, fan_out
from oms.settings import Settings
from tests.helpers import Api, error_fields, location_body, problem, product_body
from tests.receiver import Answer, Received, Receiver, Request, ok

# -- a subscriber ---------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def transport() -> Iterator[HttpTransport]:
    sender = HttpTransport(5.0, allow_private=True)
    yield sender
    sender.close()


# -- helpers ----------------------------------------------------------------------------------


def patch(api: Api, url: str, body: dict[str, Any]) -> Any:
    return api.client.patch(url, headers=api.headers, json=body)


def delete(api: Api, url: str) -> Any:
    return api.client.delete(url, headers=api.headers)


def subscribe(api: Api, url: str, event_types: list[str] | None = None) -> dict[str, Any]:
    r = api.post("/v1/webhooks", json={"url": url, "event_types": event_types or ["product.*"]})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def put_product(api: Api, sku: str, name: str = "Running shirt") -> dict[str, Any]:
    r = api.put(f"/v1/products/{sku}", json=product_body(name))
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


def poll(until: Callable[[], bool], step: Callable[[], Any] = lambda: None,
         timeout: float = 10.0, what: str = "condition") -> None:
    """On PostgreSQL events become visible once older transactions of the database end."""
    deadline = time.monotonic() + timeout
    while True:
        step()
        if until():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def pump(engine: Engine, transport: HttpTransport, until: Callable[[], bool],
         what: str = "deliveries") -> None:
    """Fan out and deliver until `until` holds."""

    def step() -> None:
        fan_out(engine)
        deliver_due(engine, transport)

    poll(until, step, what=what)


def delivery_count(engine: Engine, subscription_id: str) -> int:
    with engine.connect() as conn:
        return len(conn.execute(t.webhook_deliveries.select().where(
            t.webhook_deliveries.c.subscription_id == subscription_id)).all())


def fan_out_until(engine: Engine, subscription_id: str, n: int) -> None:
    poll(lambda: delivery_count(engine, subscription_id) >= n, lambda: fan_out(engine),
         what=f"{n} deliveries")


def make_due(engine: Engine, **values: Any) -> None:
    """Pending deliveries due now: time passing, simulated."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(update(t.webhook_deliveries)
                     .where(t.webhook_deliveries.c.status == "pending")
                     .values(next_attempt_at=now - dt.timedelta(seconds=1), **values))


def deliveries(api: Api, subscription_id: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/v1/webhooks/{subscription_id}/deliveries", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def events_of(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = api.get("/v1/events", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def event_ids(api: Api, entity_id: str) -> list[str]:
    """The entity's event ids, oldest first, once the feed shows them."""
    found: list[str] = []

    def look() -> bool:
        found[:] = [e["id"] for e in events_of(api, entity_id=entity_id)]
        return bool(found)

    poll(look, what=f"events of {entity_id}")
    return found


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


# -- 1. subscriptions -------------------------------------------------------------------------


def test_the_secret_is_shown_once(api: Api, receiver: Receiver) -> None:
    r = api.post("/v1/webhooks", json={"url": receiver.url, "event_types": ["product.*"],
                                       "description": "ERP"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"/v1/webhooks/{created['id']}"
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) <= 64
    assert created["status"] == "active"
    assert created["event_types"] == ["product.*"]
    assert created["description"] == "ERP"

    got = api.get(f"/v1/webhooks/{created['id']}")
    assert got.status_code == 200, got.text
    listed = api.get("/v1/webhooks")
    assert listed.status_code == 200, listed.text
    assert [s["id"] for s in listed.json()["items"]] == [created["id"]]
    for response in (got, listed):
        assert secret not in response.text
        assert secret.removeprefix("whsec_") not in response.text
        assert "secret" not in response.text
    assert got.json() == {k: v for k, v in created.items() if k != "secret"}


def test_patch_changes_url_types_and_pause(api: Api, receiver: Receiver) -> None:
    sub = subscribe(api, receiver.url)
    path = f"/v1/webhooks/{sub['id']}"

    r = patch(api, path, {"url": receiver.url + "/v2", "event_types": ["order.*", "*"]})
    assert r.status_code == 200, r.text
    assert r.json()["url"] == receiver.url + "/v2"
    assert r.json()["event_types"] == ["order.*", "*"]
    assert r.json()["version"] == sub["version"] + 1

    r = patch(api, path, {"paused": True})
    assert r.json()["status"] == "paused"
    assert api.get(path).json()["status"] == "paused"
    assert api.get("/v1/webhooks", params={"status": "paused"}).json()["items"][0]["id"] == (
        sub["id"])
    assert api.get("/v1/webhooks", params={"status": "active"}).json()["items"] == []
    r = patch(api, path, {"paused": False})
    assert r.json()["status"] == "active"
    assert "secret" not in r.text

    body = problem(patch(api, path, {"url": None}), 422)
    assert error_fields(body) == ["url"]
    problem(patch(api, f"/v1/webhooks/{'0' * 36}", {"paused": True}), 404)


def test_delete_then_gone(api: Api, receiver: Receiver) -> None:
    sub = subscribe(api, receiver.url)
    path = f"/v1/webhooks/{sub['id']}"
    r = delete(api, path)
    assert r.status_code == 204, r.text
    problem(api.get(path), 404)
    problem(delete(api, path), 404)
    problem(api.get(path + "/deliveries"), 404)
    assert api.get("/v1/webhooks").json()["items"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://erp.example/hook"}, "url"),
    ({"url": "mailto:ops@example.com"}, "url"),
    ({"url": "https://user:pw@erp.example/hook"}, "url"),
    ({"url": "https://token@erp.example/hook"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"url": "http://127.0.0.1:abc/hook"}, "url"),
    ({"url": "http://127.0.0.1:65536/hook"}, "url"),
    ({"url": "http://127.0.0.1:8080/ho\nok"}, "url"),
    ({"url": "http://127.0.0.1:8080/hook\x7f"}, "url"),
    ({"event_types": ["Order*"]}, "event_types"),
    ({"event_types": ["order."]}, "event_types"),
    ({"event_types": ["order.created", "order*"]}, "event_types"),
    ({"event_types": ["order.created", "order.created"]}, "event_types"),
    ({"event_types": []}, "event_types"),
])
def test_invalid_subscriptions_are_refused(api: Api, body: dict[str, Any], field: str) -> None:
    full = {"url": "http://127.0.0.1:9/hook", "event_types": ["order.*"], **body}
    answer = problem(api.post("/v1/webhooks", json=full), 422)
    assert error_fields(answer) == [field], answer
    assert api.get("/v1/webhooks").json()["items"] == []


def test_valid_event_type_patterns(api: Api, receiver: Receiver) -> None:
    sub = subscribe(api, receiver.url, ["*", "order.*", "order.created",
                                        "fulfillment_request.items_cancelled"])
    assert sub["event_types"][0] == "*"


def test_private_targets_need_the_setting(engine: Engine, settings: Settings,
                                          make_key: Callable[..., str],
                                          api: Api, receiver: Receiver) -> None:
    strict = settings.model_copy(update={"egress_allow_private": False})
    with TestClient(create_app(strict, engine), raise_server_exceptions=False) as client:
        guarded = Api(client, make_key("admin"))
        for url in (receiver.url, "http://localhost:8080/hook", "http://10.1.2.3/hook",
                    "https://192.168.0.10/hook", "http://169.254.169.254/latest/meta-data",
                    "http://[::1]:8080/hook", "http://0.0.0.0/hook"):
            answer = problem(guarded.post("/v1/webhooks", json={
                "url": url, "event_types": ["*"]}), 422)
            assert error_fields(answer) == ["url"], (url, answer)
        # A public address is fine (an IP literal: nothing to resolve).
        public = guarded.post("/v1/webhooks", json={"url": "https://93.184.215.14/hook",
                                                    "event_types": ["*"]})
        assert public.status_code == 201, public.text
        answer = problem(patch(guarded, f"/v1/webhooks/{public.json()['id']}",
                               {"url": "http://127.0.0.1:9/hook"}), 422)
        assert error_fields(answer) == ["url"]
    # The test settings allow private targets.
    assert subscribe(api, receiver.url)["url"] == receiver.url


def test_the_transport_refuses_private_targets(receiver: Receiver) -> None:
    strict = HttpTransport(2.0)
    try:
        answer = strict.send(receiver.url, {"content-type": "application/json"}, b"{}")
    finally:
        strict.close()
    assert answer.status_code is None
    assert answer.error is not None
    assert "private" in answer.error
    assert receiver.requests() == []


@pytest.mark.parametrize("role", ["admin", "integrator"])
def test_admin_and_integrator_may_manage(as_role: Callable[..., Api], receiver: Receiver,
                                         role: str) -> None:
    client = as_role(role)
    sub = subscribe(client, receiver.url)
    assert client.get(f"/v1/webhooks/{sub['id']}").status_code == 200
    assert client.get("/v1/webhooks").status_code == 200
    assert patch(client, f"/v1/webhooks/{sub['id']}", {"paused": True}).status_code == 200
    assert client.get(f"/v1/webhooks/{sub['id']}/deliveries").status_code == 200
    assert client.post(f"/v1/webhooks/{sub['id']}/rotate-secret").status_code == 200
    assert delete(client, f"/v1/webhooks/{sub['id']}").status_code == 204


@pytest.mark.parametrize("role", ["manager", "associate"])
def test_store_roles_may_not(api: Api, as_role: Callable[..., Api], receiver: Receiver,
                             role: str) -> None:
    sub = subscribe(api, receiver.url)
    assert api.put("/v1/locations/berlin", json=location_body()).status_code == 201
    client = as_role(role, ["berlin"])
    path = f"/v1/webhooks/{sub['id']}"
    problem(client.post("/v1/webhooks", json={"url": receiver.url, "event_types": ["*"]}), 403)
    problem(client.get("/v1/webhooks"), 403)
    problem(client.get(path), 403)
    problem(patch(client, path, {"paused": True}), 403)
    problem(delete(client, path), 403)
    problem(client.get(path + "/deliveries"), 403)
    problem(client.post(path + "/rotate-secret"), 403)
    problem(client.post(path + "/replay", json={"after": "0" * 32}), 403)
    assert api.get(path).json()["status"] == "active"


# -- 2. delivery ------------------------------------------------------------------------------


def test_subscribed_events_arrive_signed(api: Api, engine: Engine, receiver: Receiver,
                                         transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url, ["product.*"])
    product = put_product(api, "SKU-1", "Trail shoe")
    assert api.put("/v1/locations/berlin", json=location_body()).status_code == 201
    put_product(api, "SKU-2")
    # SKU-2's event comes after the location's: once it is here, the location was passed over.
    pump(engine, transport, lambda: {e["entity_id"] for e in receiver.events()} >= {
        "SKU-1", "SKU-2"})

    assert sorted(e["entity_id"] for e in receiver.events()) == ["SKU-1", "SKU-2"]
    [request] = [r for r in receiver.requests() if r.event["entity_id"] == "SKU-1"]
    event = request.event
    assert set(event) == {"id", "type", "occurred_at", "entity_id", "sequence", "data"}
    assert event["type"] == "product.upserted"
    assert event["sequence"] == 1
    assert event["data"]["name"] == "Trail shoe"
    assert event["data"]["version"] == product["version"]
    at(event["occurred_at"])
    [stored] = events_of(api, entity_id="SKU-1")
    assert event["id"] == stored["id"]
    assert event["data"] == stored["payload"]

    headers = request.headers
    assert headers["webhook-id"] == event["id"]
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(sub["secret"]).verify(request.body, headers) == event
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(sub["secret"]).verify(request.body.replace(b"Trail", b"Track"), headers)

    items = deliveries(api, sub["id"])["items"]
    assert sorted(d["entity_id"] for d in items) == ["SKU-1", "SKU-2"]
    assert {d["status"] for d in items} == {"delivered"}
    assert all(d["delivered_at"] and d["next_attempt_at"] is None for d in items)


def test_a_paused_subscription_sends_nothing_until_resumed(
        api: Api, engine: Engine, receiver: Receiver, transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    patch(api, f"/v1/webhooks/{sub['id']}", {"paused": True})
    put_product(api, "SKU-1")
    fan_out_until(engine, sub["id"], 1)
    assert deliver_due(engine, transport) == 0
    assert receiver.requests() == []
    patch(api, f"/v1/webhooks/{sub['id']}", {"paused": False})
    pump(engine, transport, lambda: len(receiver.requests()) == 1)


def test_events_before_the_subscription_are_not_sent(
        api: Api, engine: Engine, receiver: Receiver, transport: HttpTransport) -> None:
    put_product(api, "OLD")
    event_ids(api, "OLD")  # visible in the feed before subscribing
    subscribe(api, receiver.url)
    put_product(api, "NEW")
    pump(engine, transport, lambda: bool(receiver.requests()))
    assert [e["entity_id"] for e in receiver.events()] == ["NEW"]


def test_a_url_the_client_cannot_use_fails_only_its_delivery(
        api: Api, engine: Engine, receiver: Receiver, transport: HttpTransport) -> None:
    good = subscribe(api, receiver.url)
    bad = subscribe(api, "http://\u2603.example/hook")  # no valid IDNA host name
    put_product(api, "SKU-1")
    fan_out_until(engine, good["id"], 1)
    fan_out_until(engine, bad["id"], 1)
    assert deliver_due(engine, transport) == 2
    assert len(receiver.requests()) == 1
    [d] = deliveries(api, good["id"])["items"]
    assert d["status"] == "delivered"
    [d] = deliveries(api, bad["id"])["items"]
    assert d["status"] == "pending"
    assert "InvalidURL" in d["attempts"][0]["error"]
    # The delivered one is not sent again.
    make_due(engine)
    deliver_due(engine, transport)
    assert len(receiver.requests()) == 1


# -- 3. order per entity ----------------------------------------------------------------------


def assert_in_order(received: list[Received]) -> None:
    """Per entity, sequence n+1 is sent only once n was answered with a 2xx."""
    done: dict[str, int] = {}
    for r in received:
        entity, sequence = r.event["entity_id"], r.event["sequence"]
        last = done.get(entity, 0)
        assert sequence <= last + 1, f"{entity}: {sequence} sent before {last + 1} was delivered"
        if 200 <= r.status < 300:
            done[entity] = max(last, sequence)


def test_an_entitys_events_wait_for_its_failed_one(
        api: Api, engine: Engine, receiver: Receiver, transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    failing = threading.Event()
    failing.set()

    def answer(request: Request) -> Answer:
        event = request.event
        if failing.is_set() and event["entity_id"] == "A" and event["sequence"] == 1:
            return 500, {}, b"down"
        return 200, {}, b"ok"

    receiver.answer = answer
    put_product(api, "A", "A v1")
    pump(engine, transport, lambda: len(receiver.requests()) >= 1, "A's first attempt")
    for n in (2, 3, 4):
        put_product(api, "A", f"A v{n}")
    put_product(api, "B")
    pump(engine, transport, lambda: any(e["entity_id"] == "B" for e in receiver.events()),
         "B, while A waits")
    fan_out_until(engine, sub["id"], 5)
    deliver_due(engine, transport)
    assert {e["sequence"] for e in receiver.events("A")} == {1}
    pending = deliveries(api, sub["id"], status="pending")["items"]
    assert sorted(d["entity_id"] for d in pending) == ["A"] * 4
    [first] = [d for d in pending if d["attempt_count"] > 0]
    assert first["event_id"] == receiver.events("A")[0]["id"]
    assert first["attempts"][0]["status_code"] == 500
    # The first retry is due about 5 s after the failure.
    wait = at(first["next_attempt_at"]) - at(first["attempts"][0]["attempted_at"])
    assert dt.timedelta(seconds=4) <= wait <= dt.timedelta(seconds=6)

    failing.clear()
    make_due(engine)
    pump(engine, transport, lambda: 4 in {e["sequence"] for e in receiver.events("A")},
         "A's later events")
    assert_in_order(receiver.requests())
    delivered = [e["sequence"] for e in receiver.events("A")]
    assert delivered[-4:] == [1, 2, 3, 4]
    assert deliveries(api, sub["id"], status="pending")["items"] == []


@pytest.mark.postgres_only
def test_workers_in_parallel_send_each_event_once_and_in_order(
        api: Api, engine: Engine, receiver: Receiver, transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    for version in (1, 2, 3):
        for n in range(8):
            put_product(api, f"P-{n}", f"v{version}")
    fan_out_until(engine, sub["id"], 24)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(receiver.requests()) < 24:
                deliver_due(engine, transport, batch=3, concurrency=3)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert errors == []
    ids = [e["id"] for e in receiver.events()]
    assert len(ids) == len(set(ids)) == 24
    assert_in_order(receiver.requests())
    assert deliveries(api, sub["id"], status="pending")["items"] == []


# -- 4. Retry-After, 410 ----------------------------------------------------------------------


def test_retry_after_is_honoured(api: Api, engine: Engine, receiver: Receiver,
                                 transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    receiver.answer = lambda _: (429, {"Retry-After": "120"}, b"slow down")
    put_product(api, "SKU-1")
    pump(engine, transport, lambda: len(receiver.requests()) == 1)
    [d] = deliveries(api, sub["id"])["items"]
    assert d["status"] == "pending"
    assert d["attempt_count"] == 1
    [attempt] = d["attempts"]
    assert attempt["status_code"] == 429
    wait = at(d["next_attempt_at"]) - at(attempt["attempted_at"])
    assert abs(wait - dt.timedelta(seconds=120)) < dt.timedelta(seconds=2), wait
    assert deliver_due(engine, transport) == 0  # not due yet
    assert len(receiver.requests()) == 1
    assert api.get(f"/v1/webhooks/{sub['id']}").json()["failing_since"] is not None


def test_gone_disables_the_subscription(api: Api, engine: Engine, receiver: Receiver,
                                        transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    path = f"/v1/webhooks/{sub['id']}"
    receiver.answer = lambda _: (410, {}, b"gone")
    put_product(api, "A", "A v1")
    put_product(api, "A", "A v2")
    put_product(api, "B")
    fan_out_until(engine, sub["id"], 3)
    deliver_due(engine, transport)
    assert len(receiver.requests()) == 2  # A v2 waited for A v1

    got = api.get(path).json()
    assert got["status"] == "disabled"
    assert "410" in got["disabled_reason"]
    assert api.get("/v1/webhooks", params={"status": "disabled"}).json()["items"][0]["id"] == (
        sub["id"])
    assert deliveries(api, sub["id"], status="pending")["items"] == []
    failed = deliveries(api, sub["id"], status="failed")["items"]
    assert len(failed) == 3
    assert all(d["next_attempt_at"] is None for d in failed)

    found: list[dict[str, Any]] = []

    def disabled_event() -> bool:
        found[:] = events_of(api, type="webhook_subscription.disabled")
        return bool(found)

    poll(disabled_event, what="the disabled event")
    [event] = found
    assert event["entity_id"] == sub["id"]
    assert event["payload"]["url"] == receiver.url
    assert "410" in event["payload"]["reason"]

    # Disabled: nothing more is sent.
    make_due(engine)
    assert deliver_due(engine, transport) == 0

    resumed = patch(api, path, {"paused": False})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "active"
    assert resumed.json()["disabled_reason"] is None
    receiver.answer = ok
    put_product(api, "C")
    pump(engine, transport, lambda: any(e["entity_id"] == "C" for e in receiver.events()))
    # The failed deliveries stay failed until replayed.
    assert len(deliveries(api, sub["id"], status="failed")["items"]) == 3


# -- 5. the delivery log ----------------------------------------------------------------------


def test_the_log_keeps_each_attempts_status(api: Api, engine: Engine, receiver: Receiver,
                               transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)

    def answer(request: Request) -> Answer:
        if request.event["entity_id"] == "BIG":
            return 200, {"Content-Type": "text/plain"}, b"x" * 5000
        return 500, {}, b'{"error":"oops"}'

    receiver.answer = answer
    put_product(api, "BIG")
    put_product(api, "BAD")
    pump(engine, transport, lambda: len(receiver.requests()) == 2)

    [ok] = deliveries(api, sub["id"], status="delivered")["items"]
    assert ok["entity_id"] == "BIG"
    assert ok["event_type"] == "product.upserted"
    [attempt] = ok["attempts"]
    assert attempt["status_code"] == 200
    assert isinstance(attempt["duration_ms"], int)
    assert attempt["duration_ms"] >= 0
    assert attempt["error"] is None

    [bad] = deliveries(api, sub["id"], status="pending")["items"]
    assert bad["entity_id"] == "BAD"
    assert bad["attempts"][0]["status_code"] == 500
    assert "oops" not in json.dumps(bad)  # the subscriber's answer is not kept
    assert deliveries(api, sub["id"], status="failed")["items"] == []
    assert len(deliveries(api, sub["id"])["items"]) == 2
    problem(api.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"status": "lost"}), 422)


def test_a_refused_connection_is_logged_then_given_up(
        api: Api, engine: Engine, transport: HttpTransport) -> None:
    sub = subscribe(api, f"http://127.0.0.1:{closed_port()}/hook")
    put_product(api, "SKU-1")
    fan_out_until(engine, sub["id"], 1)
    assert deliver_due(engine, transport) == 1
    [d] = deliveries(api, sub["id"], status="pending")["items"]
    [attempt] = d["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"]
    assert "connect" in attempt["error"].lower()

    # Three days after it was first due the delivery is given up.
    make_due(engine, due_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3, hours=1))
    assert deliver_due(engine, transport) == 1
    [d] = deliveries(api, sub["id"], status="failed")["items"]
    assert d["attempt_count"] == 2
    assert [a["error"] is not None for a in d["attempts"]] == [True, True]
    assert d["next_attempt_at"] is None
    assert deliveries(api, sub["id"], status="pending")["items"] == []


def test_the_log_is_paged_newest_first(api: Api, engine: Engine, receiver: Receiver,
                                       transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    for sku in ("P-1", "P-2", "P-3"):
        put_product(api, sku)
    pump(engine, transport, lambda: len(receiver.requests()) == 3)

    first = deliveries(api, sub["id"], limit=2)
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = deliveries(api, sub["id"], limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = [d["event_id"] for d in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert sorted(ids) == sorted(e["id"] for e in receiver.events())
    assert [d["entity_id"] for d in first["items"] + second["items"]] == ["P-3", "P-2", "P-1"]
    answer = problem(api.get(f"/v1/webhooks/{sub['id']}/deliveries",
                             params={"cursor": "nonsense"}), 422)
    assert error_fields(answer) == ["cursor"]


# -- 6. replay --------------------------------------------------------------------------------


def test_replay_named_events_and_after(api: Api, engine: Engine, receiver: Receiver,
                                       transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    path = f"/v1/webhooks/{sub['id']}/replay"
    put_product(api, "A")
    assert api.put("/v1/locations/berlin", json=location_body()).status_code == 201
    put_product(api, "B")
    pump(engine, transport, lambda: len(receiver.requests()) == 2)
    [a] = event_ids(api, "A")
    [b] = event_ids(api, "B")

    r = api.post(path, json={"event_ids": [a]})
    assert r.status_code == 202, r.text
    assert r.json() == {"queued": 1, "event_ids": [a]}
    pump(engine, transport, lambda: receiver.count(a) == 2)
    again = [x for x in receiver.requests() if x.event["id"] == a]
    assert again[0].headers["webhook-id"] == again[1].headers["webhook-id"] == a
    assert again[0].body == again[1].body
    assert Webhook(sub["secret"]).verify(again[1].body, again[1].headers)["id"] == a
    assert receiver.count(b) == 1

    # After A: B (the location's event is not subscribed).
    r = api.post(path, json={"after": a})
    assert r.status_code == 202, r.text
    assert r.json() == {"queued": 1, "event_ids": [b]}
    pump(engine, transport, lambda: receiver.count(b) == 2)
    assert receiver.count(a) == 2
    [d] = [d for d in deliveries(api, sub["id"])["items"] if d["event_id"] == b]
    assert d["status"] == "delivered"
    assert d["attempt_count"] == 2

    # From the start: both again.
    r = api.post(path, json={"after": "0" * 32})
    assert r.json()["event_ids"] == [a, b]
    pump(engine, transport, lambda: receiver.count(a) == receiver.count(b) == 3)


def test_replay_sends_failed_deliveries_again(api: Api, engine: Engine, receiver: Receiver,
                                              transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    receiver.answer = lambda _: (410, {}, b"")
    put_product(api, "A")
    pump(engine, transport, lambda: len(receiver.requests()) == 1)
    [a] = event_ids(api, "A")
    assert api.get(f"/v1/webhooks/{sub['id']}").json()["status"] == "disabled"
    patch(api, f"/v1/webhooks/{sub['id']}", {"paused": False})
    receiver.answer = ok
    r = api.post(f"/v1/webhooks/{sub['id']}/replay", json={"event_ids": [a]})
    assert r.status_code == 202, r.text
    pump(engine, transport, lambda: bool(receiver.delivered(a)))
    [d] = deliveries(api, sub["id"])["items"]
    assert d["status"] == "delivered"
    assert [x["status_code"] for x in d["attempts"]] == [410, 200]


def test_replay_refuses_what_it_cannot_send(api: Api, engine: Engine, receiver: Receiver,
                                            transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    path = f"/v1/webhooks/{sub['id']}/replay"
    put_product(api, "A")
    assert api.put("/v1/locations/berlin", json=location_body()).status_code == 201
    pump(engine, transport, lambda: len(receiver.requests()) == 1)
    [a] = event_ids(api, "A")
    [location] = event_ids(api, "berlin")

    unknown = "0" * 16 + f"{999_999_999:016x}"
    answer = problem(api.post(path, json={"event_ids": [a, unknown]}), 422)
    assert error_fields(answer) == ["event_ids.1"]
    # The subscription's types refuse it: changed, they would let it through (409).
    answer = problem(api.post(path, json={"event_ids": [location]}), 409)
    assert error_fields(answer) == ["event_ids.0"]
    assert "location.upserted" in answer["errors"][0]["message"]
    answer = problem(api.post(path, json={"event_ids": ["nonsense"]}), 422)
    assert error_fields(answer) == ["event_ids.0"]
    answer = problem(api.post(path, json={"after": "nonsense"}), 422)
    assert error_fields(answer) == ["after"]
    problem(api.post(path, json={}), 422)
    problem(api.post(path, json={"after": a, "event_ids": [a]}), 422)
    problem(api.post(path, json={"event_ids": []}), 422)
    problem(api.post(f"/v1/webhooks/{'0' * 36}/replay", json={"after": a}), 404)
    # Nothing was queued.
    deliver_due(engine, transport)
    assert receiver.count(a) == 1


# -- 7. rotating the secret -------------------------------------------------------------------


def test_after_rotation_both_secrets_sign(api: Api, engine: Engine, receiver: Receiver,
                                          transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    old = sub["secret"]
    r = api.post(f"/v1/webhooks/{sub['id']}/rotate-secret")
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    overlap = at(r.json()["previous_secret_expires_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23, minutes=59) < overlap <= dt.timedelta(hours=24)
    assert new not in api.get(f"/v1/webhooks/{sub['id']}").text

    put_product(api, "SKU-1")
    pump(engine, transport, lambda: len(receiver.requests()) == 1)
    [request] = receiver.requests()
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)

    def verifies(secret: str, signature: str) -> bool:
        try:
            Webhook(secret).verify(request.body, {**request.headers,
                                                  "webhook-signature": signature})
        except WebhookVerificationError:
            return False
        return True

    assert [verifies(new, s) for s in signatures].count(True) == 1
    assert [verifies(old, s) for s in signatures].count(True) == 1
    assert {s for s in signatures if verifies(new, s)} != {s for s in signatures
                                                          if verifies(old, s)}
    assert Webhook(new).verify(request.body, request.headers)["entity_id"] == "SKU-1"
    assert Webhook(old).verify(request.body, request.headers)["entity_id"] == "SKU-1"

    # Once the overlap is over only the new secret signs.
    with engine.begin() as conn:
        conn.execute(update(t.webhook_subscriptions)
                     .where(t.webhook_subscriptions.c.id == sub["id"])
                     .values(previous_secret_expires_at=dt.datetime.now(dt.UTC)
                             - dt.timedelta(seconds=1)))
    put_product(api, "SKU-2")
    pump(engine, transport, lambda: len(receiver.requests()) == 2)
    latest = receiver.requests()[-1]
    assert len(latest.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(latest.body, latest.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(latest.body, latest.headers)


# -- 8. the CLI -------------------------------------------------------------------------------


def oms(*args: str) -> subprocess.CompletedProcess[str]:
    # cli_env put OMS_DATABASE_URL in this process's environment; the command inherits it.
    command = Path(sys.executable).parent / "oms"
    return subprocess.run([str(command), *args], env={**os.environ, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.usefixtures("cli_env")
def test_the_webhooks_commands(api: Api, engine: Engine, receiver: Receiver,
                               transport: HttpTransport) -> None:
    sub = subscribe(api, receiver.url)
    other = subscribe(api, receiver.url + "/orders", ["order.*"])
    put_product(api, "SKU-1")
    pump(engine, transport, lambda: len(receiver.requests()) == 1)
    [event] = event_ids(api, "SKU-1")

    done = oms("webhooks", "list", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(s["id"] for s in listed) == sorted([sub["id"], other["id"]])
    assert {s["id"]: s["event_types"] for s in listed}[other["id"]] == ["order.*"]
    assert "secret" not in done.stdout
    assert sub["secret"] not in done.stdout

    done = oms("webhooks", "deliveries", sub["id"], "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = done.stdout.splitlines()
    delivery = json.loads(line)
    assert delivery["event_id"] == event
    assert delivery["entity_id"] == "SKU-1"
    assert delivery["status"] == "delivered"
    assert delivery["attempts"][0]["status_code"] == 200
    done = oms("webhooks", "deliveries", other["id"], "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""

    done = oms("webhooks", "replay", sub["id"], "--event", event)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"queued 1 deliveries for {sub['id']}" in done.stdout
    pump(engine, transport, lambda: receiver.count(event) == 2)
    assert receiver.requests()[-1].headers["webhook-id"] == event

    done = oms("webhooks", "replay", other["id"], "--event", event)
    assert done.returncode == 2
    assert "product.upserted" in done.stderr
    done = oms("webhooks", "deliveries", "0" * 36, "--json")
    assert done.returncode == 2
    assert "no webhook subscription" in done.stderr


def test_replay_refuses_null_where_the_document_says_leave_it_out(api: Api) -> None:
    sub = subscribe(api, "https://erp.example/oms")
    answer = problem(api.post(f"/v1/webhooks/{sub['id']}/replay",
                              json={"after": "0" * 32, "event_ids": None}), 422)
    assert error_fields(answer) == ["event_ids"]
