"""What placing an order reads before it writes: its skus' ATP everywhere, their pre-order
dates, and the customer by email. On PostgreSQL the three go in one round trip (a psycopg
pipeline); a new order then needs the BEGIN, this, its reservation, its rows and events, and
the COMMIT."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Dialect
from sqlalchemy.engine import Connection

from oms.adapters.db import tables as t
from oms.adapters.db.catalog_repositories import ProductRepository
from oms.adapters.db.errors import as_sqlalchemy_errors
from oms.adapters.db.order_repositories import CUSTOMER_BY_EMAIL
from oms.adapters.db.stock_repositories import ATP_ANY, StockRepository


@dataclass(frozen=True)
class PlacementReads:
    #: (location, sku, ATP) of every level of the skus.
    atp: list[tuple[str, str, int]]
    #: Each known sku: its tentative ship date if it is a pre-order, else None.
    preorder_dates: dict[str, dt.date | None]
    #: The customer's row, if one has this email.
    customer: dict[str, Any] | None


_COLUMNS = tuple(c.name for c in t.customers.columns)
_PREORDER_DATES = "SELECT sku, preorder_ship_date FROM products WHERE sku = ANY(%s)"
_CUSTOMER = (f"SELECT {', '.join(_COLUMNS)} FROM customers WHERE email_key = %s")


def read_for_placement(conn: Connection, skus: Sequence[str], email_key: str, *,
                       with_atp: bool = True) -> PlacementReads:
    """Without ATP (`with_atp` False: a historical order, which is not routed), `atp` is
    empty."""
    if conn.dialect.name != "postgresql":
        found = conn.execute(CUSTOMER_BY_EMAIL, {"email_key_": email_key}).mappings().first()
        return PlacementReads(list(StockRepository(conn).atp(skus)) if with_atp else [],
                              ProductRepository(conn).preorder_dates(skus),
                              None if found is None else dict(found))
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with (as_sqlalchemy_errors(_CUSTOMER, [email_key]), driver.pipeline(),
          driver.cursor() as atp, driver.cursor() as dates, driver.cursor() as customer):
        if with_atp:
            atp.execute(ATP_ANY, (list(skus),), prepare=True)
        dates.execute(_PREORDER_DATES, (list(skus),), prepare=True)
        customer.execute(_CUSTOMER, (email_key,), prepare=True)
        # The first fetch sends them all and waits once for the answers.
        atp_rows = atp.fetchall() if with_atp else []
        preorder_dates = dict(dates.fetchall())
        row = customer.fetchone()
    return PlacementReads(atp_rows, preorder_dates,
                          None if row is None else _customer(row, conn.dialect))


def _customer(row: Sequence[Any], dialect: Dialect) -> dict[str, Any]:
    """The row as SQLAlchemy would give it (its times in UTC)."""
    return {name: value if convert is None else convert(value)
            for name, convert, value in zip(_COLUMNS, _converters(dialect), row, strict=True)}


@functools.cache
def _converters(dialect: Dialect) -> tuple[Callable[[Any], Any] | None, ...]:
    return tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                 for c in t.customers.columns)
