"""Stock levels, future stock and reservations, on the unit of work's connection (like every
repository, the only code that writes their SQL)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    Integer,
    TextClause,
    and_,
    bindparam,
    case,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection

from oms.adapters.db import tables as t
from oms.adapters.db.local_days import today_at
from oms.adapters.db.upsert import HeldInserts, insert_for
from oms.domain.inventory import (
    MAX_QUANTITY,
    FutureStock,
    ReservationStatus,
    StockKey,
    StockLevel,
)


@dataclass(frozen=True)
class VersionedLevel:
    level: StockLevel
    version: int


_LEVEL_COLUMNS = (
    t.stock_levels.c.location_id,
    t.stock_levels.c.sku,
    t.stock_levels.c.on_hand,
    t.stock_levels.c.reserved,
    t.stock_levels.c.safety_stock,
    t.stock_levels.c.version,
)


# Availability's levels and routing's ATP of some skus (hundreds of rows: a sku is held at
# hundreds of locations), read as the driver's tuples; the skus' condition is added per
# dialect (StockRepository._of_skus).
_LEVELS = "SELECT location_id, sku, on_hand, reserved, safety_stock FROM stock_levels"
_FUTURE = (select(t.future_stock.c.location_id, t.future_stock.c.sku,
                  t.future_stock.c.quantity, t.future_stock.c.available_on,
                  t.future_stock.c.reserved)
           .where(t.future_stock.c.sku.in_(bindparam("skus", expanding=True)),
                  t.future_stock.c.quantity > 0)
           .order_by(t.future_stock.c.sku, t.future_stock.c.location_id,
                     t.future_stock.c.available_on))
_FUTURE_AT = _FUTURE.where(t.future_stock.c.location_id == bindparam("at"))


def _level_update(**values: Any) -> Any:
    """UPDATE of one stock level, named by :key_location and :key_sku, returning the level;
    built once (building a statement costs more than running it)."""
    c = t.stock_levels.c
    return (update(t.stock_levels)
            .where(c.location_id == bindparam("key_location"), c.sku == bindparam("key_sku"))
            .values(version=c.version + 1, updated_at=bindparam("now_"), **values)
            .returning(*_LEVEL_COLUMNS))


_QUANTITY = bindparam("quantity_", type_=Integer())
#: Take :quantity_ from ATP, only where ATP has it.
_RESERVE = _level_update(reserved=t.stock_levels.c.reserved + _QUANTITY).where(
    t.stock_levels.c.on_hand - t.stock_levels.c.reserved - t.stock_levels.c.safety_stock
    >= _QUANTITY)
#: Give a reservation's quantity back to ATP.
_UNRESERVE = _level_update(reserved=t.stock_levels.c.reserved - _QUANTITY,
                           atp_rises=t.stock_levels.c.atp_rises + 1)
#: The goods left: out of reserved and on_hand (PostgreSQL's greatest, SQLite's max).
_CONSUME = {
    on_sqlite: _level_update(
        reserved=t.stock_levels.c.reserved - _QUANTITY,
        on_hand=(func.max if on_sqlite else func.greatest)(
            t.stock_levels.c.on_hand - _QUANTITY, 0))
    for on_sqlite in (False, True)}


@functools.cache
def _reserve_all_statement(count: int) -> TextClause:
    """Reserve `count` (location, sku, quantity) rows in one statement (PostgreSQL). The
    locking CTE takes the rows in key order, byte-wise as Python sorts them (COLLATE "C"),
    before the UPDATE touches any: the same order as every other path that locks stock rows.
    The UPDATE re-checks ATP on the row as locked, as the one-row reservation does."""
    wanted = ", ".join(f"(CAST(:l_{n} AS VARCHAR), CAST(:s_{n} AS VARCHAR), "
                       f"CAST(:q_{n} AS INTEGER))" for n in range(count))
    return text(
        f"WITH wanted(location_id, sku, quantity) AS (VALUES {wanted}), "
        "locked AS MATERIALIZED (SELECT s.location_id, s.sku FROM stock_levels s "
        "JOIN wanted w ON s.location_id = w.location_id AND s.sku = w.sku "
        'ORDER BY s.location_id COLLATE "C", s.sku COLLATE "C" FOR UPDATE OF s) '
        "UPDATE stock_levels s SET reserved = s.reserved + w.quantity, "
        "version = s.version + 1, updated_at = :now_ FROM wanted w "
        "WHERE s.location_id = w.location_id AND s.sku = w.sku "
        "AND s.on_hand - s.reserved - s.safety_stock >= w.quantity "
        "AND (s.location_id, s.sku) IN (SELECT location_id, sku FROM locked) "
        "RETURNING s.location_id, s.sku, s.on_hand, s.reserved, s.safety_stock, s.version"
    ).bindparams(bindparam("now_", type_=t.stock_levels.c.updated_at.type))


def _level(r: Any) -> VersionedLevel:
    return VersionedLevel(
        StockLevel(r.location_id, r.sku, r.on_hand, r.reserved, r.safety_stock), r.version
    )


_ATP = "SELECT location_id, sku, on_hand - reserved - safety_stock FROM stock_levels"
#: The same on PostgreSQL, as placement's pipelined read sends it (placement_reads).
ATP_ANY = f"{_ATP} WHERE sku = ANY(%s)"


class StockRepository:
    """Stock levels. Every write is one atomic statement whose WHERE clause carries the rule,
    so the database, not a Python read-then-write, keeps ATP from going negative."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _key(self, location_id: str, sku: str) -> Any:
        return and_(t.stock_levels.c.location_id == location_id, t.stock_levels.c.sku == sku)

    def set_levels(
        self, rows: Sequence[dict[str, Any]], now: dt.datetime, *, add: bool = False
    ) -> dict[tuple[str, str], VersionedLevel]:
        """Upsert on_hand (and safety_stock where given) for many (location, sku); a row
        without safety_stock keeps the stored one (0 for a new level).

        With `add`, on_hand is a delta added to the current value; a row that would take
        on_hand below zero or above MAX_QUANTITY is left unchanged and missing from the result.
        """
        stmt = insert_for(self.conn, t.stock_levels)
        current = t.stock_levels.c
        excluded = stmt.excluded
        new_on_hand = current.on_hand + excluded.on_hand if add else excluded.on_hand
        set_: dict[str, Any] = {
            "on_hand": new_on_hand,
            "version": current.version + 1,
            "updated_at": excluded.updated_at,
        }
        every_row_gives_safety = all("safety_stock" in row for row in rows)
        if every_row_gives_safety:
            set_["safety_stock"] = excluded.safety_stock

        # reserved stays as it is: ATP rose if on_hand less safety stock did.
        new_safety = set_.get("safety_stock", current.safety_stock)
        set_["atp_rises"] = current.atp_rises + case(
            (new_on_hand - new_safety > current.on_hand - current.safety_stock, 1), else_=0)
        stmt = stmt.on_conflict_do_update(
            index_elements=[current.location_id, current.sku],
            set_=set_,
            where=new_on_hand.between(0, MAX_QUANTITY),
        ).returning(*_LEVEL_COLUMNS)
        params = [
            {
                "location_id": row["location_id"],
                "sku": row["sku"],
                "on_hand": row["on_hand"],
                "safety_stock": row.get("safety_stock", 0),
                "reserved": 0,
                "version": 1,
                "updated_at": now,
                "atp_rises": int(row["on_hand"] - row.get("safety_stock", 0) > 0),
            }
            # In key order, as every path takes stock rows (DESIGN §3.8).
            for row in sorted(rows, key=lambda r: (r["location_id"], r["sku"]))
        ]
        result = self.conn.execute(stmt, params)
        changed = {(r.location_id, r.sku): _level(r) for r in result}
        if not every_row_gives_safety:
            self._set_safety_stock(rows, changed)
        return changed

    def _set_safety_stock(self, rows: Sequence[dict[str, Any]],
                          changed: dict[tuple[str, str], VersionedLevel]) -> None:
        """A batch mixing rows with and without safety_stock: the upsert left every stored
        safety stock alone; the rows that give one set it now, on rows this transaction
        already holds (no lock is taken in another order)."""
        given = {(row["location_id"], row["sku"]): row["safety_stock"] for row in rows
                 if "safety_stock" in row}
        to_set = {key: value for key, value in given.items()
                  if key in changed and changed[key].level.safety_stock != value}
        if not to_set:
            return
        c = t.stock_levels.c
        self.conn.execute(
            update(t.stock_levels)
            .where(c.location_id == bindparam("key_location_id"), c.sku == bindparam("key_sku"))
            # Safety stock lowered is ATP risen: orders on hold may look again.
            .values(safety_stock=bindparam("new_safety_stock"),
                    atp_rises=c.atp_rises + case(
                        (bindparam("new_safety_stock") < c.safety_stock, 1), else_=0)),
            [{"key_location_id": loc, "key_sku": sku, "new_safety_stock": value}
             for (loc, sku), value in sorted(to_set.items())])
        for key, value in to_set.items():
            before = changed[key]
            changed[key] = VersionedLevel(replace(before.level, safety_stock=value),
                                          before.version)

    def lock_skus(self, skus: Sequence[str]) -> None:
        """Lock every row of these skus, on hand then future, in key order (PostgreSQL; on
        SQLite the one writer holds the whole database already)."""
        if not skus or self.conn.dialect.name != "postgresql":
            return
        s, f = t.stock_levels.c, t.future_stock.c
        self.conn.execute(select(s.location_id).where(s.sku.in_(list(skus)))
                          .order_by(s.location_id, s.sku).with_for_update())
        self.conn.execute(select(f.location_id).where(f.sku.in_(list(skus)))
                          .order_by(f.location_id, f.sku, f.available_on).with_for_update())

    def reserve(self, location_id: str, sku: str, quantity: int, now: dt.datetime) -> (
        VersionedLevel | None
    ):
        """Take `quantity` from ATP, or nothing if ATP is short (None)."""
        row = self.conn.execute(_RESERVE, {"key_location": location_id, "key_sku": sku,
                                           "quantity_": quantity, "now_": now}).first()
        return None if row is None else _level(row)

    def reserve_all(self, wanted: Sequence[tuple[StockKey, int]], now: dt.datetime
                    ) -> dict[StockKey, VersionedLevel]:
        """Take each quantity from ATP where ATP has it, the rows in the order given (key
        order, oms.domain.inventory.lock_order); the levels of the rows taken. On SQLite the
        first row short ends it; on PostgreSQL one statement tries every row, locking them in
        key order first, and the caller gives back what it took if one was short."""
        if self.conn.dialect.name != "postgresql" or len(wanted) == 1:
            taken = {}
            for (location_id, sku), quantity in wanted:
                level = self.reserve(location_id, sku, quantity, now)
                if level is None:
                    break
                taken[(location_id, sku)] = level
            return taken
        params: dict[str, Any] = {"now_": now}
        for n, ((location_id, sku), quantity) in enumerate(wanted):
            params.update({f"l_{n}": location_id, f"s_{n}": sku, f"q_{n}": quantity})
        rows = self.conn.execute(_reserve_all_statement(len(wanted)), params)
        return {(r.location_id, r.sku): _level(r) for r in rows}

    def unreserve(
        self, location_id: str, sku: str, quantity: int, now: dt.datetime, *, consume: bool
    ) -> VersionedLevel:
        """Give back a reservation's quantity; with `consume`, the goods also left on_hand.

        on_hand never drops below zero here: when a physical report already took it lower
        than the reservation, the shipment confirms that discrepancy rather than repeating it.
        """
        stmt = (_CONSUME[self.conn.dialect.name == "sqlite"] if consume else _UNRESERVE)
        row = self.conn.execute(stmt, {"key_location": location_id, "key_sku": sku,
                                       "quantity_": quantity, "now_": now}).one()
        return _level(row)

    def levels(
        self, skus: Sequence[str], location_id: str | None = None
    ) -> list[StockLevel]:
        """The stock levels of these skus, at one location or all, by sku and location (in
        Python's order of the codes, the same on every database)."""
        rows = sorted(self._of_skus(_LEVELS, skus, location_id), key=lambda row: (row[1], row[0]))
        return [StockLevel(*row) for row in rows]

    def atp(self, skus: Sequence[str]) -> Sequence[tuple[str, str, int]]:
        """(location, sku, ATP) of these skus everywhere: what routing weighs."""
        return self._of_skus(_ATP, skus)

    def _of_skus(self, select_sql: str, skus: Sequence[str], location_id: str | None = None
                 ) -> list[tuple[Any, ...]]:
        """The rows of `select_sql` (from stock_levels) of these skus, at one location or
        all, as the driver's own tuples, which cost a fraction of result rows."""
        params: list[Any]
        if self.conn.dialect.name == "postgresql":
            sql, params = f"{select_sql} WHERE sku = ANY(%s)", [list(skus)]
            at = " AND location_id = %s"
        else:
            sql, params = f"{select_sql} WHERE sku IN ({', '.join('?' * len(skus))})", list(skus)
            at = " AND location_id = ?"
        if location_id is not None:
            sql, params = sql + at, [*params, location_id]
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def get(self, location_id: str, sku: str) -> StockLevel | None:
        row = self.conn.execute(select(*_LEVEL_COLUMNS).where(self._key(location_id, sku))).first()
        return None if row is None else _level(row).level

    def existing_keys(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        c = t.stock_levels.c
        rows = self.conn.execute(
            select(c.location_id, c.sku).where(tuple_(c.location_id, c.sku).in_(list(keys)))
        )
        return {(r.location_id, r.sku) for r in rows}

    def skus_at(self, location_id: str) -> set[str]:
        return set(
            self.conn.scalars(
                select(t.stock_levels.c.sku).where(
                    t.stock_levels.c.location_id == location_id, t.stock_levels.c.on_hand != 0
                )
            )
        )

    def upsert_future(
        self, entries: Sequence[FutureStock], now: dt.datetime
    ) -> dict[tuple[str, str, dt.date], int]:
        """Set the expected quantity per (location, sku, date); returns each entry's version.
        An entry that would fall below its pre-order reservations is missing from the result."""
        stmt = insert_for(self.conn, t.future_stock)
        stmt = stmt.on_conflict_do_update(
            index_elements=[
                t.future_stock.c.location_id,
                t.future_stock.c.sku,
                t.future_stock.c.available_on,
            ],
            set_={
                "quantity": stmt.excluded.quantity,
                "updated_at": stmt.excluded.updated_at,
                "version": t.future_stock.c.version + 1,
                "atp_rises": t.future_stock.c.atp_rises + case(
                    (stmt.excluded.quantity > t.future_stock.c.quantity, 1), else_=0),
            },
            # Never below what pre-orders already bought of this delivery.
            where=stmt.excluded.quantity >= t.future_stock.c.reserved,
        ).returning(
            t.future_stock.c.location_id,
            t.future_stock.c.sku,
            t.future_stock.c.available_on,
            t.future_stock.c.version,
        )
        result = self.conn.execute(
            stmt,
            [
                {
                    "location_id": e.location_id,
                    "sku": e.sku,
                    "available_on": e.available_on,
                    "quantity": e.quantity,
                    "version": 1,
                    "updated_at": now,
                    "atp_rises": int(e.quantity > 0),
                }
                # In key order, as every path takes stock rows (DESIGN §3.8).
                for e in sorted(entries, key=lambda e: (e.location_id, e.sku, e.available_on))
            ],
        )
        return {(r.location_id, r.sku, r.available_on): r.version for r in result}

    def future_atp(self, skus: Sequence[str], now: dt.datetime) -> dict[tuple[str, str], int]:
        """Per (location, sku), the most one delivery from the location's today on still has
        for pre-orders (a pre-order line is reserved against a single delivery)."""
        f = t.future_stock.c
        rows = self.conn.execute(
            select(f.location_id, f.sku, func.max(f.quantity - f.reserved).label("atp"))
            .where(f.sku.in_(list(skus)),
                   f.available_on >= today_at(self.conn, f.location_id, now))
            .group_by(f.location_id, f.sku))
        return {(r.location_id, r.sku): int(r.atp) for r in rows}

    def atp_rises(self, skus: Sequence[str]) -> dict[str, int]:
        """Per sku, how often its ATP rose at any location, on hand or in future stock."""
        rises: dict[str, int] = {}
        for table in (t.stock_levels, t.future_stock):
            rows = self.conn.execute(
                select(table.c.sku, func.sum(table.c.atp_rises).label("rises"))
                .where(table.c.sku.in_(list(skus))).group_by(table.c.sku))
            for r in rows:
                rises[r.sku] = rises.get(r.sku, 0) + int(r.rises)
        return rises

    def take_back_reservation(self, location_id: str, sku: str, quantity: int) -> None:
        """Undo `reserve` of this transaction, version included, as if it had not been."""
        c = t.stock_levels.c
        self.conn.execute(update(t.stock_levels).where(self._key(location_id, sku))
                          .values(reserved=c.reserved - quantity, version=c.version - 1))

    def take_back_future_reservation(self, location_id: str, sku: str, available_on: dt.date,
                                     quantity: int) -> None:
        """Undo `reserve_future` of this transaction, version included."""
        f = t.future_stock.c
        self.conn.execute(update(t.future_stock).where(
            f.location_id == location_id, f.sku == sku, f.available_on == available_on)
            .values(reserved=f.reserved - quantity, version=f.version - 1))

    def reserve_future(self, location_id: str, sku: str, quantity: int, now: dt.datetime
                       ) -> Any:
        """Reserve against the earliest delivery, from the location's today on, that still
        has `quantity`; its date, or None. Each attempt is a conditional UPDATE: a delivery
        taken meanwhile is skipped for the next one."""
        f = t.future_stock.c
        dates = self.conn.scalars(
            select(f.available_on).where(
                f.location_id == location_id, f.sku == sku,
                f.available_on >= today_at(self.conn, f.location_id, now),
                f.quantity - f.reserved >= quantity).order_by(f.available_on))
        for available_on in list(dates):
            taken = self.conn.execute(
                update(t.future_stock)
                .where(f.location_id == location_id, f.sku == sku,
                       f.available_on == available_on, f.quantity - f.reserved >= quantity)
                .values(reserved=f.reserved + quantity, version=f.version + 1, updated_at=now)
                .returning(f.available_on, f.quantity, f.reserved, f.version)
            ).first()
            if taken is not None:
                return taken
        return None

    def unreserve_future(self, location_id: str, sku: str, available_on: dt.date,
                         quantity: int, now: dt.datetime, *, delivered: bool) -> Any:
        """Give back a pre-order's future stock; `delivered`: the goods came, so the
        delivery shrinks by as much."""
        f = t.future_stock.c
        values: dict[str, Any] = {"reserved": f.reserved - quantity,
                                  "version": f.version + 1, "updated_at": now}
        if delivered:
            values["quantity"] = f.quantity - quantity
        else:
            values["atp_rises"] = f.atp_rises + 1
        return self.conn.execute(
            update(t.future_stock)
            .where(f.location_id == location_id, f.sku == sku, f.available_on == available_on)
            .values(**values)
            .returning(f.available_on, f.quantity, f.reserved, f.version)).one()

    def add_reserved(self, location_id: str, sku: str, quantity: int, now: dt.datetime
                     ) -> VersionedLevel:
        """Reserve whatever ATP says: pre-orders whose delivery date has come are served
        before anyone else, even before the receipt is booked (ATP then shows below zero)."""
        stmt = insert_for(self.conn, t.stock_levels)
        c = t.stock_levels.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.location_id, c.sku],
            set_={"reserved": c.reserved + stmt.excluded.reserved, "version": c.version + 1,
                  "updated_at": stmt.excluded.updated_at},
        ).returning(*_LEVEL_COLUMNS)
        row = self.conn.execute(stmt, {"location_id": location_id, "sku": sku, "on_hand": 0,
                                       "reserved": quantity, "safety_stock": 0, "version": 1,
                                       "updated_at": now}).one()
        return _level(row)

    def future(
        self, skus: Sequence[str], location_id: str | None = None, *,
        today_of: Callable[[str], dt.date],
    ) -> list[FutureStock]:
        """Deliveries expected from each location's today on (`today_of` the location)."""
        params = {"skus": list(skus), "at": location_id}
        rows = self.conn.execute(_FUTURE if location_id is None else _FUTURE_AT, params)
        return [FutureStock(*row) for row in rows if row[3] >= today_of(row[0])]


