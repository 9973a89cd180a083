"""Webhook deliveries per second: events fanned out and delivered, signed, to a local receiver
that answers at once, by the worker's own webhook loop (fan-out, claim, send with its thread
pool, record each attempt).

The events are written first, in one transaction, spread over many entities (deliveries of
one entity go one at a time, in order). The clock runs from the first pass until every
delivery is recorded as delivered. Latency is each attempt's HTTP round trip as the delivery
log records it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, func, select

from common import Context, Result, engine_for
from oms.adapters.db import tables as t
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.adapters.eventstream.http import HttpTransport
from oms.domain.events import Event, utcnow
from oms.services import webhooks
from oms.settings import Settings
from oms.worker import webhook_pass

BENCHMARK = "webhook deliveries"
UNIT = "deliveries"
ENTITIES = 200
TIMEOUT = 600.0


def run(ctx: Context, backend: str) -> list[Result]:
    count = ctx.sizes.webhook_events
    receiver = subprocess.Popen([sys.executable, str(Path(__file__).with_name("receiver.py"))],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        with ctx.databases.fresh(backend, "webhooks") as url, engine_for(url) as engine:
            settings = Settings(database_url=url, egress_allow_private=True)
            transport = HttpTransport(allow_private=True,
                                      connections=settings.webhook_concurrency)
            target = webhooks.check_target(f"http://127.0.0.1:{port}/hook", transport, True)
            with UnitOfWork(engine) as uow:
                webhooks.create(uow, target, ["*"], "benchmark")
            now = utcnow()
            with UnitOfWork(engine) as uow:
                uow.record(*(Event("inventory.changed", f"entity-{i % ENTITIES}", i // ENTITIES + 1,
                                   {"n": i}, now) for i in range(count)))
                uow.commit()
            # Every event goes to the one subscription, its own creation's event too.
            with engine.connect() as conn:
                expected = conn.scalar(select(func.count()).select_from(t.events)) or 0
            started = time.perf_counter()
            deadline = started + TIMEOUT
            while time.perf_counter() < deadline:
                if not webhook_pass(engine, settings, transport) and (
                        _delivered(engine) >= expected):
                    break
            seconds = time.perf_counter() - started
            transport.close()
            delivered = _delivered(engine)
            with engine.connect() as conn:
                durations = [float(d) for d in conn.scalars(
                    select(t.webhook_attempts.c.duration_ms))]
                failed = conn.scalar(select(func.count()).select_from(t.webhook_attempts)
                                     .where(t.webhook_attempts.c.status_code != 204)) or 0
    finally:
        receiver.kill()
        receiver.wait()
    if delivered != expected:
        ctx.problem(f"{backend}: {delivered} of {expected} webhook deliveries delivered")
    ctx.say(f"{backend}: {delivered:,} deliveries in {seconds:.1f} s, "
            f"{len(durations):,} attempts ({failed} not answered 204)")
    return [Result(BENCHMARK, backend, expected, UNIT, seconds, durations,
                   errors=expected - delivered)]


def _delivered(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.scalar(select(func.count()).select_from(t.webhook_deliveries)
                            .where(t.webhook_deliveries.c.status == "delivered"))
    return int(value or 0)
