"""Reservations per second with concurrent workers, spread over many rows and on one hot row.

One operation is what an order placement costs the inventory side: open a unit of work,
`inventory.reserve` one line (the conditional UPDATE, its event, the reservation row) and
commit.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sqlalchemy import Engine

from common import (
    Context,
    Result,
    engine_for,
    run_concurrently,
    seed_locations,
    seed_products,
    seed_stock,
    sku_names,
)
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.services import inventory
from oms.services.inventory import ReserveLine

LOCATIONS = ("bench-dc", "bench-store")
HOT = ("bench-dc", "HOT-000000")
UNIT = "res"


def _reserve_one(engine: Engine, pick: Callable[[random.Random], tuple[str, str]]
                 ) -> Callable[[int, random.Random], None]:
    def op(_worker: int, rng: random.Random) -> None:
        location_id, sku = pick(rng)
        with UnitOfWork(engine) as uow:
            inventory.reserve(uow, [ReserveLine(location_id, sku, 1)])
            uow.commit()

    return op


def _verify(ctx: Context, engine: Engine, backend: str, expected: int) -> None:
    """Every counter equals the sum of its active reservations, and nothing got lost."""
    with UnitOfWork(engine, read_only=True) as uow:
        mismatches = inventory.check_reserved_counters(uow)
        counters = uow.reservations.reserved_counters()
    reserved = sum(counters.values())
    if mismatches:
        ctx.problem(f"{backend}: {len(mismatches)} reserved counters disagree with the "
                    f"reservation rows, e.g. {mismatches[0]}")
    elif reserved != expected:
        ctx.problem(f"{backend}: {reserved} units reserved, {expected} reservations succeeded")
    else:
        ctx.say(f"[green]counters consistent[/green] ({reserved} units reserved on "
                f"{len(counters)} stock levels)")


def run(ctx: Context, backend: str) -> list[Result]:
    sizes = ctx.sizes
    skus = sku_names("RSV", sizes.reservation_skus)
    pairs = [(location_id, sku) for location_id in LOCATIONS for sku in skus]
    warm_up = sizes.workers * 2
    # Enough that no run can exhaust a row: a refused reservation would be cheaper than a
    # real one and flatter the figures.
    on_hand = 10 * (sizes.reservations + warm_up)

    with ctx.databases.fresh(backend, "reservations") as url, engine_for(url) as engine:
        seed_locations(engine, LOCATIONS)
        seed_products(engine, [*skus, HOT[1]])
        seed_stock(engine, [(loc, sku, on_hand, 0) for loc, sku in [*pairs, HOT]])

        spread = _reserve_one(engine, lambda rng: rng.choice(pairs))
        hot = _reserve_one(engine, lambda _rng: HOT)
        # Untimed: opens the pool's connections and warms statement caches.
        warm = run_concurrently(sizes.workers, warm_up, spread, seed=0)

        results = []
        succeeded = warm_up - warm.errors
        for name, op in ((f"reserve, {len(pairs)} rows", spread),
                         ("reserve, 1 hot row", hot)):
            timing = run_concurrently(sizes.workers, sizes.reservations, op)
            succeeded += sizes.reservations - timing.errors
            if timing.errors:
                ctx.problem(f"{backend}: {timing.errors} of {sizes.reservations} reservations "
                            f"failed; first: {timing.first_error}")
            result = Result(name, backend, sizes.reservations, UNIT, timing.seconds,
                            timing.latencies_ms, timing.errors)
            ctx.say(f"{name}: {result.rate:,.0f} {UNIT}/s")
            results.append(result)
        _verify(ctx, engine, backend, succeeded)
    return results
