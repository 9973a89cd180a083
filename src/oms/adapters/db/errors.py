"""Database failures that are nobody's fault and go away when the work is tried again."""

from __future__ import annotations

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
