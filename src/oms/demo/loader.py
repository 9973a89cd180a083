"""The demo data set: five stores and a DC in Germany, a sports and fashion catalog, stock
everywhere and some stock still on its way.

It goes in through the same imports and services as real data, so the demo shows what an
integrator would see (events included). The same seed gives the same rows and every write is
an upsert, so loading it again puts the demo's products, locations, stock and future stock
back as they were first loaded (orders and reservations are left alone).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.catalog import ean13_with_check_digit
from oms.domain.errors import Conflict
from oms.domain.inventory import FutureStock
from oms.schemas import OrderIn
from oms.services.imports import FileFormat, ImportMode, ImportReport, run_import
from oms.services.inventory import record_future
from oms.services.orders import place_order

SEED = 42
#: GS1 Germany country prefix (400) and a company number: 7 digits, leaving 5 for the item.
GS1_COMPANY_PREFIX = "4012345"

STORE_CAPABILITIES = ["ship", "pickup", "returns"]


def _location(location_id: str, kind: str, name: str, priority: int, capabilities: list[str],
              **address: Any) -> dict[str, Any]:
    return {"id": location_id, "type": kind, "name": name, "address": {**address, "country": "DE"},
            "capabilities": capabilities, "priority": priority, "active": True,
            "timezone": "Europe/Berlin"}


# Routing prefers the lower priority number: web orders ship from the DC before they take
# stock off a shop floor.
LOCATIONS: list[dict[str, Any]] = [
    _location("dc-kassel", "dc", "Distribution Centre Kassel-Waldau", 5, ["ship", "returns"],
              line1="Falderbaumstraße 15", city="Kassel", region="Hessen",
              postal_code="34123", lat=51.2874, lon=9.5282),
    _location("store-berlin-mitte", "store", "Berlin Mitte, Friedrichstraße", 10,
              STORE_CAPABILITIES, line1="Friedrichstraße 76", city="Berlin", region="Berlin",
              postal_code="10117", lat=52.5138, lon=13.3891),
    _location("store-hamburg-mitte", "store", "Hamburg, Mönckebergstraße", 20,
              STORE_CAPABILITIES, line1="Mönckebergstraße 7", city="Hamburg",
              region="Hamburg", postal_code="20095", lat=53.5509, lon=10.0031),
    _location("store-muenchen-altstadt", "store", "München, Kaufingerstraße", 30,
              STORE_CAPABILITIES, line1="Kaufingerstraße 15", city="München",
              region="Bayern", postal_code="80331", lat=48.1374, lon=11.5727),
    _location("store-koeln-innenstadt", "store", "Köln, Schildergasse", 40,
              STORE_CAPABILITIES, line1="Schildergasse 65", city="Köln",
              region="Nordrhein-Westfalen", postal_code="50667", lat=50.9361, lon=6.9527),
    _location("store-frankfurt-zeil", "store", "Frankfurt, Zeil", 50,
              STORE_CAPABILITIES, line1="Zeil 106", city="Frankfurt am Main",
              region="Hessen", postal_code="60313", lat=50.1143, lon=8.6842),
]

COLOURS = {
    "BLK": "Black", "WHT": "White", "NVY": "Navy", "GRY": "Grey Melange", "RED": "Red",
    "BLU": "Cobalt Blue", "ORG": "Orange", "LIM": "Lime", "OLV": "Olive", "BRG": "Burgundy",
    "PNK": "Pink", "YEL": "Yellow", "GRN": "Forest Green",
    "CHO": "Chocolate", "PNT": "Peanut", "BER": "Berry",
}
#: (sku code, label in the product name); an empty label is left out of the name.
Sizes = tuple[tuple[str, str], ...]


def _apparel(*codes: str) -> Sizes:
    return tuple((code, code) for code in codes)


def _shoes(first: int, last: int) -> Sizes:
    return tuple((str(size), f"EU {size}") for size in range(first, last + 1))


APPAREL = _apparel("S", "M", "L", "XL", "XXL")
ONE_SIZE: Sizes = (("OS", ""),)


@dataclass(frozen=True)
class Style:
    """One article in several colours and sizes; each combination is a product (a sku)."""

    code: str
    name: str
    price: str
    colours: tuple[str, ...]
    sizes: Sizes
    tax_class: str = "standard"
    #: Weeks from the demo's anchor date to the tentative ship date of a pre-order article.
    preorder_weeks: int | None = None


STYLES = [
    Style("TSH", "Essential T-Shirt", "19.95", ("BLK", "WHT", "NVY", "GRY"),
          _apparel("XS", "S", "M", "L", "XL", "XXL")),
    Style("RTE", "Performance Running Tee", "34.95", ("BLK", "BLU", "ORG", "LIM"), APPAREL),
    Style("POL", "Piqué Polo Shirt", "39.95", ("WHT", "NVY", "GRN"), APPAREL),
    Style("HOD", "Training Hoodie", "59.95", ("BLK", "GRY", "NVY", "OLV"), APPAREL),
    Style("MER", "Merino Base Layer", "69.95", ("BLK", "GRY"), _apparel("S", "M", "L", "XL")),
    Style("JOG", "Jogger Pants", "49.95", ("BLK", "GRY", "NVY"), APPAREL),
    Style("SHO", "Running Shorts", "29.95", ("BLK", "NVY", "RED"),
          _apparel("S", "M", "L", "XL")),
    Style("LEG", "High-Waist Leggings", "44.95", ("BLK", "BRG", "OLV"),
          _apparel("XS", "S", "M", "L", "XL")),
    Style("BRA", "Sports Bra", "34.95", ("BLK", "WHT", "PNK"), _apparel("XS", "S", "M", "L")),
    Style("JKT", "Rain Jacket", "119.00", ("BLK", "NVY", "YEL"), APPAREL),
    Style("RSH", "Road Running Shoe", "129.95", ("BLK", "WHT", "BLU"), _shoes(39, 46)),
    Style("TRL", "Trail Running Shoe", "149.95", ("BLK", "OLV"), _shoes(40, 46)),
    Style("SCK", "Running Socks 3-Pack", "14.95", ("BLK", "WHT"),
          (("3538", "EU 35-38"), ("3942", "EU 39-42"), ("4346", "EU 43-46"))),
    Style("CAP", "Running Cap", "24.95", ("BLK", "WHT", "NVY", "ORG"), ONE_SIZE),
    Style("BTL", "Insulated Bottle 750 ml", "27.95", ("BLK", "WHT", "RED"), ONE_SIZE),
    Style("GYM", "Gym Bag 35 L", "59.95", ("BLK", "NVY"), ONE_SIZE),
    # Food carries the reduced VAT rate in Germany.
    Style("BAR", "Energy Bar", "24.90", ("CHO", "PNT", "BER"), (("12", "12-Pack"),),
          tax_class="reduced"),
    Style("CRB", "Carbon Racing Shoe", "229.95", ("LIM",), _shoes(40, 45), preorder_weeks=6),
    Style("MRJ", "Marathon Edition Jacket", "139.95", ("BLU",), _apparel("S", "M", "L", "XL"),
          preorder_weeks=8),
]


def anchor_date(today: dt.date) -> dt.date:
    """The Monday of this week: dates counted from it stay in the future, and loading the demo
    again within the week gives the same pre-order and future-stock dates."""
    return today - dt.timedelta(days=today.weekday())


def _markdown(price: str) -> str:
    """30 % off, ending in .95 like the other prices."""
    reduced = (Decimal(price) * Decimal("0.7")).quantize(Decimal(1)) - Decimal("0.05")
    return f"{reduced:.2f}"


def build_products(rng: random.Random, anchor: dt.date) -> list[dict[str, Any]]:
    products: list[dict[str, Any]] = []
    for style in STYLES:
        ship_date = (anchor + dt.timedelta(weeks=style.preorder_weeks)
                     if style.preorder_weeks is not None else None)
        for colour in style.colours:
            # Last season's colours are marked down; pre-orders never are.
            on_sale = ship_date is None and rng.random() < 0.15
            price = _markdown(style.price) if on_sale else style.price
            for size, label in style.sizes:
                item = len(products) + 1
                name = ", ".join(part for part in (style.name, COLOURS[colour], label) if part)
                product: dict[str, Any] = {
                    "sku": f"{style.code}-{colour}-{size}",
                    "name": name,
                    "price": {"amount": price, "currency": "EUR"},
                    "tax_class": style.tax_class,
                    "barcodes": [{"type": "ean13", "value": ean13_with_check_digit(
                        f"{GS1_COMPANY_PREFIX}{item:05d}")}],
                }
                if ship_date is not None:
                    product["preorder"] = {"tentative_ship_date": ship_date.isoformat()}
                products.append(product)
    return products


def build_inventory(rng: random.Random, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A full snapshot per location: every product, pre-orders at zero."""
    rows: list[dict[str, Any]] = []
    for location in LOCATIONS:
        is_dc = location["type"] == "dc"
        for product in products:
            if "preorder" in product:
                on_hand, safety = 0, 0
            elif is_dc:
                on_hand, safety = rng.randint(40, 300), rng.randint(0, 5)
            else:
                # Stores sell out of single sizes now and then.
                on_hand = 0 if rng.random() < 0.12 else rng.randint(1, 40)
                safety = rng.randint(0, 2)
            rows.append({"location_id": location["id"], "sku": product["sku"],
                         "on_hand": on_hand, "safety_stock": safety})
    return rows


