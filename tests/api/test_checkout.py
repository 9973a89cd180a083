"""A store cart paid and checked out into an order, through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from oms.adapters.payments.simulated import SimulatedPsp
from oms.domain.events import utcnow
from oms.services.carts import expire_holds
from tests.carting import ADDRESS, SHIRT_EAN, level, new_cart, ok, reserved
from tests.helpers import Api, problem


def psp(client: TestClient) -> SimulatedPsp:
    found: SimulatedPsp = client.app.state.providers.psp("simulated")  # type: ignore[attr-defined]
    return found


def pay(staff: Api, cart_id: str, method: str, amount: str, status: int = 201) -> Any:
    return ok(staff.post(f"/v1/carts/{cart_id}/payments",
                         json={"method": method, "amount": amount}), status)


@pytest.fixture
def rates(api: Api, store: None) -> None:
    ok(api.put("/v1/tax/rates", json={"rates": [
        {"country": "DE", "tax_class": "standard", "rate": "19", "prices_include_tax": True},
        {"country": "DE", "tax_class": "reduced", "rate": "7", "prices_include_tax": True}]}))
    ok(api.put("/v1/shipping/rates", json={"rates": [
        {"country": "DE", "service_level": "standard", "carrier": "dhl", "price": "4.90",
         "free_above": "100.00", "transit_days": 2, "cutoff": "16:00"}]}))


def test_scan_pay_cash_and_carry_out(api: Api, associate: Api, rates: None) -> None:
    cart = new_cart(associate, customer={"email": "ada@example.com", "name": "Ada"})
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"barcode": SHIRT_EAN}), 201)
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"barcode": SHIRT_EAN}))
    assert cart["totals"]["grand_total"] == "39.98"
    # Not paid yet.
    body = problem(associate.post(f"/v1/carts/{cart['id']}/checkout"), 422)
    assert "39.98 EUR still to pay" in body["detail"]
    # 50.00 handed over: 39.98 paid, 10.02 back.
    cart = pay(associate, cart["id"], "cash", "50.00")
    [cash] = cart["payments"]
    assert (cash["amount"], cash["tendered"], cash["change"]) == ("39.98", "50.00", "10.02")
    assert cart["balance"] == {"paid": "39.98", "due": "0.00", "over": "0.00"}
    problem(associate.post(f"/v1/carts/{cart['id']}/payments",
                           json={"method": "cash", "amount": "1.00"}), 422)

    order = ok(associate.post(f"/v1/carts/{cart['id']}/checkout"), 201)
    assert (order["channel"], order["status"], order["external_id"]) == (
        "store", "fulfilled", cart["id"])
    assert order["sold_at"]["location_id"] == "mitte"
    assert [(i["status"], i["location_id"]) for i in order["items"]] == [("fulfilled", "mitte")]
    assert order["customer"]["email"] == "ada@example.com"
    assert [(p["method"], p["status"], p["captured"]) for p in order["payments"]] == [
        ("cash", "captured", "39.98")]
    assert order["fulfillment_requests"] == []
    assert "order.created" in [e["type"] for e in order["events"]]
    # The shirts left the shelf.
    shelf = level(api, "mitte", "SHIRT")
    assert (shelf["on_hand"], shelf["reserved"]) == (0, 0)
    cart = ok(associate.get(f"/v1/carts/{cart['id']}"))
    assert (cart["status"], cart["order_id"]) == ("checked_out", order["id"])
    # The store sees the order it sold; the cart is done.
    assert ok(associate.get(f"/v1/orders/{order['id']}"))["id"] == order["id"]
    body = problem(associate.post(f"/v1/carts/{cart['id']}/checkout"), 409)
    assert order["id"] in body["detail"]
    problem(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 409)
    events = ok(api.get("/v1/events?type=cart.checked_out"))["items"]
    assert [e["payload"]["order_id"] for e in events] == [order["id"]]


def test_a_mixed_cart_is_one_order(api: Api, associate: Api, rates: None,
                                   app_client: TestClient) -> None:
    """Take a shirt now, have socks the store lacks shipped (endless aisle), and collect a
    shirt at potsdam; paid by card and cash."""
    cart = new_cart(associate, customer={"email": "grace@example.com"})
    url = f"/v1/carts/{cart['id']}"
    ok(associate.post(f"{url}/items", json={"sku": "SHIRT"}), 201)
    ok(associate.post(f"{url}/items", json={"sku": "SOCKS", "quantity": 2,
                                            "fulfillment": {"type": "ship"}}), 201)
    cart = ok(associate.post(f"{url}/items", json={
        "sku": "SHIRT", "fulfillment": {"type": "pickup", "location_id": "potsdam"}}), 201)
    pay(associate, cart["id"], "card", "1.00")
    # A ship line needs its delivery chosen.
    body = problem(associate.post(f"{url}/checkout"), 422)
    assert "choose how the ship lines are delivered" in body["detail"]
    cart = ok(associate.put(f"{url}/shipping", json={"option_id": "standard:dhl",
                                                     "address": ADDRESS}))
    # 19.99 + 9.00 + 19.99 + 4.90 shipping.
    assert cart["totals"]["grand_total"] == "53.88"
    assert cart["balance"]["due"] == "52.88"
    # The card pays at most what is due; cash the rest.
    problem(associate.post(f"{url}/payments", json={"method": "card", "amount": "60.00"}), 422)
    pay(associate, cart["id"], "card", "30.00")
    cart = pay(associate, cart["id"], "cash", "30.00")
    assert cart["payments"][-1]["change"] == "7.12"

    order = ok(associate.post(f"{url}/checkout"), 201)
    taken, shipped, collected = order["items"]
    assert (taken["status"], taken["location_id"]) == ("fulfilled", "mitte")
    assert (shipped["status"], shipped["location_id"]) == ("routed", "potsdam")
    assert (collected["status"], collected["location_id"], collected["pickup_location_id"]) == (
        "routed", "potsdam", "potsdam")
    assert order["shipping"]["service_level"] == "standard"
    kinds = sorted((r["location_id"], r["type"]) for r in order["fulfillment_requests"])
    assert kinds == [("potsdam", "pickup"), ("potsdam", "ship_from_store")]
    # The shirt carried out and the shipping (24.89) are captured: the cash first (22.88),
    # the cards in turn the rest.
    assert [(p["method"], p["psp"], p["captured"]) for p in order["payments"]] == [
        ("card", "simulated", "1.00"), ("card", "simulated", "1.01"),
        ("cash", "cash", "22.88")]
    # Stock: mitte's shirt gone; potsdam keeps a shirt and two socks for the order.
    assert (level(api, "mitte", "SHIRT")["on_hand"], reserved(api, "mitte", "SHIRT")) == (1, 0)
    assert (reserved(api, "potsdam", "SHIRT"), reserved(api, "potsdam", "SOCKS")) == (1, 2)
    assert len(psp(app_client).ledger) >= 1


def test_a_declined_card_changes_nothing(associate: Api, app_client: TestClient) -> None:
    cart = new_cart(associate, customer={"email": "ada@example.com"})
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 201)
    psp(app_client).declined_amounts.add(1999)
    body = problem(associate.post(f"/v1/carts/{cart['id']}/payments",
                                  json={"method": "card", "amount": "19.99"}), 402)
    assert "declined" in body["detail"]
    after = ok(associate.get(f"/v1/carts/{cart['id']}"))
    assert after["payments"] == []
    assert after["version"] == cart["version"]
    # Another card goes through; taken back, its authorisation is voided.
    psp(app_client).declined_amounts.clear()
    cart = pay(associate, cart["id"], "card", "19.99")
    [card] = cart["payments"]
    cart = ok(associate.delete(f"/v1/carts/{cart['id']}/payments/{card['id']}"))
    assert cart["payments"] == []
    assert [e.kind for e in psp(app_client).ledger if e.reference == card["reference"]] == [
        "authorization", "void"]


def test_checkout_holds_again_what_lapsed_or_names_what_is_gone(
        api: Api, associate: Api, engine: Engine) -> None:
    cart = new_cart(associate, customer={"email": "ada@example.com"})
    url = f"/v1/carts/{cart['id']}"
    ok(associate.post(f"{url}/items", json={"sku": "SHIRT"}), 201)
    cart = pay(associate, cart["id"], "cash", "19.99")
    assert expire_holds(engine, utcnow().replace(year=utcnow().year + 1)) == 1
    # Still on the shelf: held again at checkout.
    order = ok(associate.post(f"{url}/checkout"), 201)
    assert order["items"][0]["status"] == "fulfilled"

    cart = new_cart(associate, customer={"email": "ada@example.com"})
    url = f"/v1/carts/{cart['id']}"
    cart = ok(associate.post(f"{url}/items", json={"sku": "SHIRT"}), 201)
    pay(associate, cart["id"], "cash", "19.99")
    assert expire_holds(engine, utcnow().replace(year=utcnow().year + 1)) == 1
    ok(api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "mitte", "sku": "SHIRT", "delta": -1, "reason": "sold"}]}))
    body = problem(associate.post(f"{url}/checkout"), 409)
    assert body["errors"][0]["field"] == f"lines.{cart['lines'][0]['id']}"
    assert "only 0 of SHIRT can be held at mitte" in body["detail"]


def test_checkout_needs_an_email_and_answers_a_retry_with_the_same_order(
        associate: Api) -> None:
    cart = new_cart(associate)
    url = f"/v1/carts/{cart['id']}"
    problem(associate.post(f"{url}/checkout"), 422)
    ok(associate.post(f"{url}/items", json={"sku": "SHIRT"}), 201)
    pay(associate, cart["id"], "cash", "20.00")
    body = problem(associate.post(f"{url}/checkout"), 422)
    assert body["errors"][0]["field"] == "customer.email"
    ok(associate.patch(url, json={"customer": {"email": "ada@example.com"}}))
    key = {"Idempotency-Key": "checkout-1"}
    first = associate.post(f"{url}/checkout", headers=key)
    again = associate.post(f"{url}/checkout", headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert first.headers["location"] == f"/v1/orders/{first.json()['id']}"


def test_only_staff_of_the_store_check_its_carts_out(associate: Api,
                                                     as_role: Callable[..., Api]) -> None:
    cart = new_cart(associate, customer={"email": "ada@example.com"})
    problem(as_role("associate", ["potsdam"]).post(f"/v1/carts/{cart['id']}/checkout"), 404)
    problem(as_role("integrator").post(f"/v1/carts/{cart['id']}/checkout"), 403)


def test_cash_is_handed_back_and_cards_voided_not_sent_to_the_psp(
        api: Api, associate: Api, app_client: TestClient) -> None:
    cart = new_cart(associate, customer={"email": "ada@example.com"})
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "sku": "SHIRT", "fulfillment": {"type": "pickup", "location_id": "potsdam"}}), 201)
    pay(associate, cart["id"], "cash", "20.00")
    order = ok(associate.post(f"/v1/carts/{cart['id']}/checkout"), 201)
    assert reserved(api, "potsdam", "SHIRT") == 1
    # Cancelled before it is collected: the cash goes back over the counter, not to a PSP.
    cancelled = ok(api.post(f"/v1/orders/{order['id']}/cancel", json={}))
    [cash] = cancelled["payments"]
    assert (cash["psp"], cash["refunded"], cash["status"]) == ("cash", "19.99", "refunded")
    assert psp(app_client).refund_calls == []
    assert reserved(api, "potsdam", "SHIRT") == 0

    # A cart dropped with a card on it: the authorisation is voided.
    cart = new_cart(associate)
    ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 201)
    [card] = pay(associate, cart["id"], "card", "19.99")["payments"]
    assert associate.delete(f"/v1/carts/{cart['id']}").status_code == 204
    assert [e.kind for e in psp(app_client).ledger if e.reference == card["reference"]] == [
        "authorization", "void"]
