"""The Order aggregate: its status follows its items, cancelling checks and computes what is
given back, and only what changed is left for its repository to save. No database."""

from __future__ import annotations

import datetime as dt

import pytest

from oms.domain.errors import Conflict, ValidationFailed
from oms.domain.orders import ItemStatus as I
from oms.domain.orders import Order, OrderItem, OrderStatus


def _order(*statuses: I, shipping: int = 500) -> Order:
    now = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    # Lines of 2 x 10.00 less 1.00 discount plus 0.50 tax: 19.50 each.
    items = [OrderItem(id=f"i{n}", line=n, sku=f"SKU-{n}", quantity=2, unit_price_minor=1000,
                       discount_minor=100, tax_minor=50, status=status,
                       location_id="store-1", reservation_id=f"res-{n}"
                       if status in (I.ROUTED, I.IN_FULFILLMENT) else None,
                       fulfillment_request_id="r1")
             for n, status in enumerate(statuses, start=1)]
    return Order(
        id="o1", display_id="O-1", channel="web", external_id=None, request_hash="h",
        status=OrderStatus.ROUTED, historical=False, placed_at=now, currency="EUR",
        customer_id="c1", service_level="standard", carrier=None,
        shipping_price_minor=shipping, pickup_location_id=None, fulfillment_location_id=None,
        shipping_address=None, grand_total_minor=len(items) * 1950 + shipping, version=3,
        created_at=now, updated_at=now, items=items)


def test_a_line_total_is_quantity_times_price_less_discount_plus_tax() -> None:
    assert _order(I.ROUTED).items[0].total_minor == 1950


def test_the_status_follows_the_items_as_they_move() -> None:
    order = _order(I.ROUTED, I.ROUTED)
    assert order.derived_status is OrderStatus.ROUTED
    order.set_item_statuses([("i1", "shipped")])
    assert order.derived_status is OrderStatus.IN_PROGRESS
    order.set_item_statuses([("i2", "shipped")])
    assert order.derived_status is OrderStatus.SHIPPED
    assert order.changed_items == {"i1", "i2"}


def test_cancelling_some_items_gives_back_their_lines_but_not_the_shipping() -> None:
    order = _order(I.ROUTED, I.IN_FULFILLMENT, I.SHIPPED)
    cancelled = order.cancel(["i2"], "customer asked")
    assert cancelled.item_ids == ["i2"]
    assert cancelled.reservation_ids == ["res-2"]
    assert cancelled.refund_minor == 1950
    # Two lines and the shipping are still owed.
    assert cancelled.still_owed_minor == 2 * 1950 + 500
    item = order.item("i2")
    assert (item.status, item.reservation_id, item.hold_reason) == (
        I.CANCELLED, None, "customer asked")
    assert order.changed_items == {"i2"}


def test_cancelling_everything_left_gives_back_the_shipping_too() -> None:
    order = _order(I.ROUTED, I.ON_HOLD)
    cancelled = order.cancel(None, None)  # none named: every open item
    assert cancelled.item_ids == ["i1", "i2"]
    assert cancelled.refund_minor == 2 * 1950 + 500
    assert cancelled.still_owed_minor == 0
    assert order.derived_status is OrderStatus.CANCELLED


def test_unknown_items_are_the_requests_fault_and_departed_ones_the_orders_state() -> None:
    order = _order(I.ROUTED, I.SHIPPED)
    with pytest.raises(ValidationFailed, match="no item 'nope' in this order"):
        order.cancel(["nope"], None)
    with pytest.raises(Conflict, match="item i2 is shipped; it cannot be cancelled"):
        order.cancel(["i2"], None)
    assert order.changed_items == set()  # a refusal changes nothing
    done = _order(I.SHIPPED, I.CANCELLED)
    with pytest.raises(Conflict, match="nothing left to cancel"):
        done.cancel(None, None)


def test_what_departed_is_owed_with_the_shipping_up_to_the_grand_total() -> None:
    order = _order(I.ROUTED, I.SHIPPED)
    assert order.owed_for_departed() == 1950 + 500
    assert _order(I.ROUTED, I.ROUTED).owed_for_departed() == 0
    discounted = _order(I.SHIPPED, I.FULFILLED)
    discounted.grand_total_minor = 3000  # an order-level discount
    assert discounted.owed_for_departed() == 3000


def test_items_put_on_hold_lose_their_place_and_say_why() -> None:
    order = _order(I.ROUTED, I.IN_FULFILLMENT)
    order.hold(["i2"], "rejected by store-1: " + "x" * 400)
    item = order.item("i2")
    assert (item.status, item.location_id, item.reservation_id,
            item.fulfillment_request_id) == (I.ON_HOLD, None, None, None)
    assert item.hold_reason is not None
    assert len(item.hold_reason) == 300
    assert order.derived_status is OrderStatus.ON_HOLD
