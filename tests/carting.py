"""Helpers of the store cart and checkout tests: a small shop of two Berlin stores."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import PSP_SECRET
from tests.helpers import Api, location_body, product_body

SHIRT_EAN = "4006381333931"
#: A UPC-E (zero-suppressed UPC-A 042100005264).
SOCKS_UPCE = "04252614"
ADDRESS = {"line1": "Unter den Linden 5", "city": "Berlin", "postal_code": "10117",
           "country": "DE"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def stock_two_stores(api: Api) -> None:
    """Two stores in Berlin, a shirt (EAN-13) and socks (UPC-E); the shirt is on the shelf at
    mitte, 2 of them, and 5 at potsdam; socks only at potsdam."""
    for location_id in ("mitte", "potsdam"):
        ok(api.put(f"/v1/locations/{location_id}", json=location_body(location_id.title())),
           201)
    ok(api.put("/v1/products/SHIRT", json=product_body("Shirt", barcode=SHIRT_EAN,
                                                       price={"amount": "19.99",
                                                              "currency": "EUR"})), 201)
    ok(api.put("/v1/products/SOCKS", json=product_body(
        "Socks", price={"amount": "4.50", "currency": "EUR"}, tax_class="reduced",
        barcodes=[{"type": "upce", "value": SOCKS_UPCE}])), 201)
    for location_id, sku, on_hand in (("mitte", "SHIRT", 2), ("potsdam", "SHIRT", 5),
                                      ("potsdam", "SOCKS", 10)):
        ok(api.put(f"/v1/inventory/{location_id}/{sku}",
                   json={"on_hand": on_hand, "safety_stock": 0}))


def level(api: Api, location_id: str, sku: str) -> dict[str, Any]:
    found: dict[str, Any] = ok(api.get(f"/v1/inventory/{location_id}/{sku}"))
    return found


def reserved(api: Api, location_id: str, sku: str) -> int:
    count: int = level(api, location_id, sku)["reserved"]
    return count


def new_cart(staff: Api, location_id: str = "mitte", **body: Any) -> dict[str, Any]:
    cart: dict[str, Any] = ok(staff.post("/v1/carts", json={
        "location_id": location_id, "currency": "EUR", **body}), 201)
    return cart


def notify(client: TestClient, reference: str, status: str, secret: str = PSP_SECRET) -> Any:
    """The simulated PSP's notification of a payment link, signed with `secret`."""
    body = json.dumps({"reference": reference, "status": status}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post("/v1/psp/simulated/notifications", content=body,
                       headers={"Content-Type": "application/json",
                                "X-Oms-Signature": signature})
