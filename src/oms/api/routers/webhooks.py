"""Webhook subscriptions, their delivery log, and replay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ConfigDict, Field, field_validator, model_validator

from oms.adapters.db.event_repositories import parse_event_id
from oms.api import models
from oms.api.deps import (
    CursorParam,
    Integrators,
    Limit,
    ReadUow,
    decode_any_cursor,
    encode_cursor,
)
from oms.api.openapi import LOCATION, answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx
from oms.domain.errors import FieldError, ValidationFailed
from oms.domain.webhooks import TYPE_PATTERNS, DeliveryStatus, SubscriptionStatus
from oms.schemas import HTTP_URL_PATTERN, EventId, Strict, may_be_left_out, refuse_null
from oms.services import webhooks
from oms.services.webhooks import deliveries_out, subscription_out

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=JsonBodyRoute)
Url = Annotated[str, Field(min_length=1, max_length=2000, examples=["https://erp.example/oms"],
                           json_schema_extra={"pattern": HTTP_URL_PATTERN})]
EventTypes = Annotated[
    list[Annotated[str, Field(max_length=64, json_schema_extra={"enum": list(TYPE_PATTERNS)})]],
    Field(min_length=1, max_length=100, json_schema_extra={"uniqueItems": True},
          description="Event types, all events of one kind like `order.*`, or `*`")]


class SubscriptionIn(Strict):
    url: Url
    event_types: EventTypes
    description: Annotated[str, Field(max_length=500)] | None = None


class SubscriptionPatch(Strict):
    # Left out: unchanged. Only the description can be cleared with null.
    url: Url | None = Field(default=None, json_schema_extra=may_be_left_out)
    event_types: EventTypes | None = Field(default=None, json_schema_extra=may_be_left_out)
    description: Annotated[str, Field(max_length=500)] | None = None
    paused: bool | None = Field(default=None, json_schema_extra=may_be_left_out)


class ReplayIn(Strict):
    model_config = ConfigDict(json_schema_extra={
        "oneOf": [{"required": ["after"]}, {"required": ["event_ids"]}]})

    after: EventId | None = Field(default=None, json_schema_extra=may_be_left_out,
                                  description="Every subscribed event after this event id")
    event_ids: Annotated[list[EventId], Field(
        min_length=1, max_length=1000, json_schema_extra={"uniqueItems": True})
    ] | None = Field(default=None, json_schema_extra=may_be_left_out)

    _not_null = field_validator("after", "event_ids", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _one_of(self) -> ReplayIn:
        if (self.after is None) == (self.event_ids is None):
            raise ValueError("give either after or event_ids")
        if self.event_ids is not None and len(set(self.event_ids)) != len(self.event_ids):
            raise ValueError("an event is listed twice")
        return self


def _transport(request: Request) -> Any:
    return request.app.state.webhook_transport


def _allow_private(request: Request) -> bool:
    return bool(request.app.state.settings.egress_allow_private)


@router.post("", status_code=201, summary="Subscribe; the answer shows the secret, once",
             response_model=models.NewSubscription,
             responses={201: {"headers": LOCATION}, **problems(403)})
def create(body: SubscriptionIn, request: Request, tx: WriteTx, _: Integrators) -> Response:
    # The host is looked up before the transaction begins.
    target = webhooks.check_target(body.url, _transport(request), _allow_private(request))
    result = webhooks.create(tx.uow, target, body.event_types, body.description)
    return tx.done(result, status=201, headers={"location": f"/v1/webhooks/{result['id']}"})


@router.get("", summary="Subscriptions", response_model=models.SubscriptionPage,
            responses=problems(403))
def list_subscriptions(uow: ReadUow, _: Integrators,
                       status: Annotated[SubscriptionStatus | None, Query()] = None,
                       cursor: CursorParam = None, limit: Limit = 50) -> Response:
    after = None
    if cursor is not None:
        after = decode_any_cursor(cursor)
        if not isinstance(after, str) or len(after) > 36:
            raise ValidationFailed("the cursor is not one this API issued",
                                   [FieldError("cursor", "malformed")])
    rows = uow.webhooks.page(after=after, limit=limit + 1,
                             status=status.value if status else None)
    more = len(rows) > limit
    rows = rows[:limit]
    return answer({"items": [subscription_out(r) for r in rows],
                   "next_cursor": encode_cursor(rows[-1]["id"]) if more else None})


@router.get("/{subscription_id}", summary="A subscription", response_model=models.Subscription,
            responses=problems(403, 404))
def get(subscription_id: str, uow: ReadUow, _: Integrators) -> Response:
    return answer(webhooks.get(uow, subscription_id))


@router.patch("/{subscription_id}", summary="Change url or types; pause or resume",
              response_model=models.Subscription, responses=problems(403, 404))
def patch(subscription_id: str, body: SubscriptionPatch, request: Request, tx: WriteTx,
          _: Integrators) -> Response:
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "event_types", "paused"):
        if name in changes and changes[name] is None:
            raise ValidationFailed(f"{name} cannot be null", [FieldError(name, "null")])
    target = (webhooks.check_target(changes["url"], _transport(request),
                                    _allow_private(request)) if "url" in changes else None)
    return tx.done(webhooks.change(tx.uow, subscription_id, changes, target))


@router.delete("/{subscription_id}", status_code=204, summary="Unsubscribe",
               responses=problems(403, 404))
def delete(subscription_id: str, tx: WriteTx, _: Integrators) -> Response:
    webhooks.delete(tx.uow, subscription_id)
    return tx.done(None, status=204)


@router.post("/{subscription_id}/rotate-secret",
             summary="A new secret; the old one signs alongside it for 24 h",
             response_model=models.RotatedSecret, responses=problems(403, 404))
def rotate_secret(subscription_id: str, tx: WriteTx, _: Integrators) -> Response:
    return tx.done(webhooks.rotate_secret(tx.uow, subscription_id))


@router.get("/{subscription_id}/deliveries",
            summary="Each event's delivery with its attempts, newest event first",
            response_model=models.DeliveryPage, responses=problems(403, 404))
def deliveries(subscription_id: str, uow: ReadUow, _: Integrators,
               status: Annotated[DeliveryStatus | None, Query()] = None,
               cursor: CursorParam = None, limit: Limit = 50) -> Response:
    webhooks.get(uow, subscription_id)
    before = None
    if cursor is not None:
        value = decode_any_cursor(cursor)
        try:
            before = parse_event_id(value) if isinstance(value, str) else None
        except ValueError:
            before = None
        if before is None:
            raise ValidationFailed("the cursor is not one this API issued",
                                   [FieldError("cursor", "malformed")])
    rows = uow.webhooks.deliveries(subscription_id, status=status.value if status else None,
                                   before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = deliveries_out(uow, rows)
    return answer({"items": items, "next_cursor": encode_cursor(items[-1]["event_id"])
                   if more else None})


@router.post("/{subscription_id}/replay", status_code=202,
             summary="Deliver events again: those after an event id, or those named",
             response_model=models.Replayed,
             responses=problems(403, 404, (409, "An event named is of a type the subscription "
                                                "does not take")))
def replay(subscription_id: str, body: ReplayIn, tx: WriteTx, _: Integrators) -> Response:
    return tx.done(webhooks.replay(tx.uow, subscription_id, body.after, body.event_ids),
                   status=202)
