"""Where the OMS's outgoing requests may go, seen through the API: a DC's callback URL naming a
private or metadata address is refused; a name is judged by what it resolves to when a
request is sent (DC callbacks and webhooks alike); a name that answers a public address and
then 127.0.0.1 (DNS rebinding) never reaches what listens there; and what a provider or
subscriber answers is shown as its status, never its body.

DNS and the internet beyond this machine are the tests' own (tests/network.py); the DCs and
subscribers are real HTTP servers on 127.0.0.1 (tests/receiver.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from oms.adapters.eventstream.http import HttpTransport
from oms.adapters.providers.http_callback import HttpCallbackNotifier
from oms.adapters.registry import Providers, providers_from
from oms.api.app import create_app
from oms.domain.events import utcnow
from oms.services.fulfillment import notify_providers
from oms.services.webhooks import deliver_due
from oms.settings import Settings
from tests.api.test_fulfillment_dc import at, put_dc, request_of
from tests.api.test_webhooks import deliveries, fan_out_until, make_due, put_product, subscribe
from tests.fulfilling import requests_of
from tests.helpers import Api, error_fields, location_body, problem
from tests.network import Dns
from tests.ordering import events, order_body, place
from tests.receiver import Receiver

#: A public address (example.com's); nothing is sent there: the tests' internet is down.
PUBLIC = "93.184.215.14"
#: What a provider must never see echoed back to our callers.
SECRET = "aws_secret_access_key=wJalrXUtnFEMI"


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """The settings of production: private targets refused. (The test settings allow them,
    as `make run` does.)"""
    return settings.model_copy(update={"egress_allow_private": False})


@pytest.fixture
def guarded(engine: Engine, strict: Settings, make_key: Callable[..., str]) -> Iterator[Api]:
    with TestClient(create_app(strict, engine), raise_server_exceptions=False) as client:
        yield Api(client, make_key("admin"))


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    return Dns(monkeypatch)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(path="/oms/fulfillment") as r:
        yield r


@pytest.fixture
def strict_transport() -> Iterator[HttpTransport]:
    sender = HttpTransport(2.0)
    yield sender
    sender.close()


def port_of(receiver: Receiver) -> int:
    port: int = receiver.server.server_address[1]
    return port


def dc_request(api: Api, stocked: Callable[..., None], callback_url: str) -> dict[str, Any]:
    """A request issued to dc-1, whose callback URL is `callback_url`."""
    stocked({("dc-1", "SKU-1"): 5})
    put_dc(api, callback_url)
    order = place(api, order_body(("SKU-1", 1)))
    [request] = requests_of(api, order["id"])
    assert request["location_id"] == "dc-1"
    return request


Notify = Callable[..., int]


def notifier(engine: Engine, settings: Settings) -> Iterator[Notify]:
    """One pass of the worker's DC/3PL notifications with these settings, at `now` (default:
    the real now)."""
    providers: Providers = providers_from(settings)

    def run(now: dt.datetime | None = None) -> int:
        return notify_providers(engine, providers, now or utcnow())

    yield run
    assert isinstance(providers.notifier, HttpCallbackNotifier)
    providers.notifier.client.close()


@pytest.fixture
def notify(engine: Engine, settings: Settings) -> Iterator[Notify]:
    """As the test settings say: private targets allowed."""
    yield from notifier(engine, settings)


@pytest.fixture
def notify_strictly(engine: Engine, strict: Settings) -> Iterator[Notify]:
    yield from notifier(engine, strict)


# -- a callback URL is judged when it is saved -------------------------------------------------


METADATA_AND_PRIVATE = [
    "http://169.254.169.254/latest/meta-data", "http://[fd00:ec2::254]/latest/meta-data",
    "http://[::ffff:169.254.169.254]/latest/meta-data", "http://127.0.0.1:8080/oms",
    "http://0x7f000001/oms", "http://[::1]/oms", "http://10.0.0.8/oms",
    "http://192.168.1.20/oms", "http://0.0.0.0/oms",
]


def test_a_callback_url_to_a_metadata_or_private_address_is_refused(
        guarded: Api, api: Api) -> None:
    for url in METADATA_AND_PRIVATE:
        answer = problem(guarded.put("/v1/locations/dc-1", json=location_body(
            type="dc", capabilities=["ship"], fulfillment_callback_url=url)), 422)
        assert error_fields(answer) == ["fulfillment_callback_url"], (url, answer)
        assert "OMS_EGRESS_ALLOW_PRIVATE" in answer["detail"], answer
        problem(guarded.get("/v1/locations/dc-1"), 404)  # nothing written
    # A name is judged when a request is sent; a public address is fine.
    for url in ("https://wms.dc.example/oms", f"http://{PUBLIC}/oms"):
        r = guarded.put("/v1/locations/dc-1", json=location_body(
            type="dc", capabilities=["ship"], fulfillment_callback_url=url))
        assert r.status_code in (200, 201), r.text
    # With private targets allowed (as in development), they may be.
    r = api.put("/v1/locations/dc-2", json=location_body(
        type="dc", capabilities=["ship"], fulfillment_callback_url=METADATA_AND_PRIVATE[0]))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("url", ["http://a..b/oms", "https://" + "a" * 64 + ".example/oms",
                                 "https://wms:hunter2@dc.example/oms"])
def test_a_callback_url_names_a_host_and_no_credentials(api: Api, url: str) -> None:
    answer = problem(api.put("/v1/locations/dc-1", json=location_body(
        type="dc", capabilities=["ship"], fulfillment_callback_url=url)), 422)
    assert error_fields(answer) == ["fulfillment_callback_url"]


# -- a name is judged when a request is sent ---------------------------------------------------


def test_a_dc_callback_to_a_name_of_a_private_address_is_not_sent(
        api: Api, notify_strictly: Notify, stocked: Callable[..., None], dns: Dns,
        receiver: Receiver) -> None:
    dns.resolve("wms.dc.example", "127.0.0.1")
    request = dc_request(api, stocked,
                         f"http://wms.dc.example:{port_of(receiver)}/oms/fulfillment")

    assert notify_strictly() == 0
    assert receiver.requests() == []
    notification = request_of(api, request["id"])["notification"]
    assert (notification["state"], notification["attempts"]) == ("pending", 1)
    assert notification["last_error"] == (
        "wms.dc.example resolves to 127.0.0.1, a loopback address; set "
        "OMS_EGRESS_ALLOW_PRIVATE=true to allow private targets")


def test_a_webhook_to_a_name_of_a_private_address_is_not_sent(
        guarded: Api, api: Api, engine: Engine, dns: Dns, receiver: Receiver,
        strict_transport: HttpTransport) -> None:
    dns.resolve("hooks.erp.example", PUBLIC)
    sub = subscribe(guarded, f"http://hooks.erp.example:{port_of(receiver)}/hook")
    dns.resolve("hooks.erp.example", "10.20.30.40")
    put_product(api, "SKU-1")
    fan_out_until(engine, sub["id"], 1)

    assert deliver_due(engine, strict_transport) == 1
    assert receiver.requests() == []
    assert dns.dialled == []
    [delivery] = deliveries(api, sub["id"])["items"]
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"] == (
        "hooks.erp.example resolves to 10.20.30.40, a private address; set "
        "OMS_EGRESS_ALLOW_PRIVATE=true to allow private targets")


# -- DNS rebinding -----------------------------------------------------------------------------


def test_a_rebinding_name_never_reaches_what_listens_on_the_dc_side(
        api: Api, notify_strictly: Notify, stocked: Callable[..., None], dns: Dns,
        receiver: Receiver) -> None:
    port = port_of(receiver)
    # A public address at the first lookup; 127.0.0.1, where the receiver listens, after.
    dns.resolve("rebind.dc.example", PUBLIC, "127.0.0.1")
    request = dc_request(api, stocked, f"http://rebind.dc.example:{port}/oms/fulfillment")

    assert notify_strictly() == 0
    first = request_of(api, request["id"])["notification"]
    assert first["last_error"].startswith("ConnectError")  # the public host is down
    # The retry looks the name up again, and goes nowhere it must not.
    assert notify_strictly(at(first["next_attempt_at"]) + dt.timedelta(seconds=1)) == 0
    second = request_of(api, request["id"])["notification"]
    assert second["attempts"] == 2
    assert "resolves to 127.0.0.1, a loopback address" in second["last_error"]

    assert receiver.requests() == []
    # Each attempt looked the name up once and dialled only the address it checked.
    assert dns.lookups == ["rebind.dc.example", "rebind.dc.example"]
    assert dns.dialled == [(PUBLIC, port)]


def test_a_rebinding_name_never_reaches_what_listens_for_a_webhook(
        guarded: Api, api: Api, engine: Engine, dns: Dns, receiver: Receiver,
        strict_transport: HttpTransport) -> None:
    port = port_of(receiver)
    dns.resolve("rebind.erp.example", PUBLIC)
    sub = subscribe(guarded, f"http://rebind.erp.example:{port}/hook")
    # From now on: a public address at the next lookup, 127.0.0.1 at every later one.
    dns.resolve("rebind.erp.example", PUBLIC, "127.0.0.1")
    put_product(api, "SKU-1")
    fan_out_until(engine, sub["id"], 1)

    assert deliver_due(engine, strict_transport) == 1
    make_due(engine)
    assert deliver_due(engine, strict_transport) == 1

    assert receiver.requests() == []
    assert dns.dialled == [(PUBLIC, port)]
    [delivery] = deliveries(api, sub["id"])["items"]
    first, second = delivery["attempts"]
    assert first["error"].startswith("ConnectError")
    assert "resolves to 127.0.0.1, a loopback address" in second["error"]


# -- what the other side answered ---------------------------------------------------------------


def test_what_a_dc_or_subscriber_answers_is_never_shown(
        api: Api, engine: Engine, notify: Notify, stocked: Callable[..., None],
        receiver: Receiver) -> None:
    receiver.answer = lambda _: (500, {"Content-Type": "text/plain"},
                                 f"Internal error; {SECRET}".encode())
    sub = subscribe(api, receiver.base_url + "/hook", ["product.*"])
    request = dc_request(api, stocked, receiver.url)  # SKU-1 is made on the way
    assert notify() == 0
    put_product(api, "SKU-2")
    fan_out_until(engine, sub["id"], 2)
    sender = HttpTransport(5.0, allow_private=True)
    try:
        assert deliver_due(engine, sender) == 2
    finally:
        sender.close()
    assert sorted(r.path for r in receiver.requests()) == ["/hook", "/hook", "/oms/fulfillment"]

    notification = request_of(api, request["id"])["notification"]
    assert notification["last_error"] == "HTTP 500 Internal Server Error"
    assert [d["attempts"][0]["status_code"] for d in deliveries(api, sub["id"])["items"]] == [
        500, 500]
    shown = [api.get(f"/v1/fulfillment-requests/{request['id']}"),
             api.get("/v1/fulfillment-requests", params={"order_id": request["order_id"]}),
             api.get(f"/v1/orders/{request['order_id']}"),
             api.get(f"/v1/webhooks/{sub['id']}"),
             api.get(f"/v1/webhooks/{sub['id']}/deliveries"),
             api.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"status": "pending"})]
    for answer in shown:
        assert answer.status_code == 200, answer.text
        assert "wJalrXUtnFEMI" not in answer.text
        assert "Internal error" not in answer.text
    assert all("wJalrXUtnFEMI" not in str(e) for e in events(api))
