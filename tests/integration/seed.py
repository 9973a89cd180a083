"""Set up catalog, locations and stock through the services."""

from __future__ import annotations

from sqlalchemy import Engine

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.schemas import LocationIn, ProductIn
from oms.services import catalog, inventory, locations
from tests.helpers import location_body, product_body


def seed_stock(engine: Engine, levels: dict[tuple[str, str], int], safety_stock: int = 0) -> None:
    for location_id in sorted({loc for loc, _ in levels}):
        with UnitOfWork(engine) as uow:
            locations.put_location(
                uow, LocationIn.model_validate(location_body()).to_domain(location_id))
    for sku in sorted({sku for _, sku in levels}):
        with UnitOfWork(engine) as uow:
            catalog.put_product(uow, ProductIn.model_validate(product_body()).to_domain(sku))
    for (location_id, sku), on_hand in levels.items():
        with UnitOfWork(engine) as uow:
            inventory.set_level(uow, location_id, sku, on_hand, safety_stock)


def level(engine: Engine, location_id: str, sku: str) -> tuple[int, int, int]:
    """(on_hand, reserved, atp)"""
    with UnitOfWork(engine, read_only=True) as uow:
        found = uow.stock.get(location_id, sku)
    assert found is not None
    return found.on_hand, found.reserved, found.atp
