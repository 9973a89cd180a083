"""Background work, in three loops of one process (run any number of processes; they share
the work through the database):

- housekeeping, every `interval`: pre-orders move onto stock when their delivery date comes,
  carts' holds that ran out give their stock back, orders on hold are routed again, DCs and
  3PLs are told of their requests, pickups nobody collected are cancelled, PSP and carrier
  calls left over are carried out, and stored answers of Idempotency-Keys older than their
  lifetime are dropped;
- webhooks: new events become deliveries, and due deliveries are sent;
- with `OMS_NATS_URL`, every event is published to NATS JetStream, in order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from sqlalchemy import Engine

from oms.adapters.eventstream.http import HttpTransport
from oms.adapters.eventstream.nats import NatsPublisher
from oms.adapters.registry import Providers, providers_from
from oms.domain.events import utcnow
from oms.services import event_sinks, webhooks
from oms.services.carts import expire_holds
from oms.services.fulfillment import notify_providers
from oms.services.idempotency import purge_answers
from oms.services.inventory import release_due_preorders
from oms.services.orders import expire_uncollected_pickups, reroute_waiting
from oms.services.provider_calls import carry_out_due
from oms.settings import Settings

log = logging.getLogger("oms.worker")


def housekeeping(engine: Engine, settings: Settings, providers: Providers) -> int:
    """One pass; returns 0: its loop always waits `interval` before the next. A step that
    fails is logged and the others still run: one failing step must not starve the rest
    (the PSP and carrier calls left over above all)."""
    days = settings.pickup_expiry_days
    steps: list[tuple[str, Callable[[], int]]] = [
        # Pre-orders first: their delivery's stock is theirs before waiting orders look.
        ("released %d pre-order reservations to their locations",
         lambda: release_due_preorders(engine, utcnow())),
        ("gave back the stock of %d carts' holds that ran out",
         lambda: expire_holds(engine, utcnow())),
        ("routed again %d orders on hold", lambda: reroute_waiting(engine)),
        ("delivered %d fulfilment requests to their DCs and 3PLs",
         lambda: notify_providers(engine, providers, utcnow())),
        (f"cancelled %d pickups not collected within {days} days",
         lambda: expire_uncollected_pickups(engine, providers, utcnow(), days)),
        ("carried out %d PSP and carrier calls left over or to try again",
         lambda: carry_out_due(engine, providers, utcnow())),
        ("dropped %d answers of Idempotency-Keys past their lifetime",
         lambda: purge_answers(engine, utcnow()
                               - dt.timedelta(hours=settings.idempotency_ttl_hours))),
    ]
    for message, step in steps:
        try:
            done = step()
        except Exception:
            log.exception("housekeeping step failed: %s", message.replace("%d ", ""))
            continue
        if done:
            log.info(message, done)
    return 0


def webhook_pass(engine: Engine, settings: Settings, transport: HttpTransport) -> int:
    """Fan out new events and send what is due; returns how much was done."""
    made = webhooks.fan_out(engine)
    sent = webhooks.deliver_due(engine, transport, batch=settings.webhook_concurrency * 8,
                                concurrency=settings.webhook_concurrency,
                                timeout_seconds=settings.webhook_timeout_seconds)
    return made + sent


def run(engine: Engine, settings: Settings, interval: float, once: bool = False) -> None:
    """Run the loops (with `once`, one pass of each) until SIGTERM or SIGINT. The first signal
    lets the passes under way finish and then returns; a second one while they finish ends
    the process at once with exit status 128 + its number (the cut pass's transaction is
    rolled back by the database, and its work is done again by the next worker)."""
    stop = threading.Event()
    signals: list[int] = []

    def _note(signum: int, _frame: FrameType | None) -> None:
        # Only note it: a handler runs between any two bytecodes of the main thread, even
        # inside Event.set() or a logging call, and taking their locks again from a second
        # signal's handler would hang the process for good.
        signals.append(signum)

    previous = {signum: signal.signal(signum, _note)
                for signum in (signal.SIGTERM, signal.SIGINT)}
    failed: list[BaseException] = []
    try:
        if once:
            loops = [threading.Thread(target=_once, name="once", daemon=True,
                                      args=(engine, settings, stop, failed))]
            loops[0].start()
        else:
            loops = start(engine, settings, interval, stop)
        _wait(loops, stop, signals)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failed:
        raise failed[0]


def _wait(loops: list[threading.Thread], stop: threading.Event, signals: list[int]) -> None:
    """Until the loops end: the first signal asks them to stop after their pass, a second
    one exits now."""
    seen = 0
    while alive := [loop for loop in loops if loop.is_alive()]:
        if len(signals) > seen:
            if seen == 0:
                log.info("stopping on signal %d once the passes under way are done "
                         "(a second signal stops at once)", signals[0])
                stop.set()
            if len(signals) > 1:
                log.warning("stopping at once on a second signal (%d): the %s pass is cut "
                            "short and its transaction rolled back", signals[1],
                            ", ".join(loop.name for loop in alive))
                # Not sys.exit(): interpreter shutdown would wait for the pass's threads
                # (an HTTP request in flight) all the same.
                os._exit(128 + signals[1])
            seen = len(signals)
        alive[0].join(0.1)


def _once(engine: Engine, settings: Settings, stop: threading.Event,
          failed: list[BaseException]) -> None:
    """One pass of each loop, the webhooks and NATS drained; what fails is handed to `run`
    to raise."""
    try:
        providers = providers_from(settings)
        transport = _transport(settings)
        try:
            housekeeping(engine, settings, providers)
            while not stop.is_set() and webhook_pass(engine, settings, transport):
                pass
            if settings.nats_url and not stop.is_set():
                asyncio.run(_drain_to_nats(engine, _publisher(settings)))
        finally:
            transport.close()
    except BaseException as exc:
        failed.append(exc)


def start(engine: Engine, settings: Settings, interval: float, stop: threading.Event
          ) -> list[threading.Thread]:
    """Start the loops in threads of this process; they end when `stop` is set."""
    providers = providers_from(settings)
    transport = _transport(settings)
    loops = [
        threading.Thread(target=_every, name="housekeeping", daemon=True, args=(
            stop, interval, lambda: housekeeping(engine, settings, providers))),
        threading.Thread(target=_every, name="webhooks", daemon=True, args=(
            stop, settings.webhook_poll_seconds,
            lambda: webhook_pass(engine, settings, transport))),
    ]
    if settings.nats_url:
        loops.append(threading.Thread(target=_nats_loop, name="nats", daemon=True,
                                      args=(engine, _publisher(settings), stop,
                                            settings.webhook_poll_seconds)))
    log.info("worker started: housekeeping every %g s, webhooks%s", interval,
             f", NATS JetStream at {settings.nats_url}" if settings.nats_url else "")
    for loop in loops:
        loop.start()
    return loops


def _transport(settings: Settings) -> HttpTransport:
    return HttpTransport(settings.webhook_timeout_seconds,
                         allow_private=settings.egress_allow_private,
                         connections=settings.webhook_concurrency)


def _publisher(settings: Settings) -> NatsPublisher:
    assert settings.nats_url is not None
    return NatsPublisher(settings.nats_url, settings.nats_stream,
                         settings.nats_duplicate_window_seconds, settings.nats_subject_prefix)


def _every(stop: threading.Event, pause: float, work: Callable[[], int]) -> None:
    """Run `work` again at once while it finds something to do, else after `pause`."""
    while not stop.is_set():
        try:
            busy = work()
        except Exception:
            # One bad pass must not stop the worker; the next pass tries again.
            log.exception("%s pass failed", threading.current_thread().name)
            busy = 0
        if not busy:
            stop.wait(pause)


async def _drain_to_nats(engine: Engine, publisher: NatsPublisher) -> None:
    while await event_sinks.relay(engine, publisher, "nats"):
        pass
    await publisher.close()


def _nats_loop(engine: Engine, publisher: NatsPublisher, stop: threading.Event,
               pause: float) -> None:
    async def loop() -> None:
        while not stop.is_set():
            try:
                published = await event_sinks.relay(engine, publisher, "nats")
                if published:
                    log.info("published %d events to NATS JetStream", published)
            except Exception:
                log.exception("publishing to NATS failed; retrying")
                published = 0
                await asyncio.sleep(min(5.0, pause * 10))
            if not published:
                await asyncio.sleep(pause)
        await publisher.close()

    asyncio.run(loop())
