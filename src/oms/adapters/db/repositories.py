"""Repositories: the only code that writes SQL. Each works on the unit of work's connection."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    Integer,
    TextClause,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, RowMapping

from oms.adapters.db import tables as t
from oms.adapters.db.local_days import today_at
from oms.adapters.db.upsert import HeldInserts, insert_for
from oms.domain.catalog import Barcode, BarcodeType, Product
from oms.domain.events import Event
from oms.domain.ids import new_webhook_secret
from oms.domain.inventory import (
    MAX_QUANTITY,
    FutureStock,
    ReservationStatus,
    StockKey,
    StockLevel,
)
from oms.domain.locations import Address, Capability, Location, LocationType
from oms.domain.money import Money

T = TypeVar("T")


@dataclass(frozen=True)
class Stored(Generic[T]):
    """An entity as stored, with its version and timestamps."""

    value: T
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


_PREORDER_DATES = select(t.products.c.sku, t.products.c.preorder_ship_date).where(
    t.products.c.sku.in_(bindparam("skus", expanding=True)))


class ProductRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def upsert(self, product: Product, now: dt.datetime) -> tuple[int, bool]:
        """Create or replace; returns (new version, created)."""
        row = {
            "sku": product.sku,
            "name": product.name,
            "price_minor": product.price.minor,
            "currency": product.price.currency,
            "tax_class": product.tax_class,
            "preorder_ship_date": product.preorder_ship_date,
        }
        version, created = self.upsert_many([row], now)[product.sku]
        self.replace_barcodes({product.sku: product.barcodes})
        return version, created

    def upsert_many(
        self, rows: Sequence[dict[str, Any]], now: dt.datetime
    ) -> dict[str, tuple[int, bool]]:
        stmt = insert_for(self.conn, t.products)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.products.c.sku],
            set_={
                "name": stmt.excluded.name,
                "price_minor": stmt.excluded.price_minor,
                "currency": stmt.excluded.currency,
                "tax_class": stmt.excluded.tax_class,
                "preorder_ship_date": stmt.excluded.preorder_ship_date,
                "updated_at": stmt.excluded.updated_at,
                "version": t.products.c.version + 1,
            },
        ).returning(t.products.c.sku, t.products.c.version)
        params = [{**row, "version": 1, "created_at": now, "updated_at": now} for row in rows]
        result = self.conn.execute(stmt, params)
        return {r.sku: (r.version, r.version == 1) for r in result}

    def replace_barcodes(self, barcodes: dict[str, Iterable[Barcode]]) -> None:
        skus = list(barcodes)
        self.conn.execute(delete(t.product_barcodes).where(t.product_barcodes.c.sku.in_(skus)))
        rows = [
            {"sku": sku, "position": i, "type": b.type.value, "value": b.value}
            for sku, codes in barcodes.items()
            for i, b in enumerate(codes)
        ]
        if rows:
            self.conn.execute(t.product_barcodes.insert(), rows)

    def barcode_owners(self, values: Iterable[str]) -> dict[str, str]:
        """Which sku holds each of these barcode values now."""
        values = list(values)
        if not values:
            return {}
        rows = self.conn.execute(
            select(t.product_barcodes.c.value, t.product_barcodes.c.sku).where(
                t.product_barcodes.c.value.in_(values)
            )
        )
        return {r.value: r.sku for r in rows}

    def get(self, sku: str) -> Stored[Product] | None:
        stmt = select(t.products).where(t.products.c.sku == sku)
        row = self.conn.execute(stmt).mappings().first()
        if row is None:
            return None
        return self._hydrate([row])[0]

    def preorder_dates(self, skus: Iterable[str]) -> dict[str, dt.date | None]:
        """For each known sku, its tentative ship date if it is a pre-order, else None."""
        rows = self.conn.execute(_PREORDER_DATES, {"skus": list(set(skus))})
        return {r.sku: r.preorder_ship_date for r in rows}

    def existing(self, skus: Iterable[str]) -> set[str]:
        skus = list(set(skus))
        found: set[str] = set()
        for i in range(0, len(skus), 1000):
            chunk = skus[i : i + 1000]
            found.update(
                self.conn.scalars(select(t.products.c.sku).where(t.products.c.sku.in_(chunk)))
            )
        return found

    def page(
        self, *, after: str | None, limit: int, barcode: str | None, q: str | None
    ) -> list[Stored[Product]]:
        stmt = select(t.products).order_by(t.products.c.sku).limit(limit)
        if after is not None:
            stmt = stmt.where(t.products.c.sku > after)
        if barcode is not None:
            stmt = stmt.where(
                t.products.c.sku.in_(
                    select(t.product_barcodes.c.sku).where(t.product_barcodes.c.value == barcode)
                )
            )
        if q:
            pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_"
            ) + "%"
            stmt = stmt.where(
                or_(
                    func.lower(t.products.c.name).like(pattern, escape="\\"),
                    func.lower(t.products.c.sku).like(pattern, escape="\\"),
                )
            )
        return self._hydrate(list(self.conn.execute(stmt).mappings()))

    def _hydrate(self, rows: list[RowMapping]) -> list[Stored[Product]]:
        if not rows:
            return []
        codes: dict[str, list[Barcode]] = {r["sku"]: [] for r in rows}
        barcode_rows = self.conn.execute(
            select(t.product_barcodes)
            .where(t.product_barcodes.c.sku.in_(list(codes)))
            .order_by(t.product_barcodes.c.sku, t.product_barcodes.c.position)
        )
        for b in barcode_rows:
            codes[b.sku].append(Barcode(BarcodeType(b.type), b.value))
        return [
            Stored(
                Product(
                    sku=r["sku"],
                    name=r["name"],
                    price=Money.from_minor(r["price_minor"], r["currency"]),
                    tax_class=r["tax_class"],
                    barcodes=tuple(codes[r["sku"]]),
                    preorder_ship_date=r["preorder_ship_date"],
                ),
                r["version"],
                r["created_at"],
                r["updated_at"],
            )
            for r in rows
        ]


CAPABILITY_COLUMN = {
    Capability.SHIP: "can_ship",
    Capability.PICKUP: "can_pickup",
    Capability.RETURNS: "can_return",
}


def location_row(location: Location) -> dict[str, Any]:
    a = location.address
    return {
        "id": location.id,
        "type": location.type.value,
        "name": location.name,
        "line1": a.line1,
        "line2": a.line2,
        "city": a.city,
        "region": a.region,
        "postal_code": a.postal_code,
        "country": a.country,
        "lat": a.lat,
        "lon": a.lon,
        **{CAPABILITY_COLUMN[c]: c in location.capabilities for c in Capability},
        "priority": location.priority,
        "active": location.active,
        "timezone": location.timezone,
        "fulfillment_callback_url": location.fulfillment_callback_url,
    }


class LocationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def upsert_many(
        self, locations: Sequence[Location], now: dt.datetime
    ) -> dict[str, tuple[int, bool]]:
        stmt = insert_for(self.conn, t.locations)
        # The callback secret is made once, with the location, and never overwritten here.
        updatable = [c.name for c in t.locations.c
                     if c.name not in ("id", "created_at", "version", "callback_secret")]
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.locations.c.id],
            set_={**{name: stmt.excluded[name] for name in updatable},
                  "version": t.locations.c.version + 1},
        ).returning(t.locations.c.id, t.locations.c.version)
        params = [
            {**location_row(loc), "callback_secret": new_webhook_secret(), "version": 1,
             "created_at": now, "updated_at": now}
            for loc in locations
        ]
        return {r.id: (r.version, r.version == 1) for r in self.conn.execute(stmt, params)}

    def get(self, location_id: str) -> Stored[Location] | None:
        row = self.conn.execute(
            select(t.locations).where(t.locations.c.id == location_id)
        ).mappings().first()
        return None if row is None else _location(row)

    def existing(self, ids: Iterable[str]) -> set[str]:
        ids = list(set(ids))
        return set(self.conn.scalars(select(t.locations.c.id).where(t.locations.c.id.in_(ids))))

    def revision(self) -> str:
        """Changes whenever a location is created or changed."""
        count, versions = self.conn.execute(
            select(func.count(), func.coalesce(func.sum(t.locations.c.version), 0))).one()
        return f"{count}:{versions}"

    def callback(self, location_id: str) -> tuple[str, str] | None:
        """The URL and signing secret a DC or 3PL is told of its requests with."""
        row = self.conn.execute(
            select(t.locations.c.fulfillment_callback_url, t.locations.c.callback_secret)
            .where(t.locations.c.id == location_id)).first()
        if row is None or row.fulfillment_callback_url is None or row.callback_secret is None:
            return None
        return row.fulfillment_callback_url, row.callback_secret

    def callback_secret(self, location_id: str) -> str | None:
        return self.conn.scalar(select(t.locations.c.callback_secret)
                                .where(t.locations.c.id == location_id))

    def page(
        self,
        *,
        after: str | None,
        limit: int,
        type: str | None = None,
        active: bool | None = None,
        capability: Capability | None = None,
    ) -> list[Stored[Location]]:
        stmt = select(t.locations).order_by(t.locations.c.id).limit(limit)
        if after is not None:
            stmt = stmt.where(t.locations.c.id > after)
        if type is not None:
            stmt = stmt.where(t.locations.c.type == type)
        if active is not None:
            stmt = stmt.where(t.locations.c.active == active)
        if capability is not None:
            stmt = stmt.where(t.locations.c[CAPABILITY_COLUMN[capability]].is_(True))
        return [_location(r) for r in self.conn.execute(stmt).mappings()]


def _location(r: RowMapping) -> Stored[Location]:
    return Stored(
        Location(
            id=r["id"],
            type=LocationType(r["type"]),
            name=r["name"],
            address=Address(
                line1=r["line1"],
                line2=r["line2"],
                city=r["city"],
                region=r["region"],
                postal_code=r["postal_code"],
                country=r["country"],
                lat=r["lat"],
                lon=r["lon"],
            ),
            capabilities=frozenset(c for c in Capability if r[CAPABILITY_COLUMN[c]]),
            priority=r["priority"],
            active=r["active"],
            timezone=r["timezone"],
            fulfillment_callback_url=r["fulfillment_callback_url"],
        ),
        r["version"],
        r["created_at"],
        r["updated_at"],
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


# Availability: every location's stock of some skus, or one location's, built once.
_LEVELS = (select(*_LEVEL_COLUMNS[:5])
           .where(t.stock_levels.c.sku.in_(bindparam("skus", expanding=True)))
           .order_by(t.stock_levels.c.sku, t.stock_levels.c.location_id))
_LEVELS_AT = _LEVELS.where(t.stock_levels.c.location_id == bindparam("at"))
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


ATP_ANY = ("SELECT location_id, sku, on_hand - reserved - safety_stock FROM stock_levels "
           "WHERE sku = ANY(%s)")
_ATP_IN = ("SELECT location_id, sku, on_hand - reserved - safety_stock FROM stock_levels "
           "WHERE sku IN ({})")


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
        if location_id is None:
            rows = self.conn.execute(_LEVELS, {"skus": list(skus)})
        else:
            rows = self.conn.execute(_LEVELS_AT, {"skus": list(skus), "at": location_id})
        return [StockLevel(*row) for row in rows]

    def atp(self, skus: Sequence[str]) -> Sequence[tuple[str, str, int]]:
        """(location, sku, ATP) of these skus everywhere: what routing weighs. An order over
        500 locations reads hundreds of rows: they come as the driver's own tuples, which
        cost a fraction of result rows."""
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.conn.dialect.name == "postgresql":
                cursor.execute(ATP_ANY, (list(skus),))
            else:
                cursor.execute(_ATP_IN.format(", ".join("?" * len(skus))), list(skus))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return list(rows)

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
            .values(status=status.value, closed_at=now)
            .returning(*t.reservations.c)
        ).first()
        return None if row is None else _reservation(row)

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

    def get(self, reservation_id: str) -> ReservationRecord | None:
        row = self.conn.execute(
            select(t.reservations).where(t.reservations.c.id == reservation_id)
        ).first()
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
        r.created_at, r.closed_at, r.available_on,
    )


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    entity_id: str
    sequence: int
    occurred_at: dt.datetime
    payload: dict[str, Any]

    def document(self) -> str:
        """The event as pushed to webhooks and NATS: compact JSON, its state under `data`."""
        return json.dumps({
            "id": self.id, "type": self.type, "occurred_at": self.occurred_at.isoformat(),
            "entity_id": self.entity_id, "sequence": self.sequence, "data": self.payload,
        }, separators=(",", ":"))


_EVENT_ID = re.compile(r"[0-9a-fA-F]{32}")


def event_id(txid: int, position: int) -> str:
    """A sortable, opaque event id: the writing transaction, then the insert order."""
    return f"{txid:016x}{position:016x}"


def parse_event_id(value: str) -> tuple[int, int]:
    if not _EVENT_ID.fullmatch(value):
        raise ValueError("not an event id")
    txid, position = int(value[:16], 16), int(value[16:], 16)
    # Both halves are compared with BIGINT columns, which a larger number would overflow.
    if max(txid, position) >= 2**63:
        raise ValueError("not an event id")
    return txid, position


# The first transaction id whose events a reader may not be shown yet, in the statement's
# own snapshot: the oldest transaction still running that could belong to this database
# (the reader's own included), else the snapshot's xmax, below which every transaction has
# ended. See EventRepository.
_FEED_HORIZON = text("""(
WITH elsewhere AS (
    SELECT backend_xid::text::bigint AS xid FROM pg_stat_activity
     WHERE backend_xid IS NOT NULL AND datname <> current_database()
    UNION ALL
    SELECT transaction::text::bigint FROM pg_prepared_xacts
     WHERE database <> current_database()
)
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_snapshot_xmin(snapshot)
        ELSE least((SELECT min(running) FROM pg_snapshot_xip(snapshot) AS running
                     WHERE running::text::bigint % 4294967296
                           NOT IN (SELECT xid FROM elsewhere)),
                   pg_current_xact_id_if_assigned(),
                   pg_snapshot_xmax(snapshot))
        END)::text::bigint
  FROM pg_current_snapshot() AS snapshot
)""")


class EventRepository:
    """The append-only event log.

    On PostgreSQL, transactions commit in another order than they were given positions, so a
    reader ordering by position alone could pass over an event that commits later with a
    smaller one. Each event therefore carries its transaction id, readers order by
    (txid, position), and a reader is shown only events below a horizon that no transaction
    able to write an event can still commit under. Whatever a reader has seen, nothing can
    later appear before it.

    The horizon is the oldest transaction of *this database* still running in the reader's
    snapshot (pg_snapshot_xip, plus the reader's own), else the snapshot's xmax. Other
    databases' transactions are left out: a session is bound to one database and cannot write
    our events table, so another application's idle transaction on the same server does not
    stall the feed (the server-wide pg_snapshot_xmin would wait for it). A running xid is left
    out only when it is *known* to be another database's: the backend_xid of a session of
    another database in pg_stat_activity, or a transaction prepared in another database
    (pg_prepared_xacts). That fact cannot go stale (an xid belongs to one transaction of one
    database for good), so reading pg_stat_activity at a slightly different moment than the
    snapshot can only make a reader wait longer, never skip: whatever is unknown (a session not
    listed yet, a process without a database) counts as ours. Those views give 32-bit xids and
    the snapshot 64-bit ones, compared on their low 32 bits; transactions running at once are
    less than 2^31 apart, so that is unambiguous.
    A snapshot taken on a hot standby lists no running xids, so there the horizon stays the
    server-wide xmin.

    Weighed and not taken: a commit sequence of our own (a counter row every writer bumps)
    orders events by commit but serialises every writing transaction on that row until it
    commits; skipping held-back positions after a bounded wait breaks the guarantee for any
    transaction slower than the bound. What remains to bound is a transaction of this
    database left open: our connections carry idle_in_transaction_session_timeout
    (engine.py), and the README says what to set for other clients of the database.
    """

    def __init__(self, conn: Connection, inserts: HeldInserts | None = None) -> None:
        self.conn = conn
        self.inserts = inserts or HeldInserts(conn)

    def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        # PostgreSQL: the writing transaction's id, which readers order by (see above).
        txid = ("pg_current_xact_id()::text::bigint" if self.conn.dialect.name == "postgresql"
                else "0")
        self.inserts.add(t.events, [
            {"type": e.type, "entity_id": e.entity_id, "sequence": e.sequence,
             "occurred_at": e.occurred_at, "payload": e.payload} for e in events],
            every_row={"txid": txid})

    def read(
        self, *, after: tuple[int, int] | None, types: Sequence[str], limit: int,
        entity_id: str | None = None,
    ) -> list[StoredEvent]:
        e = t.events.c
        stmt = select(t.events).order_by(e.txid, e.position).limit(limit)
        if after is not None:
            stmt = stmt.where(tuple_(e.txid, e.position) > tuple_(*after))
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.where(e.txid < _FEED_HORIZON)
        if types:
            exact = [x for x in types if not x.endswith(".*")]
            prefixes = [x[:-1] for x in types if x.endswith(".*")]
            stmt = stmt.where(or_(e.type.in_(exact), *(e.type.startswith(p) for p in prefixes)))
        if entity_id is not None:
            stmt = stmt.where(e.entity_id == entity_id)
        return [_stored_event(r) for r in self.conn.execute(stmt)]

    def held_back(self) -> int:
        """Committed events no reader is shown yet, because a transaction of this database
        older than theirs is still running (PostgreSQL only; a reader asks again shortly)."""
        if self.conn.dialect.name != "postgresql":
            return 0
        e = t.events.c
        return int(self.conn.scalar(select(func.count()).select_from(t.events).where(
            e.txid >= _FEED_HORIZON)) or 0)

    def latest(self) -> tuple[int, int]:
        """The last event a reader can see now ((0, 0) if none): whatever commits later
        comes after it."""
        e = t.events.c
        stmt = select(e.txid, e.position).order_by(e.txid.desc(), e.position.desc()).limit(1)
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.where(e.txid < _FEED_HORIZON)
        row = self.conn.execute(stmt).first()
        return (0, 0) if row is None else (int(row.txid), int(row.position))

    def last_sequence(self, entity_id: str) -> int:
        """The sequence of the entity's last event (0 if none)."""
        e = t.events.c
        return int(self.conn.scalar(select(func.max(e.sequence))
                                    .where(e.entity_id == entity_id)) or 0)

    def by_keys(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], StoredEvent]:
        if not keys:
            return {}
        e = t.events.c
        # position alone is the primary key; txid only confirms it is the same event.
        rows = self.conn.execute(
            select(t.events).where(e.position.in_([p for _, p in keys])))
        wanted = set(keys)
        return {(r.txid, r.position): _stored_event(r) for r in rows
                if (r.txid, r.position) in wanted}


