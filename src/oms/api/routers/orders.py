from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field, field_validator

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api import models
from oms.api import receipts as receipt_pages
from oms.api.deps import (
    AnyRole,
    CursorParam,
    Integrators,
    Limit,
    Managers,
    ReadUow,
    Staff,
    decode_time_cursor,
    encode_cursor,
)
from oms.api.openapi import LOCATION, answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import JSON_TYPE, WriteTx, in_turn
from oms.domain.access import Principal
from oms.domain.errors import FieldError, Forbidden, NotFound
from oms.domain.orders import Channel, OrderStatus
from oms.domain.routing_record import (
    consideration_json,
    decisions_view,
    explain_stored,
    not_a_location_yet,
)
from oms.schemas import OrderIn, Strict, UtcTime
from oms.services import orders, receipts
from oms.services.views import customer_out

router = APIRouter(tags=["orders"], route_class=JsonBodyRoute)


@router.post("/v1/orders", summary="Take an order placed outside the OMS", status_code=201,
             response_model=models.Order,
             responses={201: {"headers": LOCATION},
                        200: {"model": models.Order, "headers": LOCATION,
                              "description": "The same order was sent before: as it is now"},
                        **problems(403, (409, "Another order has this external_id, no location "
                                              "that can fulfil an item has it in stock, or "
                                              "the stock kept changing while it was routed"))})
async def post_order(body: OrderIn, request: Request, tx: WriteTx, _: Integrators
                     ) -> Response:
    window = request.app.state.settings.placement_window()

    def place() -> Response:
        result, created = orders.place_order(tx.uow, body, window)
        return tx.done(result, status=201 if created else 200,
                       headers={"location": f"/v1/orders/{result['id']}"})

    return await in_turn(tx.turn, place)


@router.get("/v1/orders/{order_id}", summary="An order with its items, payments and events",
            response_model=models.OrderDetail, responses=problems(404))
def get_order(order_id: str, uow: ReadUow, _: AnyRole) -> Response:
    return answer(orders.order_detail(uow, order_id))


@router.get("/v1/orders/{order_id}/receipt",
            summary="The order's receipt: a page (HTML), plain text with Accept: text/plain, "
                    "or JSON with Accept: application/json",
            response_model=models.Receipt,
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}},
                                         "text/plain": {"schema": {"type": "string"}}},
                             "description": "The receipt"},
                       **problems(404)})
def get_receipt(order_id: str, request: Request, uow: ReadUow, _: AnyRole) -> Response:
    body = receipts.receipt(uow, order_id)
    kind = _receipt_type(request.headers.get("accept", ""))
    if kind == JSON_TYPE:
        return answer(body)
    rendered = receipt_pages.text(body) if kind == "text/plain" else receipt_pages.html(body)
    return Response(rendered, 200, media_type=kind)


def _receipt_type(accept: str) -> str:
    """The first of HTML, text and JSON the Accept header names; HTML when it names none."""
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("text/html", "text/plain", JSON_TYPE):
            return media
    return "text/html"


@router.get("/v1/orders/{order_id}/routing-decisions",
            summary="Every routing run: per item the location chosen and why, the best "
                    "passed over, counts per reason; any location's part on request",
            response_model=models.RoutingRuns, responses=problems(404))
def get_routing_decisions(
    order_id: str,
    uow: ReadUow,
    _: AnyRole,
    location_id: Annotated[list[Annotated[str, Field(max_length=64)]] | None, Query(
        max_length=20, description="Say why this location was or was not chosen for each "
                                   "item, in every run; give it again for more")] = None,
) -> Response:
    order = uow.orders.get(order_id)
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    asked = list(dict.fromkeys(location_id or []))
    created_at = {}
    for n, asked_id in enumerate(asked):
        found = uow.locations.get(asked_id)
        if found is None:
            # The location named is a resource that does not exist, as an unknown order is.
            raise NotFound(f"no location {asked_id!r}",
                           [FieldError(f"location_id.{n}", "no such location")])
        created_at[asked_id] = found.created_at
    runs = []
    for r in uow.routing.runs(order["id"], with_inputs=bool(asked)):
        considerations = [
            consideration_json(c) for asked_id in asked
            for c in (not_a_location_yet([d["item_id"] for d in r["decisions"]], asked_id)
                      if created_at[asked_id] > r["ran_at"]
                      else explain_stored(r["inputs"], r["on_hold"], asked_id))]
        runs.append({"id": r["id"], "trigger": r["trigger"], "ran_at": r["ran_at"].isoformat(),
                     "assignments": r["assignments"], "on_hold": r["on_hold"],
                     "decisions": decisions_view(r["decisions"]),
                     "considerations": considerations})
    return answer({"items": runs})


