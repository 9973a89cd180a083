"""Imports of products, locations and inventory (HTTP and CLI)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from oms.adapters.db import tables as t
from oms.api.app import create_app
from oms.cli import app as cli
from oms.settings import Settings
from tests.helpers import Api, location_body, problem, product_body

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
    # Each kind is a resource of its own: there is no import of customers to post to.
    problem(api.post("/v1/imports/customers", content=b"x"), 404)


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


# -- a file that cannot be read is refused whole --------------------------------------------

def _level(api: Api, sku: str = "A") -> int:
    return int(api.get(f"/v1/inventory/berlin/{sku}").json()["on_hand"])


def test_an_oversized_csv_field_refuses_the_file_and_applies_nothing(
        api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5, ("berlin", "B"): 5})
    # A repeated sku starts a new chunk: the good lines come before the bad one in other
    # transactions.
    text = ("location_id,sku,on_hand\nberlin,A,1\nberlin,A,1\nberlin,A,1\n"
            f"berlin,B,\"{'9' * 140_000}\"\nberlin,B,1\n")
    r = api.post("/v1/imports/inventory", content=text.encode(),
                 headers={"Content-Type": "text/csv"})
    body = problem(r, 422)
    assert "line 5: a field is longer than 131072 characters" in body["detail"]
    assert "nothing was imported" in body["detail"]
    assert body["errors"] == [{"field": "line 5",
                               "message": "a field is longer than 131072 characters"}]
    assert (_level(api, "A"), _level(api, "B")) == (5, 5)


def test_a_json_line_nested_too_deep_refuses_the_file_and_applies_nothing(
        api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    good = json.dumps({"location_id": "berlin", "sku": "A", "on_hand": 1})
    for deep in ("[" * 100_000 + "]" * 100_000, '{"a":' * 40 + "1" + "}" * 40):
        r = api.post("/v1/imports/inventory", content="\n".join([good, good, good, deep]),
                     headers={"Content-Type": "application/x-ndjson"})
        body = problem(r, 422)
        assert "line 4: JSON nested deeper than 32 levels" in body["detail"]
        assert _level(api) == 5


def test_a_number_python_will_not_convert_is_a_bad_line(api: Api,
                                                        stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    lines = ['{"location_id": "berlin", "sku": "A", "on_hand": ' + "1" * 5000 + "}",
             json.dumps({"location_id": "berlin", "sku": "A", "on_hand": 2})]
    r = api.post("/v1/imports/inventory", content="\n".join(lines),
                 headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["imported"], report["failed"]) == (1, 1)
    assert report["errors"][0]["line"] == 1
    assert "not valid JSON" in report["errors"][0]["reason"]
    assert _level(api) == 7


def test_a_csv_without_its_header_is_refused(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    r = api.post("/v1/imports/inventory", content=b"berlin,A,2\nberlin,A,3\n",
                 headers={"Content-Type": "text/csv"})
    body = problem(r, 422)
    assert "header" in body["detail"]
    assert "location_id,sku,on_hand" in body["detail"]
    assert _level(api) == 5
    missing_price = api.post("/v1/imports/products",
                             content=b"sku,name,currency\nTSH-9,Tee,EUR\n",
                             headers={"Content-Type": "text/csv"})
    body = problem(missing_price, 422)
    assert "lacks price" in body["detail"]
    assert problem(api.post("/v1/imports/inventory", content=b"",
                            headers={"Content-Type": "text/csv"}), 422)["detail"].startswith(
        "the file is empty")


def test_a_body_that_is_no_csv_nor_json_lines_is_415(api: Api,
                                                     stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    one_document = json.dumps([{"location_id": "berlin", "sku": "A", "on_hand": 1}])
    r = api.post("/v1/imports/inventory", content=one_document,
                 headers={"Content-Type": "application/json"})
    body = problem(r, 415)
    assert "text/csv" in body["detail"]
    assert "application/x-ndjson" in body["detail"]
    assert "application/json is one JSON document" in body["detail"]
    # curl's default for --data-binary
    problem(api.post("/v1/imports/inventory", content=b"location_id,sku,on_hand\nberlin,A,1\n",
                     headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    orders = problem(api.post("/v1/imports/orders", content=b"a,b\n",
                              headers={"Content-Type": "text/csv"}), 415)
    assert "JSON Lines" in orders["detail"]
    assert _level(api) == 5
    # An untyped body says its format with ?format=.
    r = api.post("/v1/imports/inventory", content=b"location_id,sku,on_hand\nberlin,A,1\n",
                 params={"format": "csv"},
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert _level(api) == 6


# -- size ------------------------------------------------------------------------------------

def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
        live_url: str, make_key: Callable[..., str]) -> None:
    key = make_key("integrator")
    host, port = live_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/imports/inventory HTTP/1.1\r\nHost: oms\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\n"
            b"Content-Type: text/csv\r\nContent-Length: 300000000\r\n\r\n"
            b"location_id,sku,on_hand\n")
        # Only the header line of 300 MB was sent: the answer comes without the rest.
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            part = conn.recv(65536)
            if not part:
                break
            answer += part
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"application/problem+json" in head
    assert b"OMS_MAX_IMPORT_BYTES" in body


def test_a_streamed_body_over_the_limit_is_413_and_applies_nothing(
        engine: Engine, settings: Settings, make_key: Callable[..., str]) -> None:
    small = settings.model_copy(update={"max_import_bytes": 2000})
    with TestClient(create_app(small, engine), raise_server_exceptions=False) as client:
        api = Api(client, make_key("admin"))
        assert api.put("/v1/locations/berlin", json=location_body()).status_code in (200, 201)
        assert api.put("/v1/products/A", json=product_body()).status_code in (200, 201)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the size shows as it streams
            yield b"location_id,sku,on_hand\n"
            for _ in range(200):
                yield b"berlin,A,1\n"

        r = api.post("/v1/imports/inventory", content=chunks(),
                     headers={"Content-Type": "text/csv"})
        assert "2000 bytes" in problem(r, 413)["detail"]
        assert api.get("/v1/inventory/berlin/A").status_code == 404
        fits = api.post("/v1/imports/inventory", content=b"location_id,sku,on_hand\nberlin,A,1\n",
                        headers={"Content-Type": "text/csv"})
        assert fits.status_code == 200, fits.text


# -- Idempotency-Key and the report of a run -------------------------------------------------

def test_a_resend_with_the_same_key_replays_and_another_file_is_422(
        api: Api, stocked: Callable[..., None], make_key: Callable[..., str],
        app_client: TestClient) -> None:
    stocked({("berlin", "A"): 5})
    text = b"location_id,sku,on_hand\nberlin,A,2\nberlin,GHOST,1\n"
    key = {"Content-Type": "text/csv", "Idempotency-Key": "counts-2026-11-30"}
    first = api.post("/v1/imports/inventory", content=text, headers=key)
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["status"] == "completed"
    assert (report["imported"], report["failed"], report["applied_through_line"]) == (1, 1, 3)
    again = api.post("/v1/imports/inventory", content=text, headers=key)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == report
    assert _level(api) == 7

    other = api.post("/v1/imports/inventory", content=text + b"berlin,A,1\n", headers=key)
    assert problem(other, 422)["type"].endswith(":idempotency-key-reused")
    full = api.post("/v1/imports/inventory", content=text, headers=key, params={"mode": "full"})
    problem(full, 422)
    assert _level(api) == 7

    # Keys belong to the API key that sent them.
    another = Api(app_client, make_key("integrator"))
    assert another.post("/v1/imports/inventory", content=text, headers=key).status_code == 200
    assert _level(api) == 9

    run = api.get(f"/v1/imports/{report['import_id']}")
    assert run.status_code == 200
    stored = run.json()
    assert {k: stored[k] for k in report if k != "resumed_after_line"} == {
        k: v for k, v in report.items() if k != "resumed_after_line"}
    assert stored["finished_at"] is not None
    problem(api.get("/v1/imports/no-such-import"), 404)


def test_an_idempotency_key_must_be_short_and_printable(api: Api) -> None:
    r = api.post("/v1/imports/inventory", content=b"location_id,sku,on_hand\n",
                 headers={"Content-Type": "text/csv", "Idempotency-Key": "k" * 256})
    problem(r, 400)


# -- the command line ------------------------------------------------------------------------

@pytest.mark.usefixtures("cli_env")
def test_cli_import_says_in_one_line_why_a_file_cannot_be_imported(
        tmp_path: Path, api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5})
    files = {
        "missing.csv": None,
        "folder.csv": "dir",
        "huge-field.csv": f"location_id,sku,on_hand\nberlin,A,1\nberlin,A,\"{'9' * 140_000}\"\n",
        "deep.jsonl": '{"location_id": "berlin", "sku": "A", "on_hand": 1}\n'
                      + "[" * 100_000 + "]" * 100_000 + "\n",
        "latin1.csv": b"location_id,sku,on_hand\nberlin,A,1\nberl\xefn,A,1\n",
        "no-header.csv": "berlin,A,1\n",
    }
    reasons = {
        "missing.csv": "No such file",
        "folder.csv": "Is a directory",
        "huge-field.csv": "line 3: a field is longer than 131072 characters",
        "deep.jsonl": "line 2: JSON nested deeper than 32 levels",
        "latin1.csv": "not UTF-8 text: line 3",
        "no-header.csv": "header naming the columns location_id,sku,on_hand",
    }
    for name, content in files.items():
        path = tmp_path / name
        if content == "dir":
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        result = CliRunner().invoke(cli, ["import", "inventory", str(path)])
        assert result.exit_code == 2, (name, result.output)
        assert isinstance(result.exception, SystemExit), (name, result.exception)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, (name, result.output)
        line = lines[0]
        assert line.startswith("error:"), (name, line)
        assert reasons[name] in line, (name, line)
    assert _level(api) == 5


def test_cli_help_says_that_imported_orders_are_live() -> None:
    result = CliRunner().invoke(cli, ["import", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "oms import orders places LIVE orders" in text
    assert "stock reserved" in text
    assert '"historical": true' in text


@pytest.mark.usefixtures("cli_env")
def test_cli_import_stopped_by_ctrl_c_is_finished_with_resume(
        tmp_path: Path, api: Api, engine: Engine, stocked: Callable[..., None]) -> None:
    skus = [f"S{n:02d}" for n in range(40)]
    stocked({("berlin", sku): 0 for sku in skus})
    path = tmp_path / "counts.csv"
    lines = 3000  # one chunk per line for the process stopped, 40 for the resume
    path.write_text("location_id,sku,on_hand\n"
                    + "".join(f"berlin,{skus[n % 40]},1\n" for n in range(lines)))
    oms = Path(sys.executable).parent / "oms"
    env = {**os.environ, "OMS_IMPORT_CHUNK_SIZE": "1"}
    running = subprocess.Popen([str(oms), "import", "inventory", str(path)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as conn:
            steps = conn.execute(select(t.import_runs.c.steps_applied)
                                 .where(t.import_runs.c.api_key_id.is_(None))).scalar()
        if steps is not None and steps >= 30:
            break
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline, "the import did not start"
        time.sleep(0.005)
    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=60)
    assert running.returncode == 130, out + err
    stopped = re.search(r"stopped after line (\d+) \((\d+) rows applied\).*--resume (\S+)",
                        " ".join(err.split()))
    assert stopped is not None, err
    through, applied, import_id = int(stopped[1]), int(stopped[2]), stopped[3]
    assert applied == through - 1 >= 30
    assert sum(_level(api, sku) for sku in skus) == applied

    resumed = CliRunner().invoke(cli, ["import", "inventory", str(path), "--resume", import_id])
    assert resumed.exit_code == 0, resumed.output + err
    assert f"resumed after line {through}" in resumed.output
    assert f"{lines} imported" in resumed.output
    assert {_level(api, sku) for sku in skus} == {lines // 40}
    again = CliRunner().invoke(cli, ["import", "inventory", str(path), "--resume", import_id])
    assert again.exit_code == 0
    assert sum(_level(api, sku) for sku in skus) == lines


def test_rows_without_safety_stock_keep_it(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 5, ("berlin", "B"): 5}, safety_stock=2)
    report = _csv(api, "inventory", "location_id,sku,on_hand,safety_stock\nberlin,A,7,\n"
                  "berlin,B,8,4\n", mode="full")
    assert (report["imported"], report["failed"]) == (2, 0)
    a, b = (api.get(f"/v1/inventory/berlin/{sku}").json() for sku in ("A", "B"))
    assert (a["on_hand"], a["safety_stock"]) == (7, 2)
    assert (b["on_hand"], b["safety_stock"]) == (8, 4)


def test_each_kind_documents_the_files_it_is_read_from(app_client: TestClient) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]
    typed = {kind: set(paths[f"/v1/imports/{kind}"]["post"]["requestBody"]["content"])
             - {"application/octet-stream"}
             for kind in ("products", "locations", "inventory", "orders")}
    assert typed["orders"] == {"application/x-ndjson", "application/jsonl",
                               "application/x-jsonlines"}
    assert typed["products"] == typed["locations"] == typed["inventory"] == (
        typed["orders"] | {"text/csv"})


@pytest.mark.parametrize("kind", ["inventory", "orders"])
def test_an_empty_json_lines_file_is_refused(api: Api, kind: str) -> None:
    # The document says the file is required: no body at all is no file.
    body = problem(api.post(f"/v1/imports/{kind}", content=b"",
                            headers={"Content-Type": "application/x-ndjson"}), 422)
    assert body["detail"].startswith("the file is empty")
    assert api.get("/v1/events", params={"type": "order.created"}).json()["items"] == []