def _stored_event(r: Any) -> StoredEvent:
    return StoredEvent(event_id(r.txid, r.position), r.type, r.entity_id, r.sequence,
                       r.occurred_at, r.payload)


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    prefix: str
    role: str
    location_ids: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, record: ApiKeyRecord, key_hash: str) -> None:
        self.conn.execute(
            t.api_keys.insert().values(
                id=record.id, name=record.name, key_hash=key_hash, prefix=record.prefix,
                role=record.role, location_ids=list(record.location_ids),
                created_at=record.created_at, revoked_at=None,
            )
        )

    def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = self.conn.execute(
            select(t.api_keys).where(t.api_keys.c.key_hash == key_hash)
        ).first()
        return None if row is None else _api_key(row)

    def get(self, key_id: str) -> ApiKeyRecord | None:
        row = self.conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
        return None if row is None else _api_key(row)

    def all(self) -> list[ApiKeyRecord]:
        return [_api_key(r) for r in self.conn.execute(
            select(t.api_keys).order_by(t.api_keys.c.created_at))]

    def revoke(self, key_id: str, now: dt.datetime) -> bool:
        result = self.conn.execute(
            update(t.api_keys)
            .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1


def _api_key(r: Any) -> ApiKeyRecord:
    return ApiKeyRecord(r.id, r.name, r.prefix, r.role, tuple(r.location_ids), r.created_at,
                        r.revoked_at)
