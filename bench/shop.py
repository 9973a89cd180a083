"""oms selling for the benchmark's retailer (`network.py`), over HTTP, as a web shop, its
customers and its stores see it.

One fresh database per backend, seeded with the network; one `oms serve --workers <cores>`;
then, each measured with its own load:

- **orders**: wrk posting new orders (`loadgen.order_script`) at 32 connections (throughput)
  and at 4 (latency without queueing), after an untimed warm-up;
- **availability**: wrk asking `GET /v1/availability` for one random sku;
- **fulfilment**: a light Python client working the stores' queues: accept, pick, pack and
  ship each ship-from-store request the orders created (wrk cannot do this: a step needs the
  answer to the one before it on the same request, and wrk's Lua cannot tie a request to the
  connection that carries it);

and afterwards the database is checked (orders stored as answered, all routed, reserved
counters equal to the active reservations, nothing oversold, shipped stock gone from
on_hand). On PostgreSQL, a second `oms serve` (one worker) runs behind the statement-counting
proxy (`wire.py`) to count statements and round trips per order, availability read and
fulfilment cycle.
"""

from __future__ import annotations

import functools
import http.client
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

import loadgen
import network
from common import (
    POSTGRESQL,
    Context,
    Load,
    cores,
    engine_for,
    percentile,
    serving,
)
from costs import measuring
from oms.adapters.db import tables as t
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.access import Role
from oms.services import apikeys
from wire import counting

PARTS = ("orders", "availability", "fulfillment", "checkout")
STEPS = ("accept", "pick", "pack", "ship")
#: Item statuses whose stock is still reserved.
OPEN_ITEMS = ("routed", "in_fulfillment", "ready_for_pickup")


def _create_key(engine: Engine, role: Role, location_ids: list[str], name: str) -> str:
    with UnitOfWork(engine) as uow:
        _, key = apikeys.create_key(uow, role, location_ids, name)
    return key


class Client:
    """One keep-alive HTTP/1.1 connection; http.client costs a fraction of httpx's CPU."""

    def __init__(self, base_url: str, key: str | None = None) -> None:
        self.conn = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=30)
        self.key = key

    def call(self, method: str, path: str, body: object = None, key: str | None = None
             ) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, payload, headers)
        answer = self.conn.getresponse()
        return answer.status, answer.read()

    def close(self) -> None:
        self.conn.close()


# -- fulfilment -------------------------------------------------------------------------------

@dataclass
class Cycles:
    seconds: float = 0.0
    done: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    steps_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    failed: int = 0
    first_failure: str = ""
    ran_out: bool = False
    client_cpu: float = 0.0

    def as_load(self, clients: int) -> Load:
        """The figures of the run, as the headline table takes them."""
        return Load(f"Python http.client, {clients} threads", clients, self.seconds,
                    len(self.done), self.failed,
                    percentile(self.latencies_ms, 50) if self.done else 0.0,
                    percentile(self.latencies_ms, 99) if self.done else 0.0)


def _issued_requests(engine: Engine) -> list[tuple[str, str]]:
    c = t.fulfillment_requests.c
    with engine.connect() as conn:
        return [(r.id, r.location_id) for r in conn.execute(
            select(c.id, c.location_id)
            .where(c.status == "issued", c.type == "ship_from_store")
            .order_by(c.placed_at, c.id))]


def _cycle(client: Client, request_id: str, key: str, cycles: Cycles, lock: threading.Lock
           ) -> bool:
    started = time.perf_counter()
    for step in STEPS:
        step_started = time.perf_counter()
        status, body = client.call("POST", f"/v1/fulfillment-requests/{request_id}/{step}", {},
                                   key)
        if status != 200:
            with lock:
                cycles.failed += 1
                if not cycles.first_failure:
                    cycles.first_failure = f"{step} {status}: {body[:300]!r}"
            return False
        with lock:
            cycles.steps_ms[step].append((time.perf_counter() - step_started) * 1000)
    with lock:
        cycles.latencies_ms.append((time.perf_counter() - started) * 1000)
        cycles.done.append(request_id)
    return True


