"""The floor's orders/s: `floor_app` served by uvicorn with one worker per core, against its
own small schema in a fresh database holding the same network as the oms benchmark, loaded
by wrk with the same script (same bodies, same skus and customers)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

import loadgen
import network
from common import (
    POSTGRESQL,
    SQLITE,
    Context,
    Server,
    cores,
    free_port,
    running,
)
from costs import measuring
from floor_app import schema_statements
from wire import counting

BENCHMARK = "floor"
HERE = Path(__file__).resolve().parent


def _conninfo(url: str, port: int | None = None) -> str:
    target = make_url(url).set(drivername="postgresql")
    if port is not None:
        target = target.set(port=port).update_query_dict({"sslmode": "disable"})
    return target.render_as_string(hide_password=False)


def _seed_rows(net: network.Network) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    locations = [(loc.id, loc.lat, loc.lon, loc.ships) for loc in net.locations]
    stock = [(loc, sku, on_hand - safety) for loc, sku, on_hand, safety in net.stock]
    return locations, stock


def _create_postgres(url: str, net: network.Network) -> None:
    locations, stock = _seed_rows(net)
    with psycopg.connect(_conninfo(url)) as conn:
        for statement in schema_statements():
            conn.execute(statement)
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO locations VALUES (%s, %s, %s, %s)", locations)
            cursor.executemany("INSERT INTO stock (location_id, sku, on_hand) "
                               "VALUES (%s, %s, %s)", stock)
        conn.execute("ANALYZE")


def _create_sqlite(path: Path, net: network.Network) -> None:
    locations, stock = _seed_rows(net)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in schema_statements(sqlite=True):
            conn.execute(statement)
        conn.executemany("INSERT INTO locations VALUES (?, ?, ?, ?)", locations)
        conn.executemany("INSERT INTO stock (location_id, sku, on_hand) VALUES (?, ?, ?)",
                         stock)
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


@contextlib.contextmanager
def _database(ctx: Context, backend: str, net: network.Network) -> Iterator[str]:
    """FLOOR_DATABASE for a fresh, seeded floor database."""
    if backend == SQLITE:
        path = ctx.databases.tmp / "floor.db"
        _create_sqlite(path, net)
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    with ctx.databases.scratch_postgres("floor") as url:
        _create_postgres(url, net)
        yield url


@contextlib.contextmanager
def floor_serving(database: str, log_path: Path, workers: int) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "FLOOR_DATABASE": database}
    command = [sys.executable, "-m", "uvicorn", "floor_app:app", "--app-dir", str(HERE),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
               "--no-access-log", "--log-level", "warning"]
    base_url = f"http://127.0.0.1:{port}"
    with running(command, env, log_path, f"{base_url}/healthz", "the floor") as pid:
        yield Server(base_url, pid)


def _verify(ctx: Context, backend: str, database: str) -> tuple[int, bool]:
    """Orders stored; and whether every reserved unit belongs to a stored line, and no stock
    row holds more reserved than on hand."""
    queries = ("SELECT count(*) FROM orders",
               "SELECT coalesce(sum(quantity), 0) FROM order_lines",
               "SELECT coalesce(sum(reserved), 0) FROM stock",
               "SELECT count(*) FROM stock WHERE reserved > on_hand")
    if backend == SQLITE:
        conn = sqlite3.connect(database.removeprefix("sqlite:///"))
        try:
            orders, units, reserved, oversold = (conn.execute(q).fetchone()[0] for q in queries)
        finally:
            conn.close()
    else:
        with psycopg.connect(_conninfo(database)) as pg:
            orders, units, reserved, oversold = (
                pg.execute(q).fetchone()[0] for q in queries)  # type: ignore[index]
    consistent = units == reserved and not oversold and units == orders * network.LINES
    if consistent:
        ctx.say(f"[green]floor consistent[/green] ({orders:,} orders, {reserved:,} units "
                "reserved, none oversold)")
    else:
        ctx.problem(f"{backend}: floor inconsistent: {orders} orders, {units} units ordered, "
                    f"{reserved} reserved, {oversold} rows oversold")
    return orders, consistent


def _count(ctx: Context, url: str, net: network.Network, operations: int) -> None:
    """Statements and round trips per order, through the counting proxy."""
    target = make_url(url)
    with counting(target.host or "127.0.0.1", target.port or 5432) as wire:
        log_path = ctx.databases.tmp / "floor-count.log"
        with floor_serving(_conninfo(url, wire.port), log_path, 1) as server:
            client = http.client.HTTPConnection(server.base_url.removeprefix("http://"),
                                                timeout=30)
            rng = random.Random(3)

            def place(n: int) -> None:
                body = network.order_body(net, f"COUNT-{n}", network.now_text(), rng)
                client.request("POST", "/v1/orders", json.dumps(body),
                               {"Content-Type": "application/json"})
                answer = client.getresponse()
                text = answer.read()
                if answer.status != 201:
                    raise RuntimeError(f"floor answered {answer.status}: {text[:300]!r}")

            for n in range(10):  # connections opened, statements prepared
                place(n)
            before = wire.snapshot()
            for n in range(10, 10 + operations):
                place(n)
            spent = wire.snapshot().minus(before)
            client.close()
    ctx.figures.per_operation[(BENCHMARK, POSTGRESQL)] = spent.per(operations)


def run(ctx: Context, backend: str) -> None:
    sizes = ctx.sizes
    net = network.build()
    wrk = loadgen.wrk_path(ctx.say)
    ctx.figures.generators["wrk"] = f"wrk {loadgen.wrk_version(wrk)} ({wrk})"
    workers = cores()
    tmp = ctx.databases.tmp
    with _database(ctx, backend, net) as database:
        log_path = tmp / f"floor-{backend.lower()}.log"
        with floor_serving(database, log_path, workers) as server:
            base_url = server.base_url
            warm = loadgen.order_script(tmp / "floor-warm.lua", net, "unused", "FW")
            warm_up = loadgen.run_wrk(wrk, base_url, warm, sizes.throughput_connections,
                                      sizes.warm_up_seconds, workers,
                                      tmp / "wrk-floor-warm.log")
            ctx.figures.warm_up_failed(backend, warm_up.failed)
            if warm_up.failed:
                ctx.problem(f"{backend}: {warm_up.failed} floor requests failed while warming "
                            f"up; first: {warm_up.first_failure}")
            loads = {}
            for label, connections, seconds in (
                    ("F32", sizes.throughput_connections, sizes.floor_seconds),
                    ("F4", sizes.latency_connections, sizes.latency_seconds)):
                script = loadgen.order_script(tmp / f"floor-{label}.lua", net, "unused", label)
                postgres = database if backend == POSTGRESQL else None
                with measuring(server.pid, postgres) as spent:
                    loads[connections] = result = loadgen.run_wrk(
                        wrk, base_url, script, connections, seconds, workers,
                        tmp / f"wrk-floor-{label}.log")
                ctx.figures.cost(f"{BENCHMARK}@{connections}", backend, spent, result.ok,
                                 events=result.ok)
                ctx.say(f"floor, {connections} connections: {result.rate:,.0f} orders/s, "
                        f"p50 {result.p50_ms:,.1f} ms, p99 {result.p99_ms:,.1f} ms, "
                        f"{result.failed} failed")
                if result.failed:
                    ctx.problem(f"{backend}: {result.failed} floor requests failed at "
                                f"{connections} connections; first: {result.first_failure}")
        _, ctx.figures.checks[(BENCHMARK, backend)] = _verify(ctx, backend, database)
        for connections, result in loads.items():
            ctx.figures.loads[(f"{BENCHMARK}@{connections}", backend)] = result.as_load()
        if backend == POSTGRESQL:
            _count(ctx, database, net, sizes.counted_operations)
