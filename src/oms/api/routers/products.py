from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from oms.api.deps import AnyRole, CursorParam, Integrators, Limit, ReadUow, Uow, decode_cursor, page
from oms.api.routing import JsonBodyRoute
from oms.domain.ids import CODE_PATTERN
from oms.schemas import ProductIn, product_out
from oms.services import catalog

router = APIRouter(prefix="/v1/products", tags=["catalog"], route_class=JsonBodyRoute)
Sku = Annotated[str, Path(pattern=CODE_PATTERN, description="The retailer's stock keeping unit")]


@router.put("/{sku}", summary="Create or replace a product")
def put_product(sku: Sku, body: ProductIn, uow: Uow, _: Integrators,
                response: Response) -> dict[str, Any]:
    result, created = catalog.put_product(uow, body.to_domain(sku))
    response.status_code = 201 if created else 200
    return result


@router.get("/{sku}", summary="A product")
def get_product(sku: Sku, uow: ReadUow, _: AnyRole) -> dict[str, Any]:
    stored = catalog.get_product(uow, sku)
    return product_out(stored.value, stored.version, stored.updated_at)


@router.get("", summary="Products, by sku; filter by barcode or by text in sku and name")
def list_products(
    uow: ReadUow,
    _: AnyRole,
    barcode: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    after = decode_cursor(cursor)
    rows = uow.products.page(after=after, limit=limit + 1, barcode=barcode, q=q)
    items = [product_out(r.value, r.version, r.updated_at) for r in rows]
    return page(items, limit, key=lambda p: p["sku"])
