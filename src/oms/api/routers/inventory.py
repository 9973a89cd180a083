from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import Field

from oms.api import models
from oms.api.deps import (
    AnyRole,
    Integrators,
    ReadUow,
    require,
)
from oms.api.openapi import answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx, in_turn
from oms.domain.access import Principal, Role
from oms.domain.errors import Forbidden, NotFound
from oms.domain.events import utcnow
from oms.domain.ids import CODE_PATTERN
from oms.schemas import AdjustmentBatchIn, FutureBatchIn, StockLevelIn, level_out
from oms.services import inventory

router = APIRouter(tags=["inventory"], route_class=JsonBodyRoute)
Code = Annotated[str, Path(pattern=CODE_PATTERN)]
StockKeepers = Annotated[Principal, Depends(require(Role.ADMIN, Role.INTEGRATOR, Role.MANAGER))]


@router.put("/v1/inventory/{location_id}/{sku}", summary="Set a stock level (a count)",
            response_model=models.VersionedStockLevel,
            responses=problems(403, (404, "No such location or product")))
def put_level(location_id: Code, sku: Code, body: StockLevelIn, tx: WriteTx,
              principal: StockKeepers) -> Response:
    principal.require_at(location_id)
    return tx.done(inventory.set_level(tx.uow, location_id, sku, body.on_hand,
                                       body.safety_stock))


@router.get("/v1/inventory/{location_id}/{sku}", summary="A stock level",
            response_model=models.StockLevel, responses=problems(404))
def get_level(location_id: Code, sku: Code, uow: ReadUow, _: AnyRole) -> Response:
    level = uow.stock.get(location_id, sku)
    if level is None:
        raise NotFound(f"no stock level of {sku!r} at {location_id!r}")
    return answer(level_out(level))


@router.post("/v1/inventory/adjustments", summary="Apply stock deltas, all or nothing",
             response_model=models.Adjusted,
             responses=problems(403, (404, "No such location or product"),
                                (409, "A delta would take on_hand below zero or above the "
                                      "largest quantity")))
def post_adjustments(body: AdjustmentBatchIn, tx: WriteTx,
                     principal: StockKeepers) -> Response:
    outside = sorted({a.location_id for a in body.adjustments
                      if not principal.may_act_at(a.location_id)})
    if outside:
        raise Forbidden(f"this key is not allowed at location {', '.join(outside)}")
    return tx.done({"levels": inventory.adjust(tx.uow, body.adjustments)})


@router.post("/v1/inventory/future", summary="Record stock expected at a location on a date",
             response_model=models.FutureRecorded,
             responses=problems(403, (404, "No such location or product"),
                                (409, "A quantity is below what pre-orders already reserved "
                                      "of that delivery")))
def post_future(body: FutureBatchIn, tx: WriteTx, _: Integrators) -> Response:
    inventory.record_future(tx.uow, [e.to_domain() for e in body.entries])
    return tx.done({"recorded": len(body.entries)})


@router.get("/v1/availability", summary="On hand, reserved, ATP and future stock per location",
            response_model=models.Availability,
            responses=problems((404, "No such location or product")))
async def get_availability(
    uow: ReadUow,
    _: AnyRole,
    sku: Annotated[list[Annotated[str, Field(pattern=CODE_PATTERN, max_length=64)]],
                   Query(min_length=1, max_length=100)],
    location_id: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=64)] = None,
) -> Response:
    return await in_turn(uow.turn, lambda: answer(
        {"items": inventory.availability(uow, sku, location_id, utcnow())}))
