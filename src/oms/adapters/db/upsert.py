"""INSERTs for whichever engine is in use: ON CONFLICT, and rows a few at a time or many."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, literal_column, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


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
    names = ", ".join(f'"{name}"' for name in (*columns, *(name for name, _ in raw)))
    rows = ", ".join(
        "(" + ", ".join([*(f":{name}_{n}" for name in columns), *(sql for _, sql in raw)]) + ")"
        for n in range(count))
    return text(f'INSERT INTO "{table.name}" ({names}) VALUES {rows}').bindparams(
        *(bindparam(f"{name}_{n}", type_=table.c[name].type)
          for n in range(count) for name in columns))
