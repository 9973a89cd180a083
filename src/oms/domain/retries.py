"""When to try a delivery again: the Standard Webhooks schedule (at once, 5 s, 5 min, 30 min,
2 h, 5 h, 10 h, 10 h, ...), with jitter so that many failed deliveries do not return together."""

from __future__ import annotations

import datetime as dt
import random

SCHEDULE = (
    dt.timedelta(0),
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
)
JITTER = 0.1


def delay_after(failures: int, rng: random.Random | None = None) -> dt.timedelta:
    """The wait before the next attempt, after `failures` failed ones (1 = the first)."""
    base = SCHEDULE[min(failures, len(SCHEDULE) - 1)]
    spread = (rng or random).uniform(-JITTER, JITTER)
    return base * (1 + spread)