def work_queues(base_url: str, work: list[tuple[str, str]], staff_keys: dict[str, str],
                clients: int, seconds: float) -> Cycles:
    """`clients` store associates, each on a connection of their own, take the oldest issued
    request and ship it, until `seconds` are up (a cycle started is finished)."""
    queue = deque(work)
    cycles = Cycles()
    lock = threading.Lock()

    def associate(running: Callable[[], bool]) -> None:
        client = Client(base_url)
        try:
            while running():
                with lock:
                    if not queue:
                        cycles.ran_out = True
                        return
                    request_id, location_id = queue.popleft()
                _cycle(client, request_id, staff_keys[location_id], cycles, lock)
        finally:
            client.close()

    return _together(cycles, [associate] * clients, seconds)


def _together(cycles: Cycles, clients: list[Callable[[Callable[[], bool]], None]],
              seconds: float) -> Cycles:
    """Start every client at once, each on a thread of its own, and let them work while
    `running()` (for `seconds`; what a client started then, it finishes); the time they
    took and the CPU this process spent on them go into `cycles`."""
    start_line = threading.Barrier(len(clients) + 1)
    deadline = [0.0]

    def running() -> bool:
        return time.perf_counter() < deadline[0]

    def start(client: Callable[[Callable[[], bool]], None]) -> None:
        start_line.wait()
        client(running)

    threads = [threading.Thread(target=start, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    cpu = time.process_time()
    started = time.perf_counter()
    deadline[0] = started + seconds
    start_line.wait()
    for thread in threads:
        thread.join()
    cycles.seconds = time.perf_counter() - started
    cycles.client_cpu = (time.process_time() - cpu) / cycles.seconds
    return cycles


# -- store checkout ---------------------------------------------------------------------------

#: The requests of one store checkout, in order.
CHECKOUT_STEPS = ("cart", "scan", "scan", "scan", "quote", "shipping", "pay", "checkout")
#: Take-now goods come from levels with at least this many on hand, so that the shelves
#: last the run.
SHELF = 20


def _store_checkout(client: Client, key: str, store: str, take_now: list[str], ship: str,
                    n: int) -> str | None:
    """One sale at `store`: a cart, two goods carried out and one delivered, its delivery
    quoted and chosen, cash, checkout. None, or what failed."""
    status, body = client.call("POST", "/v1/carts", {
        "location_id": store, "currency": "EUR",
        "customer": {"email": f"walk-in-{n % 500}@example.com"}}, key)
    if status != 201:
        return f"cart {status}: {body[:300]!r}"
    cart = f"/v1/carts/{json.loads(body)['id']}"
    steps: list[tuple[str, str, object, int]] = [
        ("POST", f"{cart}/items", {"sku": sku}, 201) for sku in take_now]
    steps.append(("POST", f"{cart}/items", {"sku": ship, "fulfillment": {"type": "ship"}}, 201))
    steps.append(("GET", f"{cart}/shipping-options?country=DE", None, 200))
    steps.append(("PUT", f"{cart}/shipping", {"option_id": "standard:bench",
                                              "address": network.address(52.52, 13.40)}, 200))
    for method, path, payload, expected in steps:
        status, body = client.call(method, path, payload, key)
        if status != expected:
            return f"{method} {path.split('/')[-1]} {status}: {body[:300]!r}"
    due = json.loads(body)["balance"]["due"]
    status, body = client.call("POST", f"{cart}/payments", {"method": "cash", "amount": due},
                               key)
    if status != 201:
        return f"pay {status}: {body[:300]!r}"
    status, body = client.call("POST", f"{cart}/checkout", None, key)
    return None if status == 201 else f"checkout {status}: {body[:300]!r}"


def store_checkouts(base_url: str, net: network.Network, staff_keys: dict[str, str],
                    clients: int, seconds: float) -> Cycles:
    """`clients` associates, each at a store of their own and on a connection of their own,
    sell until `seconds` are up (a sale started is finished)."""
    shelves: dict[str, list[str]] = {}
    for location_id, sku, on_hand, safety in net.stock:
        if location_id in staff_keys and on_hand - safety >= SHELF:
            shelves.setdefault(location_id, []).append(sku)
    stores = sorted(loc for loc, skus in shelves.items() if len(skus) >= 2)[:clients]
    cycles = Cycles()
    lock = threading.Lock()

    def associate(store: str, running: Callable[[], bool]) -> None:
        client = Client(base_url)
        rng = random.Random(store)
        left = dict.fromkeys(shelves[store], SHELF)
        try:
            n = 0
            while running():
                stocked = [sku for sku, units in left.items() if units > 0]
                if len(stocked) < 2:
                    with lock:
                        cycles.ran_out = True
                    return
                take_now = rng.sample(stocked, 2)
                for sku in take_now:
                    left[sku] -= 1
                started = time.perf_counter()
                failure = _store_checkout(client, staff_keys[store], store, take_now,
                                          rng.choice(net.skus), n)
                n += 1
                with lock:
                    if failure is None:
                        cycles.done.append(store)
                        cycles.latencies_ms.append((time.perf_counter() - started) * 1000)
                    else:
                        cycles.failed += 1
                        cycles.first_failure = cycles.first_failure or failure
        finally:
            client.close()

    return _together(cycles, [functools.partial(associate, store) for store in stores],
                     seconds)


def _seed_checkout(client: Client) -> None:
    """The rates a store's checkout prices with."""
    for path, body in (
            ("/v1/tax/rates", {"rates": [{"country": "DE", "tax_class": "standard",
                                          "rate": "19", "prices_include_tax": True}]}),
            ("/v1/shipping/rates", {"rates": [{
                "country": "DE", "service_level": "standard", "carrier": "bench",
                "price": "4.90", "free_above": "100.00", "transit_days": 2,
                "cutoff": "16:00"}]})):
        status, answer = client.call("PUT", path, body)
        if status != 200:
            raise RuntimeError(f"seeding {path} failed: {status} {answer[:300]!r}")


# -- checks -----------------------------------------------------------------------------------

def _stored(engine: Engine, prefix: str) -> int:
    c = t.orders.c
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.orders)
                            .where(c.external_id.like(f"{prefix}-%"))).scalar_one()


