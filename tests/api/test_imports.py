"""Imports of products, locations and inventory (HTTP and CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from oms.cli import app as cli
from tests.helpers import Api

PRODUCTS_CSV = """sku,name,price,currency,tax_class,barcodes,preorder_ship_date
TSH-1,Tee one,19.90,EUR,standard,ean13:4006381333931,
TSH-2,Tee two,9.5,EUR,,ean13:4006381333932,
TSH-3,Tee three,12.00,EUR,reduced,upca:036000291452;code128:TEE-3,2099-05-01
TSH-4,Tee four,twelve,EUR,,,
TSH-5,Tee five,5.00,EUR,,ean13:4006381333931,
"""


def _csv(api: Api, kind: str, text: str, **params: str) -> dict[str, object]:
    r = api.post(f"/v1/imports/{kind}", content=text.encode(), params=params,
                 headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_product_import_reports_bad_lines_and_keeps_the_good(api: Api) -> None:
    report = _csv(api, "products", PRODUCTS_CSV)
    assert (report["rows"], report["imported"], report["failed"]) == (5, 2, 3)
    errors = {e["line"]: e["reason"] for e in report["errors"]}  # type: ignore[attr-defined]
    assert sorted(errors) == [3, 5, 6]
    assert "check digit" in errors[3]
    assert "price.amount" in errors[5]
    assert errors[6] == "barcode 4006381333931 belongs to product TSH-1"
    third = api.get("/v1/products/TSH-3").json()
    assert third["preorder"] == {"tentative_ship_date": "2099-05-01"}
    assert [b["type"] for b in third["barcodes"]] == ["upca", "code128"]
    assert third["tax_class"] == "reduced"
    for refused in ("TSH-2", "TSH-4", "TSH-5"):
        assert api.get(f"/v1/products/{refused}").status_code == 404


LOCATIONS_JSONL = "\n".join([
    json.dumps({"id": "store-berlin", "type": "store", "name": "Berlin",
                "address": {"line1": "Alexanderplatz 1", "city": "Berlin",
                            "postal_code": "10178", "country": "DE", "lat": 52.52,
                            "lon": 13.41},
                "capabilities": ["ship", "pickup"], "priority": 10,
                "timezone": "Europe/Berlin"}),
    "{not json",
    json.dumps({"id": "dc-kassel", "type": "dc", "name": "Kassel DC",
                "address": {"line1": "Industriestr. 5", "city": "Kassel",
                            "postal_code": "34123", "country": "DE", "lat": 51.31,
                            "lon": 9.48}, "capabilities": ["ship"], "priority": 5}),
    json.dumps({"id": "bad", "type": "warehouse", "name": "?"}),
    "",
])


def test_location_import_from_json_lines(api: Api) -> None:
    r = api.post("/v1/imports/locations", content=LOCATIONS_JSONL.encode(),
                 headers={"Content-Type": "application/x-ndjson"})
    report = r.json()
    assert (report["imported"], report["failed"]) == (2, 2)
    assert [e["line"] for e in report["errors"]] == [2, 4]
    assert "not valid JSON" in report["errors"][0]["reason"]
    assert "type" in report["errors"][1]["reason"]
    assert api.get("/v1/locations/dc-kassel").json()["type"] == "dc"


def test_inventory_delta_then_full(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5, ("berlin", "B"): 4, ("berlin", "C"): 3, ("munich", "A"): 7})
    delta = _csv(api, "inventory", "location_id,sku,on_hand\nberlin,A,2\nberlin,B,-9\n"
                 "berlin,C,-1\nberlin,GHOST,1\n", mode="delta")
    assert (delta["imported"], delta["failed"]) == (2, 2)
    assert api.get("/v1/inventory/berlin/A").json()["on_hand"] == 7
    assert api.get("/v1/inventory/berlin/B").json()["on_hand"] == 4
    assert api.get("/v1/inventory/berlin/C").json()["on_hand"] == 2

    full = _csv(api, "inventory", "location_id,sku,on_hand,safety_stock\nberlin,A,1,1\n"
                "berlin,C,x,0\n", mode="full")
    assert (full["imported"], full["failed"], full["zeroed"]) == (1, 1, 1)
    # B was missing from berlin's snapshot: it goes to zero. C's line was bad: left alone.
    level = api.get("/v1/inventory/berlin/A").json()
    assert (level["on_hand"], level["safety_stock"]) == (1, 1)
    assert api.get("/v1/inventory/berlin/B").json()["on_hand"] == 0
    assert api.get("/v1/inventory/berlin/C").json()["on_hand"] == 2
    # munich was not in the file at all: untouched.
    assert api.get("/v1/inventory/munich/A").json()["on_hand"] == 7


def test_a_repeated_line_applies_in_file_order(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 0})
    report = _csv(api, "inventory", "location_id,sku,on_hand\nberlin,A,5\nberlin,A,2\n",
                  mode="delta")
    assert report["imported"] == 2
    assert api.get("/v1/inventory/berlin/A").json()["on_hand"] == 7


def test_import_refuses_non_utf8_and_unknown_kinds(api: Api) -> None:
    r = api.post("/v1/imports/inventory", content=b"\xff\xfe\x00bad",
                 headers={"Content-Type": "text/csv"})
    assert r.status_code == 422
    assert "UTF-8" in r.json()["detail"]
    assert api.post("/v1/imports/customers", content=b"x").status_code == 422


def test_associates_cannot_import(as_role: Callable[..., Api], stocked: Callable[..., None]
                                  ) -> None:
    stocked({("berlin", "A"): 1})
    associate = as_role("associate", ["berlin"])
    r = associate.post("/v1/imports/products", content=PRODUCTS_CSV.encode())
    assert r.status_code == 403


@pytest.mark.usefixtures("cli_env")
def test_cli_import_prints_a_summary_and_fails_on_bad_rows(tmp_path: Path, api: Api) -> None:
    path = tmp_path / "products.csv"
    path.write_text(PRODUCTS_CSV)
    result = CliRunner().invoke(cli, ["import", "products", str(path)])
    assert result.exit_code == 1
    assert "5 rows" in result.output
    assert "2 imported" in result.output
    assert "line 3:" in result.output
    assert "line 6:" in result.output
    as_json = CliRunner().invoke(cli, ["import", "products", str(path), "--json"])
    assert json.loads(as_json.stdout)["imported"] == 2


@pytest.mark.usefixtures("cli_env")
def test_cli_makes_lists_and_revokes_keys(app_client: TestClient) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["apikey", "create", "--role", "integrator", "--name", "erp"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    assert app_client.get("/v1/locations", headers=headers).status_code == 200
    listing = runner.invoke(cli, ["apikey", "list", "--json"])
    assert key not in listing.stdout
    [erp] = [k for k in map(json.loads, listing.stdout.splitlines()) if k["name"] == "erp"]
    key_id = erp["id"]
    assert runner.invoke(cli, ["apikey", "revoke", key_id]).exit_code == 0
    assert app_client.get("/v1/locations", headers=headers).status_code == 401
    refused = runner.invoke(cli, ["apikey", "create", "--role", "manager"])
    assert refused.exit_code == 2


def test_rows_without_safety_stock_keep_it(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5, ("berlin", "B"): 5}, safety_stock=2)
    report = _csv(api, "inventory", "location_id,sku,on_hand,safety_stock\nberlin,A,7,\n"
                  "berlin,B,8,4\n", mode="full")
    assert (report["imported"], report["failed"]) == (2, 0)
    a, b = (api.get(f"/v1/inventory/berlin/{sku}").json() for sku in ("A", "B"))
    assert (a["on_hand"], a["safety_stock"]) == (7, 2)
    assert (b["on_hand"], b["safety_stock"]) == (8, 4)
