"""Captures, refunds, voids and label bookings are carried out after the step that needs them
commits (DESIGN §3.7): never inside a transaction, each under a key made of what it is for,
each outcome recorded on its own, the worker carrying out what is left."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError

from oms.adapters.carriers import Booking, BookingRequest
from oms.adapters.carriers.simulated import SimulatedCarrier
from oms.adapters.payments import PaymentRequest, PaymentResult
from oms.adapters.payments.simulated import SimulatedPsp
from oms.api.app import create_app
from oms.services.provider_calls import carry_out_due
from oms.settings import Settings
from tests.fulfilling import providers_of, request_of, requests_of, simulated_psp, step
from tests.helpers import Api, problem
from tests.ordering import Shop, events, order_body, place

LINE = 1990 + 378
SHIPPING = 490


def carrier_of(app_client: TestClient) -> SimulatedCarrier:
    carrier = providers_of(app_client).carrier("dhl")
    assert isinstance(carrier, SimulatedCarrier)
    return carrier


def packed(api: Api, shop: Shop, external_id: str = "W-1", quantity: int = 2
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    shop({("mitte", "SKU-1"): 10})
    order = place(api, order_body(("SKU-1", quantity), external_id=external_id))
    [request] = requests_of(api, order["id"])
    for name in ("accept", "pick", "pack"):
        step(api, request["id"], name)
    return order, request


def payment_of(api: Api, order_id: str) -> dict[str, Any]:
    [payment] = api.get(f"/v1/orders/{order_id}").json()["payments"]
    found: dict[str, Any] = payment
    return found


def test_a_failed_commit_calls_no_provider_and_the_retry_books_and_captures_once(
        api: Api, shop: Shop, engine: Engine, app_client: TestClient) -> None:
    order, request = packed(api, shop)
    carrier, psp = carrier_of(app_client), simulated_psp(app_client)
    failures: list[Connection] = []

    def lose_connection_at_commit(conn: Connection) -> None:
        if not failures:
            failures.append(conn)
            conn.invalidate()
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"),
                                   connection_invalidated=True)

    ship = f"/v1/fulfillment-requests/{request['id']}/ship"
    key = {"Idempotency-Key": "ship-1"}
    event.listen(engine, "commit", lose_connection_at_commit)
    try:
        problem(api.post(ship, json={}, headers=key), 503)
    finally:
        event.remove(engine, "commit", lose_connection_at_commit)
    # Nothing committed, so nobody was asked for anything.
    assert (carrier.calls, psp.calls) == ([], [])
    assert request_of(api, request["id"])["status"] == "packed"

    shipped = api.post(ship, json={}, headers=key)
    assert shipped.status_code == 200, shipped.text
    shipment = shipped.json()["shipment"]
    assert shipment["label_status"] == "booked"
    assert len(carrier.bookings) == 1
    owed = 2 * LINE + SHIPPING
    payment = payment_of(api, order["id"])
    assert psp.captured("PSP-W-1") == owed
    assert (payment["captured"], payment["status"]) == (f"{owed / 100:.2f}", "captured")
    assert [c.idempotency_key for c in psp.calls] == [f"{payment['id']}:capture:{owed}"]
    assert [c.idempotency_key for c in carrier.calls] == [f"{shipment['id']}:label"]
    # A third try is the second answered again, with the label the booking brought.
    again = api.post(ship, json={}, headers=key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == shipped.json()
    assert len(carrier.calls) == 1


# -- no call while a transaction is open --------------------------------------------------

#: What the probing adapters found, and where to look.
PROBE: dict[str, Any] = {}


def _probe(what: str) -> None:
    """Try to take the order for writing from another connection without waiting: it is
    free unless the step that asks for this call still holds its transaction."""
    probe = create_engine(PROBE["url"])
    try:
        with probe.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET lock_timeout = '1ms'"))
                conn.execute(text("SELECT id FROM orders WHERE id = :id FOR UPDATE"),
                             {"id": PROBE["order_id"]})
            else:
                conn.exec_driver_sql("PRAGMA busy_timeout = 0")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.rollback()
        PROBE["free"].append(what)
    except OperationalError:
        PROBE["locked"].append(what)
    finally:
        probe.dispose()


class ProbingCarrier(SimulatedCarrier):
    def book(self, request: BookingRequest) -> Booking:
        _probe("label")
        return super().book(request)


class ProbingPsp(SimulatedPsp):
    def capture(self, request: PaymentRequest) -> PaymentResult:
        _probe("capture")
        return super().capture(request)

    def void(self, request: PaymentRequest) -> PaymentResult:
        _probe("void")
        return super().void(request)


@pytest.fixture
def probing_api(engine: Engine, settings: Settings, make_key: Callable[..., str]
                ) -> Iterator[Api]:
    here = __name__
    probing = settings.model_copy(update={
        "carrier_adapters": {"*": f"{here}:ProbingCarrier"},
        "psp_adapters": {"*": f"{here}:ProbingPsp"}})
    PROBE.clear()
    PROBE.update(url=settings.database_url, free=[], locked=[])
    with TestClient(create_app(probing, engine), raise_server_exceptions=False) as client:
        yield Api(client, make_key("admin"))


def test_providers_are_called_with_no_transaction_open(probing_api: Api, shop: Shop) -> None:
    """While the carrier books and the PSP captures or voids, the order is free: nothing
    waits for a slow provider."""
    api = probing_api
    order, request = packed(api, shop)
    PROBE["order_id"] = order["id"]
    assert step(api, request["id"], "ship")["shipment"]["label_status"] == "booked"
    cancelled = place(api, order_body(("SKU-1", 1), external_id="W-2"))
    PROBE["order_id"] = cancelled["id"]
    r = api.post(f"/v1/orders/{cancelled['id']}/cancel", json={})
    assert r.status_code == 200, r.text
    assert (PROBE["free"], PROBE["locked"]) == (["label", "capture", "void"], [])


# -- providers that cannot be reached or refuse -------------------------------------------


def test_an_unreachable_carrier_leaves_the_label_pending_for_the_worker(
        api: Api, shop: Shop, engine: Engine, app_client: TestClient) -> None:
    _, request = packed(api, shop)
    carrier = carrier_of(app_client)
    carrier.unreachable = True
    shipped = step(api, request["id"], "ship")
    shipment = shipped["shipment"]
    # The step is done; the parcel waits for its label.
    assert shipped["status"] == "shipped"
    assert (shipment["label_status"], shipment["tracking_number"]) == ("pending", None)
    assert "label" not in shipment
    assert carry_out_due(engine, providers_of(app_client), dt.datetime.now(dt.UTC)) == 0

    carrier.unreachable = False
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert carry_out_due(engine, providers_of(app_client), later) == 1
    got = api.get(f"/v1/shipments/{shipment['id']}").json()
    assert got["label_status"] == "booked"
    assert got["tracking_number"].startswith("SIM")
    assert got["label"]["format"] == "zpl"
    # Asked twice, under one key: one booking.
    assert [c.idempotency_key for c in carrier.calls] == [f"{shipment['id']}:label"] * 2
    assert len(carrier.bookings) == 1
    assert [e["type"] for e in events(api, entity_id=shipment["id"])] == [
        "shipment.created", "shipment.booked"]


def test_a_refused_booking_is_booked_again_with_another_carrier(
        api: Api, shop: Shop, app_client: TestClient, as_role: Callable[..., Api]) -> None:
    _, request = packed(api, shop)
    carrier = carrier_of(app_client)
    carrier.refusing["dhl"] = "dhl does not serve this postal code"
    shipment = step(api, request["id"], "ship")["shipment"]
    assert (shipment["label_status"], shipment["label_error"]) == (
        "failed", "dhl does not serve this postal code")
    [failed] = events(api, type="shipment.booking_failed")
    assert failed["payload"]["label_error"] == "dhl does not serve this postal code"

    store = as_role("associate", ["mitte"])
    r = store.post(f"/v1/shipments/{shipment['id']}/label", json={"carrier": "ups"})
    assert r.status_code == 200, r.text
    booked = r.json()
    assert (booked["carrier"], booked["label_status"], booked["label_error"]) == (
        "ups", "booked", None)
    assert booked["label"]["content"]
    assert [(c.carrier, c.idempotency_key) for c in carrier.calls] == [
        ("dhl", f"{shipment['id']}:label"), ("ups", f"{shipment['id']}:label:1")]
    again = store.post(f"/v1/shipments/{shipment['id']}/label", json={})
    assert "booked" in problem(again, 409)["detail"]
    shop({("potsdam", "SKU-1"): 1})
    other = as_role("associate", ["potsdam"])
    problem(other.post(f"/v1/shipments/{shipment['id']}/label", json={}), 404)


def test_an_unreachable_psp_is_asked_again_under_the_same_key(
        api: Api, shop: Shop, engine: Engine, app_client: TestClient) -> None:
    order, request = packed(api, shop)
    psp = simulated_psp(app_client)
    psp.unreachable = True
    step(api, request["id"], "ship")
    owed = 2 * LINE + SHIPPING
    payment = payment_of(api, order["id"])
    assert (payment["status"], payment["captured"], payment["pending"]["capture"]) == (
        "authorized", "0.00", f"{owed / 100:.2f}")

    psp.unreachable = False
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert carry_out_due(engine, providers_of(app_client), later) == 1
    payment = payment_of(api, order["id"])
    assert (payment["status"], payment["captured"], payment["pending"]["capture"]) == (
        "captured", f"{owed / 100:.2f}", "0.00")
    assert [c.idempotency_key for c in psp.calls] == [f"{payment['id']}:capture:{owed}"] * 2
    assert psp.captured("PSP-W-1") == owed
    assert [e["type"] for e in events(api, entity_id=payment["id"])] == ["payment.captured"]


# -- cancelling releases the money the order no longer needs ------------------------------


def test_cancelling_an_order_voids_its_authorisation(api: Api, shop: Shop,
                                                     app_client: TestClient) -> None:
    shop({("mitte", "SKU-1"): 10})
    order = place(api, order_body(("SKU-1", 2)))
    r = api.post(f"/v1/orders/{order['id']}/cancel", json={})
    assert r.status_code == 200, r.text
    total = 2 * LINE + SHIPPING
    [payment] = r.json()["payments"]
    assert (payment["status"], payment["voided"], payment["captured"]) == (
        "voided", f"{total / 100:.2f}", "0.00")
    psp = simulated_psp(app_client)
    assert [(c.amount_minor, c.idempotency_key) for c in psp.void_calls] == [
        (total, f"{payment['id']}:void:{total}")]
    [voided] = events(api, type="payment.voided")
    assert voided["payload"]["amount"] == f"{total / 100:.2f}"


def test_cancelling_some_items_voids_their_part_and_the_rest_is_captured(
        api: Api, shop: Shop, app_client: TestClient) -> None:
    shop({("mitte", "SKU-1"): 10, ("mitte", "SKU-2"): 10})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1)))
    socks = [i["id"] for i in order["items"] if i["sku"] == "SKU-2"]
    r = api.post(f"/v1/orders/{order['id']}/cancel", json={"items": socks})
    assert r.status_code == 200, r.text
    [payment] = r.json()["payments"]
    assert (payment["status"], payment["voided"]) == ("authorized", f"{LINE / 100:.2f}")

    [request] = requests_of(api, order["id"])
    for name in ("accept", "pick", "pack", "ship"):
        step(api, request["id"], name)
    payment = payment_of(api, order["id"])
    assert (payment["status"], payment["captured"], payment["voided"]) == (
        "captured", f"{(LINE + SHIPPING) / 100:.2f}", f"{LINE / 100:.2f}")
    psp = simulated_psp(app_client)
    assert psp.total("capture", "PSP-W-100234") + psp.total("void", "PSP-W-100234") == (
        2 * LINE + SHIPPING)


def test_cancelling_items_the_shop_already_captured_refunds_them(
        api: Api, shop: Shop, app_client: TestClient) -> None:
    shop({("mitte", "SKU-1"): 10, ("mitte", "SKU-2"): 10})
    body = order_body(("SKU-1", 1), ("SKU-2", 1))
    body["payments"][0]["status"] = "captured"
    order = place(api, body)
    socks = [i["id"] for i in order["items"] if i["sku"] == "SKU-2"]
    r = api.post(f"/v1/orders/{order['id']}/cancel", json={"items": socks})
    assert r.status_code == 200, r.text
    [payment] = r.json()["payments"]
    assert (payment["status"], payment["refunded"], payment["voided"]) == (
        "partially_refunded", f"{LINE / 100:.2f}", "0.00")
    psp = simulated_psp(app_client)
    assert [(c.amount_minor, c.idempotency_key) for c in psp.refund_calls] == [
        (LINE, f"{payment['id']}:refund:{LINE}")]
    assert [e["type"] for e in events(api, entity_id=payment["id"])] == ["payment.refunded"]


# -- what a review found, pinned ----------------------------------------------------------


def test_a_refused_capture_stays_shown_while_a_later_one_succeeds(
        api: Api, shop: Shop, engine: Engine, app_client: TestClient) -> None:
    """Two departures, two captures answered out of turn: the first refused, the second
    taken. What the first was for is still owed, so the payment says so."""
    shop({("mitte", "SKU-1"): 5, ("hamburg", "SKU-2"): 5})
    order = place(api, order_body(("SKU-1", 1), ("SKU-2", 1), external_id="W-M"))
    requests = requests_of(api, order["id"])
    assert len(requests) == 2
    psp = simulated_psp(app_client)
    psp.unreachable = True
    for request in requests:
        for name in ("accept", "pick", "pack", "ship"):
            step(api, request["id"], name)
    psp.unreachable = False
    first_key = psp.calls[0].idempotency_key
    accepted = psp.capture

    def refuse_the_first(request: PaymentRequest) -> PaymentResult:
        if request.idempotency_key == first_key:
            return PaymentResult(False, reason="declined by the issuer")
        return accepted(request)

    psp.capture = refuse_the_first  # type: ignore[method-assign]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert carry_out_due(engine, providers_of(app_client), later) == 2
    payment = payment_of(api, order["id"])
    assert (payment["status"], payment["captured"], payment["failure_reason"]) == (
        "capture_failed", f"{LINE / 100:.2f}", "declined by the issuer")
    # Asked again through the order, it is taken, and the payment is whole.
    psp.capture = accepted  # type: ignore[method-assign]
    r = api.post(f"/v1/orders/{order['id']}/capture", json={})
    assert r.status_code == 200, r.text
    payment = payment_of(api, order["id"])
    assert (payment["status"], payment["captured"], payment["failure_reason"]) == (
        "captured", payment["amount"], None)


def test_payments_are_taken_in_the_order_they_were_made(
        api: Api, shop: Shop, engine: Engine, app_client: TestClient) -> None:
    """Captures take from the first payment, a cancel gives back from the last: whatever
    order the database returns rows in after updates."""
    shop({("mitte", "SKU-1"): 10})
    body = order_body(("SKU-1", 2), external_id="W-P")
    total = 2 * LINE + SHIPPING
    body["payments"] = [dict(body["payments"][0], reference="PSP-A", amount="10.00"),
                        dict(body["payments"][0], reference="PSP-B",
                             amount=f"{(total - 1000) / 100:.2f}")]
    order = place(api, body)
    with engine.begin() as conn:
        # Rewritten rows move to the end of a PostgreSQL heap.
        conn.execute(text("UPDATE payments SET failure_reason = NULL WHERE reference = 'PSP-A'"))
    item = order["items"][0]["id"]
    r = api.post(f"/v1/orders/{order['id']}/cancel", json={"items": [item]})
    assert r.status_code == 200, r.text
    psp = simulated_psp(app_client)
    # The last payment is voided first; the first keeps its authorisation.
    assert [(c.reference, c.amount_minor) for c in psp.void_calls] == [("PSP-B", total - 1000),
                                                                       ("PSP-A", 1000)]
