"""INSERTs for whichever engine is in use: ON CONFLICT, and rows a few at a time or many."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_for(conn: Connection, table: Table) -> Any:
    """The dialect's own insert(), which knows on_conflict_do_update/do_nothing."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)



def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
                every_row: Mapping[str, Any] | None = None) -> None:
    """Insert the rows, as executemany: on PostgreSQL the engine sends them as one
    INSERT ... VALUES statement a page (see engine.py); `every_row` gives columns the same
    value (or SQL expression) in every row."""
    if rows:
        conn.execute(table.insert().values(**dict(every_row or {})), list(rows))