def build_future(
    rng: random.Random, products: list[dict[str, Any]], anchor: dt.date
) -> list[FutureStock]:
    dc = next(loc["id"] for loc in LOCATIONS if loc["type"] == "dc")
    stores = [loc["id"] for loc in LOCATIONS if loc["type"] == "store"]
    entries: dict[tuple[str, str, dt.date], FutureStock] = {}

    def add(location_id: str, sku: str, quantity: int, on: dt.date) -> None:
        entries[(location_id, sku, on)] = FutureStock(location_id, sku, quantity, on)

    regular = [p["sku"] for p in products if "preorder" not in p]
    for product in products:
        if "preorder" not in product:
            continue
        ship = dt.date.fromisoformat(product["preorder"]["tentative_ship_date"])
        # The first delivery reaches the DC just before the ship date; a second one follows.
        add(dc, product["sku"], rng.randrange(60, 241, 12), ship - dt.timedelta(days=4))
        add(dc, product["sku"], rng.randrange(24, 121, 12), ship + dt.timedelta(weeks=3))
    for sku in rng.sample(regular, 12):
        on = anchor + dt.timedelta(weeks=rng.randint(1, 4), days=rng.randint(0, 4))
        add(dc, sku, rng.randrange(24, 145, 12), on)
    for sku in rng.sample(regular, 4):
        on = anchor + dt.timedelta(weeks=1, days=rng.randint(0, 4))
        add(rng.choice(stores), sku, rng.randint(4, 12), on)
    return list(entries.values())


