"""Use cases of inventory: stock levels, adjustments, future stock, availability, and the
reservation service that orders build on.

`reserve`, `release` and `consume` work inside the caller's unit of work and do not commit:
placing an order reserves its items in the same transaction that writes the order.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from oms.adapters.db.stock_repositories import ReservationRecord, VersionedLevel
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.errors import Conflict, FieldError, InsufficientStock, NotFound, ValidationFailed
from oms.domain.events import Event, utcnow
from oms.domain.ids import new_id
from oms.domain.inventory import (
    MAX_QUANTITY,
    FutureStock,
    ReservationRequest,
    ReservationStatus,
    StockLevel,
    lock_order,
)
from oms.domain.locations import local_date
from oms.schemas import AdjustmentIn, level_out


def stock_entity_id(location_id: str, sku: str) -> str:
    return f"{location_id}/{sku}"


def record_change(
    uow: UnitOfWork, changed: VersionedLevel, reason: str, now: dt.datetime, **detail: Any
) -> None:
    level = changed.level
    uow.record(
        Event(
            "inventory.changed",
            stock_entity_id(level.location_id, level.sku),
            changed.version,
            {**level_out(level), "reason": reason, **detail},
            now,
        )
    )


def require_known(uow: UnitOfWork, pairs: Sequence[tuple[str, str]], field: str = "") -> None:
    """Refuse (404) stock of an unknown location or sku, naming each by its index."""
    known_locations = uow.locations.existing(p[0] for p in pairs)
    known_skus = uow.products.existing(p[1] for p in pairs)
    prefix = f"{field}." if field else ""
    errors: list[FieldError] = []
    for i, (location_id, sku) in enumerate(pairs):
        at = f"{prefix}{i}." if field else ""
        if location_id not in known_locations:
            errors.append(FieldError(f"{at}location_id", f"no location {location_id!r}"))
        if sku not in known_skus:
            errors.append(FieldError(f"{at}sku", f"no product {sku!r}"))
    if errors:
        raise NotFound("; ".join(e.message for e in errors), errors)


def set_level(
    uow: UnitOfWork, location_id: str, sku: str, on_hand: int, safety_stock: int
) -> dict[str, Any]:
    require_known(uow, [(location_id, sku)])
    now = utcnow()
    row = {"location_id": location_id, "sku": sku, "on_hand": on_hand,
           "safety_stock": safety_stock}
    changed = uow.stock.set_levels([row], now)[(location_id, sku)]
    record_change(uow, changed, "set", now)
    uow.commit()
    return level_out(changed.level, changed.version)


def adjust(uow: UnitOfWork, adjustments: Sequence[AdjustmentIn]) -> list[dict[str, Any]]:
    """Apply a batch of deltas, all or nothing.

    A delta may take on_hand below what is reserved (a count or an offline sale reports what
    physically happened): it is accepted and the level shows `discrepancy`. It may not take
    on_hand below zero, nor above MAX_QUANTITY.
    """
    require_known(uow, [(a.location_id, a.sku) for a in adjustments], "adjustments")
    now = utcnow()
    # Apply in key order so that two batches touching the same rows never deadlock.
    order = sorted(range(len(adjustments)),
                   key=lambda i: (adjustments[i].location_id, adjustments[i].sku))
    results: dict[int, dict[str, Any]] = {}
    for i in order:
        a = adjustments[i]
        key = (a.location_id, a.sku)
        changed = None
        # A negative delta cannot create a level (on_hand would start below zero).
        if a.delta > 0 or uow.stock.get(*key) is not None:
            row = {"location_id": a.location_id, "sku": a.sku, "on_hand": a.delta}
            changed = uow.stock.set_levels([row], now, add=True).get(key)
        if changed is None:
            current = uow.stock.get(*key)
            on_hand = current.on_hand if current else 0
            if on_hand + a.delta < 0:
                bound, outcome = "below zero", "make it negative"
            else:
                bound, outcome = f"above {MAX_QUANTITY}", f"take it above {MAX_QUANTITY}"
            # A well-formed change the stock as it is now cannot take.
            raise Conflict(
                f"adjustment {i} would take on_hand of {a.sku} at {a.location_id} {bound}",
                [FieldError(f"adjustments.{i}.delta",
                            f"on_hand is {on_hand}; a delta of {a.delta} would {outcome}")],
            )
        record_change(uow, changed, "adjustment", now, note=a.reason, delta=a.delta)
        results[i] = level_out(changed.level, changed.version)
    uow.commit()
    return [results[i] for i in range(len(adjustments))]


def record_future(uow: UnitOfWork, entries: Sequence[FutureStock]) -> None:
    require_known(uow, [(e.location_id, e.sku) for e in entries], "entries")
    now = utcnow()
    versions = uow.stock.upsert_future(entries, now)
    short = [FieldError(f"entries.{i}.quantity", "below what pre-orders already reserved of "
                                                 "this delivery")
             for i, e in enumerate(entries)
             if (e.location_id, e.sku, e.available_on) not in versions]
    if short:
        raise Conflict(short[0].message, short)
    for e in entries:
        uow.record(
            Event(
                "inventory.future_changed",
                f"{stock_entity_id(e.location_id, e.sku)}@{e.available_on.isoformat()}",
                versions[(e.location_id, e.sku, e.available_on)],
                {"location_id": e.location_id, "sku": e.sku, "quantity": e.quantity,
                 "available_on": e.available_on.isoformat()},
                now,
            )
        )
    uow.commit()


def availability(
    uow: UnitOfWork, skus: Sequence[str], location_id: str | None, now: dt.datetime
) -> list[dict[str, Any]]:
    # Which day it is at a location, by its time zone, as the process keeps locations (one
    # it does not know yet is read).
    location_of = uow.reference().by_id

    @functools.cache
    def today(location_id: str) -> dt.date:
        location = location_of.get(location_id)
        if location is None:
            stored = uow.locations.get(location_id)
            return local_date(stored.value.timezone if stored else "UTC", now)
        return local_date(location.timezone, now)

    levels = uow.stock.levels(skus, location_id)
    future = uow.stock.future(skus, location_id, today_of=today)
    # A stock row names a product and a location that exist (foreign keys): only the skus
    # without one, and a location without any, are looked up, to tell unknown from empty.
    found = {level.sku for level in levels} | {entry.sku for entry in future}
    unknown = [s for s in skus if s not in found]
    if unknown:
        known = uow.products.existing(unknown)
        unknown = [s for s in unknown if s not in known]
    if unknown:
        raise NotFound(
            f"no product with sku {', '.join(unknown)}",
            [FieldError("sku", f"no product {s!r}") for s in unknown],
        )
    if location_id is not None and not found and not uow.locations.existing([location_id]):
        raise NotFound(f"no location {location_id!r}", [FieldError("location_id", "unknown")])

    # One pass over a sku's levels (hundreds of locations) builds the answer's rows and the
    # totals; a location in discrepancy adds no negative ATP to them.
    rows: dict[str, dict[str, dict[str, Any]]] = {sku: {} for sku in skus}
    sums = {sku: {"on_hand": 0, "reserved": 0, "atp": 0, "future": 0} for sku in skus}
    for level in levels:
        rows[level.sku][level.location_id] = {**level_out(level), "future": []}
        total = sums[level.sku]
        total["on_hand"] += level.on_hand
        total["reserved"] += level.reserved
        total["atp"] += max(level.atp, 0)
    for entry in future:
        row = rows[entry.sku].get(entry.location_id)
        if row is None:
            row = {**level_out(StockLevel(entry.location_id, entry.sku, 0, 0, 0)), "future": []}
            rows[entry.sku][entry.location_id] = row
        row["future"].append({"quantity": entry.quantity, "reserved": entry.reserved,
                              "available": entry.available,
                              "available_on": entry.available_on.isoformat()})
        sums[entry.sku]["future"] += entry.available
    result = []
    for sku in rows:
        result.append({
            "sku": sku,
            "locations": [row for _, row in sorted(rows[sku].items())],
            "totals": sums[sku],
        })
    return result


@dataclass(frozen=True)
class ReserveLine:
    location_id: str
    sku: str
    quantity: int
    reference: str | None = None
    #: A pre-order: reserved against future stock, not against what is on hand.
    preorder: bool = False
    #: A cart's hold: it runs out then.
    expires_at: dt.datetime | None = None


def record_future_change(uow: UnitOfWork, location_id: str, sku: str, delivery: Any,
                         reason: str, now: dt.datetime) -> None:
    uow.record(Event(
        "inventory.future_changed",
        f"{stock_entity_id(location_id, sku)}@{delivery.available_on.isoformat()}",
        delivery.version,
        {"location_id": location_id, "sku": sku, "quantity": delivery.quantity,
         "reserved": delivery.reserved, "available_on": delivery.available_on.isoformat(),
         "reason": reason},
        now))


def reserve(uow: UnitOfWork, lines: Sequence[ReserveLine]) -> list[ReservationRecord]:
    """Reserve every line or none: on a shortfall the lines already taken are given back in
    this transaction, exactly as they were (no savepoint needed), and InsufficientStock is
    raised. Quantities of one (location, sku) are summed and checked together, and rows are
    taken in key order. The conditional UPDATE is the check: the database serialises
    concurrent reservations of one row, and the loser sees the winner's `reserved`. Events
    are recorded for what was reserved; the caller drops them on a shortfall."""
    now = utcnow()
    taken: list[tuple[str, str, int]] = []
    taken_future: list[tuple[str, str, dt.date, int]] = []
    try:
        current = [ReservationRequest(x.location_id, x.sku, x.quantity)
                   for x in lines if not x.preorder]
        wanted = lock_order(current)
        levels = uow.stock.reserve_all(wanted, now) if wanted else {}
        taken = [(location_id, sku, quantity) for (location_id, sku), quantity in wanted
                 if (location_id, sku) in levels]
        for (location_id, sku), quantity in wanted:
            if (location_id, sku) not in levels:
                raise InsufficientStock(location_id, sku, quantity)
            record_change(uow, levels[(location_id, sku)], "reserved", now, quantity=quantity)
        delivery_of: dict[tuple[str, str], dt.date] = {}
        preorders = [ReservationRequest(x.location_id, x.sku, x.quantity)
                     for x in lines if x.preorder]
        for (location_id, sku), quantity in lock_order(preorders):
            delivery = uow.stock.reserve_future(location_id, sku, quantity, now)
            if delivery is None:
                raise InsufficientStock(location_id, sku, quantity)
            taken_future.append((location_id, sku, delivery.available_on, quantity))
            delivery_of[(location_id, sku)] = delivery.available_on
            record_future_change(uow, location_id, sku, delivery, "reserved", now)
    except InsufficientStock:
        # The rows taken are still locked by this transaction: nobody changed them since.
        for location_id, sku, quantity in taken:
            uow.stock.take_back_reservation(location_id, sku, quantity)
        for location_id, sku, available_on, quantity in taken_future:
            uow.stock.take_back_future_reservation(location_id, sku, available_on, quantity)
        raise
    records = [
        ReservationRecord(new_id(), x.location_id, x.sku, x.quantity, ReservationStatus.ACTIVE,
                          x.reference, now, None,
                          delivery_of[(x.location_id, x.sku)] if x.preorder else None,
                          x.expires_at)
        for x in lines
    ]
    uow.reservations.add(records)
    return records


def _close(uow: UnitOfWork, reservation_id: str, status: ReservationStatus,
           reason: str | None = None) -> ReservationRecord:
    now = utcnow()
    closed = uow.reservations.close(reservation_id, status, now)
    if closed is None:
        existing = uow.reservations.get(reservation_id)
        if existing is None:
            raise NotFound(f"no reservation {reservation_id!r}")
        raise ValidationFailed(f"reservation {reservation_id} is already {existing.status.value}")
    if closed.available_on is not None:
        if status is ReservationStatus.CONSUMED:
            raise ValidationFailed(f"reservation {reservation_id} holds stock expected on "
                                   f"{closed.available_on}; it cannot ship before then")
        delivery = uow.stock.unreserve_future(closed.location_id, closed.sku,
                                              closed.available_on, closed.quantity, now,
                                              delivered=False)
        record_future_change(uow, closed.location_id, closed.sku, delivery, status.value, now)
        return closed
    changed = uow.stock.unreserve(
        closed.location_id, closed.sku, closed.quantity, now,
        consume=status is ReservationStatus.CONSUMED,
    )
    record_change(uow, changed, reason or status.value, now, quantity=closed.quantity,
                  reservation_id=reservation_id)
    return closed


def release_due_preorders(engine: Engine, now: dt.datetime, limit: int = 500) -> int:
    """Pre-orders whose delivery date has come (the day it is at their location) move onto
    the location's stock, ahead of anyone else: their reservation now holds on-hand stock
    (ATP shows below zero until the receipt is booked). Returns how many moved."""
    moved = 0
    with UnitOfWork(engine, read_only=True) as uow:
        due = uow.reservations.due_preorders(now, limit)
    for reservation in due:
        assert reservation.available_on is not None
        with UnitOfWork(engine) as uow:
            if not uow.reservations.move_to_stock(reservation.id, reservation.available_on):
                continue  # another worker moved it
            now = utcnow()
            # On-hand stock first, then future stock: the order every path takes them in.
            changed = uow.stock.add_reserved(reservation.location_id, reservation.sku,
                                             reservation.quantity, now)
            delivery = uow.stock.unreserve_future(
                reservation.location_id, reservation.sku, reservation.available_on,
                reservation.quantity, now, delivered=True)
            record_future_change(uow, reservation.location_id, reservation.sku, delivery,
                                 "preorder_released", now)
            record_change(uow, changed, "preorder_released", now,
                          quantity=reservation.quantity, reservation_id=reservation.id)
            uow.commit()
            moved += 1
    return moved


def lock_stock_of(uow: UnitOfWork, skus: Iterable[str]) -> None:
    """Take every location's stock of these skus, on hand then future, in key order, before
    touching any: a step that gives stock back at one location and takes it at another (a
    rejection routed elsewhere) then takes its rows in the order every other path takes them
    (DESIGN §3.8), whichever locations routing picks."""
    uow.stock.lock_skus(sorted(set(skus)))


def release(uow: UnitOfWork, reservation_ids: Sequence[str], reason: str | None = None
            ) -> None:
    """Give the reserved quantities back to ATP (cancellation, rejection, expiry); `reason`
    is what the stock's event says (default: released)."""
    _close_all(uow, reservation_ids, ReservationStatus.RELEASED, reason)


