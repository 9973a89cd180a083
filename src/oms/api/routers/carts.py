"""A store's carts, built by its associates and managers (see oms.services.carts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from oms.api import models
from oms.api.deps import (
    CursorParam,
    Limit,
    Managers,
    ReadUow,
    StoreStaff,
    decode_time_cursor,
    encode_cursor,
)
from oms.api.openapi import LOCATION, answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx
from oms.domain.carts import CartStatus, TaxRate
from oms.schemas import (
    ApprovalIn,
    CartChangeIn,
    CartIn,
    CartItemChangeIn,
    CartItemIn,
    CartPaymentIn,
    CartShippingIn,
    Code,
    Country,
    DiscountIn,
)
from oms.services import carts, checkout, orders
from oms.services.carts import CartRules

router = APIRouter(prefix="/v1/carts", tags=["carts"], route_class=JsonBodyRoute)

CART = {"model": models.Cart}
#: A cart changes only while it is open.
CHANGE = (409, "The cart was checked out")


def _rules(request: Request) -> CartRules:
    settings = request.app.state.settings
    return CartRules(settings.cart_hold_minutes,
                     TaxRate(settings.tax_fallback_rate,
                             settings.tax_fallback_prices_include_tax),
                     link_minutes=settings.payment_link_minutes)


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
def delete_cart(cart_id: str, request: Request, tx: WriteTx, caller: StoreStaff
                ) -> Response:
    checkout.drop_cart(tx.uow, request.app.state.providers, caller.scope, cart_id)
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


@router.get("/{cart_id}/shipping-options",
            summary="Quote delivery of the ship lines: each service level with its carrier, "
                    "price and promised date",
            response_model=models.ShippingOptions,
            responses=problems(404, (422, "No country given and no address chosen")))
def get_shipping_options(
    cart_id: str, request: Request, uow: ReadUow, _: StoreStaff,
    country: Annotated[Country | None, Query(
        description="Where to deliver; left out: the cart's shipping address")] = None,
) -> Response:
    return answer(carts.shipping_options(uow, cart_id, _rules(request), country))


@router.put("/{cart_id}/shipping", summary="Choose how and where the ship lines are delivered",
            response_model=models.Cart,
            responses=problems(404, CHANGE, (422, "The option is not offered to that "
                                                  "address")))
def put_shipping(cart_id: str, body: CartShippingIn, request: Request, tx: WriteTx,
                 caller: StoreStaff) -> Response:
    return tx.done(carts.choose_shipping(tx.uow, caller.scope, cart_id, body, _rules(request)))


@router.post("/{cart_id}/payments", status_code=201,
             summary="Pay toward the cart: a card authorised with the PSP, a gift card's "
                     "balance, or cash handed over (change given)",
             response_model=models.Cart,
             responses=problems(404, (402, "The card was declined; nothing changed"),
                                CHANGE,
                                (422, "Nothing is due, a card would pay more than is due, or "
                                      "the gift card's balance is less"),
                                (502, "The PSP could not be reached; nothing changed")))
def post_payment(cart_id: str, body: CartPaymentIn, request: Request, tx: WriteTx,
                 caller: StoreStaff) -> Response:
    state = request.app.state
    cart = checkout.add_payment(
        state.engine, tx, state.providers, caller.scope, cart_id, body.method, body.amount,
        state.settings.store_psp, f"{tx.keyed.scope}\n{tx.keyed.key}" if tx.keyed else None,
        _rules(request), body.gift_card)
    return tx.done(cart, status=201)


@router.delete("/{cart_id}/payments/{payment_id}",
               summary="Take a payment back; a card's authorisation is voided",
               response_model=models.Cart, responses=problems(404, CHANGE))
def delete_payment(cart_id: str, payment_id: str, request: Request, tx: WriteTx,
                   caller: StoreStaff) -> Response:
    cart = checkout.remove_payment(tx.uow, request.app.state.providers, caller.scope, cart_id,
                                   payment_id, _rules(request))
    return tx.done(cart)


@router.post("/{cart_id}/checkout", status_code=201,
             summary="Check the cart out: place its order (take-now goods fulfilled at once, "
                     "pickups issued to their store, the rest routed)",
             response_model=models.OrderDetail,
             responses={201: {"model": models.OrderDetail, "headers": LOCATION,
                              "description": "The order placed"},
                        **problems(404, (409, "The cart was checked out already, a line lost "
                                              "its stock, or a ship line is available nowhere"),
                                   (422, "No customer email, no shipping chosen, or the "
                                         "payments do not cover the total"))})
def post_checkout(cart_id: str, request: Request, tx: WriteTx, caller: StoreStaff
                  ) -> Response:
    state = request.app.state
    order_id = checkout.checkout(tx.uow, state.providers, caller, cart_id, _rules(request),
                                 state.settings.placement_window())
    return tx.done(orders.order_detail(tx.uow, order_id), status=201,
                   headers={"location": f"/v1/orders/{order_id}"},
                   refresh=lambda uow: orders.order_detail(uow, order_id))


@router.post("/{cart_id}/approvals", status_code=201,
             summary="A manager of the store approves (or denies) rules the cart needs",
             response_model=models.Cart,
             responses=problems((403, "Not a manager, or the key that built the cart"), 404,
                                CHANGE, (422, "An unknown rule")))
def post_approval(cart_id: str, body: ApprovalIn, request: Request, tx: WriteTx,
                  manager: Managers) -> Response:
    return tx.done(carts.decide_approval(tx.uow, manager, cart_id, body, _rules(request)),
                   status=201)
