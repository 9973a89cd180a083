"""Working fulfilment requests through the API, and reading back stock and payments, for
the fulfilment tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from oms.adapters.payments.simulated import SimulatedPsp
from oms.adapters.registry import Providers
from tests.helpers import Api


def requests_of(api: Api, order_id: str) -> list[dict[str, Any]]:
    r = api.get("/v1/fulfillment-requests", params={"order_id": order_id})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def step(api: Api, request_id: str, name: str, body: dict[str, Any] | None = None,
         status: int = 200) -> dict[str, Any]:
    r = api.post(f"/v1/fulfillment-requests/{request_id}/{name}", json=body or {})
    assert r.status_code == status, r.text
    result: dict[str, Any] = r.json()
    return result


def item_statuses(api: Api, order_id: str) -> list[str]:
    r = api.get(f"/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    return [i["status"] for i in r.json()["items"]]


def request_of(api: Api, request_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/fulfillment-requests/{request_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def level(api: Api, location_id: str = "mitte", sku: str = "SKU-1") -> tuple[int, int, int]:
    """(on_hand, reserved, atp) of a stock level."""
    r = api.get(f"/v1/inventory/{location_id}/{sku}")
    assert r.status_code == 200, r.text
    body = r.json()
    return body["on_hand"], body["reserved"], body["atp"]


def providers_of(app_client: TestClient) -> Providers:
    providers: Providers = app_client.app.state.providers  # type: ignore[attr-defined]
    return providers


def simulated_psp(app_client: TestClient) -> SimulatedPsp:
    """The PSP adapter the app uses: the simulated one, whose ledger and calls tests read."""
    psp = app_client.app.state.providers.psp("adyen")  # type: ignore[attr-defined]
    assert isinstance(psp, SimulatedPsp)
    return psp
