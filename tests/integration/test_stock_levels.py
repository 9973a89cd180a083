"""Stock levels set in batches: a row without safety_stock keeps the stored one."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.events import utcnow
from tests.integration.seed import seed_stock


def _stored(engine: Engine) -> dict[tuple[str, str], tuple[int, int]]:
    with UnitOfWork(engine, read_only=True) as uow:
        return {(lvl.location_id, lvl.sku): (lvl.on_hand, lvl.safety_stock)
                for lvl in uow.stock.levels(["A", "B", "C"])}


@pytest.mark.parametrize("add", [False, True])
def test_a_batch_mixing_rows_with_and_without_safety_stock(engine: Engine, add: bool) -> None:
    seed_stock(engine, {("berlin", "A"): 10, ("berlin", "B"): 10, ("berlin", "C"): 0},
               safety_stock=3)
    rows = [{"location_id": "berlin", "sku": "A", "on_hand": 4},
            {"location_id": "berlin", "sku": "B", "on_hand": 5, "safety_stock": 1},
            {"location_id": "berlin", "sku": "C", "on_hand": 6}]
    with UnitOfWork(engine) as uow:
        changed = uow.stock.set_levels(rows, utcnow(), add=add)
        uow.commit()
    on_hand = {"A": 14, "B": 15, "C": 6} if add else {"A": 4, "B": 5, "C": 6}
    expected = {("berlin", "A"): (on_hand["A"], 3), ("berlin", "B"): (on_hand["B"], 1),
                ("berlin", "C"): (on_hand["C"], 3)}
    assert _stored(engine) == expected
    # The answer is what was stored, one version further.
    assert {key: (v.level.on_hand, v.level.safety_stock) for key, v in changed.items()} == (
        expected)
    assert {v.version for v in changed.values()} == {2}
