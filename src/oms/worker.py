"""Background work: pre-orders move onto stock when their delivery date comes, orders waiting
on hold are routed again as stock arrives, DCs and 3PLs are told of their requests, and
pickups nobody collected are cancelled."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from sqlalchemy import Engine

from oms.adapters.registry import Providers, providers_from
from oms.domain.events import utcnow
from oms.services.fulfillment import notify_providers
from oms.services.inventory import release_due_preorders
from oms.services.orders import expire_uncollected_pickups, reroute_waiting
from oms.settings import Settings

log = logging.getLogger("oms.worker")


def one_pass(engine: Engine, settings: Settings, providers: Providers) -> None:
    # Pre-orders first: their delivery's stock is theirs before waiting orders look.
    released = release_due_preorders(engine, utcnow().date())
    if released:
        log.info("released %d pre-order reservations to their locations", released)
    looked_at = reroute_waiting(engine)
    if looked_at:
        log.info("rerouted %d orders on hold", looked_at)
    notified = notify_providers(engine, providers, utcnow())
    if notified:
        log.info("delivered %d fulfilment requests to their DCs and 3PLs", notified)
    expired = expire_uncollected_pickups(engine, utcnow(), settings.pickup_expiry_days)
    if expired:
        log.info("cancelled %d pickups not collected within %d days", expired,
                 settings.pickup_expiry_days)


def run(engine: Engine, settings: Settings, interval: float, once: bool = False) -> None:
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping on signal %d", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    providers = providers_from(settings)
    log.info("worker started; a pass every %.0f s", interval)
    while not stop.is_set():
        try:
            one_pass(engine, settings, providers)
        except Exception:
            # One bad pass must not stop the worker; the next pass tries again.
            log.exception("worker pass failed")
        if once:
            return
        stop.wait(interval)