@dataclass(frozen=True)
class ReservationRecord:
    id: str
    location_id: str
    sku: str
    quantity: int
    status: ReservationStatus
    reference: str | None
    created_at: dt.datetime
    closed_at: dt.datetime | None
    available_on: dt.date | None = None
    #: A cart's hold runs out then (None: the reservation lasts until it is closed).
    expires_at: dt.datetime | None = None


class ReservationRepository:
    def __init__(self, conn: Connection, inserts: HeldInserts | None = None) -> None:
        self.conn = conn
        self.inserts = inserts or HeldInserts(conn)

    def add(self, records: Sequence[ReservationRecord]) -> None:
        self.inserts.add(
            t.reservations,
            [
                {
                    "id": r.id,
                    "location_id": r.location_id,
                    "sku": r.sku,
                    "quantity": r.quantity,
                    "status": r.status.value,
                    "reference": r.reference,
                    "available_on": r.available_on,
                    "created_at": r.created_at,
                    "closed_at": r.closed_at,
                    "expires_at": r.expires_at,
                }
                for r in records
            ],
        )

    def close(self, reservation_id: str, status: ReservationStatus, now: dt.datetime) -> (
        ReservationRecord | None
    ):
        """Mark an active reservation released or consumed; None if it was not active.

        The status test in the WHERE clause makes two concurrent closes of one reservation
        count once.
        """
        c = t.reservations.c
        row = self.conn.execute(
            update(t.reservations)
            .where(c.id == reservation_id, c.status == ReservationStatus.ACTIVE.value)
            # A closed hold runs out no more: the expiring holds' index keeps open ones only.
            .values(status=status.value, closed_at=now, expires_at=None)
            .returning(*t.reservations.c)
        ).first()
        return None if row is None else _reservation(row)

    def renew(self, reservation_ids: Sequence[str], expires_at: dt.datetime) -> set[str]:
        """Move the expiry of these holds, those still active; their ids."""
        if not reservation_ids:
            return set()
        c = t.reservations.c
        rows = self.conn.execute(
            update(t.reservations)
            .where(c.id.in_(list(reservation_ids)), c.status == ReservationStatus.ACTIVE.value)
            .values(expires_at=expires_at)
            .returning(c.id))
        return {r.id for r in rows}

    def keep(self, reservation_ids: Sequence[str]) -> None:
        """These holds run out no more: they hold stock for an order now."""
        if reservation_ids:
            self.conn.execute(update(t.reservations)
                              .where(t.reservations.c.id.in_(list(reservation_ids)))
                              .values(expires_at=None))

    def lock(self, reservation_ids: Sequence[str]) -> list[ReservationRecord]:
        """Lock these reservations, in id order."""
        if not reservation_ids:
            return []
        c = t.reservations.c
        return [_reservation(r) for r in self.conn.execute(
            select(t.reservations).where(c.id.in_(list(reservation_ids)))
            .order_by(c.id).with_for_update())]

    def expired(self, now: dt.datetime, limit: int) -> list[ReservationRecord]:
        """Active holds whose time has run out, the longest expired first."""
        c = t.reservations.c
        rows = self.conn.execute(
            select(t.reservations)
            .where(c.expires_at.isnot(None), c.expires_at < now,
                   c.status == ReservationStatus.ACTIVE.value)
            .order_by(c.expires_at, c.id).limit(limit))
        return [_reservation(r) for r in rows]

    def due_preorders(self, now: dt.datetime, limit: int) -> list[ReservationRecord]:
        """Active pre-order reservations whose delivery date has come at their location,
        oldest first."""
        c = t.reservations.c
        rows = self.conn.execute(
            select(t.reservations)
            .where(c.status == ReservationStatus.ACTIVE.value,
                   c.available_on <= today_at(self.conn, c.location_id, now))
            .order_by(c.created_at, c.id).limit(limit))
        return [_reservation(r) for r in rows]

    def move_to_stock(self, reservation_id: str, available_on: dt.date) -> bool:
        """The reservation now holds on-hand stock; False if another worker moved it."""
        c = t.reservations.c
        return self.conn.execute(
            update(t.reservations)
            .where(c.id == reservation_id, c.available_on == available_on,
                   c.status == ReservationStatus.ACTIVE.value)
            .values(available_on=None)
        ).rowcount == 1

    def get_many(self, reservation_ids: Sequence[str]) -> list[ReservationRecord]:
        if not reservation_ids:
            return []
        return [_reservation(r) for r in self.conn.execute(
            select(t.reservations).where(t.reservations.c.id.in_(list(reservation_ids))))]

    def get(self, reservation_id: str, *, for_update: bool = False
            ) -> ReservationRecord | None:
        stmt = select(t.reservations).where(t.reservations.c.id == reservation_id)
        row = self.conn.execute(stmt.with_for_update() if for_update else stmt).first()
        return None if row is None else _reservation(row)

    def active_totals(self) -> dict[tuple[str, str], int]:
        c = t.reservations.c
        rows = self.conn.execute(
            select(c.location_id, c.sku, func.sum(c.quantity).label("quantity"))
            .where(c.status == ReservationStatus.ACTIVE.value, c.available_on.is_(None))
            .group_by(c.location_id, c.sku)
        )
        return {(r.location_id, r.sku): int(r.quantity) for r in rows}

    def reserved_counters(self) -> dict[tuple[str, str], int]:
        c = t.stock_levels.c
        rows = self.conn.execute(select(c.location_id, c.sku, c.reserved).where(c.reserved != 0))
        return {(r.location_id, r.sku): r.reserved for r in rows}


def _reservation(r: Any) -> ReservationRecord:
    return ReservationRecord(
        r.id, r.location_id, r.sku, r.quantity, ReservationStatus(r.status), r.reference,
        r.created_at, r.closed_at, r.available_on, r.expires_at,
    )
