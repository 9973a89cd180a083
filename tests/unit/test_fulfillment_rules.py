"""The fulfilment state machine and what an order's status becomes as its items move on."""

from __future__ import annotations

import pytest

from oms.domain.errors import InvalidState
from oms.domain.fulfillment import RequestStatus as S
from oms.domain.fulfillment import RequestType as T
from oms.domain.fulfillment import Step, next_status, request_type
from oms.domain.locations import LocationType
from oms.domain.orders import ItemStatus as I
from oms.domain.orders import OrderStatus, derive_status


@pytest.mark.parametrize(("kind", "path"), [
    (T.SHIP_FROM_STORE, [(Step.ACCEPT, S.ACCEPTED), (Step.PICK, S.PICKED),
                         (Step.PACK, S.PACKED), (Step.SHIP, S.SHIPPED)]),
    (T.PICKUP, [(Step.ACCEPT, S.ACCEPTED), (Step.PICK, S.PICKED),
                (Step.READY_FOR_PICKUP, S.READY_FOR_PICKUP), (Step.HAND_OVER, S.PICKED_UP)]),
    (T.THIRD_PARTY, [(Step.ACKNOWLEDGE, S.ACKNOWLEDGED), (Step.SHIPMENTS, S.SHIPPED)]),
])
def test_each_type_walks_its_own_path(kind: T, path: list[tuple[Step, S]]) -> None:
    status = S.ISSUED
    for step, expected in path:
        status = next_status(kind, status, step)
        assert status is expected


def test_a_step_out_of_turn_is_an_invalid_state() -> None:
    with pytest.raises(InvalidState, match="the request is issued; pack needs it to be picked"):
        next_status(T.SHIP_FROM_STORE, S.ISSUED, Step.PACK)
    with pytest.raises(InvalidState):
        next_status(T.SHIP_FROM_STORE, S.SHIPPED, Step.ACCEPT)


def test_a_step_of_another_type_is_refused_naming_the_steps_it_has() -> None:
    # The request is well formed: the request it names is of a type without that step.
    with pytest.raises(InvalidState, match="a pickup request has no ship step"):
        next_status(T.PICKUP, S.PACKED, Step.SHIP)
    with pytest.raises(InvalidState, match="acknowledge"):
        next_status(T.SHIP_FROM_STORE, S.ISSUED, Step.ACKNOWLEDGE)


def test_a_provider_may_ship_without_acknowledging() -> None:
    assert next_status(T.THIRD_PARTY, S.ISSUED, Step.SHIPMENTS) is S.SHIPPED
    assert next_status(T.THIRD_PARTY, S.PARTIALLY_SHIPPED, Step.SHIPMENTS) is S.SHIPPED


def test_the_request_type_follows_the_location_and_service_level() -> None:
    assert request_type(LocationType.STORE, "standard") is T.SHIP_FROM_STORE
    assert request_type(LocationType.STORE, "pickup") is T.PICKUP
    assert request_type(LocationType.DC, "express") is T.THIRD_PARTY
    assert request_type(LocationType.THREE_PL, None) is T.THIRD_PARTY


@pytest.mark.parametrize(("items", "order"), [
    ([I.ROUTED, I.ROUTED], OrderStatus.ROUTED),
    ([I.IN_FULFILLMENT, I.ROUTED], OrderStatus.IN_PROGRESS),
    ([I.SHIPPED, I.IN_FULFILLMENT], OrderStatus.IN_PROGRESS),
    ([I.SHIPPED, I.DELIVERED], OrderStatus.SHIPPED),
    ([I.SHIPPED, I.CANCELLED], OrderStatus.SHIPPED),
    ([I.DELIVERED, I.FULFILLED, I.CANCELLED], OrderStatus.FULFILLED),
    ([I.SHIPPED, I.ON_HOLD], OrderStatus.ON_HOLD),
    ([I.CANCELLED], OrderStatus.CANCELLED),
])
def test_the_order_status_follows_its_items(items: list[I], order: OrderStatus) -> None:
    assert derive_status(items) is order
