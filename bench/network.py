"""The retailer the order benchmarks sell for: 500 locations, 60 skus, stock spread so that some
3-line orders split, and customers who mostly come back.

Everything is drawn from one fixed seed, so every run (and oms and the floor within a run)
sells the same goods from the same places to the same people.

- Every location holds a random 30% of the skus (18 of 60), 50,000 to 100,000 units of each,
  so no order of a run is refused or put on hold for want of stock.
- One location in five ships (a DC or a ship-from-store store); the others only serve
  pickups, so routing still weighs all 500 for every item. On average 2.4 of the 100 that
  ship hold all three skus of an order; for about one order in eleven none does, and it is
  split.
- All locations share one priority, so the nearest fitting location wins and orders spread
  over the network rather than queueing on one stock row.
- 1,000 customers, each at an address of their own somewhere in Germany, have ordered before
  (loaded as historical orders); 90% of the orders come from them, 10% from new customers.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine

from common import location_lines, seed_products, seed_stock
from oms.services.imports import FileFormat, run_import
from oms.services.order_imports import import_orders

LOCATIONS = 500
SHIPPING_EVERY = 5
SKUS = 60
HELD_SHARE = 0.3
LINES = 3
CUSTOMERS = 1000
NEW_CUSTOMER_SHARE = 0.1
#: Germany's bounding box, roughly.
LAT, LON = (47.3, 55.0), (5.9, 15.0)
#: What every line costs, and the order with shipping (a card payment of the grand total).
UNIT_PRICE, TAX, SHIPPING = "10.00", "1.90", "4.90"
GRAND_TOTAL = "40.60"
SEED = 10


@dataclass(frozen=True)
class Location:
    id: str
    lat: float
    lon: float
    ships: bool


@dataclass(frozen=True)
class Customer:
    email: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Network:
    locations: tuple[Location, ...]
    skus: tuple[str, ...]
    #: (location_id, sku, on_hand, safety_stock)
    stock: tuple[tuple[str, str, int, int], ...]
    customers: tuple[Customer, ...]
    #: Where new customers live: drawn the same way, never in the history.
    new_addresses: tuple[tuple[float, float], ...]

    @property
    def shipping(self) -> list[Location]:
        return [loc for loc in self.locations if loc.ships]


def build(seed: int = SEED) -> Network:
    rng = random.Random(seed)
    skus = tuple(f"NET-{i:04d}" for i in range(SKUS))
    held = round(SKUS * HELD_SHARE)
    locations = tuple(
        Location(f"loc-{i:03d}", round(rng.uniform(*LAT), 4), round(rng.uniform(*LON), 4),
                 ships=i % SHIPPING_EVERY == 0)
        for i in range(LOCATIONS))
    stock = tuple((loc.id, sku, rng.randint(50_000, 100_000), rng.randint(0, 3))
                  for loc in locations for sku in sorted(rng.sample(skus, held)))
    customers = tuple(Customer(f"customer{i}@example.com", round(rng.uniform(*LAT), 4),
                               round(rng.uniform(*LON), 4)) for i in range(CUSTOMERS))
    new_addresses = tuple((round(rng.uniform(*LAT), 4), round(rng.uniform(*LON), 4))
                          for _ in range(200))
    return Network(locations, skus, stock, customers, new_addresses)


def _location_lines(network: Network) -> Iterator[str]:
    template = location_lines([loc.id for loc in network.locations])
    for loc, line in zip(network.locations, template, strict=True):
        doc = json.loads(line)
        doc["type"] = "store"
        doc["priority"] = 10
        doc["address"].update(lat=loc.lat, lon=loc.lon)
        doc["capabilities"] = ["ship", "pickup"] if loc.ships else ["pickup"]
        yield json.dumps(doc) + "\n"


def _history(network: Network) -> Iterator[str]:
    """One earlier order per customer, so that placing an order finds them."""
    for n, customer in enumerate(network.customers):
        yield json.dumps({
            "channel": "historical", "external_id": f"H-{n}",
            "placed_at": f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}T12:00:00Z",
            "currency": "EUR", "customer": {"email": customer.email},
            "items": [{"sku": network.skus[n % SKUS], "quantity": 1, "unit_price": UNIT_PRICE,
                       "tax": TAX, "status": "fulfilled"}],
            "totals": {"grand_total": "11.90"}, "historical": True,
        }) + "\n"


def seed_oms(engine: Engine, network: Network) -> None:
    report = run_import(engine, "locations", _location_lines(network), FileFormat.JSONL)
    if report.failed:
        raise RuntimeError(f"seeding locations failed: {report.errors[:3]}")
    seed_products(engine, network.skus)
    seed_stock(engine, network.stock)
    report = import_orders(engine, _history(network))
    if report.failed:
        raise RuntimeError(f"seeding customers failed: {report.errors[:3]}")


def now_text() -> str:
    """`placed_at` for an order placed now."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def address(lat: float, lon: float) -> dict[str, object]:
    return {"line1": "Hauptstrasse 1", "city": "Somewhere", "postal_code": "10117",
            "country": "DE", "lat": lat, "lon": lon}


def order_body(network: Network, external_id: str, placed_at: str, rng: random.Random
               ) -> dict[str, object]:
    """The order the load generator sends, for the places that send one from Python."""
    if rng.random() < NEW_CUSTOMER_SHARE:
        email = f"new-{external_id.lower()}@example.com"
        lat, lon = rng.choice(network.new_addresses)
    else:
        customer = rng.choice(network.customers)
        email, lat, lon = customer.email, customer.lat, customer.lon
    return {
        "channel": "web", "external_id": external_id, "placed_at": placed_at,
        "currency": "EUR", "customer": {"email": email},
        "items": [{"sku": sku, "quantity": 1, "unit_price": UNIT_PRICE, "tax": TAX}
                  for sku in rng.sample(network.skus, LINES)],
        "shipping": {"option": {"service_level": "standard", "carrier": "dhl",
                                "price": SHIPPING},
                     "address": address(lat, lon)},
        "payments": [{"method": "card", "amount": GRAND_TOTAL, "status": "authorized"}],
        "totals": {"grand_total": GRAND_TOTAL},
    }
