"""`oms apikey list`, `oms webhooks list` and `oms webhooks deliveries` print whole ids at
80 columns: they are what `revoke` and `replay` take."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from oms import cli as cli_module
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.cli import app as cli
from oms.domain.access import Role
from oms.services import apikeys, webhooks
from tests.helpers import Api, location_body, product_body


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    if "--json" not in args:
        assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
    return result.stdout


@pytest.mark.usefixtures("cli_env")
def test_ids_are_printed_whole_in_80_columns(api: Api, engine: Engine,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module.console, "width", 80)
    for location_id in ("store-berlin-mitte", "store-hamburg-altona"):
        assert api.put(f"/v1/locations/{location_id}",
                       json=location_body()).status_code in (200, 201)
    with UnitOfWork(engine) as uow:
        apikeys.create_key(uow, Role.MANAGER, ["store-berlin-mitte", "store-hamburg-altona"],
                           "store managers of Berlin Mitte and Hamburg Altona, evening shift")
    key_ids = [json.loads(line)["id"] for line in _run("apikey", "list", "--json").splitlines()]
    assert len(key_ids) == 2
    listed = _run("apikey", "list")
    assert [k for k in key_ids if k not in listed] == []

    sub = api.post("/v1/webhooks", json={
        "url": "http://127.0.0.1:9/a/rather/long/path/to/the/erp/endpoint/for/oms/events",
        "event_types": ["order.*", "shipment.*", "product.*", "inventory.*"],
        "description": "the ERP's inbound events, forwarded to finance and the warehouse"})
    assert sub.status_code == 201, sub.text
    assert sub.json()["id"] in _run("webhooks", "list")

    assert api.put("/v1/products/SKU-1", json=product_body()).status_code in (200, 201)
    # On PostgreSQL the event waits while older transactions of the server run.
    deadline = time.monotonic() + 30
    while not webhooks.fan_out(engine):
        assert time.monotonic() < deadline, "the product's event was never fanned out"
        time.sleep(0.1)
    deliveries = _run("webhooks", "deliveries", sub.json()["id"], "--json").splitlines()
    event_ids = [json.loads(line)["event_id"] for line in deliveries]
    assert event_ids
    table = _run("webhooks", "deliveries", sub.json()["id"])
    assert [e for e in event_ids if e not in table] == []
