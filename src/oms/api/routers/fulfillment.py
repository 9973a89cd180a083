"""Fulfilment requests (a location's work queue and its steps) and shipments."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from oms.adapters.carriers import Parcel
from oms.api import models
from oms.api.deps import (
    AnyRole,
    CursorParam,
    Integrators,
    Limit,
    ReadUow,
    decode_any_cursor,
    encode_cursor,
    require,
)
from oms.api.openapi import answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx
from oms.domain.access import Principal, Role
from oms.domain.errors import FieldError, NotFound, ValidationFailed
from oms.domain.events import utcnow
from oms.domain.fulfillment import (
    TRACKING_STATUSES,
    RequestStatus,
    RequestType,
    ShipmentStatus,
)
from oms.schemas import AsValue, Strict, UtcTime
from oms.services import fulfillment
from oms.services.fulfillment import Context
from oms.services.views import request_out, shipment_out

router = APIRouter(tags=["fulfillment"], route_class=JsonBodyRoute)
#: Store steps: the location's own staff, or an admin.
StoreStaff = Annotated[Principal, Depends(require(Role.ADMIN, Role.MANAGER, Role.ASSOCIATE))]
#: Anyone who may say a location cannot fulfil: its staff, its provider, an admin.
Rejecters = Annotated[Principal, Depends(
    require(Role.ADMIN, Role.INTEGRATOR, Role.MANAGER, Role.ASSOCIATE))]
ItemId = Annotated[str, Field(min_length=1, max_length=36)]
Reason = Annotated[str, Field(min_length=1, max_length=300)]


def _distinct(items: list[str]) -> list[str]:
    if len(items) != len(set(items)):
        raise ValueError("an item is listed twice")
    return items


ItemIds = Annotated[list[ItemId], AfterValidator(_distinct),
                    Field(json_schema_extra={"uniqueItems": True})]


#: What a carrier may report, in the order a parcel goes through them.
TRACKING_VALUES = [s.value for s in ShipmentStatus if s in TRACKING_STATUSES]


def _reported_by_carriers(value: Any) -> Any:
    if value not in TRACKING_VALUES:
        raise ValueError(f"must be one of {', '.join(TRACKING_VALUES)} (created is the OMS's "
                         "own status of a shipment it booked)")
    return value


TrackingStatus = Annotated[ShipmentStatus, AsValue, BeforeValidator(_reported_by_carriers),
                           WithJsonSchema({"type": "string", "enum": TRACKING_VALUES})]


def _context(request: Request, actor: Principal) -> Context:
    settings = request.app.state.settings
    return Context(actor, request.app.state.providers, settings.default_carrier,
                   settings.default_parcel_weight_grams)


#: The errors of a step of a request.
STEP_ERRORS = problems(403, 404, (409, "The request is not in a status this step starts from, "
                                        "is of a type without this step, or cannot take the "
                                        "items named as it is now (one has left it, or none "
                                        "would be left)"))


class PickIn(Strict):
    missing: ItemIds = Field(default_factory=list, max_length=500, description=(
        "Items that could not be found: they are rejected and routed elsewhere"))
    reason: Reason | None = None


class ParcelIn(Strict):
    weight_grams: int = Field(ge=1, le=1_000_000)
    length_mm: int | None = Field(default=None, ge=1, le=10_000)
    width_mm: int | None = Field(default=None, ge=1, le=10_000)
    height_mm: int | None = Field(default=None, ge=1, le=10_000)


class PackIn(Strict):
    parcels: list[ParcelIn] | None = Field(default=None, min_length=1, max_length=50,
                                           description="None: one parcel of the default weight")


class ShipIn(Strict):
    carrier: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="None: the order's carrier, else the default one")


class HandOverIn(Strict):
    collected_by: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Who collected it; None: the customer")


class RejectIn(Strict):
    items: ItemIds = Field(default_factory=list, max_length=500,
                                description="None: every item the request still has")
    reason: Reason


class ShipmentIn(Strict):
    items: ItemIds = Field(default_factory=list, max_length=500,
                                description="None: every item the request still has")
    carrier: Annotated[str, Field(min_length=1, max_length=64)]
    tracking_number: Annotated[str, Field(min_length=1, max_length=100)]
    tracking_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://[^\x00]*$")
                            ] | None = None


class TrackingEventIn(Strict):
    status: TrackingStatus
    occurred_at: UtcTime
    description: Annotated[str, Field(max_length=500)] | None = None
    place: Annotated[str, Field(max_length=200)] | None = None


def _queue_cursor(cursor: str | None) -> tuple[int, dt.datetime, str] | None:
    if cursor is None:
        return None
    try:
        rank, placed_at, request_id = decode_any_cursor(cursor)
        when = dt.datetime.fromisoformat(placed_at)
        # Only the ranks queue_rank gives: a forged one (true, 2**63) must not reach the query.
        if (type(rank) is not int or rank not in (0, 1, 2) or when.tzinfo is None
                or not isinstance(request_id, str) or len(request_id) > 36):
            raise ValueError("not a cursor of this list")
        return rank, when, request_id
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("the cursor is not one this API issued",
                               [FieldError("cursor", "malformed")]) from exc


@router.get("/v1/fulfillment-requests",
            summary="A work queue: pre-orders whose stock is due first, then oldest orders",
            response_model=models.FulfillmentRequestPage,
            responses=problems((403, "The key is not allowed at this location")))
def list_requests(
    uow: ReadUow,
    principal: AnyRole,
    location_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[RequestStatus | None, Query()] = None,
    type: Annotated[RequestType | None, Query()] = None,
    order_id: Annotated[str | None, Query(max_length=36)] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Response:
    location_ids: list[str] | None = None
    if location_id is not None:
        principal.require_at(location_id)
        location_ids = [location_id]
    rows = uow.fulfillment.page(
        now=utcnow(), after=_queue_cursor(cursor), limit=limit + 1,
        location_ids=location_ids, status=status.value if status else None,
        type=type.value if type else None, order_id=order_id)
    more = len(rows) > limit
    rows = rows[:limit]
    return answer({"items": _requests_out(uow, rows),
                   "next_cursor": encode_cursor([rows[-1]["queue_rank"],
                                                 rows[-1]["placed_at"].isoformat(),
                                                 rows[-1]["id"]])
                   if more else None})


def _requests_out(uow: ReadUow, rows: list[Any]) -> list[dict[str, Any]]:
    currencies = uow.orders.currencies(sorted({r["order_id"] for r in rows}))
    return [request_out(r, currencies[r.order_id]) for r in uow.fulfillment.assemble(rows)]


@router.get("/v1/fulfillment-requests/{request_id}",
            summary="A fulfilment request with its items and shipments",
            response_model=models.FulfillmentRequestDetail, responses=problems(404))
def get_request(request_id: str, uow: ReadUow, _: AnyRole) -> Response:
    row = uow.fulfillment.get(request_id)
    if row is None:
        raise NotFound(f"no fulfillment request {request_id!r}")
    body = _requests_out(uow, [row])[0]
    shipments = uow.fulfillment.shipments(request_ids=[row["id"]])
    tracking = uow.fulfillment.tracking([s["id"] for s in shipments])
    body["shipments"] = [shipment_out(s, [e for e in tracking if e["shipment_id"] == s["id"]])
                         for s in shipments]
    return answer(body)


@router.post("/v1/fulfillment-requests/{request_id}/accept",
             summary="A store takes the request on",
             response_model=models.FulfillmentRequest, responses=STEP_ERRORS)
def accept(request_id: str, request: Request, tx: WriteTx, actor: StoreStaff) -> Response:
    return tx.done(fulfillment.accept(tx.uow, _context(request, actor), request_id))


@router.post("/v1/fulfillment-requests/{request_id}/pick",
             summary="The items are picked; missing ones are rejected and routed elsewhere",
             response_model=models.FulfillmentRequest, responses=STEP_ERRORS)
def pick(request_id: str, body: PickIn, request: Request, tx: WriteTx, actor: StoreStaff
         ) -> Response:
    return tx.done(fulfillment.pick(tx.uow, _context(request, actor), request_id,
                                    body.missing, body.reason))


@router.post("/v1/fulfillment-requests/{request_id}/pack", summary="Packed into parcels",
             response_model=models.FulfillmentRequest, responses=STEP_ERRORS)
def pack(request_id: str, body: PackIn, request: Request, tx: WriteTx, actor: StoreStaff
         ) -> Response:
    parcels = [Parcel(**p.model_dump()) for p in body.parcels] if body.parcels else None
    return tx.done(fulfillment.pack(tx.uow, _context(request, actor), request_id, parcels))


@router.post("/v1/fulfillment-requests/{request_id}/ship",
             summary="Send it on its way: the shipment with its tracking number and label",
             description=(
                 "The carrier is booked once the step has committed, holding no lock; the "
                 "answer waits for that booking and shows its label. If the carrier cannot "
                 "be reached in time the shipment's `label_status` is `pending` and the "
                 "worker books it: read it again with `GET /v1/shipments/{id}`. A refused "
                 "booking is `failed`, with the carrier's reason in `label_error`; book it "
                 "again with `POST /v1/shipments/{id}/label`."),
             response_model=models.ShippedRequest, responses=STEP_ERRORS)
def ship(request_id: str, body: ShipIn, request: Request, tx: WriteTx, actor: StoreStaff
         ) -> Response:
    result = fulfillment.ship(tx.uow, _context(request, actor), request_id, body.carrier)
    shipment_id = result["shipment"]["id"]
    # The booking changes the shipment only: the request is as the step left it.
    return tx.done(result, refresh=lambda uow: {
        **result, "shipment": fulfillment.shipment_view(uow, shipment_id)})


@router.post("/v1/fulfillment-requests/{request_id}/ready-for-pickup",
             summary="Ready at the store; the customer is told",
             response_model=models.FulfillmentRequest, responses=STEP_ERRORS)
def ready_for_pickup(request_id: str, request: Request, tx: WriteTx, actor: StoreStaff
                     ) -> Response:
    return tx.done(fulfillment.ready_for_pickup(tx.uow, _context(request, actor), request_id))


@router.post("/v1/fulfillment-requests/{request_id}/hand-over",
             summary="The customer collected the items",
             response_model=models.FulfillmentRequest, responses=STEP_ERRORS)
def hand_over(request_id: str, body: HandOverIn, request: Request, tx: WriteTx,
              actor: StoreStaff) -> Response:
    return tx.done(fulfillment.hand_over(tx.uow, _context(request, actor), request_id,
                                         body.collected_by))


@router.post("/v1/fulfillment-requests/{request_id}/acknowledge",
             summary="A DC or 3PL confirms it has the request",
             response_model=models.FulfillmentRequest, responses=STEP_ERRORS)
def acknowledge(request_id: str, request: Request, tx: WriteTx, actor: Integrators
                ) -> Response:
    return tx.done(fulfillment.acknowledge(tx.uow, _context(request, actor), request_id))


@router.post("/v1/fulfillment-requests/{request_id}/shipments", status_code=201,
             summary="A DC or 3PL reports a shipment of some or all items",
             response_model=models.ShippedRequest, responses=STEP_ERRORS)
def report_shipment(request_id: str, body: ShipmentIn, request: Request, tx: WriteTx,
                    actor: Integrators) -> Response:
    return tx.done(fulfillment.report_shipment(
        tx.uow, _context(request, actor), request_id, body.items, body.carrier,
        body.tracking_number, body.tracking_url), status=201)


@router.post("/v1/fulfillment-requests/{request_id}/reject",
             summary="The location cannot fulfil these items: they are routed elsewhere",
             response_model=models.FulfillmentRequest, responses=STEP_ERRORS)
def reject(request_id: str, body: RejectIn, request: Request, tx: WriteTx, actor: Rejecters
           ) -> Response:
    return tx.done(fulfillment.reject(tx.uow, _context(request, actor), request_id,
                                      body.items, body.reason))


@router.get("/v1/shipments/{shipment_id}", summary="A shipment with its tracking history",
            response_model=models.Shipment, responses=problems(404))
def get_shipment(shipment_id: str, uow: ReadUow, _: AnyRole) -> Response:
    shipment = uow.fulfillment.shipment(shipment_id)
    if shipment is None:
        raise NotFound(f"no shipment {shipment_id!r}")
    return answer(shipment_out(shipment, uow.fulfillment.tracking([shipment_id]),
                               with_label=True))


@router.post("/v1/shipments/{shipment_id}/label",
             summary="Book the carrier again after it refused (another carrier if named)",
             response_model=models.Shipment,
             responses=problems(403, 404, (409, "The carrier did not refuse the booking")))
def book_label(shipment_id: str, body: ShipIn, request: Request, tx: WriteTx,
               actor: StoreStaff) -> Response:
    result = fulfillment.book_label_again(tx.uow, _context(request, actor), shipment_id,
                                          body.carrier)
    return tx.done(result, refresh=lambda uow: fulfillment.shipment_view(uow, shipment_id))


@router.post("/v1/shipments/{shipment_id}/tracking-events",
             summary="A carrier's status update (for its webhooks)",
             response_model=models.Shipment, responses=problems(403, 404))
def post_tracking_event(shipment_id: str, body: TrackingEventIn, tx: WriteTx, _: Integrators
                        ) -> Response:
    return tx.done(fulfillment.record_tracking(
        tx.uow, shipment_id, body.status, body.occurred_at.astimezone(dt.UTC),
        body.description, body.place))
