"""Availability look-ups per second over HTTP, against a real `oms serve` process.

Each request asks for two random skus, the way a product page or a basket asks; the server
authenticates the key, opens a read-only unit of work and reads levels and future stock.
"""

from __future__ import annotations

import random

import httpx

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
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.access import Role
from oms.services import apikeys

LOCATIONS = ("bench-dc", "bench-store-1", "bench-store-2")
UNIT = "req"


def run(ctx: Context, backend: str) -> list[Result]:
    sizes = ctx.sizes
    skus = sku_names("AVL", sizes.availability_skus)
    with ctx.databases.fresh(backend, "availability") as url:
        with engine_for(url) as engine:
            seed_locations(engine, LOCATIONS)
            seed_products(engine, skus)
            seed_stock(engine, [(loc, sku, 50 + i % 17, i % 3)
                                for i, sku in enumerate(skus) for loc in LOCATIONS])
            with UnitOfWork(engine) as uow:
                _, key = apikeys.create_key(uow, Role.ADMIN, [], "benchmark")

        log_path = ctx.databases.tmp / f"serve-{backend.lower()}.log"
        with serving(url, log_path) as base_url:
            clients = [
                httpx.Client(base_url=base_url, timeout=30.0,
                             headers={"Authorization": f"Bearer {key}"})
                for _ in range(sizes.http_clients)
            ]
            try:
                def look_up(worker: int, rng: random.Random) -> None:
                    wanted = rng.sample(skus, 2)
                    response = clients[worker].get(
                        "/v1/availability", params=[("sku", s) for s in wanted])
                    response.raise_for_status()
                    if len(response.json()["items"]) != len(wanted):
                        raise RuntimeError(f"unexpected body: {response.text[:200]}")

                # Untimed: one keep-alive connection per client, and the server's pool filled.
                run_concurrently(sizes.http_clients, sizes.http_clients * 5, look_up, seed=0)
                timing = run_concurrently(sizes.http_clients, sizes.http_requests, look_up)
            finally:
                for client in clients:
                    client.close()

    if timing.errors:
        ctx.problem(f"{backend}: {timing.errors} of {sizes.http_requests} requests failed; "
                    f"first: {timing.first_error}")
    result = Result("availability (HTTP)", backend, sizes.http_requests, UNIT,
                    timing.seconds, timing.latencies_ms, timing.errors)
    ctx.say(f"{result.benchmark}: {result.rate:,.0f} {UNIT}/s")
    return [result]
