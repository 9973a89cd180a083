"""The demo data set loads through the services, and loading it again changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from stdnum import ean

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.demo.loader import load_demo
from oms.domain.catalog import BarcodeType, Product
from oms.domain.events import utcnow
from oms.domain.inventory import FutureStock, StockLevel
from oms.domain.locations import Location, LocationType


def _products(uow: UnitOfWork) -> list[Product]:
    products: list[Product] = []
    after = None
    while page := uow.products.page(after=after, limit=100, barcode=None, q=None):
        products.extend(p.value for p in page)
        after = page[-1].value.sku
    return products


def _state(engine: Engine) -> dict[str, Any]:
    with UnitOfWork(engine, read_only=True) as uow:
        locations: list[Location] = [s.value for s in uow.locations.page(after=None, limit=100)]
        products = _products(uow)
        skus = [p.sku for p in products]
        levels: list[StockLevel] = uow.stock.levels(skus)
        today = utcnow().date()
        future: list[FutureStock] = uow.stock.future(skus, today_of=lambda _: today)
    return {"locations": locations, "products": products, "levels": levels, "future": future}


def test_demo_loads_stores_catalog_and_stock_and_reloads_unchanged(engine: Engine) -> None:
    summary = load_demo(engine)
    first = _state(engine)
    assert load_demo(engine) == summary
    second = _state(engine)

    locations: list[Location] = first["locations"]
    assert sum(loc.type is LocationType.STORE for loc in locations) >= 4
    assert sum(loc.type is LocationType.DC for loc in locations) >= 1

    products: list[Product] = first["products"]
    assert len(products) >= 200
    for product in products:
        eans = [b.value for b in product.barcodes if b.type is BarcodeType.EAN13]
        assert len(eans) == 1, product.sku
        assert ean.is_valid(eans[0]), product.sku
    preorders = {p.sku for p in products if p.is_preorder}
    assert preorders

    levels: list[StockLevel] = first["levels"]
    stocked = {level.location_id for level in levels if level.on_hand > 0}
    assert stocked == {loc.id for loc in locations}
    assert not [lv for lv in levels if lv.sku in preorders and lv.on_hand > 0]

    future: list[FutureStock] = first["future"]
    assert future
    assert preorders <= {entry.sku for entry in future}

    with UnitOfWork(engine, read_only=True) as uow:
        orders = uow.orders.page(before=None, limit=100)
        requests = uow.fulfillment.page(now=utcnow(), after=None, limit=100)
    # Every demo order is routed: each has a fulfilment request, some at a store for pickup.
    assert len(orders) == 8
    assert {r["order_id"] for r in requests} == {o["id"] for o in orders}
    assert {r["type"] for r in requests} >= {"pickup", "third_party"}

    assert {key: len(value) for key, value in second.items()} == {
        key: len(value) for key, value in first.items()}
    assert second == first
