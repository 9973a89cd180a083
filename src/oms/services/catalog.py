"""Use cases of the product catalog."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from oms.adapters.db.stored import Stored
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.catalog import Product
from oms.domain.errors import Conflict, FieldError, NotFound
from oms.domain.events import Event, utcnow
from oms.schemas import product_out


def put_product(uow: UnitOfWork, product: Product) -> tuple[dict[str, Any], bool]:
    """Create or replace a product; returns its representation and whether it was new."""
    now = utcnow()
    owners = uow.products.barcode_owners(b.value for b in product.barcodes)
    taken = [
        FieldError(f"barcodes.{i}.value", f"barcode {b.value} belongs to product {owners[b.value]}")
        for i, b in enumerate(product.barcodes)
        if owners.get(b.value, product.sku) != product.sku
    ]
    if taken:
        raise Conflict("a barcode already belongs to another product", taken)
    try:
        version, created = uow.products.upsert(product, now)
    except IntegrityError as exc:  # another request took the barcode in the meantime
        raise Conflict("a barcode already belongs to another product") from exc
    body = product_out(product, version, now)
    uow.record(Event("product.upserted", product.sku, version, body, now))
    uow.commit()
    return body, created


def get_product(uow: UnitOfWork, sku: str) -> Stored[Product]:
    stored = uow.products.get(sku)
    if stored is None:
        raise NotFound(f"no product with sku {sku!r}")
    return stored
