"""Orders placed per second over HTTP (`POST /v1/orders`), against a real `oms serve` process.

Each order has 3 lines of different skus, all in stock at every location, so every order is
validated, written, routed and reserved in one transaction: the whole cost of placing an
order as a web shop's integration sees it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from common import (
    Context,
    Result,
    engine_for,
    run_concurrently,
    seed_locations,
    seed_products,
    seed_stock,
    serving,
    sku_names,
)
from oms.adapters.db import tables as t
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.access import Role
from oms.services import apikeys, inventory

LOCATIONS = tuple(f"bench-loc-{i}" for i in range(5))
BENCHMARK = "orders (HTTP)"
UNIT = "orders"
LINES = 3
UNIT_PRICE, TAX, SHIPPING = Decimal("10.00"), Decimal("1.90"), Decimal("4.90")
GRAND_TOTAL = str(LINES * (UNIT_PRICE + TAX) + SHIPPING)
#: Returning customers: placing an order finds most of them rather than creating them.
CUSTOMERS = 500


def order_body(external_id: str, skus: list[str], customer: int) -> dict[str, Any]:
    return {
        "channel": "web", "external_id": external_id,
        # A live order is placed now: the API refuses one dated far from its clock.
        "placed_at": dt.datetime.now(dt.UTC).isoformat(),
        "currency": "EUR", "customer": {"email": f"customer{customer}@example.com"},
        "items": [{"sku": sku, "quantity": 1, "unit_price": str(UNIT_PRICE), "tax": str(TAX)}
                  for sku in skus],
        "shipping": {
            "option": {"service_level": "standard", "carrier": "dhl", "price": str(SHIPPING)},
            "address": {"line1": "Unter den Linden 5", "city": "Berlin", "postal_code": "10117",
                        "country": "DE", "lat": 52.517, "lon": 13.389},
        },
        "payments": [{"method": "card", "amount": GRAND_TOTAL, "status": "authorized"}],
        "totals": {"grand_total": GRAND_TOTAL},
    }


def _verify(ctx: Context, engine: Engine, backend: str, placed: int) -> None:
    """Every order that got a 201 is stored, and its lines hold exactly their reservations."""
    with UnitOfWork(engine, read_only=True) as uow:
        mismatches = inventory.check_reserved_counters(uow)
        reserved = sum(uow.reservations.reserved_counters().values())
        stored = uow.conn.execute(select(func.count()).select_from(t.orders)).scalar_one()
    if mismatches:
        ctx.problem(f"{backend}: {len(mismatches)} reserved counters disagree with the "
                    f"reservation rows, e.g. {mismatches[0]}")
    elif stored != placed or reserved != placed * LINES:
        ctx.problem(f"{backend}: {placed} orders answered 201, {stored} stored, "
                    f"{reserved} units reserved (expected {placed * LINES})")
    else:
        ctx.say(f"[green]orders consistent[/green] ({stored} orders, {reserved} units reserved)")


def run(ctx: Context, backend: str) -> list[Result]:
    sizes = ctx.sizes
    skus = sku_names("ORD", sizes.order_skus)
    rng = random.Random(11)
    with ctx.databases.fresh(backend, "orders") as url, engine_for(url) as engine:
        seed_locations(engine, LOCATIONS)
        seed_products(engine, skus)
        # Far more than the run takes, so no order is refused or split for want of stock.
        seed_stock(engine, [(loc, sku, rng.randint(5_000, 10_000), rng.randint(0, 3))
                            for sku in skus for loc in LOCATIONS])
        with UnitOfWork(engine) as uow:
            _, key = apikeys.create_key(uow, Role.INTEGRATOR, [], "benchmark")

        numbers = itertools.count()
        numbers_lock = threading.Lock()
        created = 0

        log_path = ctx.databases.tmp / f"serve-orders-{backend.lower()}.log"
        with serving(url, log_path) as base_url:
            clients = [
                httpx.Client(base_url=base_url, timeout=60.0,
                             headers={"Authorization": f"Bearer {key}"})
                for _ in range(sizes.order_clients)
            ]
            try:
                def place(worker: int, rng: random.Random) -> None:
                    nonlocal created
                    with numbers_lock:
                        n = next(numbers)
                    body = order_body(f"BENCH-{n}", rng.sample(skus, LINES), n % CUSTOMERS)
                    response = clients[worker].post("/v1/orders", json=body)
                    if response.status_code != 201:
                        raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
                    with numbers_lock:
                        created += 1
                    if response.json()["status"] != "routed":
                        raise RuntimeError(f"placed but not routed: {response.text[:300]}")

                # Untimed: one keep-alive connection per client, and the server's pool filled.
                warm_up = run_concurrently(sizes.order_clients, sizes.order_clients * 2, place,
                                           seed=0)
                timing = run_concurrently(sizes.order_clients, sizes.orders, place)
            finally:
                for client in clients:
                    client.close()
        first_error = warm_up.first_error or timing.first_error
        if warm_up.errors or timing.errors:
            ctx.problem(f"{backend}: {warm_up.errors + timing.errors} of "
                        f"{sizes.order_clients * 2 + sizes.orders} orders failed; "
                        f"first: {first_error}")
        _verify(ctx, engine, backend, created)

    result = Result(BENCHMARK, backend, sizes.orders, UNIT, timing.seconds,
                    timing.latencies_ms, timing.errors)
    ctx.say(f"{result.benchmark}: {result.rate:,.0f} {UNIT}/s, p99 {result.p99:,.0f} ms")
    return [result]
