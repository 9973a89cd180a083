"""A store cart paid and checked out into an order, through the API."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from oms.adapters import ProviderUnavailable
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.adapters.payments.simulated import SimulatedPsp
from oms.domain.carts import TaxRate
from oms.domain.events import utcnow
from oms.services.carts import CartRules, expire_holds, price
from oms.services.checkout import link_notified
from tests.carting import ADDRESS, SHIRT_EAN, level, new_cart, notify, ok, reserved
from tests.helpers import Api, location_body, problem


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
    assert cart["balance"] == {"paid": "39.98", "pending": "0.00", "due": "0.00", "over": "0.00"}
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
    """Take a shirt now, have socks the store lacks shipped from the DC (endless aisle), and
    collect a shirt at potsdam; paid by card and cash."""
    ok(api.put("/v1/locations/dc-1", json=location_body(
        "Schoenefeld", type="dc", name="Berlin DC", capabilities=["ship"])), 201)
    ok(api.put("/v1/inventory/dc-1/SOCKS", json={"on_hand": 50, "safety_stock": 0}))
    ok(api.put("/v1/inventory/potsdam/SOCKS", json={"on_hand": 0, "safety_stock": 0}))
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
    assert (shipped["status"], shipped["location_id"]) == ("routed", "dc-1")
    assert (collected["status"], collected["location_id"], collected["pickup_location_id"]) == (
        "routed", "potsdam", "potsdam")
    assert order["shipping"]["service_level"] == "standard"
    kinds = sorted((r["location_id"], r["type"]) for r in order["fulfillment_requests"])
    assert kinds == [("dc-1", "third_party"), ("potsdam", "pickup")]
    # The shirt carried out and the shipping (24.89) are captured: the cash first (22.88),
    # the cards in turn the rest.
    assert [(p["method"], p["psp"], p["captured"]) for p in order["payments"]] == [
        ("card", "simulated", "1.00"), ("card", "simulated", "1.01"),
        ("cash", "cash", "22.88")]
    # Stock: mitte's shirt gone; potsdam keeps a shirt, the DC two socks, for the order.
    assert (level(api, "mitte", "SHIRT")["on_hand"], reserved(api, "mitte", "SHIRT")) == (1, 0)
    assert (reserved(api, "potsdam", "SHIRT"), reserved(api, "dc-1", "SOCKS")) == (1, 2)
    assert len(psp(app_client).ledger) >= 1


def test_a_declined_card_changes_nothing(api: Api, associate: Api, app_client: TestClient
                                         ) -> None:
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
    events = ok(api.get("/v1/events?type=payment.authorized&type=payment.voided"))["items"]
    assert [(e["type"], e["entity_id"], e["sequence"]) for e in events] == [
        ("payment.authorized", card["id"], 1), ("payment.voided", card["id"], 2)]


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


def test_an_approval_is_needed_granted_by_a_manager_and_voided_by_a_change(
        api: Api, associate: Api, as_role: Callable[..., Api]) -> None:
    ok(api.put("/v1/approval-rules", json={"rules": [
        {"id": "big-discount", "name": "Discounts of 20 % or more",
         "criteria": {"discount_percentage_at_least": "20"}},
        {"id": "big-card", "name": "Large card payments",
         "criteria": {"order_value_at_least": "500", "payment_methods": ["card"]}}]}))
    assert [r["id"] for r in ok(associate.get("/v1/approval-rules"))["rules"]] == [
        "big-discount", "big-card"]
    cart = new_cart(associate, customer={"email": "ada@example.com"})
    url = f"/v1/carts/{cart['id']}"
    cart = ok(associate.post(f"{url}/items", json={"sku": "SHIRT"}), 201)
    cart = ok(associate.post(f"{url}/discounts", json={
        "line_id": cart["lines"][0]["id"], "percentage": "30", "reason": "damaged"}), 201)
    assert cart["approvals_needed"] == ["big-discount"]
    pay(associate, cart["id"], "cash", "20.00")
    body = problem(associate.post(f"{url}/checkout"), 409)
    assert body["type"].endswith("approval-required")
    assert body["rules"] == ["big-discount"]

    # Not the associate, not another store's manager, not the key that built the cart.
    problem(associate.post(f"{url}/approvals", json={"rule_ids": ["big-discount"]}), 403)
    problem(as_role("manager", ["potsdam"]).post(f"{url}/approvals",
                                                 json={"rule_ids": ["big-discount"]}), 404)
    manager = as_role("manager", ["mitte"])
    problem(manager.post(f"{url}/approvals", json={"rule_ids": ["nope"]}), 422)
    cart = ok(manager.post(f"{url}/approvals", json={"rule_ids": ["big-discount"],
                                                      "decision": "deny"}), 201)
    assert cart["approvals_needed"] == ["big-discount"]
    cart = ok(manager.post(f"{url}/approvals", json={"rule_ids": ["big-discount"],
                                                      "note": "box is torn"}), 201)
    assert cart["approvals_needed"] == []
    # A change voids it.
    cart = ok(associate.patch(url, json={"customer": {"email": "ada@example.com",
                                                      "name": "Ada"}}))
    assert cart["approvals_needed"] == ["big-discount"]
    assert [a["valid"] for a in cart["approvals"]] == [False, False]
    problem(associate.post(f"{url}/checkout"), 409)
    ok(manager.post(f"{url}/approvals", json={"rule_ids": ["big-discount"]}), 201)
    order = ok(associate.post(f"{url}/checkout"), 201)
    assert order["totals"]["grand_total"] == "13.99"
    events = [e["type"] for e in ok(api.get("/v1/events?type=approval.granted"
                                            "&type=approval.denied"))["items"]]
    assert events == ["approval.denied", "approval.granted", "approval.granted"]

    own = new_cart(manager)
    problem(manager.post(f"/v1/carts/{own['id']}/approvals",
                         json={"rule_ids": ["big-discount"]}), 403)


def test_a_tax_exempt_sale(api: Api, associate: Api, rates: None,
                           as_role: Callable[..., Api]) -> None:
    ok(api.put("/v1/approval-rules", json={"rules": [
        {"id": "exempt", "name": "Tax-exempt sales", "criteria": {"tax_exempt": True}}]}))
    cart = new_cart(associate, customer={"email": "embassy@example.com"})
    url = f"/v1/carts/{cart['id']}"
    ok(associate.post(f"{url}/items", json={"sku": "SHIRT"}), 201)
    cart = ok(associate.patch(url, json={"tax_exemption": {"certificate": "DIPL-42"}}))
    # The 19 % included in 19.99 (3.19) comes off; no tax.
    assert cart["totals"] == {"subtotal": "19.99", "discount": "0.00", "shipping": "0.00",
                              "tax": "0.00", "tax_exempted": "3.19", "grand_total": "16.80"}
    assert cart["tax_exemption"] == {"certificate": "DIPL-42"}
    assert cart["approvals_needed"] == ["exempt"]
    pay(associate, cart["id"], "cash", "16.80")
    # Asked for when the cart is ready: any change after it voids an approval.
    ok(as_role("manager", ["mitte"]).post(f"{url}/approvals", json={"rule_ids": ["exempt"]}),
       201)
    order = ok(associate.post(f"{url}/checkout"), 201)
    [item] = order["items"]
    assert (item["unit_price"], item["discount"], item["tax"]) == ("19.99", "3.19", "0.00")
    assert order["totals"]["grand_total"] == "16.80"
    # Taxed again once the exemption is taken away.
    cart = new_cart(associate)
    ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 201)
    ok(associate.patch(f"/v1/carts/{cart['id']}", json={"tax_exemption": {"certificate": "X"}}))
    cart = ok(associate.patch(f"/v1/carts/{cart['id']}", json={"tax_exemption": None}))
    assert (cart["totals"]["tax"], cart["totals"]["grand_total"]) == ("3.19", "19.99")


def test_the_receipt_of_a_store_sale(api: Api, associate: Api, rates: None,
                                     as_role: Callable[..., Api]) -> None:
    due = "2031-03-02"
    ok(api.put("/v1/products/PRE-1", json={
        "name": "Next season's shoe", "barcodes": [], "tax_class": "standard",
        "price": {"amount": "80.00", "currency": "EUR"},
        "preorder": {"tentative_ship_date": due}}), 201)
    ok(api.post("/v1/inventory/future", json={"entries": [
        {"location_id": "potsdam", "sku": "PRE-1", "quantity": 5, "available_on": due}]}))
    cart = new_cart(associate, customer={"email": "ada@example.com"})
    url = f"/v1/carts/{cart['id']}"
    ok(associate.post(f"{url}/items", json={"sku": "SHIRT"}), 201)
    ok(associate.post(f"{url}/items", json={"sku": "PRE-1", "fulfillment": {"type": "ship"}}),
       201)
    ok(associate.post(f"{url}/discounts", json={"amount": "9.99", "reason": "Loyalty <gold>"}),
       201)
    ok(associate.put(f"{url}/shipping", json={"option_id": "standard:dhl", "address": ADDRESS}))
    pay(associate, cart["id"], "cash", "100.00")
    order = ok(associate.post(f"{url}/checkout"), 201)

    receipt = ok(associate.get(f"/v1/orders/{order['id']}/receipt",
                               headers={"Accept": "application/json"}))
    assert receipt["store"]["name"] == "Mitte store"
    shirt, shoe = receipt["lines"]
    assert (shirt["fulfillment"], shirt["status"]) == ("take_now", "fulfilled")
    assert (shoe["preorder"], shoe["tentative_ship_date"]) == (True, due)
    assert receipt["discounts"] == [{"reason": "Loyalty <gold>", "amount": "9.99"}]
    # 99.99 of goods, 9.99 off (spread 2.00 and 7.99): 17.99 and 72.01 at 19 % included.
    assert [(t["rate"], t["included"], t["amount"]) for t in receipt["taxes"]] == [
        ("19", True, "14.37")]
    # The shoe's 72.01 ships at 4.90 (free from 100.00), 0.78 of it tax.
    assert (receipt["shipping"]["price"], receipt["shipping"]["tax"]) == ("4.90", "0.78")
    assert receipt["payments"] == [{"method": "cash", "amount": "94.90", "change": "5.10"}]
    assert receipt["grand_total"] == "94.90"

    page = associate.get(f"/v1/orders/{order['id']}/receipt")
    assert page.headers["content-type"].startswith("text/html")
    assert "Loyalty &lt;gold&gt;" in page.text
    assert f"Pre-order: ships about {due}" in page.text
    text = associate.get(f"/v1/orders/{order['id']}/receipt",
                         headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain")
    assert "TOTAL 94.90 EUR" in text.text
    assert "Paid cash 94.90, change 5.10" in text.text
    assert "1 x Shirt (SHIRT) @ 19.99" in text.text
    # A store the order does not touch does not see it (potsdam ships the shoe: it does).
    seen = as_role("associate", ["potsdam"]).get(f"/v1/orders/{order['id']}/receipt")
    assert seen.status_code == 200
    ok(api.put("/v1/locations/hamburg", json=location_body("Hamburg")), 201)
    problem(as_role("associate", ["hamburg"]).get(f"/v1/orders/{order['id']}/receipt"), 404)


def test_gift_cards_are_issued_spent_given_back_and_refunded(api: Api, associate: Api,
                                                             app_client: TestClient) -> None:
    card = ok(api.post("/v1/gift-cards", json={"amount": "30.00", "currency": "EUR",
                                               "code": "GIFT-0001"}), 201)
    assert (card["code"], card["balance"]) == ("GIFT-0001", "30.00")
    problem(api.post("/v1/gift-cards", json={"amount": "5.00", "currency": "EUR",
                                             "code": "GIFT-0001"}), 409)
    # Stores look cards up; the retailer's systems issue them.
    problem(associate.post("/v1/gift-cards", json={"amount": "5.00", "currency": "EUR"}), 403)
    made = ok(api.post("/v1/gift-cards", json={"amount": "5.00", "currency": "EUR"}), 201)
    assert len(made["code"]) == 16
    problem(associate.get("/v1/gift-cards/NOPE-0000"), 404)

    cart = new_cart(associate, customer={"email": "ada@example.com"})
    url = f"/v1/carts/{cart['id']}"
    ok(associate.post(f"{url}/items", json={
        "sku": "SHIRT", "fulfillment": {"type": "pickup", "location_id": "potsdam"}}), 201)
    problem(associate.post(f"{url}/payments", json={"method": "gift_card", "amount": "5.00"}),
            422)
    body = problem(associate.post(f"{url}/payments", json={
        "method": "gift_card", "gift_card": made["code"], "amount": "6.00"}), 422)
    assert "holds 5.00 EUR, less than 6.00" in body["detail"]
    cart = ok(associate.post(f"{url}/payments", json={
        "method": "gift_card", "gift_card": "GIFT-0001", "amount": "15.00"}), 201)
    assert ok(associate.get("/v1/gift-cards/GIFT-0001"))["balance"] == "15.00"
    # Taken back: the balance returns; paid again with the card and cash.
    ok(associate.delete(f"{url}/payments/{cart['payments'][0]['id']}"))
    assert ok(associate.get("/v1/gift-cards/GIFT-0001"))["balance"] == "30.00"
    ok(associate.post(f"{url}/payments", json={
        "method": "gift_card", "gift_card": "GIFT-0001", "amount": "15.00"}), 201)
    pay(associate, cart["id"], "cash", "4.99")
    order = ok(associate.post(f"{url}/checkout"), 201)
    assert [(p["method"], p["status"], p["captured"]) for p in order["payments"]] == [
        ("gift_card", "captured", "15.00"), ("cash", "captured", "4.99")]
    # Cancelled: the cash goes back over the counter and the rest back onto the card.
    cancelled = ok(api.post(f"/v1/orders/{order['id']}/cancel", json={}))
    assert [p["refunded"] for p in cancelled["payments"]] == ["15.00", "4.99"]
    assert ok(associate.get("/v1/gift-cards/GIFT-0001"))["balance"] == "30.00"
    kinds = [e["type"] for e in ok(api.get("/v1/events?type=gift_card.issued"
                                           "&type=gift_card.redeemed"
                                           "&type=gift_card.restored"))["items"]
             if e["entity_id"] == "GIFT-0001"]
    assert kinds == ["gift_card.issued", "gift_card.redeemed", "gift_card.restored",
                     "gift_card.redeemed", "gift_card.restored"]
    assert psp(app_client).refund_calls == []


@pytest.mark.postgres_only
def test_two_carts_cannot_spend_one_balance_twice(api: Api, associate: Api, live_url: str,
                                                  make_key: Callable[..., str]) -> None:
    """Real concurrent clients: both carts pay 15.00 with a card holding 20.00; one does."""
    headers = {"Authorization": f"Bearer {make_key('associate', ['mitte'])}"}
    for n in range(5):
        code = f"RACE-{n:04d}"
        ok(api.post("/v1/gift-cards", json={"amount": "20.00", "currency": "EUR",
                                            "code": code}), 201)
        carts = []
        for _ in range(2):
            cart = new_cart(associate)
            ok(associate.post(f"/v1/carts/{cart['id']}/items", json={
                "sku": "SOCKS", "quantity": 4, "fulfillment": {"type": "ship"}}), 201)
            carts.append(cart["id"])
        answers: list[int] = []
        barrier = threading.Barrier(2)

        def spend(cart_id: str, code: str, barrier: threading.Barrier,
                  answers: list[int]) -> None:
            with httpx.Client(base_url=live_url, headers=headers) as client:
                barrier.wait()
                answers.append(client.post(f"/v1/carts/{cart_id}/payments", json={
                    "method": "gift_card", "gift_card": code, "amount": "15.00"}).status_code)

        threads = [threading.Thread(target=spend, args=(c, code, barrier, answers))
                   for c in carts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers) == [201, 422]
        assert ok(api.get(f"/v1/gift-cards/{code}"))["balance"] == "5.00"


def test_pay_by_link_with_a_forged_and_a_genuine_notification(
        api: Api, associate: Api, app_client: TestClient) -> None:
    cart = new_cart(associate, customer={"email": "ada@example.com"})
    url = f"/v1/carts/{cart['id']}"
    ok(associate.post(f"{url}/items", json={"sku": "SHIRT"}), 201)
    cart = ok(associate.post(f"{url}/payments", json={"method": "pay_by_link",
                                                      "amount": "19.99"}), 201)
    [link] = cart["payments"]
    assert link["status"] == "pending"
    assert link["link"]["url"].startswith("https://pay.simulated.test/")
    assert cart["balance"] == {"paid": "0.00", "pending": "19.99", "due": "19.99",
                               "over": "0.00"}
    body = problem(associate.post(f"{url}/checkout"), 409)
    assert "not paid yet" in body["detail"]

    # Forged: no signature, another secret; neither changes anything.
    forged = app_client.post("/v1/psp/simulated/notifications",
                             json={"reference": link["reference"], "status": "authorized"})
    problem(forged, 401)
    problem(notify(app_client, link["reference"], "authorized", secret="guess"), 401)
    problem(notify(app_client, "no-such-link", "authorized"), 404)
    assert ok(associate.get(url))["payments"][0]["status"] == "pending"
    # Genuine: paid; sent again, ignored.
    assert ok(notify(app_client, link["reference"], "authorized")) == {"result": "authorized"}
    assert ok(notify(app_client, link["reference"], "refused")) == {"result": "ignored"}
    cart = ok(associate.get(url))
    assert (cart["payments"][0]["status"], cart["balance"]["paid"]) == ("authorized", "19.99")
    order = ok(associate.post(f"{url}/checkout"), 201)
    [payment] = order["payments"]
    assert (payment["method"], payment["psp"], payment["reference"]) == (
        "pay_by_link", "simulated", link["reference"])
    assert payment["captured"] == "19.99"


def test_a_link_refused_or_paid_too_late_fails(associate: Api, app_client: TestClient,
                                               engine: Engine) -> None:
    cart = new_cart(associate, customer={"email": "ada@example.com"})
    url = f"/v1/carts/{cart['id']}"
    ok(associate.post(f"{url}/items", json={"sku": "SHIRT"}), 201)
    cart = ok(associate.post(f"{url}/payments", json={"method": "pay_by_link",
                                                      "amount": "10.00"}), 201)
    refused = cart["payments"][0]["reference"]
    assert ok(notify(app_client, refused, "refused")) == {"result": "failed"}
    cart = ok(associate.post(f"{url}/payments", json={"method": "pay_by_link",
                                                      "amount": "19.99"}), 201)
    late = cart["payments"][1]
    assert [p["status"] for p in cart["payments"]] == ["failed", "pending"]
    # Paid after its expiry: it fails, and the money is not taken.
    expires = dt.datetime.fromisoformat(late["link"]["expires_at"])
    with UnitOfWork(engine) as uow:
        assert link_notified(uow, app_client.app.state.providers,  # type: ignore[attr-defined]
                             "simulated", late["reference"], True,
                             expires + dt.timedelta(seconds=1)) == "failed"
    cart = ok(associate.get(url))
    assert [p["status"] for p in cart["payments"]] == ["failed", "failed"]
    assert cart["balance"]["due"] == "19.99"
    assert [e.kind for e in psp(app_client).ledger if e.reference == late["reference"]] == [
        "authorization", "void"]



class UnreachableTaxes:
    """A tax engine that cannot be reached."""

    def rate(self, country: str, region: str | None, tax_class: str) -> TaxRate | None:
        raise ProviderUnavailable("connection refused")


def test_when_the_tax_provider_fails_the_fallback_rate_applies(associate: Api,
                                                               engine: Engine) -> None:
    cart = new_cart(associate)
    ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 201)
    rules = CartRules(15, TaxRate(Decimal(10), False), taxes=lambda uow: UnreachableTaxes())
    with UnitOfWork(engine, read_only=True) as uow:
        loaded = uow.carts.load(cart["id"])
        assert loaded is not None
        pricing = price(uow, loaded, rules).pricing
    # 10 % on top of 19.99 = 1.999 → 2.00, and the cart says it is an estimate.
    assert (pricing.tax_minor, pricing.grand_total_minor, pricing.tax_estimated) == (
        200, 2199, True)
