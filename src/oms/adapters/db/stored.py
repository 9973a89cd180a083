"""A row as stored: the domain value with its version and times."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Stored(Generic[T]):
    """An entity as stored, with its version and timestamps."""

    value: T
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
