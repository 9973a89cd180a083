"""Orders taken through their whole life over HTTP, against a real `oms serve` process: placed
(`POST /v1/orders`), then accepted, picked, packed and shipped by the store they were routed to
(`POST /v1/fulfillment-requests/{id}/accept|pick|pack|ship`), one order after another.

Every location is a store with plenty of every sku, and each order is delivered next to one
of them, so it becomes one ship-from-store request at that store. Shipping books the
(simulated) carrier, consumes the three reservations and captures the payment.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

import orders
from common import (
    Context,
    Result,
    engine_for,
    location_lines,
    percentile,
    run_concurrently,
    seed_products,
    seed_stock,
    serving,
    sku_names,
)
from oms.adapters.db import tables as t
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.access import Role
from oms.services import apikeys, inventory
from oms.services.imports import FileFormat, run_import

STORES = tuple(f"bench-store-{i}" for i in range(5))
BENCHMARK = "fulfilment cycle (HTTP)"
UNIT = "cycles"
LINES = orders.LINES
#: The steps of one cycle, in order; every one but `place` is a store's POST with `{}`.
STEPS = ("place", "accept", "pick", "pack", "ship")
STORE_STEPS = STEPS[1:]


def store_lines() -> list[str]:
    """The locations `location_lines` describes, but all stores of one priority, about 9 km
    apart, so that routing sends each order to the store nearest its address."""
    lines = []
    for i, line in enumerate(location_lines(STORES)):
        location = json.loads(line)
        location.update(type="store", priority=10)
        location["address"].update(lat=52.40 + i * 0.08, lon=13.30 + i * 0.05)
        lines.append(json.dumps(location) + "\n")
    return lines


def order_body(external_id: str, skus: list[str], customer: int, store: int
               ) -> dict[str, Any]:
    """The orders benchmark's order, delivered at the door of one of the stores."""
    body = orders.order_body(external_id, skus, customer)
    body["customer"]["name"] = f"Customer {customer}"
    body["shipping"]["address"].update(lat=52.40 + store * 0.08, lon=13.30 + store * 0.05)
    return body


class StepFailed(Exception):
    """A step answered other than 2xx (or not at all); the cycle stops there."""


