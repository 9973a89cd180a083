from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from oms.api import models
from oms.api.deps import AnyRole, CursorParam, Integrators, Limit, ReadUow, decode_cursor, page
from oms.api.openapi import answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx
from oms.domain.ids import CODE_PATTERN
from oms.schemas import ProductIn, product_out
from oms.services import catalog

router = APIRouter(prefix="/v1/products", tags=["catalog"], route_class=JsonBodyRoute)
Sku = Annotated[str, Path(pattern=CODE_PATTERN, description="The retailer's stock keeping unit")]


@router.put("/{sku}", summary="Create or replace a product", response_model=models.Product,
            responses={201: {"model": models.Product, "description": "Created"},
                       **problems(403, (409, "A barcode belongs to another product"))})
def put_product(sku: Sku, body: ProductIn, tx: WriteTx, _: Integrators) -> Response:
    result, created = catalog.put_product(tx.uow, body.to_domain(sku))
    return tx.done(result, status=201 if created else 200)


@router.get("/{sku}", summary="A product", response_model=models.Product,
            responses=problems(404))
def get_product(sku: Sku, uow: ReadUow, _: AnyRole) -> Response:
    stored = catalog.get_product(uow, sku)
    return answer(product_out(stored.value, stored.version, stored.updated_at))


@router.get("", summary="Products, by sku; filter by barcode or by text in sku and name",
            response_model=models.ProductPage)
def list_products(
    uow: ReadUow,
    _: AnyRole,
    barcode: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Response:
    after = decode_cursor(cursor)
    rows = uow.products.page(after=after, limit=limit + 1, barcode=barcode, q=q)
    items = [product_out(r.value, r.version, r.updated_at) for r in rows]
    return answer(page(items, limit, key=lambda p: p["sku"]))