def _events(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.events)).scalar_one()


def _check_stored(ctx: Context, engine: Engine, backend: str, label: str,
                  run: loadgen.WrkRun) -> None:
    # wrk stops on time: requests still in flight then are not counted, but the server may
    # finish them.
    stored = _stored(engine, label)
    if not run.ok <= stored <= run.ok + run.failed + run.connections:
        ctx.problem(f"{backend}: {run.ok} orders answered 201 at {run.connections} "
                    f"connections, {stored} stored")


def _verify(ctx: Context, engine: Engine, backend: str, net: network.Network,
            shipped_requests: list[str]) -> bool:
    """Reserved counters equal the active reservations, which are the open items' units (of
    web orders and store sales); nothing oversold; every web order routed; on_hand fell by
    the units shipped and those carried out of the stores."""
    stock, res, items, orders = (t.stock_levels.c, t.reservations.c, t.order_items.c,
                                 t.orders.c)
    fr = t.fulfillment_requests.c
    problems = []
    with engine.connect() as conn:
        counters = {(r.location_id, r.sku): r.reserved for r in conn.execute(
            select(stock.location_id, stock.sku, stock.reserved))}
        active = {(r.location_id, r.sku): int(r.quantity) for r in conn.execute(
            select(res.location_id, res.sku, func.sum(res.quantity).label("quantity"))
            .where(res.status == "active", res.available_on.is_(None))
            .group_by(res.location_id, res.sku))}
        oversold = conn.execute(select(func.count()).select_from(t.stock_levels).where(
            stock.on_hand - stock.reserved - stock.safety_stock < 0)).scalar_one()
        on_hand = conn.execute(select(func.sum(stock.on_hand))).scalar_one()
        web = orders.channel == "web"
        sold = orders.channel.in_(("web", "store"))
        statuses: dict[str, int] = {r[0]: r[1] for r in conn.execute(
            select(orders.status, func.count()).where(web).group_by(orders.status))}
        open_units = conn.execute(
            select(func.coalesce(func.sum(items.quantity), 0))
            .join(t.orders, t.orders.c.id == items.order_id)
            .where(sold, items.status.in_(OPEN_ITEMS))).scalar_one()
        shipped_units = conn.execute(
            select(func.coalesce(func.sum(items.quantity), 0))
            .join(t.orders, t.orders.c.id == items.order_id)
            .where(sold, items.status == "shipped")).scalar_one()
        carried_units = conn.execute(
            select(func.coalesce(func.sum(items.quantity), 0))
            .join(t.orders, t.orders.c.id == items.order_id)
            .where(orders.channel == "store", items.status == "fulfilled")).scalar_one()
        unrouted = conn.execute(
            select(func.count()).select_from(t.order_items)
            .join(t.orders, t.orders.c.id == items.order_id)
            .where(web, items.location_id.is_(None))).scalar_one()
        split = conn.execute(select(func.count()).select_from(
            select(items.order_id).join(t.orders, t.orders.c.id == items.order_id).where(web)
            .group_by(items.order_id).having(func.count(items.location_id.distinct()) > 1)
            .subquery())).scalar_one()
        done = {r.id: r.status for r in conn.execute(
            select(fr.id, fr.status).where(fr.id.in_(shipped_requests)))} if (
            shipped_requests) else {}
    mismatched = [k for k in set(counters) | set(active)
                  if counters.get(k, 0) != active.get(k, 0)]
    if mismatched:
        problems.append(f"{len(mismatched)} reserved counters differ from their active "
                        f"reservations, e.g. {mismatched[0]}")
    if oversold:
        problems.append(f"{oversold} stock levels reserve more than on hand less safety stock")
    if sum(active.values()) != open_units:
        problems.append(f"{sum(active.values())} units reserved for {open_units} units of "
                        "open items")
    wrong = {s: n for s, n in statuses.items() if s in ("on_hold", "cancelled")}
    if wrong or unrouted:
        problems.append(f"orders not routed: {wrong}, {unrouted} items without a location")
    gone = sum(on for _, _, on, _ in net.stock) - on_hand
    if gone != shipped_units + carried_units:
        problems.append(f"on_hand fell by {gone} units, {shipped_units} units shipped and "
                        f"{carried_units} carried out of stores")
    not_shipped = [s for s in done.values() if s != "shipped"]
    if len(done) != len(shipped_requests) or not_shipped:
        problems.append(f"{len(shipped_requests)} requests shipped, {len(done)} found, "
                        f"{len(not_shipped)} not shipped")
    for problem in problems:
        ctx.problem(f"{backend}: {problem}")
    total = sum(statuses.values())
    if not problems:
        ctx.say(f"[green]consistent[/green]: {total:,} orders ({split / max(total, 1):.1%} "
                f"split over two or more locations), {sum(active.values()):,} units reserved "
                f"as the open items need, counters agree, none oversold, {shipped_units:,} "
                f"units shipped and {carried_units:,} carried out, gone from on_hand")
    return not problems


