"""A store's carts, built by its associates and managers (see oms.services.carts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from oms.api import models
from oms.api.deps import (
    CursorParam,
    Limit,
    ReadUow,
    StoreStaff,
    decode_time_cursor,
    encode_cursor,
)
from oms.api.openapi import answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx
from oms.domain.carts import CartStatus, TaxRate
from oms.schemas import CartChangeIn, CartIn, CartItemChangeIn, CartItemIn, Code, DiscountIn
from oms.services import carts
from oms.services.carts import CartRules

router = APIRouter(prefix="/v1/carts", tags=["carts"], route_class=JsonBodyRoute)

CART = {"model": models.Cart}
#: A cart changes only while it is open; a line's stock must be there to hold.
CHANGE = (422, "The cart is no longer open, or the stock of a take-now or pickup line is not "
               "there to hold")


def _rules(request: Request) -> CartRules:
    settings = request.app.state.settings
    return CartRules(settings.cart_hold_minutes,
                     TaxRate(settings.tax_fallback_rate,
                             settings.tax_fallback_prices_include_tax))


@router.post("", status_code=201, summary="Open a cart at a store", response_model=models.Cart,
             responses=problems(403, (404, "No such location")))
def post_cart(body: CartIn, request: Request, tx: WriteTx, caller: StoreStaff) -> Response:
    return tx.done(carts.create_cart(tx.uow, caller, body, _rules(request)), status=201)


@router.get("", summary="Carts, newest first", response_model=models.CartPage)
def list_carts(
    request: Request,
    uow: ReadUow,
    _: StoreStaff,
    location_id: Annotated[Code | None, Query()] = None,
    status: Annotated[CartStatus | None, Query()] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Response:
    items = carts.list_carts(uow, _rules(request), location_id=location_id, status=status,
                             after=decode_time_cursor(cursor), limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return answer({"items": items,
                   "next_cursor": encode_cursor([items[-1]["created_at"], items[-1]["id"]])
                   if more else None})


@router.get("/{cart_id}", summary="A cart with its lines, holds and totals",
            response_model=models.Cart, responses=problems(404))
def get_cart(cart_id: str, request: Request, uow: ReadUow, _: StoreStaff) -> Response:
    return answer(carts.get_cart(uow, cart_id, _rules(request)))


@router.patch("/{cart_id}", summary="Change the cart's customer", response_model=models.Cart,
              responses=problems(404, CHANGE))
def patch_cart(cart_id: str, body: CartChangeIn, request: Request, tx: WriteTx,
               caller: StoreStaff) -> Response:
    return tx.done(carts.change_cart(tx.uow, caller.scope, cart_id, body, _rules(request)))


@router.delete("/{cart_id}", status_code=204,
               summary="Drop a cart; its holds give their stock back",
               responses=problems(404, CHANGE))
def delete_cart(cart_id: str, tx: WriteTx, caller: StoreStaff) -> Response:
    carts.delete_cart(tx.uow, caller.scope, cart_id)
    return tx.done(None, status=204)


@router.post("/{cart_id}/items", status_code=201,
             summary="Add goods by barcode or sku; a scan of goods already in the cart adds "
                     "to their line",
             response_model=models.Cart,
             responses={200: {**CART, "description": "Added to a line already in the cart"},
                        **problems((404, "No such cart, product, barcode or pickup store"),
                                   (422, "The barcode's type is not enabled, the stock is not "
                                         "there to hold, or the cart is no longer open"))})
def post_item(cart_id: str, body: CartItemIn, request: Request, tx: WriteTx,
              caller: StoreStaff) -> Response:
    cart, created = carts.add_item(tx.uow, caller.scope, cart_id, body, _rules(request))
    return tx.done(cart, status=201 if created else 200)


@router.patch("/{cart_id}/items/{line_id}",
              summary="Change a line's quantity, fulfilment or price (with a reason)",
              response_model=models.Cart, responses=problems(404, CHANGE))
def patch_item(cart_id: str, line_id: str, body: CartItemChangeIn, request: Request,
               tx: WriteTx, caller: StoreStaff) -> Response:
    return tx.done(carts.change_item(tx.uow, caller.scope, cart_id, line_id, body, _rules(request)))


@router.delete("/{cart_id}/items/{line_id}", summary="Remove a line; its hold gives its stock "
                                                     "back",
               response_model=models.Cart, responses=problems(404, CHANGE))
def delete_item(cart_id: str, line_id: str, request: Request, tx: WriteTx,
                caller: StoreStaff) -> Response:
    return tx.done(carts.remove_item(tx.uow, caller.scope, cart_id, line_id, _rules(request)))


@router.post("/{cart_id}/discounts", status_code=201,
             summary="Take a percentage or an amount off a line or the whole cart",
             response_model=models.Cart, responses=problems(404, CHANGE))
def post_discount(cart_id: str, body: DiscountIn, request: Request, tx: WriteTx,
                  caller: StoreStaff) -> Response:
    cart = carts.add_discount(tx.uow, caller.scope, cart_id, body, _rules(request))
    return tx.done(cart, status=201)


@router.delete("/{cart_id}/discounts/{discount_id}", summary="Remove a discount",
               response_model=models.Cart, responses=problems(404, CHANGE))
def delete_discount(cart_id: str, discount_id: str, request: Request, tx: WriteTx,
                    caller: StoreStaff) -> Response:
    cart = carts.remove_discount(tx.uow, caller.scope, cart_id, discount_id, _rules(request))
    return tx.done(cart)
