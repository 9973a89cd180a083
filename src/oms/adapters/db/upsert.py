"""INSERTs for whichever engine is in use: ON CONFLICT, and rows a few at a time or many."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import (
    Dialect,
    MetaData,
    Table,
    TextClause,
    bindparam,
    literal_column,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from oms.adapters.db.errors import as_sqlalchemy_errors


def insert_for(conn: Connection, table: Table) -> Any:
    """The dialect's own insert(), which knows on_conflict_do_update/do_nothing."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


#: Up to this many rows go in one prebuilt INSERT ... VALUES statement (one statement per
#: row count, built once); more (bulk loads) go as executemany, which PostgreSQL receives as
#: one INSERT ... VALUES a page (see engine.py).
ROWS_PER_STATEMENT = 64


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
                every_row: Mapping[str, str] | None = None) -> None:
    """Insert the rows, all of the same columns; `every_row` gives columns the same SQL text
    in every row (a function of the server, a constant)."""
    if not rows:
        return
    raw = tuple(sorted((every_row or {}).items()))
    if len(rows) > ROWS_PER_STATEMENT:
        conn.execute(table.insert().values({name: literal_column(sql) for name, sql in raw}),
                     list(rows))
        return
    columns = tuple(rows[0])
    conn.execute(_insert_statement(table, columns, len(rows), raw),
                 {f"{name}_{n}": row[name] for n, row in enumerate(rows) for name in columns})


@functools.cache
def _insert_statement(table: Table, columns: tuple[str, ...], count: int,
                      raw: tuple[tuple[str, str], ...]) -> TextClause:
    """INSERT of `count` rows: its parameters are named `<column>_<row>` and typed as the
    table's columns (so dates and JSON are bound as the table binds them). Building the SQL
    and its parameters once, not at every call, is most of what an INSERT costs the API."""
    shape = Shape(table, columns, count, raw)
    return text(_insert_sql(shape, lambda name, n, _: f":{name}_{n}")).bindparams(
        *(bindparam(f"{name}_{n}", type_=table.c[name].type)
          for n in range(count) for name in columns))


@dataclass(frozen=True)
class Shape:
    """What an INSERT of rows looks like: its table, columns, row count and the columns of
    the same SQL text in every row."""

    table: Table
    columns: tuple[str, ...]
    count: int
    raw: tuple[tuple[str, str], ...]


def _insert_sql(shape: Shape, placeholder: Callable[[str, int, int], str]) -> str:
    """INSERT ... VALUES of the shape; `placeholder(column, row, k)` names the k-th value
    of the statement, counting from 0, column by column and row by row."""
    names = ", ".join(f'"{name}"' for name in (*shape.columns, *(n for n, _ in shape.raw)))
    width = len(shape.columns)
    rows = ", ".join(
        "(" + ", ".join([*(placeholder(name, n, n * width + c)
                           for c, name in enumerate(shape.columns)),
                         *(sql for _, sql in shape.raw)]) + ")"
        for n in range(shape.count))
    return f'INSERT INTO "{shape.table.name}" ({names}) VALUES {rows}'


@functools.lru_cache(maxsize=512)
def _combined_statement(shapes: tuple[Shape, ...]) -> str:
    """The INSERTs of several tables as one PostgreSQL statement, each but the last in a
    WITH clause of its own, with positional parameters ($1, $2, ...: row by row, column by
    column, part by part). Foreign keys are checked at the end of the statement, so the
    parts' order does not matter. In each INSERT's VALUES the parameters take the types of
    their columns."""
    inserts, before = [], 0
    for shape in shapes:
        inserts.append(_insert_sql(shape, _positional(before)))
        before += shape.count * len(shape.columns)
    *first, last = inserts
    with_clause = ("WITH " + ", ".join(f"w{k} AS ({sql})" for k, sql in enumerate(first))
                   + " ") if first else ""
    return with_clause + last


def _positional(before: int) -> Callable[[str, int, int], str]:
    """$1, $2, ... after the `before` parameters of the parts before."""
    return lambda _column, _row, k: f"${before + k + 1}"


@functools.cache
def _binders(table: Table, columns: tuple[str, ...], dialect: Dialect
             ) -> tuple[Callable[[Any], Any] | None, ...]:
    """What SQLAlchemy does to each column's value before the driver has it (JSON
    documents wrapped for psycopg, times made UTC)."""
    return tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                 for name in columns)


@functools.cache
def _table_order(metadata: MetaData) -> dict[Table, int]:
    return {table: n for n, table in enumerate(metadata.sorted_tables)}


class HeldInserts:
    """Rows to insert. Inserted at once, unless `holding`: then kept until `flush`, which on
    PostgreSQL sends them all in one statement (one round trip for an order's rows, its
    reservations, requests, routing run and events), on SQLite table by table in the order
    their foreign keys need. Hold only rows nothing reads or changes before the flush."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.holding = False
        self._held: list[tuple[Table, list[Mapping[str, Any]], Mapping[str, str] | None]] = []

    def add(self, table: Table, rows: Sequence[Mapping[str, Any]],
            every_row: Mapping[str, str] | None = None) -> None:
        if not rows:
            return
        if self.holding:
            self._held.append((table, list(rows), every_row))
        else:
            insert_rows(self.conn, table, rows, every_row)

    def clear(self) -> None:
        self._held.clear()
        self.holding = False

    def flush(self) -> None:
        held, self._held, self.holding = self._held, [], False
        if not held:
            return
        # Rows of one table, of the same columns, go together; tables in foreign key order.
        grouped: dict[tuple[Table, tuple[str, ...], tuple[tuple[str, str], ...]],
                      list[Mapping[str, Any]]] = {}
        for table, rows, every_row in held:
            key = (table, tuple(rows[0]), tuple(sorted((every_row or {}).items())))
            grouped.setdefault(key, []).extend(rows)
        order = _table_order(held[0][0].metadata)
        parts = sorted(grouped.items(), key=lambda part: order[part[0][0]])
        if self.conn.dialect.name != "postgresql" or any(
                len(rows) > ROWS_PER_STATEMENT for _, rows in parts):
            for (table, _, raw), rows in parts:
                insert_rows(self.conn, table, rows, dict(raw))
            return
        shapes = tuple(Shape(table, columns, len(rows), raw)
                       for (table, columns, raw), rows in parts)
        sql = _combined_statement(shapes)
        values: list[Any] = []
        for (table, columns, _), rows in parts:
            binders = _binders(table, columns, self.conn.dialect)
            for row in rows:
                values += [value if bind is None else bind(value)
                           for bind, value in zip(binders, map(row.__getitem__, columns),
                                                  strict=True)]
        # Straight to psycopg, as positional parameters: a statement of hundreds of named
        # parameters costs psycopg more to convert (it caches none over 50) than to send.
        driver = self.conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        with as_sqlalchemy_errors(sql, values), psycopg.RawCursor(driver) as cursor:
            cursor.execute(sql, values, prepare=True)