# -- statements and round trips ---------------------------------------------------------------

def _count(ctx: Context, url: str, net: network.Network, shop_key: str,
           staff_keys: dict[str, str], engine: Engine) -> None:
    """One `oms serve` worker behind the counting proxy; operations one at a time."""
    from sqlalchemy import make_url

    target = make_url(url)
    operations = ctx.sizes.counted_operations
    rng = random.Random(4)
    with counting(target.host or "127.0.0.1", target.port or 5432) as wire:
        proxied = target.set(host="127.0.0.1", port=wire.port).update_query_dict(
            {"sslmode": "disable"}).render_as_string(hide_password=False)
        log_path = ctx.databases.tmp / "serve-count.log"
        with serving(proxied, log_path, 1) as server:
            client = Client(server.base_url, shop_key)

            def measure(name: str, count: int, op: Callable[[int], None]) -> None:
                for n in range(min(10, count)):  # pool filled, statements prepared, caches
                    op(n)
                before = wire.snapshot()
                for n in range(count):
                    op(1000 + n)
                ctx.figures.per_operation[(name, POSTGRESQL)] = wire.snapshot().minus(
                    before).per(count)

            placed: list[str] = []

            def place(n: int) -> None:
                body = network.order_body(net, f"COUNT-{n}", network.now_text(), rng)
                status, answer = client.call("POST", "/v1/orders", body)
                if status != 201:
                    raise RuntimeError(f"placing an order answered {status}: {answer[:300]!r}")
                placed.append(json.loads(answer)["id"])

            def read(_: int) -> None:
                status, answer = client.call("GET",
                                             f"/v1/availability?sku={rng.choice(net.skus)}")
                if status != 200:
                    raise RuntimeError(f"availability answered {status}: {answer[:300]!r}")

            work: deque[tuple[str, str]] = deque()
            cycles = Cycles()

            def fulfil(_: int) -> None:
                request_id, location_id = work.popleft()
                if not _cycle(client, request_id, staff_keys[location_id], cycles,
                              threading.Lock()):
                    raise RuntimeError(f"a fulfilment cycle failed: {cycles.first_failure}")

            measure("orders", operations, place)
            measure("availability", operations, read)
            work.extend(_issued_requests(engine))
            if len(work) > 10:
                measure("fulfillment", min(operations, len(work) - 10), fulfil)
            client.close()
    for name in ("orders", "availability", "fulfillment"):
        spent = ctx.figures.per_operation.get((name, POSTGRESQL))
        if spent is None:
            continue
        ctx.say(f"{name}: {spent.statements:.1f} statements, {spent.round_trips:.1f} round "
                "trips each (" + ", ".join(f"{verb} {n:.1f}" for verb, n in
                                           spent.verbs.items() if n >= 0.05) + ")")


