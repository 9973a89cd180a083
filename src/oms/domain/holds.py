"""When the worker looks again at an order on hold.

Routing an item on hold can only come out differently when something it reads changes: the
ATP of its sku rising somewhere (on_hand up, a reservation released, safety stock down, a
delivery of future stock added or grown), a location created or changed, the routing rules,
or the items waiting. Each of these leaves a trace that costs little to read (a counter per
stock row, the locations' versions, the rules' update time), and `inputs_digest` folds the
ones an order depends on into one value: while it is what the worker saw at its last look,
there is nothing new to route on.

Even so, an order is looked at again now and then, after a wait that doubles with each look
that changes nothing, from FIRST_WAIT up to LONGEST_WAIT: a safety net, not the way stock
reaches it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FIRST_WAIT = dt.timedelta(minutes=1)
LONGEST_WAIT = dt.timedelta(hours=1)


@dataclass(frozen=True)
class HeldItem:
    item_id: str
    sku: str
    quantity: int


def inputs_digest(items: Sequence[HeldItem], atp_rises: Mapping[str, int], locations: str,
                  rules: str) -> str:
    """One value for what routing these items on hold reads: it changes when their skus'
    ATP rose anywhere, a location or the rules changed, or the items waiting did."""
    skus = sorted({i.sku for i in items})
    document = {
        "items": sorted([i.item_id, i.sku, i.quantity] for i in items),
        "atp_rises": [[sku, atp_rises.get(sku, 0)] for sku in skus],
        "locations": locations,
        "rules": rules,
    }
    return hashlib.sha256(json.dumps(document, separators=(",", ":")).encode()).hexdigest()


def is_due(seen: str | None, inputs: str, look_after: dt.datetime | None,
           now: dt.datetime) -> bool:
    """Whether to route the order again now: what it depends on changed since the last
    look (`seen`), or its wait is over."""
    return seen != inputs or look_after is None or look_after <= now


def next_wait(last: dt.timedelta | None, changed: bool) -> dt.timedelta:
    """The wait before the next look: FIRST_WAIT after a look that changed something (or
    the first), else twice the last one, at most LONGEST_WAIT."""
    if changed or last is None:
        return FIRST_WAIT
    return min(last * 2, LONGEST_WAIT)
