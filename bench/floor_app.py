"""The floor: the least a FastAPI + psycopg 3 service must do to place an order.

No oms code. `POST /v1/orders` takes the body oms takes (validated by a Pydantic model),
reads the stock of the order's skus at the locations that ship, picks for each line the
nearest location that can take the most of the order (fewest shipments, as oms routes), and
in one transaction inserts the order and its lines, reserves stock with one conditional
UPDATE per line (`... WHERE on_hand - reserved >= quantity`), appends an event and commits.
Anything more an order management system does (customers, payments, reservation rows,
routing records, idempotency, authentication, logs) is what oms adds above this floor.

PostgreSQL: an async endpoint on a small pool of connections per worker process; the stock is
read in autocommit, then the writes go in a pipeline with the BEGIN and are synced once so
the UPDATEs' row counts can be checked before COMMIT: three round trips an order. SQLite: one
connection per worker process, called straight from the event loop (the writes of all
processes take turns anyway), WAL and `synchronous=NORMAL` as oms uses it; `BEGIN IMMEDIATE`
is retried from the event loop while another process holds the write lock, rather than
waited for in SQLite's busy handler, which sleeps the whole process.

Served with `uvicorn floor_app:app --workers N`, configured by `FLOOR_DATABASE`: a
PostgreSQL conninfo/URL, or `sqlite:///path`. `schema_statements()` gives its tables.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

DATABASE = os.environ.get("FLOOR_DATABASE", "")
POOL_SIZE = int(os.environ.get("FLOOR_POOL_SIZE", "8"))
#: SQLite: how long a request waits for the write lock before it fails.
LOCK_WAIT_SECONDS = 30.0


class Line(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0)
    unit_price: Decimal
    tax: Decimal = Decimal(0)


class Address(BaseModel):
    country: str = Field(min_length=2, max_length=2)
    lat: float
    lon: float


class Shipping(BaseModel):
    address: Address


class Customer(BaseModel):
    email: str = Field(min_length=3, max_length=320)


class Totals(BaseModel):
    grand_total: Decimal


class OrderIn(BaseModel):
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=100)
    placed_at: dt.datetime
    currency: str = Field(min_length=3, max_length=3)
    customer: Customer
    items: list[Line] = Field(min_length=1, max_length=100)
    shipping: Shipping
    totals: Totals


def schema_statements(sqlite: bool = False) -> list[str]:
    uuid_type = "TEXT" if sqlite else "uuid"
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "bigserial PRIMARY KEY"
    return [
        "CREATE TABLE locations (id TEXT PRIMARY KEY, lat DOUBLE PRECISION NOT NULL, "
        "lon DOUBLE PRECISION NOT NULL, ships BOOLEAN NOT NULL)",
        "CREATE TABLE stock (location_id TEXT NOT NULL REFERENCES locations, sku TEXT NOT NULL, "
        "on_hand INTEGER NOT NULL, reserved INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (location_id, sku), CHECK (reserved >= 0))",
        "CREATE INDEX stock_sku ON stock (sku)",
        f"CREATE TABLE orders (id {uuid_type} PRIMARY KEY, channel TEXT NOT NULL, "
        "external_id TEXT NOT NULL, placed_at TIMESTAMP WITH TIME ZONE NOT NULL, "
        "currency CHAR(3) NOT NULL, email TEXT NOT NULL, grand_total NUMERIC(14, 2) NOT NULL, "
        "UNIQUE (channel, external_id))",
        f"CREATE TABLE order_lines (order_id {uuid_type} NOT NULL REFERENCES orders, "
        "line INTEGER NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL, "
        "unit_price NUMERIC(14, 2) NOT NULL, tax NUMERIC(14, 2) NOT NULL, "
        "location_id TEXT NOT NULL, PRIMARY KEY (order_id, line))",
        f"CREATE TABLE events (id {serial}, type TEXT NOT NULL, entity_id {uuid_type} NOT NULL, "
        f"payload {'TEXT' if sqlite else 'jsonb'} NOT NULL, "
        "occurred_at TIMESTAMP WITH TIME ZONE NOT NULL)",
    ]


# -- routing: fewest locations, then the nearest --------------------------------------------

Places = dict[str, tuple[float, float]]


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    # An equirectangular approximation orders distances within a country as haversine does.
    x = math.radians(b[1] - a[1]) * math.cos(math.radians((a[0] + b[0]) / 2))
    y = math.radians(b[0] - a[0])
    return x * x + y * y


def plan(lines: Sequence[Line], atp: dict[tuple[str, str], int], places: Places,
         destination: tuple[float, float]) -> list[str] | None:
    """A location per line, or None when some line fits nowhere."""
    chosen: list[str | None] = [None] * len(lines)
    left = dict(atp)
    while None in chosen:
        best: tuple[int, float, str, list[int]] | None = None
        for location_id, where in places.items():
            need: dict[str, int] = {}
            fits = []
            for i, line in enumerate(lines):
                if chosen[i] is None and left.get((location_id, line.sku), 0) >= (
                        need.get(line.sku, 0) + line.quantity):
                    need[line.sku] = need.get(line.sku, 0) + line.quantity
                    fits.append(i)
            if fits:
                key = (-len(fits), _distance(where, destination), location_id, fits)
                if best is None or key[:3] < best[:3]:
                    best = key
        if best is None:
            return None
        for i in best[3]:
            chosen[i] = best[2]
            left[(best[2], lines[i].sku)] -= lines[i].quantity
    return [c for c in chosen if c is not None]


def _event(order_id: uuid.UUID, order: OrderIn, where: list[str]) -> str:
    return json.dumps({
        "order_id": str(order_id), "channel": order.channel, "external_id": order.external_id,
        "grand_total": str(order.totals.grand_total), "currency": order.currency,
        "items": [{"line": n, "sku": line.sku, "quantity": line.quantity, "location_id": loc}
                  for n, (line, loc) in enumerate(zip(order.items, where, strict=True), 1)]})


def _answer(order_id: uuid.UUID, order: OrderIn, where: list[str]) -> dict[str, Any]:
    return {"id": str(order_id), "status": "routed",
            "items": [{"line": n, "sku": line.sku, "quantity": line.quantity,
                       "location_id": loc}
                      for n, (line, loc) in enumerate(zip(order.items, where, strict=True), 1)]}


class OutOfStock(Exception):
    pass


# -- PostgreSQL ------------------------------------------------------------------------------

STOCK_PG = ("SELECT s.location_id, s.sku, s.on_hand - s.reserved FROM stock s "
            "JOIN locations l ON l.id = s.location_id "
            "WHERE l.ships AND s.sku = ANY(%s) AND s.on_hand > s.reserved")
INSERT_ORDER_PG = ("INSERT INTO orders (id, channel, external_id, placed_at, currency, email, "
                   "grand_total) VALUES (%s, %s, %s, %s, %s, %s, %s)")
INSERT_LINE_PG = ("INSERT INTO order_lines (order_id, line, sku, quantity, unit_price, tax, "
                  "location_id) VALUES (%s, %s, %s, %s, %s, %s, %s)")
RESERVE_PG = ("UPDATE stock SET reserved = reserved + %s "
              "WHERE location_id = %s AND sku = %s AND on_hand - reserved >= %s")
EVENT_PG = ("INSERT INTO events (type, entity_id, payload, occurred_at) "
            "VALUES ('order.placed', %s, %s, now())")


class PostgresFloor:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo.replace("postgresql+psycopg://", "postgresql://")
        self.pool: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self.places: Places = {}

    async def open(self) -> None:
        for _ in range(POOL_SIZE):
            self.pool.put_nowait(await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True))
        conn = await self.pool.get()
        rows = await (await conn.execute("SELECT id, lat, lon FROM locations WHERE ships")
                      ).fetchall()
        self.pool.put_nowait(conn)
        self.places = {r[0]: (r[1], r[2]) for r in rows}

    async def close(self) -> None:
        while not self.pool.empty():
            await self.pool.get_nowait().close()

    async def place(self, order: OrderIn) -> dict[str, Any]:
        conn = await self.pool.get()
        try:
            return await self._place(conn, order)
        finally:
            self.pool.put_nowait(conn)

    async def _place(self, conn: psycopg.AsyncConnection[Any], order: OrderIn
                     ) -> dict[str, Any]:
        skus = sorted({line.sku for line in order.items})
        rows = await (await conn.execute(STOCK_PG, (skus,))).fetchall()
        address = order.shipping.address
        where = plan(order.items, {(r[0], r[1]): r[2] for r in rows}, self.places,
                     (address.lat, address.lon))
        if where is None:
            raise OutOfStock
        order_id = uuid.uuid4()
        # Stock rows are updated in key order, as every writer should lock them.
        updates = sorted((loc, line.sku, line.quantity)
                         for loc, line in zip(where, order.items, strict=True))
        # BEGIN is sent by hand: psycopg's transaction() would sync the pipeline on entering.
        try:
            async with conn.pipeline() as pipeline:
                await conn.execute("BEGIN")
                await conn.execute(INSERT_ORDER_PG, (
                    order_id, order.channel, order.external_id, order.placed_at,
                    order.currency, order.customer.email, order.totals.grand_total))
                async with conn.cursor() as cursor:
                    await cursor.executemany(INSERT_LINE_PG, [
                        (order_id, n, line.sku, line.quantity, line.unit_price, line.tax, loc)
                        for n, (line, loc) in enumerate(zip(order.items, where, strict=True),
                                                        1)])
                reserved = [await conn.execute(RESERVE_PG, (quantity, loc, sku, quantity))
                            for loc, sku, quantity in updates]
                await conn.execute(EVENT_PG, (order_id, _event(order_id, order, where)))
                await pipeline.sync()
                # Someone may have taken the stock since it was read.
                taken = all(cursor.rowcount == 1 for cursor in reserved)
                await conn.execute("COMMIT" if taken else "ROLLBACK")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        if not taken:
            raise OutOfStock
        return _answer(order_id, order, where)


# -- SQLite ----------------------------------------------------------------------------------

class SqliteFloor:
    def __init__(self, path: str) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.places: Places = {}

    async def open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # No busy_timeout: SQLite's busy handler sleeps (up to 100 ms at a time) in the
        # thread that waits, here the event loop; _begin waits for the write lock instead.
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=0"):
            conn.execute(f"PRAGMA {pragma}")
        self.conn = conn
        self.places = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT id, lat, lon FROM locations WHERE ships")}

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    @staticmethod
    async def _begin(conn: sqlite3.Connection) -> None:
        """Take the write lock, letting other requests run while another process holds it."""
        delay, waited = 0.0002, 0.0
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or waited > LOCK_WAIT_SECONDS:
                    raise
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.005)

    async def place(self, order: OrderIn) -> dict[str, Any]:
        conn = self.conn
        assert conn is not None
        skus = sorted({line.sku for line in order.items})
        await self._begin(conn)
        # From here to COMMIT nothing awaits: the transaction is this coroutine's alone.
        try:
            rows = conn.execute(
                "SELECT s.location_id, s.sku, s.on_hand - s.reserved FROM stock s "
                "JOIN locations l ON l.id = s.location_id WHERE l.ships AND s.sku IN "
                f"({', '.join('?' * len(skus))}) AND s.on_hand > s.reserved", skus).fetchall()
            address = order.shipping.address
            where = plan(order.items, {(r[0], r[1]): r[2] for r in rows}, self.places,
                         (address.lat, address.lon))
            if where is None:
                raise OutOfStock
            order_id = uuid.uuid4()
            conn.execute(
                "INSERT INTO orders (id, channel, external_id, placed_at, currency, email, "
                "grand_total) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (str(order_id), order.channel, order.external_id, order.placed_at.isoformat(),
                 order.currency, order.customer.email, str(order.totals.grand_total)))
            conn.executemany(
                "INSERT INTO order_lines (order_id, line, sku, quantity, unit_price, tax, "
                "location_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(str(order_id), n, line.sku, line.quantity, str(line.unit_price),
                  str(line.tax), loc)
                 for n, (line, loc) in enumerate(zip(order.items, where, strict=True), 1)])
            for loc, sku, quantity in sorted(
                    (loc, line.sku, line.quantity)
                    for loc, line in zip(where, order.items, strict=True)):
                if conn.execute(
                        "UPDATE stock SET reserved = reserved + ? "
                        "WHERE location_id = ? AND sku = ? AND on_hand - reserved >= ?",
                        (quantity, loc, sku, quantity)).rowcount != 1:
                    raise OutOfStock
            conn.execute(
                "INSERT INTO events (type, entity_id, payload, occurred_at) "
                "VALUES ('order.placed', ?, ?, ?)",
                (str(order_id), _event(order_id, order, where),
                 dt.datetime.now(dt.UTC).isoformat()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return _answer(order_id, order, where)


def _backend() -> PostgresFloor | SqliteFloor:
    if DATABASE.startswith("sqlite:///"):
        return SqliteFloor(DATABASE.removeprefix("sqlite:///"))
    return PostgresFloor(DATABASE)


floor = _backend()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await floor.open()
    yield
    await floor.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/orders", status_code=201)
async def place_order(order: OrderIn) -> dict[str, Any]:
    try:
        return await floor.place(order)
    except OutOfStock:
        raise HTTPException(409, "not enough stock") from None