# -- the run ----------------------------------------------------------------------------------

def run(ctx: Context, backend: str, parts: tuple[str, ...] = PARTS) -> None:
    sizes = ctx.sizes
    net = network.build()
    wrk = loadgen.wrk_path(ctx.say)
    ctx.figures.generators["wrk"] = f"wrk {loadgen.wrk_version(wrk)} ({wrk})"
    workers = cores()
    tmp = ctx.databases.tmp
    shipped: list[str] = []
    with ctx.databases.fresh(backend, "shop") as url, engine_for(url) as engine:
        started = time.perf_counter()
        network.seed_oms(engine, net)
        shop_key = _create_key(engine, Role.INTEGRATOR, [], "benchmark shop")
        staff_keys = {loc.id: _create_key(engine, Role.ASSOCIATE, [loc.id], f"staff {loc.id}")
                      for loc in net.shipping}
        ctx.say(f"seeded {len(net.locations)} locations ({len(net.shipping)} ship), "
                f"{len(net.skus)} skus, {len(net.stock):,} stock levels, "
                f"{len(net.customers):,} customers in {time.perf_counter() - started:.0f} s")

        log_path = tmp / f"serve-shop-{backend.lower()}.log"
        with serving(url, log_path, workers) as server:
            base_url = server.base_url
            ctx.say(f"oms serve --workers {workers}; load: {ctx.figures.generators['wrk']}")
            warm_script = loadgen.order_script(tmp / "warm.lua", net, shop_key, "WARM")
            warm = loadgen.run_wrk(wrk, base_url, warm_script, sizes.throughput_connections,
                                   sizes.warm_up_seconds, workers, tmp / "wrk-warm.log")
            ctx.say(f"warm-up: {warm.ok:,} orders, {warm.failed} failed (untimed)")
            ctx.figures.warm_up_failed(backend, warm.failed)
            runs: list[tuple[str, loadgen.WrkRun]] = [("WARM", warm)]
            if "orders" in parts:
                for label, connections, seconds in (
                        ("O32", sizes.throughput_connections, sizes.order_seconds),
                        ("O4", sizes.latency_connections, sizes.latency_seconds)):
                    script = loadgen.order_script(tmp / f"{label}.lua", net, shop_key, label)
                    events = _events(engine)
                    with measuring(server.pid, url if backend == POSTGRESQL else None) as spent:
                        result = loadgen.run_wrk(wrk, base_url, script, connections, seconds,
                                                 workers, tmp / f"wrk-{label}.log")
                    runs.append((label, result))
                    name = f"orders@{connections}"
                    ctx.figures.loads[(name, backend)] = result.as_load()
                    # Orders the server finished, those wrk stopped waiting for included.
                    ctx.figures.cost(name, backend, spent, _stored(engine, label),
                                     _events(engine) - events)
                    ctx.say(f"orders, {connections} connections: {result.rate:,.1f} orders/s, "
                            f"p50 {result.p50_ms:,.1f} ms, p99 {result.p99_ms:,.1f} ms, "
                            f"{result.failed} failed")
            for label, result in runs:
                if result.failed:
                    ctx.problem(f"{backend}: {result.failed} order requests failed at "
                                f"{result.connections} connections ({label}); "
                                f"errors {result.errors}; first: {result.first_failure}")
                _check_stored(ctx, engine, backend, label, result)

            if "availability" in parts:
                script = loadgen.availability_script(tmp / "availability.lua", list(net.skus),
                                                     shop_key)
                warm = loadgen.run_wrk(wrk, base_url, script, sizes.throughput_connections,
                                       max(1, sizes.warm_up_seconds // 2), workers,
                                       tmp / "wrk-availability-warm.log")
                ctx.figures.warm_up_failed(backend, warm.failed)
                if warm.failed:
                    ctx.problem(f"{backend}: {warm.failed} availability reads failed while "
                                f"warming up; first: {warm.first_failure}")
                result = loadgen.run_wrk(wrk, base_url, script, sizes.throughput_connections,
                                         sizes.availability_seconds, workers,
                                         tmp / "wrk-availability.log")
                ctx.figures.loads[(f"availability@{result.connections}", backend)] = (
                    result.as_load())
                ctx.say(f"availability, {result.connections} connections: "
                        f"{result.rate:,.0f} reads/s, p50 {result.p50_ms:,.1f} ms, "
                        f"p99 {result.p99_ms:,.1f} ms, {result.failed} failed")
                if result.failed:
                    ctx.problem(f"{backend}: {result.failed} availability reads failed; "
                                f"errors {result.errors}; first: {result.first_failure}")

            if "fulfillment" in parts:
                work = _issued_requests(engine)
                cycles = work_queues(base_url, work, staff_keys, sizes.fulfillment_clients,
                                     sizes.fulfillment_seconds)
                shipped = cycles.done
                load = cycles.as_load(sizes.fulfillment_clients)
                ctx.figures.generators["fulfillment"] = load.generator
                ctx.figures.loads[("fulfillment", backend)] = load
                steps = ", ".join(f"{step} {percentile(ms, 50):,.1f}"
                                  for step, ms in cycles.steps_ms.items() if ms)
                ctx.say(f"fulfilment: {load.rate:,.1f} cycles/s ({len(cycles.done):,} requests "
                        f"shipped of {len(work):,} issued), p50 per step (ms): {steps}; "
                        f"client CPU {cycles.client_cpu:.0%} of a core")
                if cycles.ran_out:
                    ctx.say("[yellow]fulfilment ran out of issued requests before its time: "
                            "cycles/s is over the time it took[/yellow]")
                if cycles.failed:
                    ctx.problem(f"{backend}: {cycles.failed} fulfilment cycles failed; first: "
                                f"{cycles.first_failure}")

            if "checkout" in parts:
                seeder = Client(base_url, shop_key)
                _seed_checkout(seeder)
                seeder.close()
                cycles = store_checkouts(base_url, net, staff_keys, sizes.checkout_clients,
                                         sizes.checkout_seconds)
                load = cycles.as_load(sizes.checkout_clients)
                ctx.figures.generators["checkout"] = load.generator
                ctx.figures.loads[("checkout", backend)] = load
                ctx.say(f"store checkout: {load.rate:,.1f} sales/s ({len(cycles.done):,} "
                        f"sales of {len(CHECKOUT_STEPS)} requests each: a cart, 3 goods "
                        f"scanned, a quote, delivery chosen, cash, checkout), p50 "
                        f"{load.p50_ms:,.0f} ms, p99 {load.p99_ms:,.0f} ms; client CPU "
                        f"{cycles.client_cpu:.0%} of a core")
                if cycles.ran_out:
                    ctx.say("[yellow]store checkout ran out of shelf stock before its time: "
                            "sales/s is over the time it took[/yellow]")
                if cycles.failed:
                    ctx.problem(f"{backend}: {cycles.failed} store checkouts failed; first: "
                                f"{cycles.first_failure}")

        ctx.figures.checks[("orders", backend)] = _verify(ctx, engine, backend, net, shipped)
        if backend == POSTGRESQL:
            _count(ctx, url, net, shop_key, staff_keys, engine)