def _jsonl(rows: Iterable[dict[str, Any]]) -> list[str]:
    return [json.dumps(row, ensure_ascii=False) for row in rows]


def _require_clean(report: ImportReport) -> None:
    if report.failed:
        reasons = "; ".join(f"line {e.line}: {e.reason}" for e in report.errors[:20])
        raise RuntimeError(f"demo {report.kind} import failed for {report.failed} rows: "
                           f"{reasons}")


def load_demo(engine: Engine) -> str:
    """Load (or reload) the demo data set; returns a one-line summary."""
    rng = random.Random(SEED)
    anchor = anchor_date(dt.date.today())
    products = build_products(rng, anchor)
    inventory = build_inventory(rng, products)
    future = build_future(rng, products, anchor)

    _require_clean(run_import(engine, "locations", _jsonl(LOCATIONS), FileFormat.JSONL))
    _require_clean(run_import(engine, "products", _jsonl(products), FileFormat.JSONL))
    stock = run_import(engine, "inventory", _jsonl(inventory), FileFormat.JSONL, ImportMode.FULL)
    _require_clean(stock)
    with UnitOfWork(engine) as uow:
        record_future(uow, future)
    orders = build_orders(rng, products, anchor)
    for order in orders:
        # Loaded in an earlier week, an order with this external id stands as it was.
        with UnitOfWork(engine) as uow, contextlib.suppress(Conflict):
            place_order(uow, order)

    return (f"demo: {len(LOCATIONS)} locations, {len(products)} products, "
            f"{stock.imported} stock levels, {len(future)} future entries, "
            f"{len(orders)} web orders")


CUSTOMERS = [("Mia Schneider", "Berlin", "10117", "Unter den Linden 5", 52.517, 13.389),
             ("Lukas Becker", "Hamburg", "20095", "Spitalerstraße 10", 53.551, 10.001),
             ("Emma Wagner", "München", "80331", "Marienplatz 8", 48.137, 11.575),
             ("Noah Fischer", "Köln", "50667", "Hohe Straße 52", 50.938, 6.956)]


def build_orders(rng: random.Random, products: list[dict[str, Any]], anchor: dt.date
                 ) -> list[OrderIn]:
    """A morning's web orders: most ship (from the DC, or a store near the customer), some are
    collected in a store. Each goes to its fulfilment request queue as placed."""
    regular = [p for p in products if "preorder" not in p]
    orders = []
    for n in range(8):
        name, city, postal, street, lat, lon = CUSTOMERS[n % len(CUSTOMERS)]
        lines = rng.sample(regular, rng.randint(1, 2))
        items = [{"sku": p["sku"], "quantity": 1, "unit_price": p["price"]["amount"]}
                 for p in lines]
        pickup = n in (2, 6)
        shipping_price = Decimal("0.00") if pickup else Decimal("4.90")
        total = sum((Decimal(i["unit_price"]) for i in items), shipping_price)
        email = name.lower().replace(" ", ".") + "@example.com"
        shipping: dict[str, Any] = (
            {"option": {"service_level": "pickup", "pickup_location_id": "store-berlin-mitte"}}
            if pickup else
            {"option": {"service_level": "express" if n % 3 == 0 else "standard",
                        "carrier": "dhl", "price": str(shipping_price)},
             "address": {"name": name, "line1": street, "city": city, "postal_code": postal,
                         "country": "DE", "lat": lat, "lon": lon}})
        orders.append(OrderIn.model_validate({
            "channel": "web", "external_id": f"DEMO-{n + 1:04d}",
            # The day before the anchor: always past (a live order cannot be placed ahead of
            # now), within a week, and the same again when the demo is loaded again that week.
            "placed_at": dt.datetime.combine(anchor - dt.timedelta(days=1), dt.time(8 + n, 15),
                                             dt.UTC).isoformat(),
            "currency": "EUR", "customer": {"email": email, "name": name},
            "items": items, "shipping": shipping,
            "payments": [{"method": "card", "psp": "adyen", "reference": f"DEMO-PSP-{n + 1}",
                          "amount": str(total), "status": "authorized"}],
            "totals": {"grand_total": str(total)},
        }))
    return orders
