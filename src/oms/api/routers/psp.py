"""What PSPs tell the OMS: the outcome of a payment link a customer was sent. A PSP holds
no API key: its notification is signed with the secret `OMS_PSP_NOTIFICATION_SECRETS` gives
its code (HMAC-SHA256 of the body, hex, in `X-Oms-Signature`), and one that is not is 401."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Path, Request, Response
from pydantic import Field, ValidationError

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api import models
from oms.api.openapi import answer, problems
from oms.api.problems import problem
from oms.domain.errors import FieldError, ValidationFailed
from oms.domain.events import utcnow
from oms.schemas import Strict
from oms.services import checkout

router = APIRouter(tags=["payments"])
SIGNATURE = "x-oms-signature"


class NotificationIn(Strict):
    reference: str = Field(min_length=1, max_length=128,
                           description="The payment link's reference, as the PSP gave it")
    status: Literal["authorized", "refused"]


@router.post(
    "/v1/psp/{psp}/notifications", summary="A PSP tells whether a payment link was paid",
    response_model=models.NotificationResult,
    responses=problems((401, "No signature, or not the PSP's"), (404, "No such payment link")),
    openapi_extra={
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": NotificationIn.model_json_schema()}}},
        "parameters": [{"name": "X-Oms-Signature", "in": "header", "required": True,
                        "schema": {"type": "string", "maxLength": 128},
                        "description": "Hex HMAC-SHA256 of the body with the PSP's secret"}],
    })
async def post_notification(
        psp: Annotated[str, Path(max_length=64, description="The PSP's code")],
        request: Request) -> Response:
    body = await request.body()
    secret = request.app.state.settings.psp_notification_secrets.get(psp)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() if secret else None
    given = request.headers.get(SIGNATURE, "").strip().lower()
    if expected is None or not hmac.compare_digest(expected, given):
        return problem("unauthorized", f"the notification is not signed with {psp}'s secret",
                       instance=request.url.path)
    try:
        notification = NotificationIn.model_validate_json(body)
    except ValidationError as exc:
        raise ValidationFailed("the notification is not valid", [
            FieldError(".".join(str(x) for x in e["loc"]) or "body", e["msg"])
            for e in exc.errors()]) from exc
    engine, providers = request.app.state.engine, request.app.state.providers

    def settle() -> str:
        with UnitOfWork(engine) as uow:
            return checkout.link_notified(uow, providers, psp, notification.reference,
                                          notification.status == "authorized", utcnow())

    return answer({"result": await anyio.to_thread.run_sync(settle)})