class Recorder:
    """Each step's latencies (of its 2xx answers) and failures, and the cycles that ended."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {step: [] for step in STEPS}
        self.errors: Counter[str] = Counter()
        self.shipped: list[str] = []
        self._lock = threading.Lock()

    def fail(self, step: str, message: str) -> StepFailed:
        with self._lock:
            self.errors[step] += 1
        return StepFailed(f"{step}: {message}")

    def call(self, step: str, client: httpx.Client, path: str, body: dict[str, Any],
             key: str, expected: int) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            response = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
        except httpx.HTTPError as exc:
            raise self.fail(step, f"{exc.__class__.__name__}: {exc}") from exc
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != expected:
            raise self.fail(step, f"{response.status_code}: {response.text[:300]}")
        with self._lock:
            self.latencies[step].append(elapsed)
        answer: dict[str, Any] = response.json()
        return answer

    def done(self, order_id: str) -> None:
        with self._lock:
            self.shipped.append(order_id)


def _create_key(engine: Engine, role: Role, location_ids: list[str], name: str) -> str:
    # create_key commits, so each key gets its own unit of work.
    with UnitOfWork(engine) as uow:
        return apikeys.create_key(uow, role, location_ids, name)[1]


def _verify(ctx: Context, engine: Engine, backend: str, placed: int, shipped: list[str],
            on_hand_before: int) -> None:
    """The orders whose cycle ended are shipped with everything that goes with it, and the
    stock agrees with the reservations."""
    with UnitOfWork(engine, read_only=True) as uow:
        conn = uow.conn
        mismatches = inventory.check_reserved_counters(uow)
        reserved = sum(uow.reservations.reserved_counters().values())
        on_hand = conn.execute(select(func.sum(t.stock_levels.c.on_hand))).scalar_one()
        order_status = dict(conn.execute(select(t.orders.c.id, t.orders.c.status)).all())
        item_status = conn.execute(select(t.order_items.c.order_id, t.order_items.c.status)
                                   ).all()
        requests = conn.execute(select(t.fulfillment_requests.c.order_id,
                                       t.fulfillment_requests.c.location_id,
                                       t.fulfillment_requests.c.type,
                                       t.fulfillment_requests.c.status)).all()
        shipments = conn.execute(select(func.count()).select_from(t.shipments)).scalar_one()
        payment_status = conn.execute(select(t.payments.c.order_id, t.payments.c.status)).all()

    done = set(shipped)
    problems = []
    if mismatches:
        problems.append(f"{len(mismatches)} reserved counters disagree with the reservation "
                        f"rows, e.g. {mismatches[0]}")
    if len(order_status) != placed:
        problems.append(f"{placed} orders answered 201, {len(order_status)} stored")
    not_shipped = Counter(order_status.get(o, "missing") for o in done) - Counter(
        {"shipped": len(done)})
    if not_shipped:
        problems.append(f"orders of finished cycles not shipped: {dict(not_shipped)}")
    items = Counter(s for o, s in item_status if o in done)
    if items != Counter({"shipped": LINES * len(done)}):
        problems.append(f"items of finished cycles: {dict(items)}")
    mine = [r for r in requests if r.order_id in done]
    kinds = Counter((r.type, r.status) for r in mine)
    if kinds != Counter({("ship_from_store", "shipped"): len(mine)}):
        problems.append(f"requests of finished cycles (type, status): {dict(kinds)}")
    payments = Counter(s for o, s in payment_status if o in done)
    if payments != Counter({"captured": len(done)}):
        problems.append(f"payments of finished cycles: {dict(payments)}")
    unfinished = placed - len(done)
    if reserved != LINES * unfinished:
        problems.append(f"{reserved} units still reserved, expected {LINES * unfinished} "
                        f"for the {unfinished} orders that did not ship")
    left = on_hand_before - on_hand
    if left != LINES * len(done):
        problems.append(f"on_hand fell by {left}, expected {LINES * len(done)} units shipped")
    if shipments != len(mine):
        problems.append(f"{shipments} shipments for {len(mine)} shipped requests")
    for problem in problems:
        ctx.problem(f"{backend}: {problem}")
    if not problems:
        per_store = Counter(r.location_id for r in mine)
        ctx.say(f"[green]fulfilment consistent[/green] ({len(done)} orders shipped in "
                f"{len(mine)} requests and {shipments} shipments, payments captured, "
                f"{left} units left the stores, {reserved} still reserved, counters agree; "
                f"requests per store: {', '.join(str(per_store[s]) for s in STORES)})")


def run(ctx: Context, backend: str) -> list[Result]:
    sizes = ctx.sizes
    skus = sku_names("FUL", sizes.order_skus)
    rng = random.Random(13)
    # Far more than the run takes, so no order is refused or split for want of stock.
    stock = [(store, sku, rng.randint(5_000, 10_000), rng.randint(0, 3))
             for sku in skus for store in STORES]
    with ctx.databases.fresh(backend, "fulfillment") as url, engine_for(url) as engine:
        report = run_import(engine, "locations", store_lines(), FileFormat.JSONL)
        if report.failed:
            raise RuntimeError(f"seeding locations failed: {report.errors[:3]}")
        seed_products(engine, skus)
        seed_stock(engine, stock)
        shop_key = _create_key(engine, Role.INTEGRATOR, [], "benchmark shop")
        # Each store's own staff works its requests.
        staff_key = {store: _create_key(engine, Role.ASSOCIATE, [store], f"benchmark {store}")
                     for store in STORES}

        numbers = itertools.count()
        numbers_lock = threading.Lock()
        placed = 0

        def cycle(client: httpx.Client, rng: random.Random, record: Recorder) -> None:
            nonlocal placed
            with numbers_lock:
                n = next(numbers)
            body = order_body(f"FUL-{n}", rng.sample(skus, LINES), n % orders.CUSTOMERS,
                              rng.randrange(len(STORES)))
            order = record.call("place", client, "/v1/orders", body, shop_key, 201)
            with numbers_lock:
                placed += 1
            if order["status"] != "routed":
                raise record.fail("place", f"placed but {order['status']}, not routed")
            request_at: dict[str, str] = {}
            for item in order["items"]:
                if item["fulfillment_request_id"] is None:
                    raise record.fail("place", f"item {item['id']} has no fulfilment request")
                request_at[item["fulfillment_request_id"]] = item["location_id"]
            # One request per store that got items: a single one unless routing split.
            for request_id, location_id in request_at.items():
                for step in STORE_STEPS:
                    answer = record.call(step, client,
                                         f"/v1/fulfillment-requests/{request_id}/{step}", {},
                                         staff_key[location_id], 200)
                if answer["status"] != "shipped":
                    raise record.fail("ship", f"answered 200 but {answer['status']}")
            record.done(order["id"])

        log_path = ctx.databases.tmp / f"serve-fulfillment-{backend.lower()}.log"
        warm, timed = Recorder(), Recorder()
        with serving(url, log_path) as base_url:
            clients = [httpx.Client(base_url=base_url, timeout=60.0)
                       for _ in range(sizes.fulfillment_clients)]
            try:
                # Untimed: one keep-alive connection per client, and the server's pool filled.
                warm_up = run_concurrently(
                    sizes.fulfillment_clients, sizes.fulfillment_clients,
                    lambda worker, rng: cycle(clients[worker], rng, warm), seed=0)
                timing = run_concurrently(
                    sizes.fulfillment_clients, sizes.fulfillment_cycles,
                    lambda worker, rng: cycle(clients[worker], rng, timed))
            finally:
                for client in clients:
                    client.close()

        failed = warm_up.errors + timing.errors
        if failed:
            by_step = ", ".join(f"{step} {warm.errors[step] + timed.errors[step]}"
                                for step in STEPS if warm.errors[step] + timed.errors[step])
            ctx.problem(f"{backend}: {failed} of "
                        f"{sizes.fulfillment_clients + sizes.fulfillment_cycles} cycles failed "
                        f"(failed steps: {by_step or 'none'}); "
                        f"first: {warm_up.first_error or timing.first_error}")
        _verify(ctx, engine, backend, placed, warm.shipped + timed.shipped,
                sum(on_hand for _, _, on_hand, _ in stock))

    result = Result(BENCHMARK, backend, sizes.fulfillment_cycles, UNIT, timing.seconds,
                    timing.latencies_ms, timing.errors, steps=timed.latencies,
                    step_errors={step: timed.errors[step] for step in STEPS})
    steps_p50 = ", ".join(f"{step} {_p50(timed.latencies[step])}" for step in STEPS)
    ctx.say(f"{result.benchmark}: {result.rate:,.1f} {UNIT}/s, p50 {result.p50:,.0f} ms, "
            f"p99 {result.p99:,.0f} ms; p50 per step (ms): {steps_p50}")
    return [result]


def _p50(latencies: list[float]) -> str:
    return f"{percentile(latencies, 50):,.1f}" if latencies else "—"
