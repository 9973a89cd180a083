"""Locations and routing rules: the reference data every routing of an order weighs, kept in
the process for a short while instead of read for every order.

Each process keeps what it read for `OMS_REFERENCE_CACHE_SECONDS` (2 s by default), and then
for as long as one request takes to read it again. A change made in this process is seen at
once (the unit of work that made it drops what is kept as it commits); a change made by
another process is seen within that while: an order placed in between may still be routed to
a location just deactivated, which then rejects it, and its items are routed again.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from oms.domain.locations import Location
from oms.domain.routing import RoutingRule

if TYPE_CHECKING:
    from oms.domain.routing_fast import Network


@dataclass(frozen=True)
class Reference:
    """Locations and routing rules as one read found them."""

    locations: tuple[Location, ...]
    rules: Mapping[tuple[str, str], RoutingRule] = field(default_factory=dict)

    @cached_property
    def network(self) -> Network:
        """The locations as routing's arrays, built once per read."""
        from oms.domain.routing_fast import Network

        return Network(list(self.locations))

    @cached_property
    def by_id(self) -> Mapping[str, Location]:
        return {loc.id: loc for loc in self.locations}


class ReferenceCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._kept: tuple[float, Reference] | None = None
        #: Counts what was forgotten: a read that began before a change committed is not kept.
        self._generation = 0
        self._lock = threading.Lock()
        #: Held by the thread reading again what has expired.
        self._reading = threading.Lock()

    def get(self, load: Callable[[], Reference]) -> Reference:
        kept = self._kept
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        # One thread reads it again while the others go on with what is kept (a read of 500
        # locations takes tens of milliseconds: every request arriving meanwhile would read
        # them too). Nothing kept (at first, or after a change here): each reads.
        if kept is not None and not self._reading.acquire(blocking=False):
            return kept[1]
        try:
            generation = self._generation
            reference = load()
            if self.ttl > 0:
                with self._lock:
                    if generation == self._generation:
                        self._kept = (time.monotonic() + self.ttl, reference)
            return reference
        finally:
            if kept is not None:
                self._reading.release()

    def forget(self) -> None:
        """A change committed: what is kept, or being read, is not read again."""
        with self._lock:
            self._generation += 1
            self._kept = None


_caches: weakref.WeakKeyDictionary[Engine, ReferenceCache] = weakref.WeakKeyDictionary()


def cache_for(engine: Engine) -> ReferenceCache:
    """The engine's cache; one that nothing registered keeps nothing."""
    cache = _caches.get(engine)
    if cache is None:
        cache = _caches.setdefault(engine, ReferenceCache(0))
    return cache


def keep_reference(engine: Engine, ttl: float) -> None:
    _caches[engine] = ReferenceCache(ttl)
