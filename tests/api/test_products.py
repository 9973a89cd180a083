"""The product catalog over HTTP: create, replace, read, barcodes, money, lists."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest

from tests.helpers import Api, error_fields, problem, product_body

EAN13 = "4006381333931"
UPCA = "036000291452"
EAN8 = "96385074"


def preorder_body() -> dict[str, Any]:
    return product_body(
        "Trail shoe",
        barcodes=[{"type": "ean13", "value": EAN13}, {"type": "code128", "value": "TS-42/blue"}],
        price={"amount": "19.90", "currency": "EUR"},
        preorder={"tentative_ship_date": "2099-05-01"},
    )


def with_barcode(kind: str, value: str) -> dict[str, Any]:
    return product_body(barcodes=[{"type": kind, "value": value}])


def test_put_creates_then_replaces(api: Api) -> None:
    created = api.put("/v1/products/SHOE-1", json=preorder_body())
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1

    replaced = api.put("/v1/products/SHOE-1", json=product_body("Trail shoe v2"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2
    assert replaced.json()["name"] == "Trail shoe v2"
    # A replacement, not a merge: what the new body leaves out is gone.
    assert replaced.json()["barcodes"] == []
    assert replaced.json()["preorder"] is None


def test_get_returns_what_put_answered(api: Api) -> None:
    put = api.put("/v1/products/SHOE-1", json=preorder_body())
    got = api.get("/v1/products/SHOE-1")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert got.json() == put.json()
    body = got.json()
    assert body["sku"] == "SHOE-1"
    assert body["price"] == {"amount": "19.90", "currency": "EUR"}
    assert body["barcodes"] == [{"type": "ean13", "value": EAN13},
                                {"type": "code128", "value": "TS-42/blue"}]
    assert body["preorder"] == {"tentative_ship_date": "2099-05-01"}
    assert body["tax_class"] == "standard"


def test_amounts_are_shown_with_the_currency_decimal_places(api: Api) -> None:
    api.put("/v1/products/A", json=product_body(price={"amount": "5", "currency": "EUR"}))
    api.put("/v1/products/B", json=product_body(price={"amount": "1500", "currency": "JPY"}))
    api.put("/v1/products/C", json=product_body(price={"amount": "1.5", "currency": "KWD"}))
    assert api.get("/v1/products/A").json()["price"] == {"amount": "5.00", "currency": "EUR"}
    assert api.get("/v1/products/B").json()["price"] == {"amount": "1500", "currency": "JPY"}
    assert api.get("/v1/products/C").json()["price"] == {"amount": "1.500", "currency": "KWD"}


def test_a_wrong_ean13_check_digit_is_refused(api: Api) -> None:
    r = api.put("/v1/products/A", json=with_barcode("ean13", "4006381333932"))
    body = problem(r, 422)
    assert body["type"] == "urn:oms:problem:validation-error"
    assert error_fields(body) == ["barcodes.0.value"]
    assert "check digit" in body["errors"][0]["message"]
    problem(api.get("/v1/products/A"), 404)


@pytest.mark.parametrize(("kind", "value"), [
    ("ean13", EAN13),
    ("upca", UPCA),
    ("ean8", EAN8),
    ("code128", "ABC-123 xyz/~!"),
    ("code128", " ~"),
])
def test_well_formed_barcodes_are_accepted(api: Api, kind: str, value: str) -> None:
    r = api.put("/v1/products/A", json=with_barcode(kind, value))
    assert r.status_code == 201, r.text
    stored = api.get("/v1/products/A").json()["barcodes"]
    # Surrounding blanks are trimmed like every other text field.
    assert stored == [{"type": kind, "value": value.strip()}]


@pytest.mark.parametrize(("kind", "value"), [
    ("upca", "036000291453"),   # wrong check digit
    ("upca", "36000291452"),    # 11 digits
    ("upca", EAN13),            # an EAN-13 is not a UPC-A
    ("ean8", "96385075"),       # wrong check digit
    ("ean8", "9638507"),        # 7 digits
    ("ean8", "9638507A"),
    ("ean13", "400638133393"),  # 12 digits
    ("code128", "caf\u00e9"),  # not ASCII
    ("code128", "tab\there"),   # not printable
    ("code128", "X" * 49),      # longer than a label holds
    ("ean42", EAN13),           # no such symbology
])
def test_malformed_barcodes_are_refused(api: Api, kind: str, value: str) -> None:
    body = problem(api.put("/v1/products/A", json=with_barcode(kind, value)), 422)
    assert error_fields(body)[0].startswith("barcodes.0.")
    problem(api.get("/v1/products/A"), 404)


def test_a_number_as_price_amount_is_refused(api: Api) -> None:
    r = api.put("/v1/products/A", json=product_body(price={"amount": 19.9, "currency": "EUR"}))
    assert error_fields(problem(r, 422)) == ["price.amount"]


@pytest.mark.parametrize("amount", ["19,90", "1e3", "", "19.", ".5", "NaN", "12.1234567"])
def test_amounts_that_are_not_plain_decimals_are_refused(api: Api, amount: str) -> None:
    r = api.put("/v1/products/A", json=product_body(price={"amount": amount, "currency": "EUR"}))
    assert error_fields(problem(r, 422)) == ["price.amount"]


@pytest.mark.parametrize("currency", ["XYZ", "eur", "EURO", "", "€"])
def test_an_unknown_currency_is_refused(api: Api, currency: str) -> None:
    r = api.put("/v1/products/A", json=product_body(price={"amount": "1.00", "currency": currency}))
    assert error_fields(problem(r, 422)) == ["price.currency"]


@pytest.mark.parametrize(("amount", "currency"), [
    ("19.999", "EUR"),
    ("100.5", "JPY"),
    ("1.0001", "KWD"),
])
def test_more_decimals_than_the_currency_has_are_refused(
    api: Api, amount: str, currency: str
) -> None:
    r = api.put("/v1/products/A",
                json=product_body(price={"amount": amount, "currency": currency}))
    body = problem(r, 422)
    assert error_fields(body) == ["price"]
    assert "decimal places" in body["detail"]
    problem(api.get("/v1/products/A"), 404)


def test_trailing_zeros_beyond_the_currency_decimals_are_the_same_amount(api: Api) -> None:
    r = api.put("/v1/products/A", json=product_body(price={"amount": "1500.00", "currency": "JPY"}))
    assert r.status_code == 201, r.text
    assert r.json()["price"] == {"amount": "1500", "currency": "JPY"}


def test_a_negative_price_is_refused(api: Api) -> None:
    r = api.put("/v1/products/A", json=product_body(price={"amount": "-1.00", "currency": "EUR"}))
    assert error_fields(problem(r, 422)) == ["price"]


def test_the_largest_amount_the_format_allows_is_stored_exactly(api: Api) -> None:
    # 15 integer digits in thousandths (the most decimals money has) still fit in 64 bits.
    for largest in ({"amount": "999999999999999.99", "currency": "EUR"},
                    {"amount": "999999999999999.999", "currency": "KWD"}):
        r = api.put("/v1/products/A", json=product_body(price=largest))
        assert r.status_code in (200, 201), r.text
        assert api.get("/v1/products/A").json()["price"] == largest
    # In ten-thousandths they would not; but only units of account (CLF) have four decimals.
    price = {"amount": "999999999999999.9999", "currency": "CLF"}
    body = problem(api.put("/v1/products/A", json=product_body(price=price)), 422)
    assert error_fields(body) == ["price.currency"]


def test_a_barcode_listed_twice_is_refused(api: Api) -> None:
    barcodes = [{"type": "ean13", "value": EAN13}, {"type": "ean13", "value": EAN13}]
    body = problem(api.put("/v1/products/A", json=product_body(barcodes=barcodes)), 422)
    assert error_fields(body) == ["barcodes"]


def test_a_barcode_held_by_another_product_is_a_conflict(api: Api) -> None:
    assert api.put("/v1/products/FIRST", json=product_body(barcode=EAN13)).status_code == 201
    r = api.put("/v1/products/SECOND", json=product_body(
        barcodes=[{"type": "ean8", "value": EAN8}, {"type": "ean13", "value": EAN13}]))
    body = problem(r, 409)
    assert body["type"] == "urn:oms:problem:conflict"
    assert error_fields(body) == ["barcodes.1.value"]
    assert "FIRST" in body["errors"][0]["message"]
    # Nothing was written: not the product, not its other barcode.
    problem(api.get("/v1/products/SECOND"), 404)
    assert api.get("/v1/products", params={"barcode": EAN8}).json()["items"] == []
    assert api.get("/v1/products/FIRST").json()["barcodes"] == [
        {"type": "ean13", "value": EAN13}]


def test_a_product_may_keep_its_own_barcode_and_give_one_up(api: Api) -> None:
    api.put("/v1/products/FIRST", json=product_body(barcode=EAN13))
    assert api.put("/v1/products/FIRST", json=product_body(barcode=EAN13)).status_code == 200
    assert api.put("/v1/products/FIRST", json=product_body()).status_code == 200
    r = api.put("/v1/products/SECOND", json=product_body(barcode=EAN13))
    assert r.status_code == 201, r.text


def test_list_by_barcode_finds_exactly_that_product(api: Api) -> None:
    api.put("/v1/products/A", json=product_body(barcode=EAN13))
    api.put("/v1/products/B", json=with_barcode("upca", UPCA))
    api.put("/v1/products/C", json=product_body())
    r = api.get("/v1/products", params={"barcode": UPCA})
    assert r.status_code == 200
    assert [p["sku"] for p in r.json()["items"]] == ["B"]
    assert r.json()["next_cursor"] is None
    assert api.get("/v1/products", params={"barcode": "0000000000000"}).json()["items"] == []


def test_list_by_text_matches_name_case_insensitively_and_sku(api: Api) -> None:
    api.put("/v1/products/TEE-RED", json=product_body("Cotton T-shirt"))
    api.put("/v1/products/HOOD-1", json=product_body("Warm Hoodie"))
    api.put("/v1/products/SOCK-3", json=product_body("Running socks"))

    def skus(q: str) -> list[str]:
        r = api.get("/v1/products", params={"q": q})
        assert r.status_code == 200, r.text
        return [p["sku"] for p in r.json()["items"]]

    assert skus("HOODIE") == ["HOOD-1"]
    assert skus("cotton t") == ["TEE-RED"]
    assert skus("tee-red") == ["TEE-RED"]
    assert skus("sock") == ["SOCK-3"]
    assert skus("n") == ["SOCK-3", "TEE-RED"]
    # LIKE wildcards in the text are matched literally.
    assert skus("%") == []
    assert skus("_") == []


def test_pagination_visits_every_product_once_in_sku_order(api: Api) -> None:
    skus = [f"P-{i:02d}" for i in range(1, 8)]
    for sku in random.Random(7).sample(skus, len(skus)):
        assert api.put(f"/v1/products/{sku}", json=product_body(sku)).status_code == 201
    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = api.get("/v1/products", params=params)
        assert r.status_code == 200, r.text
        seen += [p["sku"] for p in r.json()["items"]]
        sizes.append(len(r.json()["items"]))
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == skus
    assert sizes == [3, 3, 1]


def test_a_full_last_page_has_no_next_cursor(api: Api) -> None:
    for sku in ("A", "B", "C"):
        api.put(f"/v1/products/{sku}", json=product_body())
    first = api.get("/v1/products", params={"limit": 2}).json()
    last = api.get("/v1/products", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [p["sku"] for p in last["items"]] == ["C"]
    assert last["next_cursor"] is None


def forged(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize("cursor", [
    "not a cursor!",
    "%%%",
    "AAAA",
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    forged({"sku": "A"}),
    forged(12),
    forged("\u0000"),
    forged("has space"),
])
def test_a_malformed_cursor_is_refused(api: Api, cursor: str) -> None:
    api.put("/v1/products/A", json=product_body())
    body = problem(api.get("/v1/products", params={"cursor": cursor}), 422)
    assert error_fields(body) == ["cursor"]


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
def test_a_limit_out_of_range_is_refused(api: Api, limit: str) -> None:
    body = problem(api.get("/v1/products", params={"limit": limit}), 422)
    assert error_fields(body) == ["query.limit"]


@pytest.mark.parametrize("path", ["/v1/products/a%2Fb", "/v1/products/a/b"])
def test_an_sku_with_a_slash_is_not_found(api: Api, path: str) -> None:
    problem(api.get(path), 404)
    problem(api.put(path, json=product_body()), 404)


@pytest.mark.parametrize("sku", ["a b", "-lead", "x" * 65, "caf\u00e9", "semi;colon"])
def test_an_sku_outside_the_code_pattern_is_refused(api: Api, sku: str) -> None:
    assert error_fields(problem(api.get(f"/v1/products/{sku}"), 422)) == ["path.sku"]
    assert error_fields(problem(api.put(f"/v1/products/{sku}", json=product_body()), 422)) == [
        "path.sku"]


def test_an_unknown_sku_is_not_found(api: Api) -> None:
    body = problem(api.get("/v1/products/GHOST"), 404)
    assert body["type"] == "urn:oms:problem:not-found"
    assert "GHOST" in body["detail"]


def test_unknown_fields_are_refused(api: Api) -> None:
    body = problem(api.put("/v1/products/A", json=product_body(colour="red")), 422)
    assert error_fields(body) == ["colour"]


def test_products_appear_in_the_event_feed(api: Api) -> None:
    api.put("/v1/products/A", json=product_body())
    api.put("/v1/products/A", json=product_body("Renamed"))
    events = api.get("/v1/events", params={"type": "product.*"}).json()["items"]
    assert [(e["entity_id"], e["sequence"], e["payload"]["name"]) for e in events] == [
        ("A", 1, "Running shirt"), ("A", 2, "Renamed")]


def test_price_digits_must_be_ascii(api: Api) -> None:
    body = product_body(price={"amount": "١٩.٩٠", "currency": "EUR"})
    r = api.put("/v1/products/ARABIC", json=body)
    assert r.status_code == 422
    assert "price.amount" in error_fields(r.json())
