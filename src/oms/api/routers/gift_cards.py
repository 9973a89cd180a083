"""The retailer's gift cards: issued with a balance (by its systems: admin and integrator
keys), looked up by code at any till, spent toward store carts (`POST
/v1/carts/{id}/payments` with `"method": "gift_card"`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from oms.api import models
from oms.api.deps import Integrators, ReadUow, Staff
from oms.api.openapi import answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx
from oms.schemas import GiftCardIn
from oms.services import checkout

router = APIRouter(prefix="/v1/gift-cards", tags=["carts"], route_class=JsonBodyRoute)
Code = Annotated[str, Path(max_length=32, description="The gift card's code")]


@router.post("", status_code=201, summary="Issue a gift card with a balance",
             response_model=models.GiftCard,
             responses=problems(403, (409, "A gift card has this code already")))
def post_gift_card(body: GiftCardIn, tx: WriteTx, caller: Integrators) -> Response:
    return tx.done(checkout.issue_gift_card(tx.uow, caller, body), status=201)


@router.get("/{code}", summary="A gift card and its balance", response_model=models.GiftCard,
            responses=problems(404))
def get_gift_card(code: Code, uow: ReadUow, _: Staff) -> Response:
    return answer(checkout.gift_card(uow, code))