@router.get("/v1/orders", summary="Orders, newest first",
            response_model=models.OrderPage)
def list_orders(
    uow: ReadUow,
    _: AnyRole,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Annotated[OrderStatus | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    placed_from: Annotated[UtcTime | None, Query()] = None,
    placed_to: Annotated[UtcTime | None, Query(
        description="Exclusive: orders placed before this time")] = None,
    q: Annotated[str | None, Query(max_length=320, description=(
        "display id, external id or customer email"))] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Response:
    rows = uow.orders.page(
        before=decode_time_cursor(cursor), limit=limit + 1, customer_id=customer_id,
        status=status.value if status else None, channel=channel.value if channel else None,
        placed_from=placed_from, placed_to=placed_to, q=q,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return answer({
        "items": orders.orders_out(uow, rows),
        "next_cursor": encode_cursor([last["placed_at"].isoformat(), last["id"]])
        if more and last is not None else None,
    })


class CancelIn(Strict):
    # At least one: an empty list must not read as "every item".
    items: list[Annotated[str, Field(min_length=1, max_length=36)]] | None = Field(
        default=None, min_length=1, max_length=500, json_schema_extra={"uniqueItems": True},
        description="Item ids; none: every item not yet shipped")
    reason: str | None = Field(default=None, max_length=300)

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[str] | None) -> list[str] | None:
        # An item listed twice would be refunded twice.
        if items is not None and len(items) != len(set(items)):
            raise ValueError("an item is listed twice")
        return items


@router.post("/v1/orders/{order_id}/cancel", summary="Cancel all or some items not yet shipped",
             response_model=models.Order,
             responses=problems(403, 404, (409, "An item named has shipped or was cancelled, "
                                                "or none is left to cancel")))
def cancel_order(order_id: str, body: CancelIn, request: Request, tx: WriteTx,
                 principal: Staff) -> Response:
    _require_order_scope(tx.uow, principal, order_id)
    result = orders.cancel(tx.uow, request.app.state.providers, order_id, body.items,
                           body.reason)
    return tx.done(result, refresh=lambda uow: orders.order_out(uow, order_id))


def _require_order_scope(uow: UnitOfWork, principal: Principal, order_id: str) -> None:
    """An order the key does not see is not found; one it sees but that is also fulfilled
    elsewhere is not its to change (oms.domain.access.Scope)."""
    if uow.orders.within(principal.scope).get(order_id) is None:
        raise NotFound(f"no order {order_id!r}")
    if not principal.scope.may_change_order(orders.order_locations(uow, order_id)):
        raise Forbidden("this key may act only on orders of its own locations")


@router.post("/v1/orders/{order_id}/reroute", summary="Route the on-hold items again",
             response_model=models.Order, responses=problems(403, 404))
def reroute_order(order_id: str, tx: WriteTx, principal: Managers) -> Response:
    _require_order_scope(tx.uow, principal, order_id)
    return tx.done(orders.reroute(tx.uow, order_id))


@router.post("/v1/orders/{order_id}/capture",
             summary="Capture again what shipped goods are owed, after a failed capture",
             response_model=models.Order, responses=problems(403, 404))
def capture_order(order_id: str, request: Request, tx: WriteTx, _: Integrators) -> Response:
    result = orders.capture(tx.uow, request.app.state.providers, order_id)
    return tx.done(result, refresh=lambda uow: orders.order_out(uow, order_id))


@router.get("/v1/customers/{customer_id}", summary="A customer (id or display id)",
            response_model=models.Customer, responses=problems(404))
def get_customer(customer_id: str, uow: ReadUow, _: AnyRole) -> Response:
    customer = uow.customers.get(customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    return answer(customer_out(customer))


@router.get("/v1/customers", summary="Find a customer by email",
            response_model=models.CustomerPage)
def find_customers(uow: ReadUow, _: AnyRole,
                   email: Annotated[str, Query(min_length=3, max_length=320)]) -> Response:
    customer = uow.customers.by_email(email.lower())
    return answer({"items": [customer_out(customer)] if customer else [], "next_cursor": None})


@router.get("/v1/customers/{customer_id}/orders", summary="A customer's purchase history",
            response_model=models.OrderPage, responses=problems(404))
def customer_orders(customer_id: str, uow: ReadUow, _: AnyRole, cursor: CursorParam = None,
                    limit: Limit = 50) -> Response:
    customer = uow.customers.get(customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    return list_orders(uow, _, customer_id=customer["id"], cursor=cursor, limit=limit)
