"""How many units of work of one process talk to the database at once.

A request's work is mostly Python holding the GIL, between short waits for the database.
With tens of threads at it in one process, each wait is followed by a wait for the GIL, so a
transaction holds its row locks (PostgreSQL) or the write lock (SQLite) many times longer
than its work takes, and the process does less in all: on 2 cores, 2 workers placed about
160 orders/s on PostgreSQL and 95 on SQLite with every thread let in, 230 and 215 with one
unit of work at a time per process (bench/README.md). The other threads wait here, asleep;
what a request does outside its unit of work (reading the body, writing the answer, waiting
for a provider after the commit) is not held back.

Only a request's own unit of work (the read of a GET, the transaction of a change) takes a
turn; what it opens besides (the key check, the answer made again after a commit) does not,
so a request never waits for a turn its own work holds. One that waits longer than
`WAIT_SECONDS` goes in anyway: this is about speed, not about correctness.
"""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import Engine

#: How long a unit of work waits for its turn before it goes in anyway.
WAIT_SECONDS = 30.0


class Gate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._turns = threading.BoundedSemaphore(limit) if limit > 0 else None

    def enter(self) -> bool:
        """Wait for a turn; True if one was taken (to be given back with `leave`, from any
        thread: a request's read is opened on one thread and closed on another)."""
        return self._turns is not None and self._turns.acquire(timeout=WAIT_SECONDS)

    def leave(self, took: bool) -> None:
        if took:
            assert self._turns is not None
            self._turns.release()


_gates: weakref.WeakKeyDictionary[Engine, Gate] = weakref.WeakKeyDictionary()
_OPEN = Gate(0)


def gate_for(engine: Engine) -> Gate:
    """The engine's gate; an engine nothing limited lets every unit of work in."""
    return _gates.get(engine, _OPEN)


def limit_units_of_work(engine: Engine, limit: int) -> None:
    """At most `limit` units of work of this process at once on the engine (0: no limit)."""
    _gates[engine] = Gate(limit)
