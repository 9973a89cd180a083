"""The fulfilment state machine and what an order's status becomes as its items move on."""

from __future__ import annotations

import datetime as dt

import pytest

from oms.domain.errors import Conflict, InvalidState, ValidationFailed
from oms.domain.fulfillment import (
    FulfillmentRequest,
    LinkStatus,
    RequestItem,
    Step,
    next_status,
    request_type,
)
from oms.domain.fulfillment import RequestStatus as S
from oms.domain.fulfillment import RequestType as T
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


def _request(kind: T = T.SHIP_FROM_STORE, status: S = S.ISSUED, *,
             waiting_for_stock: bool = False) -> FulfillmentRequest:
    now = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    return FulfillmentRequest(
        id="r1", order_id="o1", location_id="store-1", type=kind, status=status,
        placed_at=now, available_on=None, carrier=None, parcels=None, collected_by=None,
        reason=None, ready_at=None, version=1, created_at=now, updated_at=now,
        items=[RequestItem(item_id=f"i{n}", line=n, sku=f"SKU-{n}", quantity=1,
                           status=LinkStatus.OPEN, reason=None, shipment_id=None,
                           item_status="routed", reservation_id=f"res-{n}", value_minor=1000,
                           stock_expected_on=dt.date(2026, 12, 24)
                           if waiting_for_stock and n == 1 else None)
               for n in (1, 2, 3)])


def test_a_step_moves_the_request_and_its_open_items_on_and_remembers_what_changed() -> None:
    request = _request()
    changes = request.step(Step.ACCEPT, I.IN_FULFILLMENT)
    assert request.status is S.ACCEPTED
    assert changes == [("i1", "in_fulfillment"), ("i2", "in_fulfillment"),
                       ("i3", "in_fulfillment")]
    assert [x.item_status for x in request.items] == ["in_fulfillment"] * 3
    # Only what changed is saved: the status, not the items' part in the request.
    assert request.changed == {"status": "accepted"}
    assert request.changed_items == set()


def test_rejecting_some_items_keeps_the_request_and_rejecting_the_rest_rejects_it() -> None:
    request = _request(status=S.ACCEPTED)
    rejected = request.reject(["i2"], "damaged")
    assert [x.item_id for x in rejected] == ["i2"]
    assert request.status is S.ACCEPTED
    assert [x.item_id for x in request.open_items] == ["i1", "i3"]
    rejected = request.reject([], "store closed")  # none named: all it still has
    assert [x.item_id for x in rejected] == ["i1", "i3"]
    assert request.status is S.REJECTED
    assert request.reason == "store closed"
    assert request.changed_items == {"i1", "i2", "i3"}


def test_items_named_must_be_the_requests_and_still_open() -> None:
    request = _request(status=S.ACCEPTED)
    request.reject(["i1"], "damaged")
    with pytest.raises(ValidationFailed, match="item 'nope' is not in this request"):
        request.reject(["nope"], "x")
    with pytest.raises(ValidationFailed, match="an item is listed twice"):
        request.reject(["i2", "i2"], "x")
    with pytest.raises(Conflict, match="item i1 is rejected in this request"):
        request.reject(["i1"], "x")


def test_a_pick_must_leave_something_to_pick() -> None:
    request = _request(status=S.ACCEPTED)
    with pytest.raises(Conflict, match="every item is missing"):
        request.reject_missing(["i1", "i2", "i3"], "missing at pick")
    assert request.open_items == request.items  # nothing was changed by the refusal
    with pytest.raises(InvalidState, match="pick needs it to be accepted"):
        _request().reject_missing(["i1"], "missing at pick")


def test_shipping_sends_every_open_item_in_one_shipment() -> None:
    request = _request(status=S.PACKED)
    request.reject(["i3"], "damaged")
    left = request.ship("ship-1", "dhl")
    assert [(x.item_id, x.item_status) for x in left] == [("i1", "shipped"), ("i2", "shipped")]
    assert request.status is S.SHIPPED
    assert request.carrier == "dhl"
    assert [(x.status, x.shipment_id) for x in request.items] == [
        (LinkStatus.SHIPPED, "ship-1"), (LinkStatus.SHIPPED, "ship-1"),
        (LinkStatus.REJECTED, None)]


def test_a_pre_order_cannot_leave_before_its_stock() -> None:
    request = _request(status=S.PACKED, waiting_for_stock=True)
    with pytest.raises(Conflict, match="SKU-1 \\(expected 2026-12-24\\)"):
        request.ship("ship-1", "dhl")
    assert request.status is S.PACKED


def test_a_provider_ships_in_parts_and_the_last_part_ships_the_request() -> None:
    request = _request(T.THIRD_PARTY)
    left = request.report_shipment(["i1"], "ship-1", "ups")
    assert [x.item_id for x in left] == ["i1"]
    assert request.status is S.PARTIALLY_SHIPPED
    # The items leave as the provider listed them.
    left = request.report_shipment(["i3", "i2"], "ship-2", "ups")
    assert [x.item_id for x in left] == ["i3", "i2"]
    assert request.status is S.SHIPPED
    assert [x.shipment_id for x in request.items] == ["ship-1", "ship-2", "ship-2"]


def test_withdrawing_the_last_open_items_cancels_the_request() -> None:
    request = _request(T.PICKUP, S.READY_FOR_PICKUP)
    request.withdraw(["i1"], LinkStatus.CANCELLED, "customer changed mind")
    assert request.status is S.READY_FOR_PICKUP
    request.withdraw(["i2", "i3"], LinkStatus.CANCELLED, "not collected")
    assert request.status is S.CANCELLED
    assert request.reason == "not collected"
