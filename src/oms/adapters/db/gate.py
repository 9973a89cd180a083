"""How many units of work of one process talk to the database at once.

A request's work is mostly Python holding the GIL, between short waits for the database.
With tens of threads at it in one process, each wait is followed by a wait for the GIL, so a
transaction holds its row locks (PostgreSQL) or the write lock (SQLite) many times longer
than its work takes, and the process does less in all. In one set of runs on 2 cores, 2
workers placed about 160 orders/s on PostgreSQL and 95 on SQLite with 40 threads each all
let in, about 235 and 210 with one unit of work at a time on 8 threads (bench/README.md,
"Past one machine"). The other requests wait here, asleep.

What one turn per process costs: the process does not work on another request while its
one transaction waits for PostgreSQL. Under load there is always another process to use the
core; with a few long-lived connections that the kernel happened to hand mostly to one
process, that process is the limit (2 on PostgreSQL is then worth trying).

A request takes its turn before it uses a thread of the pool that runs requests (waiting for
it on a thread of its own), and gives it back when its unit of work closes, before any wait
for a provider's answer: requests waiting for a turn never hold the threads that the request
with the turn needs to go on. What a request opens besides its own unit of work (the key
check, the answer made again after a commit) takes no turn, so a request never waits for the
turn it holds itself. One that waits longer than `WAIT_SECONDS` goes in anyway: this is about
speed, not about correctness.

Routes run on the event loop. The hottest routes (placing an order, reading availability)
run their unit of work on the event loop itself when their turn is the process's only one
(`Turn.alone`, `oms.api.transactions.in_turn`), instead of handing it to a thread: no other
request's unit of work of the process could run meanwhile anyway, and the hand-over (a thread
woken, the GIL passed back and forth with the loop, the loop woken again) cost a share of an
order's CPU (bench/README.md, "Routes run on the event loop"). Such a route makes no outgoing
call. While it waits for the database, the loop reads, checks and answers no other request of
the process (the other processes do). Only the work that takes no turn can make it wait: an
import's step, the record of a provider's answer, an answer made again after a commit, none
of which needs the loop to finish. Without a limit (0), with several turns, or for a request
that went in without its turn after `WAIT_SECONDS`, the route runs on a thread as any other:
a request on a thread may hold locks until the loop gets to closing its unit of work.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from sqlalchemy import Engine

#: How long a unit of work waits for its turn before it goes in anyway.
WAIT_SECONDS = 30.0


class Gate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._turns = threading.BoundedSemaphore(limit) if limit > 0 else None

    def enter(self, *, wait: bool = True) -> bool:
        """Wait for a turn (or only take a free one, with `wait` False); True if one was
        taken, to be given back with `leave` from any thread (a request's read is opened on
        one thread and closed on another)."""
        if self._turns is None:
            return False
        if not wait:
            return self._turns.acquire(blocking=False)
        return self._turns.acquire(timeout=WAIT_SECONDS)

    @property
    def open(self) -> bool:
        return self._turns is None

    def leave(self, took: bool) -> None:
        if took:
            assert self._turns is not None
            self._turns.release()


class Turn:
    """A turn taken (or not, without a limit), given back once, from any thread."""

    def __init__(self, gate: Gate, took: bool) -> None:
        self._gate = gate
        self._held = took
        self._lock = threading.Lock()

    @property
    def alone(self) -> bool:
        """The turn taken is the process's only one: no other request's unit of work runs
        until it is given back."""
        return self._held and self._gate.limit == 1

    def give_back(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        self._gate.leave(held)


@contextlib.asynccontextmanager
async def request_turn(engine: Engine) -> AsyncIterator[Turn]:
    """Wait for the request's turn on a thread of its own (not one of the pool's), and give
    it back at the end if the unit of work has not already."""
    gate = gate_for(engine)
    # A free turn is taken here, without a thread.
    took = gate.enter(wait=False)
    if not took and not gate.open:
        # Shielded: a turn taken by the thread is always known here, to be given back.
        with anyio.CancelScope(shield=True):
            took = await anyio.to_thread.run_sync(gate.enter,
                                                  limiter=anyio.CapacityLimiter(1))
    turn = Turn(gate, took)
    try:
        yield turn
    finally:
        turn.give_back()


_gates: weakref.WeakKeyDictionary[Engine, Gate] = weakref.WeakKeyDictionary()
_OPEN = Gate(0)


def gate_for(engine: Engine) -> Gate:
    """The engine's gate; an engine nothing limited lets every unit of work in."""
    return _gates.get(engine, _OPEN)


def limit_units_of_work(engine: Engine, limit: int) -> None:
    """At most `limit` units of work of this process at once on the engine (0: no limit)."""
    _gates[engine] = Gate(limit)
