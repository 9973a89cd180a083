"""Routing decisions per second, in-process, over 500 locations for 3-line orders.

Three figures, in one thread, no database:

- the fast path (`routing_fast.decide`, what orders are routed with), given the order's ATP as
  arrays in the network's location order and the network built once (as the placing
  transaction has them: the network per set of locations, the ATP read for the order's skus);
  it includes the compact account of the run and the inputs kept to explain it;
- the same, starting from the (location, sku) -> ATP map each time (the conversion counted);
- the plain reference (`routing.route`), which weighs location by location and writes a
  consideration for every item at every location.

Every order's assignments are checked to be the same on both paths. The unit is an item
decided: a 3-line order is three. The record kept per run is measured too, as JSON, against
the considerations the plain routing writes.
"""

from __future__ import annotations

import random
import time

from common import NO_DATABASE, Context, Result
from oms.adapters.db.types import dumps
from oms.domain.locations import Address, Capability, Location, LocationType
from oms.domain.routing import Destination, RoutingItem, route
from oms.domain.routing_fast import Network, decide
from oms.domain.routing_record import decisions_json, inputs_json

UNIT = "items"
NOTE = "items: item routing decisions in one thread, 3 per order (route() calls x 3)"
SKUS = ("RTE-000001", "RTE-000002", "RTE-000003")
#: Orders, destinations and stock maps cycled through, so one lucky case cannot dominate.
VARIANTS = 16
#: The fast path is timed over this many times the orders of the reference, for a steady
#: figure.
FAST_FACTOR = 20
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
    started = time.perf_counter()
    network = Network(locations)
    built_ms = (time.perf_counter() - started) * 1000
    variants = []
    for v in range(VARIANTS):
        items = [RoutingItem(f"item-{v}-{n}", sku, rng.randint(1, 2))
                 for n, sku in enumerate(SKUS)]
        destination = Destination("DE", rng.uniform(*LAT), rng.uniform(*LON))
        stock = _stock(locations, rng)
        atp = network.atp_table(((loc, sku, n) for (loc, sku), n in stock.items()), SKUS)
        variants.append((items, destination, stock, atp))

    # The same choices on both paths, and what each keeps per run.
    kept = written = 0
    for items, destination, stock, atp in variants:
        plan = route(items, service_level="standard", destination=destination, stock=stock,
                     locations=locations)
        decision = decide(items, network=network, service_level="standard",
                          destination=destination, atp=atp)
        if (decision.assignments, decision.on_hold) != (plan.assignments, plan.on_hold):
            ctx.problem(f"routing: the fast path routed {items[0].item_id}'s order "
                        f"differently from the plain routing: {decision.assignments} "
                        f"against {plan.assignments}")
        assert decision.inputs is not None
        kept += len(dumps(decisions_json(decision.items))) + len(
            dumps(inputs_json(decision.inputs)))
        written += len(dumps([{"item_id": c.item_id, "location_id": c.location_id,
                                    "verdict": c.verdict.value, "reason": c.reason}
                                   for c in plan.considerations]))

    cpu: dict[str, float] = {}

    def timed(name: str, orders: int, one: object) -> Result:
        latencies: list[float] = []
        routed = 0
        began, cpu_began = time.perf_counter(), time.process_time()
        for i in range(orders):
            call_started = time.perf_counter()
            routed += one(*variants[i % VARIANTS])  # type: ignore[operator]
            latencies.append((time.perf_counter() - call_started) * 1000)
        seconds = time.perf_counter() - began
        if routed == 0:
            ctx.problem("routing: no item was ever routed; the stock map does not fit the items")
        result = Result(f"routing, {name}, {sizes.routing_locations} locations", NO_DATABASE,
                        orders * len(SKUS), UNIT, seconds, latencies)
        # On a shared machine the process may wait for a core: its own CPU time says what
        # one core does.
        cpu[result.benchmark] = result.count / (time.process_time() - cpu_began)
        return result

    def fast(items: list[RoutingItem], destination: Destination,
             stock: dict[tuple[str, str], int], atp: object) -> int:
        return len(decide(items, network=network, service_level="standard",
                          destination=destination, atp=atp).assignments)  # type: ignore[arg-type]

    def fast_from_maps(items: list[RoutingItem], destination: Destination,
                       stock: dict[tuple[str, str], int], atp: object) -> int:
        table = network.atp_table(((loc, sku, n) for (loc, sku), n in stock.items()), SKUS)
        return len(decide(items, network=network, service_level="standard",
                          destination=destination, atp=table).assignments)

    def reference(items: list[RoutingItem], destination: Destination,
                  stock: dict[tuple[str, str], int], atp: object) -> int:
        return len(route(items, service_level="standard", destination=destination,
                         stock=stock, locations=locations).assignments)

    results = [
        timed("fast path", sizes.routing_iterations * FAST_FACTOR, fast),
        timed("fast path from ATP maps", sizes.routing_iterations * FAST_FACTOR,
              fast_from_maps),
        timed("plain reference", sizes.routing_iterations, reference),
    ]
    for r in results:
        ctx.say(f"{r.benchmark}: {r.rate:,.0f} item decisions/s "
                f"({r.rate / len(SKUS):,.0f} orders of {len(SKUS)} lines/s); "
                f"{cpu[r.benchmark]:,.0f} per CPU second")
    ctx.say(f"fast path ÷ plain reference: {results[0].rate / results[2].rate:,.0f}x; "
            f"the network of {sizes.routing_locations} locations built once in "
            f"{built_ms:,.1f} ms")
    ctx.say(f"kept per run: {kept / VARIANTS / 1024:,.1f} KiB of JSON (decisions and inputs), "
            f"against {written / VARIANTS / 1024:,.1f} KiB of considerations")
    return results
