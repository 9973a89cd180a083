"""Domain events: what changed, recorded in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Event:
    type: str
    entity_id: str
    #: The entity's version after the change: consumers order one entity's events by it.
    sequence: int
    payload: dict[str, Any]
    occurred_at: dt.datetime
