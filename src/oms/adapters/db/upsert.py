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


#: Up to this many rows go in one INSERT ... VALUES (...), (...): one statement instead of a
#: statement per row. More (bulk imports) go as executemany, below the drivers' limits on
#: parameters per statement.
ROWS_PER_STATEMENT = 64


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
                every_row: Mapping[str, Any] | None = None) -> None:
    """Insert the rows; `every_row` gives columns the same value (or SQL expression) in
    every row."""
    if not rows:
        return
    same = dict(every_row or {})
    if len(rows) <= ROWS_PER_STATEMENT:
        conn.execute(table.insert().values([{**row, **same} for row in rows]))
    else:
        conn.execute(table.insert().values(**same), list(rows))
