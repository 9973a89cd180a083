"""A store's cart through the API: scanning, holds, prices, discounts and taxes."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from oms.adapters.db import tables as t
from oms.api.app import create_app
from oms.domain.events import utcnow
from oms.services.carts import expire_holds
from oms.settings import Settings
from tests.carting import ADDRESS, SHIRT_EAN, SOCKS_UPCE, new_cart, ok, reserved
from tests.helpers import Api, error_fields, location_body, problem, product_body


def test_scanning_builds_lines_that_hold_their_stock(api: Api, associate: Api) -> None:
    cart = new_cart(associate, customer={"email": "ada@example.com"})
    assert cart["lines"] == []
    assert cart["status"] == "open"
    assert cart["totals"]["grand_total"] == "0.00"

    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"barcode": SHIRT_EAN}), 201)
    again = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"barcode": SHIRT_EAN}))
    [line] = again["lines"]
    assert (line["sku"], line["quantity"], line["barcode"]) == ("SHIRT", 2, SHIRT_EAN)
    assert line["fulfillment"] == {"type": "take_now", "location_id": None}
    assert line["hold"]["status"] == "held"
    assert line["hold"]["location_id"] == "mitte"
    assert (line["unit_price"], line["subtotal"]) == ("19.99", "39.98")
    assert again["holds_expire_at"] is not None
    # Held stock is reserved: the store's ATP of the shirt is gone.
    assert reserved(api, "mitte", "SHIRT") == 2
    assert ok(associate.get(f"/v1/carts/{cart['id']}")) == again

    # A third is not there: refused, and the line stays as it was.
    body = problem(associate.post(f"/v1/carts/{cart['id']}/items",
                                  json={"barcode": SHIRT_EAN}), 422)
    assert "only 2 of SHIRT can be held at mitte; the line wants 3" in body["detail"]
    assert ok(associate.get(f"/v1/carts/{cart['id']}"))["lines"][0]["quantity"] == 2

    # Fewer: the hold follows; the line removed: the stock comes back.
    cart = ok(associate.patch(f"/v1/carts/{cart['id']}/items/{line['id']}",
                              json={"quantity": 1}))
    assert reserved(api, "mitte", "SHIRT") == 1
    cart = ok(associate.delete(f"/v1/carts/{cart['id']}/items/{line['id']}"))
    assert cart["lines"] == []
    assert cart["holds_expire_at"] is None
    assert reserved(api, "mitte", "SHIRT") == 0


def test_endless_aisle_ship_and_pickup_lines(api: Api, associate: Api) -> None:
    cart = new_cart(associate)
    # The store has no socks: carrying them out now is refused, naming the store.
    body = problem(associate.post(f"/v1/carts/{cart['id']}/items",
                                  json={"sku": "SOCKS"}), 422)
    assert "at mitte" in body["detail"]
    # Delivered: nothing is held until checkout routes it.
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "sku": "SOCKS", "quantity": 3, "fulfillment": {"type": "ship"}}), 201)
    # Collected at potsdam: held there.
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "sku": "SHIRT", "fulfillment": {"type": "pickup", "location_id": "potsdam"}}), 201)
    ship, pickup = cart["lines"]
    assert ship["hold"] is None
    assert ship["fulfillment"] == {"type": "ship", "location_id": None}
    assert pickup["hold"]["status"] == "held"
    assert pickup["hold"]["location_id"] == "potsdam"
    assert pickup["fulfillment"] == {"type": "pickup", "location_id": "potsdam"}
    assert (reserved(api, "potsdam", "SOCKS"), reserved(api, "potsdam", "SHIRT")) == (0, 1)
    assert reserved(api, "mitte", "SHIRT") == 0

    # Moved to take-now at mitte: the hold moves with it.
    ok(associate.patch(f"/v1/carts/{cart['id']}/items/{pickup['id']}",
                       json={"fulfillment": {"type": "take_now"}}))
    assert (reserved(api, "potsdam", "SHIRT"), reserved(api, "mitte", "SHIRT")) == (0, 1)
    # Dropping the cart gives it back.
    assert associate.delete(f"/v1/carts/{cart['id']}").status_code == 204
    assert reserved(api, "mitte", "SHIRT") == 0
    problem(associate.get(f"/v1/carts/{cart['id']}"), 404)


def test_a_pickup_line_names_a_store_that_offers_pickup(api: Api, associate: Api) -> None:
    cart = new_cart(associate)
    body = problem(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "sku": "SHIRT", "fulfillment": {"type": "pickup"}}), 422)
    assert "fulfillment" in " ".join(error_fields(body))
    ok(api.put("/v1/locations/dc-1", json=location_body("Schoenefeld", type="dc",
                                                         capabilities=["ship"])), 201)
    body = problem(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "sku": "SHIRT", "fulfillment": {"type": "pickup", "location_id": "dc-1"}}), 422)
    assert "does not offer pickup" in body["detail"]
    problem(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "sku": "SHIRT", "fulfillment": {"type": "pickup", "location_id": "nowhere"}}), 404)


def test_scans_of_unknown_and_disabled_barcodes(api: Api, associate: Api) -> None:
    assert ok(api.get("/v1/settings/barcode-types"))["default"] is True
    cart = new_cart(associate)
    problem(associate.post(f"/v1/carts/{cart['id']}/items", json={"barcode": "5901234123457"}),
            404)
    # Every type is accepted until the retailer chooses.
    ok(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "barcode": SOCKS_UPCE, "fulfillment": {"type": "ship"}}), 201)

    chosen = ok(api.put("/v1/settings/barcode-types", json={"types": ["ean13", "code128"]}))
    assert chosen == {"types": ["ean13", "code128"], "default": False}
    problem(associate.put("/v1/settings/barcode-types", json={"types": ["upce"]}), 403)
    body = problem(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "barcode": SOCKS_UPCE, "fulfillment": {"type": "ship"}}), 422)
    assert "upce barcodes are not accepted" in body["detail"]
    assert ok(associate.get(f"/v1/carts/{cart['id']}"))["lines"][0]["quantity"] == 1
    ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"barcode": SHIRT_EAN}), 201)


def test_the_gs1_barcode_types_check_their_digits(api: Api) -> None:
    for kind, good, bad in (("upce", "01234565", "01234564"),
                            ("gtin14", "00012345600012", "00012345600013"),
                            ("ean8", "96385074", "96385075"),
                            ("upca", "042100005264", "042100005265")):
        ok(api.put(f"/v1/products/P-{kind}", json=product_body(
            barcodes=[{"type": kind, "value": good}])), 201)
        body = problem(api.put(f"/v1/products/Q-{kind}", json=product_body(
            barcodes=[{"type": kind, "value": bad}])), 422)
        assert "check digit" in body["errors"][0]["message"], body


def test_who_may_work_on_a_cart(api: Api, associate: Api, as_role: Callable[..., Api]) -> None:
    cart = new_cart(associate)
    potsdam = as_role("associate", ["potsdam"])
    # Another store's cart does not exist for its staff.
    problem(potsdam.get(f"/v1/carts/{cart['id']}"), 404)
    problem(potsdam.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 404)
    assert ok(potsdam.get("/v1/carts"))["items"] == []
    # Nobody opens a cart at a store not theirs; an integrator sells in no store.
    problem(potsdam.post("/v1/carts", json={"location_id": "mitte", "currency": "EUR"}), 403)
    problem(as_role("integrator").post("/v1/carts", json={"location_id": "mitte",
                                                           "currency": "EUR"}), 403)
    manager = as_role("manager", ["mitte"])
    assert [c["id"] for c in ok(manager.get("/v1/carts?location_id=mitte"))["items"]] == [
        cart["id"]]
    assert ok(api.get(f"/v1/carts/{cart['id']}"))["id"] == cart["id"]
    problem(associate.post("/v1/carts", json={"location_id": "nowhere", "currency": "EUR"}),
            403)
    problem(api.post("/v1/carts", json={"location_id": "nowhere", "currency": "EUR"}), 404)


def test_carts_are_listed_newest_first_page_by_page(associate: Api) -> None:
    made = [new_cart(associate)["id"] for _ in range(3)]
    first = ok(associate.get("/v1/carts?limit=2"))
    second = ok(associate.get(f"/v1/carts?limit=2&cursor={first['next_cursor']}"))
    assert [c["id"] for c in first["items"] + second["items"]] == made[::-1]
    assert second["next_cursor"] is None


def test_prices_discounts_and_tax_included(api: Api, associate: Api) -> None:
    ok(api.put("/v1/tax/rates", json={"rates": [
        {"country": "DE", "tax_class": "standard", "rate": "19", "prices_include_tax": True},
        {"country": "DE", "tax_class": "reduced", "rate": "7", "prices_include_tax": True},
    ]}))
    cart = new_cart(associate)
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT",
                                                                     "quantity": 2}), 201)
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "sku": "SOCKS", "quantity": 3, "fulfillment": {"type": "ship"}}), 201)
    shirt, socks = cart["lines"]
    # 39.98 gross, 19 % included: 39.98 x 19 / 119 = 6.383… → 6.38; socks 13.50 at 7 %: 0.883…
    assert (shirt["tax"], socks["tax"]) == ("6.38", "0.88")
    assert cart["totals"] == {"subtotal": "53.48", "discount": "0.00", "shipping": "0.00",
                              "tax": "7.26", "tax_exempted": "0.00",
                              "grand_total": "53.48"}
    assert cart["tax_estimated"] is False

    # 30 % off the shirts: 11.994 → 11.99; then 5.00 off the cart, spread by what is left
    # (27.99 and 13.50): 3.37 and 1.63.
    ok(associate.post(f"/v1/carts/{cart['id']}/discounts", json={
        "line_id": shirt["id"], "percentage": "30", "reason": "damaged box"}), 201)
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/discounts", json={
        "amount": "5.00", "reason": "loyalty"}), 201)
    shirt, socks = cart["lines"]
    assert (shirt["discount"], socks["discount"]) == ("15.36", "1.63")
    assert [d["taken"] for d in cart["discounts"]] == ["11.99", "5.00"]
    # Tax on what is paid: 24.62 x 19/119 = 3.930… and 11.87 x 7/107 = 0.776…
    assert (shirt["tax"], socks["tax"]) == ("3.93", "0.78")
    assert cart["totals"] == {"subtotal": "53.48", "discount": "16.99", "shipping": "0.00",
                              "tax": "4.71", "tax_exempted": "0.00",
                              "grand_total": "36.49"}

    # A price override with its reason; the catalog price stays in view.
    cart = ok(associate.patch(f"/v1/carts/{cart['id']}/items/{socks['id']}", json={
        "price_override": {"price": "3.00", "reason": "price match"}}))
    socks = cart["lines"][1]
    assert (socks["catalog_price"], socks["unit_price"], socks["subtotal"]) == (
        "4.50", "3.00", "9.00")
    assert socks["price_override"] == {"price": "3.00", "reason": "price match"}
    cart = ok(associate.patch(f"/v1/carts/{cart['id']}/items/{socks['id']}",
                              json={"price_override": None}))
    assert cart["lines"][1]["unit_price"] == "4.50"

    # A discount goes with its line; an unknown one is 404.
    discount_id = cart["discounts"][0]["id"]
    problem(associate.delete(f"/v1/carts/{cart['id']}/discounts/nope"), 404)
    cart = ok(associate.delete(f"/v1/carts/{cart['id']}/discounts/{discount_id}"))
    assert [d["reason"] for d in cart["discounts"]] == ["loyalty"]
    cart = ok(associate.delete(f"/v1/carts/{cart['id']}/items/{shirt['id']}"))
    assert cart["totals"]["discount"] == "5.00"


def test_tax_excluded_rounds_half_up_per_line(api: Api, as_role: Callable[..., Api]) -> None:
    us = location_body("New York", address={
        "line1": "5th Ave 1", "city": "New York", "postal_code": "10001", "country": "US",
        "region": "NY", "lat": 40.75, "lon": -73.99}, timezone="America/New_York")
    ok(api.put("/v1/locations/nyc", json=us), 201)
    ok(api.put("/v1/products/CAP", json=product_body(
        "Cap", price={"amount": "10.00", "currency": "USD"})), 201)
    ok(api.put("/v1/inventory/nyc/CAP", json={"on_hand": 10, "safety_stock": 0}))
    ok(api.put("/v1/tax/rates", json={"rates": [
        {"country": "US", "tax_class": "standard", "rate": "4", "prices_include_tax": False},
        {"country": "US", "region": "NY", "tax_class": "standard", "rate": "8.875",
         "prices_include_tax": False},
    ]}))
    rates = ok(api.get("/v1/tax/rates"))["rates"]
    assert [(r["region"], r["rate"]) for r in rates] == [(None, "4"), ("NY", "8.875")]
    staff = as_role("associate", ["nyc"])
    cart = new_cart(staff, "nyc", currency="USD")
    cart = ok(staff.post(f"/v1/carts/{cart['id']}/items", json={"sku": "CAP"}), 201)
    # The region's rate: 10.00 x 8.875 % = 0.8875 → 0.89, on top of the price.
    assert cart["totals"] == {"subtotal": "10.00", "discount": "0.00", "shipping": "0.00",
                              "tax": "0.89", "tax_exempted": "0.00",
                              "grand_total": "10.89"}
    # A EUR product cannot go in a USD cart.
    problem(staff.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 404)
    ok(api.put("/v1/products/SHIRT", json=product_body("Shirt")), 201)
    body = problem(staff.post(f"/v1/carts/{cart['id']}/items", json={
        "sku": "SHIRT", "fulfillment": {"type": "ship"}}), 422)
    assert "priced in EUR" in body["detail"]


def test_without_a_rate_the_fallback_applies_and_the_tax_is_estimated(
        engine: Engine, settings: Settings, store: None, make_key: Callable[..., str]) -> None:
    fallback = settings.model_copy(update={"tax_fallback_rate": 20,
                                           "tax_fallback_prices_include_tax": True})
    with TestClient(create_app(fallback, engine)) as client:
        staff = Api(client, make_key("associate", ["mitte"]))
        cart = new_cart(staff)
        cart = ok(staff.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 201)
    # 19.99 x 20 / 120 = 3.331… → 3.33, and the cart says it is an estimate.
    assert cart["lines"][0]["tax"] == "3.33"
    assert cart["tax_estimated"] is True
    assert cart["totals"]["grand_total"] == "19.99"


def test_bad_discounts_are_refused_and_change_nothing(associate: Api) -> None:
    cart = new_cart(associate)
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 201)
    url = f"/v1/carts/{cart['id']}/discounts"
    problem(associate.post(url, json={"percentage": "10", "amount": "1.00", "reason": "x"}), 422)
    problem(associate.post(url, json={"percentage": "120", "reason": "x"}), 422)
    problem(associate.post(url, json={"amount": "0", "reason": "x"}), 422)
    problem(associate.post(url, json={"amount": "1.001", "reason": "x"}), 422)
    problem(associate.post(url, json={"line_id": "nope", "amount": "1", "reason": "x"}), 404)
    # More than the cart: everything, and no more.
    cart = ok(associate.post(url, json={"amount": "50.00", "reason": "gift"}), 201)
    assert cart["totals"]["discount"] == "19.99"
    assert cart["totals"]["grand_total"] == "0.00"
    assert len(ok(associate.get(f"/v1/carts/{cart['id']}"))["discounts"]) == 1


def test_a_hold_that_runs_out_gives_its_stock_back(api: Api, associate: Api,
                                                   engine: Engine) -> None:
    cart = new_cart(associate)
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT",
                                                                     "quantity": 2}), 201)
    expires = dt.datetime.fromisoformat(cart["holds_expire_at"])
    assert dt.timedelta(minutes=14) < expires - utcnow() <= dt.timedelta(minutes=15)
    assert expire_holds(engine, utcnow()) == 0
    assert expire_holds(engine, expires + dt.timedelta(seconds=1)) == 1
    assert reserved(api, "mitte", "SHIRT") == 0
    line = ok(associate.get(f"/v1/carts/{cart['id']}"))["lines"][0]
    assert line["hold"] == {"status": "lapsed", "location_id": "mitte", "quantity": 0,
                            "expires_at": None}
    events = ok(api.get("/v1/events?type=inventory.changed"))["items"]
    assert events[-1]["payload"]["reason"] == "hold_expired"

    # Another sale takes one meanwhile; the next change holds again what is left.
    ok(api.post("/v1/inventory/adjustments", json={"adjustments": [
        {"location_id": "mitte", "sku": "SHIRT", "delta": -1, "reason": "sold"}]}))
    cart = ok(associate.patch(f"/v1/carts/{cart['id']}", json={
        "customer": {"email": "ada@example.com", "name": "Ada"}}))
    assert cart["customer"] == {"email": "ada@example.com", "name": "Ada", "phone": None}
    assert cart["lines"][0]["hold"]["status"] == "lapsed"
    ok(associate.patch(f"/v1/carts/{cart['id']}/items/{line['id']}", json={"quantity": 1}))
    assert reserved(api, "mitte", "SHIRT") == 1
    with engine.connect() as conn:
        statuses = sorted(conn.execute(select(t.reservations.c.status)).scalars())
    assert statuses == ["active", "released"]


@pytest.mark.postgres_only
def test_two_carts_racing_for_the_last_unit(api: Api, store: None, live_url: str,
                                            make_key: Callable[..., str]) -> None:
    """Real concurrent clients: one cart holds the last shirt at mitte, the other is refused
    and gets no line."""
    ok(api.put("/v1/inventory/mitte/SHIRT", json={"on_hand": 1, "safety_stock": 0}))
    headers = {"Authorization": f"Bearer {make_key('associate', ['mitte'])}"}
    rounds = 8
    for _ in range(rounds):
        with httpx.Client(base_url=live_url, headers=headers) as client:
            carts = [client.post("/v1/carts", json={"location_id": "mitte",
                                                    "currency": "EUR"}).json()
                     for _ in range(2)]
        answers: list[httpx.Response] = []
        barrier = threading.Barrier(2)

        def scan(cart_id: str, barrier: threading.Barrier,
                 answers: list[httpx.Response]) -> None:
            with httpx.Client(base_url=live_url, headers=headers) as client:
                barrier.wait()
                answers.append(client.post(f"/v1/carts/{cart_id}/items",
                                           json={"barcode": SHIRT_EAN}))

        threads = [threading.Thread(target=scan, args=(c["id"], barrier, answers))
                   for c in carts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers) == [201, 422]
        lines = [len(ok(api.get(f"/v1/carts/{c['id']}"))["lines"]) for c in carts]
        assert sorted(lines) == [0, 1]
        assert reserved(api, "mitte", "SHIRT") == 1
        winner = next(c for c, n in zip(carts, lines, strict=True) if n)
        assert api.delete(f"/v1/carts/{winner['id']}").status_code == 204


def test_shipping_is_quoted_from_the_rates_and_free_above_a_threshold(
        api: Api, associate: Api) -> None:
    ok(api.put("/v1/tax/rates", json={"rates": [
        {"country": "DE", "tax_class": "standard", "rate": "19", "prices_include_tax": True},
        {"country": "DE", "tax_class": "reduced", "rate": "7", "prices_include_tax": True}]}))
    problem(associate.put("/v1/shipping/rates", json={"rates": []}), 403)
    rates = ok(api.put("/v1/shipping/rates", json={"rates": [
        {"country": "DE", "service_level": "standard", "carrier": "dhl", "price": "4.90",
         "free_above": "100.00", "transit_days": 2, "cutoff": "16:00"},
        {"country": "DE", "service_level": "express", "carrier": "ups", "price": "9.90",
         "transit_days": 1, "cutoff": "12:00"}]}))["rates"]
    assert [(r["service_level"], r["currency"], r["free_above"]) for r in rates] == [
        ("express", "EUR", None), ("standard", "EUR", "100.00")]
    cart = new_cart(associate)
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={
        "sku": "SOCKS", "quantity": 3, "fulfillment": {"type": "ship"}}), 201)
    # Without an address nor a country there is nothing to quote.
    problem(associate.get(f"/v1/carts/{cart['id']}/shipping-options"), 422)
    quoted = ok(associate.get(f"/v1/carts/{cart['id']}/shipping-options?country=DE"))
    options = {o["id"]: o for o in quoted["options"]}
    assert {k: o["price"] for k, o in options.items()} == {"express:ups": "9.90",
                                                           "standard:dhl": "4.90"}
    for o in options.values():
        assert dt.date.fromisoformat(o["promised_delivery_date"]) > dt.date.fromisoformat(
            o["ships_on"])
    assert ok(associate.get(f"/v1/carts/{cart['id']}/shipping-options?country=FR"))[
        "options"] == []
    body = problem(associate.put(f"/v1/carts/{cart['id']}/shipping", json={
        "option_id": "standard:dhl", "address": {**ADDRESS, "country": "FR"}}), 422)
    assert "offered: none" in body["detail"]

    cart = ok(associate.put(f"/v1/carts/{cart['id']}/shipping", json={
        "option_id": "standard:dhl", "address": ADDRESS}))
    shipping = cart["shipping"]
    assert (shipping["carrier"], shipping["price"], shipping["offered"]) == ("dhl", "4.90", True)
    assert shipping["address"]["city"] == "Berlin"
    assert shipping["promised_delivery_date"] == options["standard:dhl"][
        "promised_delivery_date"]
    # 13.50 of socks at 7 % (0.88) and 4.90 of shipping at 19 % (0.78), both included.
    assert cart["totals"] == {"subtotal": "13.50", "discount": "0.00", "shipping": "4.90",
                              "tax": "1.66", "tax_exempted": "0.00",
                              "grand_total": "18.40"}
    # Goods worth 100.00 ship free.
    cart = ok(associate.patch(f"/v1/carts/{cart['id']}/items/{cart['lines'][0]['id']}",
                              json={"quantity": 23}))
    assert cart["totals"]["subtotal"] == "103.50"
    assert cart["totals"]["shipping"] == "0.00"
    assert cart["shipping"]["price"] == "0.00"
    # The rate withdrawn: the choice stays, no longer offered, and costs nothing yet.
    ok(api.put("/v1/shipping/rates", json={"rates": []}))
    cart = ok(associate.get(f"/v1/carts/{cart['id']}"))
    assert cart["shipping"]["offered"] is False
    assert cart["shipping"]["price"] is None


def test_a_rate_in_another_currency_than_the_countrys(api: Api) -> None:
    body = problem(api.put("/v1/shipping/rates", json={"rates": [
        {"country": "DE", "service_level": "standard", "carrier": "dhl", "price": "4.901",
         "transit_days": 2, "cutoff": "16:00"}]}), 422)
    assert "rates.0.price" in error_fields(body)
    rates = ok(api.put("/v1/shipping/rates", json={"rates": [
        {"country": "CH", "service_level": "standard", "carrier": "post", "price": "9.00",
         "currency": "EUR", "transit_days": 3, "cutoff": "15:30"},
        {"country": "CH", "service_level": "standard", "carrier": "post", "price": "9.00",
         "transit_days": 3, "cutoff": "15:30"}]}))["rates"]
    assert [r["currency"] for r in rates] == ["CHF", "EUR"]
    problem(api.put("/v1/shipping/rates", json={"rates": [
        {"country": "DE", "service_level": "pickup", "carrier": "x", "price": "0",
         "transit_days": 0, "cutoff": "16:00"}]}), 422)


def test_a_cart_dropped_after_its_hold_ran_out(api: Api, associate: Api, engine: Engine
                                               ) -> None:
    cart = new_cart(associate)
    cart = ok(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 201)
    expires = dt.datetime.fromisoformat(cart["holds_expire_at"])
    assert expire_holds(engine, expires + dt.timedelta(seconds=1)) == 1
    assert ok(associate.get(f"/v1/carts/{cart['id']}"))["holds_expire_at"] is None
    assert associate.delete(f"/v1/carts/{cart['id']}").status_code == 204
    assert reserved(api, "mitte", "SHIRT") == 0


def test_cart_discounts_do_not_depend_on_their_order(associate: Api) -> None:
    totals = []
    for first, second in (({"amount": "5.00"}, {"percentage": "50"}),
                          ({"percentage": "50"}, {"amount": "5.00"})):
        cart = new_cart(associate)
        ok(associate.post(f"/v1/carts/{cart['id']}/items", json={
            "sku": "SOCKS", "quantity": 4, "fulfillment": {"type": "ship"}}), 201)
        for discount in (first, second):
            cart = ok(associate.post(f"/v1/carts/{cart['id']}/discounts",
                                     json={**discount, "reason": "sale"}), 201)
        totals.append(cart["totals"])
    # 18.00 of socks: half of it and 5.00, each of the whole.
    assert totals[0] == totals[1]
    assert totals[0]["discount"] == "14.00"


def test_carts_are_opened_at_active_stores_only(api: Api, associate: Api) -> None:
    ok(api.put("/v1/locations/dc-1", json=location_body("Schoenefeld", type="dc",
                                                         capabilities=["ship"])), 201)
    body = problem(api.post("/v1/carts", json={"location_id": "dc-1", "currency": "EUR"}), 422)
    assert "no active store" in body["detail"]
    cart = new_cart(associate)
    ok(api.put("/v1/locations/mitte", json=location_body("Mitte", active=False)))
    body = problem(associate.post(f"/v1/carts/{cart['id']}/items", json={"sku": "SHIRT"}), 422)
    assert "inactive" in body["detail"]


def test_tax_rates_read_back_as_they_were_given(api: Api) -> None:
    rates = ok(api.put("/v1/tax/rates", json={"rates": [
        {"country": "DE", "tax_class": "standard", "rate": "20", "prices_include_tax": True},
        {"country": "DE", "tax_class": "reduced", "rate": "7.50", "prices_include_tax": True},
    ]}))["rates"]
    assert [r["rate"] for r in rates] == ["7.5", "20"]
    assert ok(api.put("/v1/tax/rates", json={"rates": rates}))["rates"] == rates
