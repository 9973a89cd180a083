"""Routing decisions per second: `oms.domain.routing.route` called in-process.

The network of 500 locations is larger than the order benchmark's, so that the cost of
weighing every candidate (eligibility, distance, the reason recorded for each) shows. No
database is involved: the stock map is what placing an order reads for its skus.
"""

from __future__ import annotations

import random
import time

from common import NO_DATABASE, Context, Result
from oms.domain.locations import Address, Capability, Location, LocationType
from oms.domain.routing import Destination, RoutingItem, route

UNIT = "routes"
SKUS = ("RTE-000001", "RTE-000002", "RTE-000003")
#: Orders, destinations and stock maps cycled through, so one lucky case cannot dominate.
VARIANTS = 16
#: Germany's bounding box, roughly.
LAT, LON = (47.3, 55.0), (5.9, 15.0)


def _locations(count: int, rng: random.Random) -> list[Location]:
    locations = []
    for i in range(count):
        # Most locations ship; some are pickup-only stores, a few are returns desks.
        draw = rng.random()
        capabilities = (
            {Capability.SHIP, Capability.PICKUP} if draw < 0.6
            else {Capability.SHIP} if draw < 0.85
            else {Capability.PICKUP} if draw < 0.95
            else {Capability.RETURNS})
        locations.append(Location(
            id=f"rte-loc-{i:04d}", type=LocationType.DC if i < 5 else LocationType.STORE,
            name=f"Routing {i}",
            address=Address("Benchstraße 1", "Somewhere", "10000", "DE",
                            round(rng.uniform(*LAT), 4), round(rng.uniform(*LON), 4)),
            capabilities=frozenset(capabilities), priority=rng.randint(1, 20),
            active=rng.random() < 0.97, timezone="Europe/Berlin",
        ))
    return locations


def _stock(locations: list[Location], rng: random.Random) -> dict[tuple[str, str], int]:
    # Zero at many locations, as for most skus most stores hold none.
    return {(loc.id, sku): max(0, rng.randint(-6, 8)) for loc in locations for sku in SKUS}


def run(ctx: Context, backend: str) -> list[Result]:
    assert backend == NO_DATABASE
    sizes = ctx.sizes
    rng = random.Random(5)
    locations = _locations(sizes.routing_locations, rng)
    variants = []
    for v in range(VARIANTS):
        items = [RoutingItem(f"item-{v}-{n}", sku, rng.randint(1, 2))
                 for n, sku in enumerate(SKUS)]
        destination = Destination("DE", rng.uniform(*LAT), rng.uniform(*LON))
        variants.append((items, destination, _stock(locations, rng)))

    latencies: list[float] = []
    routed = considered = 0
    started = time.perf_counter()
    for i in range(sizes.routing_iterations):
        items, destination, stock = variants[i % VARIANTS]
        call_started = time.perf_counter()
        plan = route(items, service_level="standard", destination=destination, stock=stock,
                     locations=locations)
        latencies.append((time.perf_counter() - call_started) * 1000)
        routed += len(plan.assignments)
        considered += len(plan.considerations)
    seconds = time.perf_counter() - started

    if routed == 0:
        ctx.problem("routing: no item was ever routed; the stock map does not fit the items")
    result = Result(f"routing, {sizes.routing_locations} locations", NO_DATABASE,
                    sizes.routing_iterations, UNIT, seconds, latencies)
    ctx.say(f"{result.benchmark}: {result.rate:,.0f} {UNIT}/s, "
            f"{routed / sizes.routing_iterations:.1f} of {len(SKUS)} items routed and "
            f"{considered / sizes.routing_iterations:,.0f} candidates recorded per decision")
    return [result]
