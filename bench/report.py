"""The headline table: oms against the floor and pgbench of the same run, with the targets.

A target not met is a figure to improve, not a failure of the run; a failed request or an
inconsistent database is (those are reported as problems and make the run exit 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table

import pgbench
from common import POSTGRESQL, SQLITE, Cost, Figures, Load, PerOperation, Sizes

DATABASES = (POSTGRESQL, SQLITE)


@dataclass(frozen=True)
class Target:
    text: str
    #: Whether a database's figure meets it; None when the figure is missing.
    met: Callable[[str], bool | None]
    #: The databases it is judged on.
    on: tuple[str, ...] = (POSTGRESQL,)


def _rate(load: Load | None, digits: int = 1) -> str:
    return "—" if load is None else f"{load.rate:,.{digits}f}"


def _latency(load: Load | None) -> str:
    return "—" if load is None else f"{load.p50_ms:,.1f} / {load.p99_ms:,.1f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _per_operation(spent: PerOperation | None) -> str:
    return "—" if spent is None else f"{spent.statements:.1f} / {spent.round_trips:.1f}"


def _pair(a: float | None, b: float | None, digits: int) -> str:
    return " / ".join("—" if x is None else f"{x:,.{digits}f}" for x in (a, b))


def _cpu(cost: Cost | None) -> str:
    return "—" if cost is None else _pair(cost.server_cpu_ms, cost.database_cpu_ms, 2)


def _sessions(cost: Cost | None) -> str:
    return "—" if cost is None or cost.sessions is None else f"{cost.sessions:.2f}"


def _written(cost: Cost | None) -> str:
    return "—" if cost is None else _pair(cost.wal_kib, cost.events, 1)


def _met(target: Target) -> str:
    verdicts = {db: target.met(db) for db in target.on}
    if all(v is None for v in verdicts.values()):
        return "—"
    words = {True: "[green]met[/green]", False: "[yellow]not met[/yellow]", None: "—"}
    if len(verdicts) == 1:
        return words[next(iter(verdicts.values()))]
    short = {POSTGRESQL: "PG", SQLITE: "SQLite"}
    return ", ".join(f"{short[db]} {words[v]}" for db, v in verdicts.items())


def headline(figures: Figures, sizes: Sizes) -> Table:
    many, few = sizes.throughput_connections, sizes.latency_connections

    def load(name: str, db: str) -> Load | None:
        return figures.loads.get((name, db))

    def divided(a: Load | None, b: float | None) -> float | None:
        return a.rate / b if a is not None and b else None

    def vs_floor(db: str) -> float | None:
        floor = load(f"floor@{many}", db)
        return divided(load(f"orders@{many}", db), floor.rate if floor else None)

    def vs_tpcb(db: str) -> float | None:
        return divided(load(f"orders@{many}", db), figures.tps.get(pgbench.TPCB))

    def vs_select(db: str) -> float | None:
        return divided(load(f"availability@{many}", db), figures.tps.get(pgbench.SELECT_ONLY))

    def sqlite_vs_postgres() -> float | None:
        pg = load(f"orders@{many}", POSTGRESQL)
        return divided(load(f"orders@{many}", SQLITE), pg.rate if pg else None)

    def at_least(value: Callable[[str], float | None], bound: float
                 ) -> Callable[[str], bool | None]:
        def met(db: str) -> bool | None:
            v = value(db)
            return None if v is None else v >= bound
        return met

    def p99_within(db: str) -> bool | None:
        latency = load(f"orders@{few}", db)
        return None if latency is None else latency.p99_ms <= 50

    def round_trips_within(db: str) -> bool | None:
        spent = figures.per_operation.get(("orders", db))
        return None if spent is None else spent.round_trips <= 6

    def failed(db: str) -> int | None:
        loads = [v for (_, d), v in figures.loads.items() if d == db]
        if not loads and db not in figures.untimed_failed:
            return None
        return sum(x.failed for x in loads) + figures.untimed_failed.get(db, 0)

    def consistent(db: str) -> bool | None:
        checks = [v for (_, d), v in figures.checks.items() if d == db]
        return all(checks) if checks else None

    tpcb, select_only = figures.tps.get(pgbench.TPCB), figures.tps.get(pgbench.SELECT_ONLY)
    rows: list[tuple[str, dict[str, str], Target | None]] = [
        (f"orders/s, {many} connections",
         {db: _rate(load(f"orders@{many}", db)) for db in DATABASES}, None),
        (f"  p50 / p99 ms, {many} connections",
         {db: _latency(load(f"orders@{many}", db)) for db in DATABASES}, None),
        (f"orders/s, {few} connections",
         {db: _rate(load(f"orders@{few}", db)) for db in DATABASES}, None),
        (f"  p50 / p99 ms, {few} connections",
         {db: _latency(load(f"orders@{few}", db)) for db in DATABASES},
         Target("p99 ≤ 50 ms", p99_within, DATABASES)),
        (f"floor orders/s, {many} connections",
         {db: _rate(load(f"floor@{many}", db)) for db in DATABASES}, None),
        (f"  floor p50 / p99 ms, {few} connections",
         {db: _latency(load(f"floor@{few}", db)) for db in DATABASES}, None),
        ("orders/s ÷ floor orders/s", {db: _ratio(vs_floor(db)) for db in DATABASES},
         Target("≥ 0.5 on PostgreSQL", at_least(vs_floor, 0.5))),
        (f"pgbench tpcb-like tps, {pgbench.CLIENTS} clients",
         {POSTGRESQL: "—" if tpcb is None else f"{tpcb:,.0f}"}, None),
        ("orders/s ÷ pgbench tpcb-like tps", {POSTGRESQL: _ratio(vs_tpcb(POSTGRESQL))},
         Target("≥ 0.15", at_least(vs_tpcb, 0.15))),
        ("SQLite orders/s ÷ PostgreSQL orders/s", {SQLITE: _ratio(sqlite_vs_postgres())},
         Target("≥ 1 (SQLite no slower)", at_least(lambda _db: sqlite_vs_postgres(), 1),
                (SQLITE,))),
        (f"availability reads/s, {many} connections",
         {db: _rate(load(f"availability@{many}", db), 0) for db in DATABASES}, None),
        (f"  p50 / p99 ms, {many} connections",
         {db: _latency(load(f"availability@{many}", db)) for db in DATABASES}, None),
        (f"pgbench select-only tps, {pgbench.CLIENTS} clients",
         {POSTGRESQL: "—" if select_only is None else f"{select_only:,.0f}"}, None),
        ("availability ÷ pgbench select-only tps",
         {POSTGRESQL: _ratio(vs_select(POSTGRESQL))},
         Target("≥ 0.05", at_least(vs_select, 0.05))),
        ("fulfilment cycles/s (accept → ship)",
         {db: _rate(load("fulfillment", db)) for db in DATABASES}, None),
        ("  cycle p50 / p99 ms", {db: _latency(load("fulfillment", db)) for db in DATABASES},
         None),
        ("store checkouts/s (cart, 3 scans, quote, pay, checkout)",
         {db: _rate(load("checkout", db)) for db in DATABASES}, None),
        ("  checkout p50 / p99 ms", {db: _latency(load("checkout", db)) for db in DATABASES},
         None),
        ("statements / round trips per order",
         {POSTGRESQL: _per_operation(figures.per_operation.get(("orders", POSTGRESQL)))},
         Target("round trips ≤ 6 (aim)", round_trips_within)),
        ("  the floor's, per order",
         {POSTGRESQL: _per_operation(figures.per_operation.get(("floor", POSTGRESQL)))}, None),
        ("  per availability read",
         {POSTGRESQL: _per_operation(figures.per_operation.get(("availability", POSTGRESQL)))},
         None),
        ("  per fulfilment cycle",
         {POSTGRESQL: _per_operation(figures.per_operation.get(("fulfillment", POSTGRESQL)))},
         None),
        (f"CPU ms per order, server / PostgreSQL, {many} conn.",
         {db: _cpu(figures.costs.get((f"orders@{many}", db))) for db in DATABASES}, None),
        ("  the floor's",
         {db: _cpu(figures.costs.get((f"floor@{many}", db))) for db in DATABASES}, None),
        ("PostgreSQL connections made per order",
         {POSTGRESQL: _sessions(figures.costs.get((f"orders@{many}", POSTGRESQL)))}, None),
        ("  the floor's",
         {POSTGRESQL: _sessions(figures.costs.get((f"floor@{many}", POSTGRESQL)))}, None),
        ("WAL KiB / events per order",
         {db: _written(figures.costs.get((f"orders@{many}", db))) for db in DATABASES}, None),
        ("  the floor's",
         {db: _written(figures.costs.get((f"floor@{many}", db))) for db in DATABASES}, None),
        ("failed requests", {db: "—" if failed(db) is None else f"{failed(db):,}"
                             for db in DATABASES},
         Target("0 (required)", lambda db: None if failed(db) is None else failed(db) == 0,
                DATABASES)),
        ("database consistent afterwards",
         {db: {None: "—", True: "yes", False: "[red]no[/red]"}[consistent(db)]
          for db in DATABASES},
         Target("yes (required)", consistent, DATABASES)),
    ]
    table = Table(title="oms against the stack's floor and pgbench, same run",
                  title_justify="left", caption_justify="left", caption=(
                      "p50 / p99: latency of one request as the load generator sees it; "
                      "statements / round trips: as PostgreSQL receives them, BEGIN/COMMIT "
                      "and pings included (bench/wire.py); CPU: of the server's processes and "
                      "of the PostgreSQL backends serving its database, and the server's WAL "
                      "(bench/costs.py). "
                      "See bench/README.md."))
    table.add_column("figure", no_wrap=True)
    for db in DATABASES:
        table.add_column(db, justify="right", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("met", no_wrap=True)
    for label, cells, target in rows:
        table.add_row(label, *(cells.get(db, "") for db in DATABASES),
                      target.text if target else "", _met(target) if target else "")
    return table
