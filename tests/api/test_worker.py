"""`oms worker` routes orders on hold again once stock arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from oms.cli import app as cli
from oms.services.orders import reroute_waiting
from tests.helpers import Api


def _pre_routed(n: int) -> dict[str, Any]:
    return {
        "channel": "web", "external_id": f"W-{n}", "placed_at": f"2026-11-2{n}T10:00:00Z",
        "currency": "EUR", "customer": {"email": "ada@example.com"},
        "items": [{"sku": "A", "quantity": 2, "unit_price": "10.00"}],
        "shipping": {"option": {"service_level": "standard", "price": "0"},
                     "address": {"line1": "Unter den Linden 5", "city": "Berlin",
                                 "postal_code": "10117", "country": "DE"}},
        "payments": [{"method": "card", "amount": "20.00", "status": "authorized"}],
        "totals": {"grand_total": "20.00"},
        "fulfillment_location_id": "berlin",
    }


def test_waiting_orders_are_routed_oldest_first(api: Api, engine: Engine,
                                                stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 0, ("munich", "A"): 50})
    older = api.post("/v1/orders", json=_pre_routed(1)).json()
    newer = api.post("/v1/orders", json=_pre_routed(2)).json()
    assert older["status"] == newer["status"] == "on_hold"
    assert reroute_waiting(engine) == 2
    assert api.get(f"/v1/orders/{older['id']}").json()["status"] == "on_hold"

    api.put("/v1/inventory/berlin/A", json={"on_hand": 3})
    reroute_waiting(engine)
    first = api.get(f"/v1/orders/{older['id']}").json()
    second = api.get(f"/v1/orders/{newer['id']}").json()
    assert first["status"] == "routed"
    assert first["items"][0]["location_id"] == "berlin"
    assert second["status"] == "on_hold"  # one unit left: not enough for two
    runs = api.get(f"/v1/orders/{older['id']}/routing-decisions").json()["items"]
    # The first pass found nothing new: it left no run behind.
    assert [r["trigger"] for r in runs] == ["placement", "worker"]


@pytest.mark.usefixtures("cli_env")
def test_worker_command_makes_one_pass(api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 0})
    order = api.post("/v1/orders", json=_pre_routed(1)).json()
    api.put("/v1/inventory/berlin/A", json={"on_hand": 2})
    result = CliRunner().invoke(cli, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert api.get(f"/v1/orders/{order['id']}").json()["status"] == "routed"
