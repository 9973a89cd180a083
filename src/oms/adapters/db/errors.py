"""Database failures that are nobody's fault and go away when the work is tried again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError

#: PostgreSQL: serialization failure, deadlock, lock wait over lock_timeout, an idle
#: transaction ended by the server, a server shutting down or restarting.
_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "25P03", "57P01", "57P02",
                               "57P03"})


def is_transient(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if state is not None:
        return state in _TRANSIENT_STATES or state.startswith("08")  # connection exceptions
    # SQLite: another writer held the database for longer than busy_timeout.
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message


@contextmanager
def as_sqlalchemy_errors(statement: str, params: Any) -> Iterator[None]:
    """Work done on psycopg's own connection (a pipeline, positional parameters) fails as
    the same work through SQLAlchemy would: a duplicate as an IntegrityError, a deadlock as
    an OperationalError, which the API answers as it does any other."""
    try:
        yield
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement, params, exc, psycopg.Error) from exc
