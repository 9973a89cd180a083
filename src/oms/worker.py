"""Background work: pre-orders move onto stock when their delivery date comes, and orders
waiting on hold are routed again as stock arrives."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from sqlalchemy import Engine

from oms.domain.events import utcnow
from oms.services.inventory import release_due_preorders
from oms.services.orders import reroute_waiting

log = logging.getLogger("oms.worker")


def run(engine: Engine, interval: float, once: bool = False) -> None:
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping on signal %d", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("worker started; rerouting orders on hold every %.0f s", interval)
    while not stop.is_set():
        try:
            # Pre-orders first: their delivery's stock is theirs before waiting orders look.
            released = release_due_preorders(engine, utcnow().date())
            if released:
                log.info("released %d pre-order reservations to their locations", released)
            looked_at = reroute_waiting(engine)
            if looked_at:
                log.info("rerouted %d orders on hold", looked_at)
        except Exception:
            # One bad pass must not stop the worker; the next pass tries again.
            log.exception("rerouting pass failed")
        if once:
            return
        stop.wait(interval)
