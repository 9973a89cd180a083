"""When the worker looks again at an order on hold (domain.holds)."""

from __future__ import annotations

import datetime as dt

from oms.domain.holds import FIRST_WAIT, LONGEST_WAIT, HeldItem, inputs_digest, is_due, next_wait

ITEMS = [HeldItem("i1", "A", 2), HeldItem("i2", "B", 1)]
NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


def digest(items: list[HeldItem] = ITEMS, rises: dict[str, int] | None = None,
           locations: str = "2:7", rules: str = "0:") -> str:
    return inputs_digest(items, {"A": 3, "B": 0} if rises is None else rises, locations, rules)


def test_the_digest_changes_with_everything_routing_reads_and_nothing_else() -> None:
    seen = digest()
    assert digest(list(reversed(ITEMS))) == seen
    assert digest(rises={"A": 3, "B": 0, "C": 9}) == seen  # a sku no item waits for
    assert digest(rises={"A": 4, "B": 0}) != seen
    assert digest(rises={"A": 3}) == seen  # a sku with no stock row rose 0 times
    assert digest(locations="3:8") != seen
    assert digest(rules="1:2026-11-29T12:00:00+00:00") != seen
    assert digest([HeldItem("i1", "A", 2)]) != seen
    assert digest([HeldItem("i1", "A", 1), HeldItem("i2", "B", 1)]) != seen


def test_an_order_is_due_when_its_inputs_changed_or_its_wait_is_over() -> None:
    assert is_due(None, "x", None, NOW)
    assert not is_due("x", "x", NOW + FIRST_WAIT, NOW)
    assert is_due("x", "x", NOW, NOW)
    assert is_due("x", "y", NOW + LONGEST_WAIT, NOW)


def test_the_wait_doubles_while_nothing_changes_up_to_an_hour() -> None:
    waits = [next_wait(None, changed=False)]
    for _ in range(8):
        waits.append(next_wait(waits[-1], changed=False))
    assert [w // dt.timedelta(minutes=1) for w in waits] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert next_wait(LONGEST_WAIT, changed=True) == FIRST_WAIT
