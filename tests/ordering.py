"""Orders as the web shop sends them, and reading back what they did, for API tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tests.helpers import Api

UNIT_PRICE = Decimal("19.90")
UNIT_TAX = Decimal("3.78")
SHIPPING_PRICE = Decimal("4.90")
#: Where the web shop's sample customer lives (Unter den Linden, Berlin).
ADA_HOME = (52.517, 13.389)
#: Store coordinates, nearest to ADA_HOME first.
COORDINATES = {
    "mitte": (52.5219, 13.4132),     # ~2 km
    "potsdam": (52.3906, 13.0645),   # ~26 km
    "hamburg": (53.5511, 9.9937),    # ~255 km
    "munich": (48.1374, 11.5755),    # ~504 km
}

Stock = dict[tuple[str, str], int]
Shop = Callable[..., None]


def order_body(*lines: tuple[str, int], external_id: str = "W-100234",
               email: str = "ada@example.com", placed_at: str = "2026-11-20T10:15:00Z",
               pickup_at: str | None = None, **overrides: Any) -> dict[str, Any]:
    """An order as the web shop sends it, its totals and payment adding up; `lines` are
    (sku, quantity), by default two of SKU-1."""
    lines = lines or (("SKU-1", 2),)
    shipping: dict[str, Any]
    if pickup_at is not None:
        shipping_price = Decimal("0.00")
        shipping = {"option": {"service_level": "pickup", "pickup_location_id": pickup_at,
                               "price": str(shipping_price)}}
    else:
        shipping_price = SHIPPING_PRICE
        shipping = {
            "option": {"service_level": "standard", "carrier": "dhl",
                       "price": str(shipping_price)},
            "address": {"name": "Ada Lovelace", "line1": "Unter den Linden 5",
                        "city": "Berlin", "postal_code": "10117", "country": "DE",
                        "lat": ADA_HOME[0], "lon": ADA_HOME[1]},
        }
    total = sum(((UNIT_PRICE + UNIT_TAX) * q for _, q in lines), Decimal(0)) + shipping_price
    body: dict[str, Any] = {
        "channel": "web", "external_id": external_id, "placed_at": placed_at,
        "currency": "EUR",
        "customer": {"email": email, "name": "Ada Lovelace", "phone": "+4930123456"},
        "items": [{"sku": sku, "quantity": q, "unit_price": str(UNIT_PRICE),
                   "discount": "0.00", "tax": str(UNIT_TAX * q)} for sku, q in lines],
        "shipping": shipping,
        "payments": [{"method": "card", "psp": "adyen", "reference": f"PSP-{external_id}",
                      "amount": str(total), "status": "authorized"}],
        "totals": {"grand_total": str(total)},
    }
    body.update(overrides)
    return body


def place(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/v1/orders", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def atp(api: Api, sku: str) -> dict[str, int]:
    """ATP of the sku per location, as GET /v1/availability shows it."""
    r = api.get("/v1/availability", params={"sku": sku})
    assert r.status_code == 200, r.text
    [entry] = r.json()["items"]
    return {row["location_id"]: row["atp"] for row in entry["locations"]}


def events(api: Api, **params: Any) -> list[dict[str, Any]]:
    """The whole event feed (or the part `params` select), oldest first, once it holds back
    nothing: on PostgreSQL events wait while any older transaction of the database runs."""
    seen: list[dict[str, Any]] = []
    after: str | None = None
    deadline = time.monotonic() + 30
    while True:
        query = {"limit": 1000, **params, **({"after": after} if after else {})}
        r = api.get("/v1/events", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["items"]
        after = page["next_after"]
        if not page["items"]:
            if not page["held_back"]:
                return seen
            assert time.monotonic() < deadline, "events held back for 30 s"
            time.sleep(0.01)