def consume(uow: UnitOfWork, reservation_ids: Sequence[str]) -> None:
    """The goods left the location (shipment, hand-over): on_hand and reserved go down."""
    _close_all(uow, reservation_ids, ReservationStatus.CONSUMED)


def _close_all(uow: UnitOfWork, reservation_ids: Sequence[str],
               status: ReservationStatus, reason: str | None = None) -> None:
    """Close reservations with their stock rows taken in the one order every path takes
    them in (DESIGN §3.8): on-hand stock by (location, sku), then future stock by the same
    key, as `reserve` does. Two transactions closing or reserving overlapping rows then wait
    for each other instead of deadlocking."""
    found = {r.id: r for r in uow.reservations.get_many(reservation_ids)}
    missing = [x for x in reservation_ids if x not in found]
    if missing:
        raise NotFound(f"no reservation {missing[0]!r}")
    for reservation in sorted(found.values(), key=stock_lock_key):
        _close(uow, reservation.id, status, reason)


def stock_lock_key(r: ReservationRecord) -> tuple[bool, str, str, dt.date, str]:
    return (r.available_on is not None, r.location_id, r.sku, r.available_on or dt.date.min,
            r.id)


@dataclass(frozen=True)
class CounterMismatch:
    location_id: str
    sku: str
    counter: int
    from_reservations: int


def check_reserved_counters(uow: UnitOfWork) -> list[CounterMismatch]:
    """Recompute every `reserved` counter from the active reservation rows."""
    counters = uow.reservations.reserved_counters()
    actual = uow.reservations.active_totals()
    return [
        CounterMismatch(loc, sku, counters.get((loc, sku), 0), actual.get((loc, sku), 0))
        for (loc, sku) in sorted(set(counters) | set(actual))
        if counters.get((loc, sku), 0) != actual.get((loc, sku), 0)
    ]

