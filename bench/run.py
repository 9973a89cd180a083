"""Run the oms benchmarks on SQLite and PostgreSQL and print the results.

    python bench/run.py [--only reservations|availability|orders|pgbench|fulfillment
                               |webhooks|routing|import ...]
                        [--quick]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

import availability
import fulfillment
import importing
import orders
import pgbench
import reservations
import routing
import webhooks
from common import (
    NO_DATABASE,
    PG_ADMIN_URL,
    POSTGRESQL,
    SQLITE,
    Context,
    Databases,
    Result,
    Sizes,
    percentile,
    postgres_unreachable,
    safe_url,
)
from oms.settings import Settings

Benchmark = Callable[[Context, str], list[Result]]
BENCHMARKS: dict[str, Benchmark] = {
    "reservations": reservations.run,
    "availability": availability.run,
    "orders": orders.run,
    # Right after orders, so its row sits under the orders/s it is compared with.
    "pgbench": pgbench.run,
    "fulfillment": fulfillment.run,
    "webhooks": webhooks.run,
    "routing": routing.run,
    "import": importing.run,
}
#: Benchmarks that do not run once on each database.
ONLY_ON: dict[str, tuple[str, ...]] = {"pgbench": (POSTGRESQL,), "routing": (NO_DATABASE,)}


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def results_table(results: Sequence[Result], sizes: Sizes) -> Table:
    # A benchmark's databases side by side, benchmarks in the order they ran.
    first_seen = {r.benchmark: i for i, r in reversed(list(enumerate(results)))}
    results = sorted(results, key=lambda r: first_seen[r.benchmark])
    sqlite_rate = {r.benchmark: r.rate for r in results if r.database == SQLITE}
    units = {r.unit for r in results}
    notes = [
        f"res: reservations, {sizes.workers} threads in one process" if "res" in units else "",
        f"req: HTTP requests, {sizes.http_clients} clients against one `oms serve` process"
        if "req" in units else "",
        f"orders: POST /v1/orders of {orders.LINES} lines, {sizes.order_clients} clients "
        "against one `oms serve` process" if orders.UNIT in units else "",
        f"cycles: an order placed, accepted, picked, packed and shipped over HTTP, "
        f"{sizes.fulfillment_clients} clients against one `oms serve` process"
        if fulfillment.UNIT in units else "",
        f"tx: pgbench transactions, {pgbench.CLIENTS} clients, scale {sizes.pgbench_scale}"
        if pgbench.UNIT in units else "",
        "deliveries: webhook requests sent, signed, by the worker's webhook loop to a local "
        "receiver answering 204; latency is the HTTP round trip" if webhooks.UNIT in units
        else "",
        routing.NOTE if routing.UNIT in units else "",
        f"rows: import latency is per {Settings().import_chunk_size}-row chunk "
        "(one transaction)" if "rows" in units else "",
        "PG/SQLite: ratio of throughputs",
    ]
    table = Table(title="oms benchmarks", title_justify="left", caption_justify="left",
                  caption="; ".join(n for n in notes if n) + ".")
    table.add_column("benchmark", no_wrap=True)
    table.add_column("database", no_wrap=True)
    table.add_column("ops", justify="right")
    table.add_column("s", justify="right")
    table.add_column("throughput", justify="right", no_wrap=True)
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("PG/SQLite", justify="right")
    for i, r in enumerate(results):
        ratio = ""
        if r.database == POSTGRESQL and sqlite_rate.get(r.benchmark):
            ratio = f"{r.rate / sqlite_rate[r.benchmark]:.2f}x"
        last_of_benchmark = i + 1 == len(results) or results[i + 1].benchmark != r.benchmark
        table.add_row(
            r.benchmark,
            r.database,
            f"{r.count:,}",
            f"{r.seconds:.1f}",
            f"{r.rate:,.0f} {r.unit}/s",
            _ms(r.p50),
            _ms(r.p95),
            _ms(r.p99),
            f"[red]{r.errors}[/red]" if r.errors else "0",
            ratio,
            end_section=last_of_benchmark,
        )
    return table


def _p50_ratio(sqlite: Sequence[float], postgres: Sequence[float]) -> str:
    if not sqlite or not postgres:
        return ""
    return f"{percentile(postgres, 50) / percentile(sqlite, 50):.2f}x"


def steps_table(rows: Sequence[Result]) -> Table:
    """One benchmark whose operation is made of steps: each step's p50 and p99 per database,
    its failures, and how much longer PostgreSQL takes it."""
    by_database = {r.database: r for r in rows}
    compare = SQLITE in by_database and POSTGRESQL in by_database
    table = Table(
        title=f"{rows[0].benchmark}: steps", title_justify="left", caption_justify="left",
        caption="latency of each step's 2xx answers; errors: answers other than 2xx (or none), "
        "where the cycle stopped"
        + ("; PG/SQLite p50: ratio of latencies, above 1 where PostgreSQL is slower."
           if compare else "."))
    table.add_column("step", no_wrap=True)
    for r in rows:
        table.add_column(f"{r.database} p50 ms", justify="right")
        table.add_column(f"{r.database} p99 ms", justify="right")
        table.add_column("errors", justify="right")
    if compare:
        table.add_column("PG/SQLite p50", justify="right")

    steps = list(dict.fromkeys(step for r in rows for step in r.steps))
    lines = [(step, {r.database: (r.steps.get(step, []), r.step_errors.get(step, 0))
                     for r in rows}) for step in steps]
    lines.append(("whole cycle", {r.database: (r.latencies_ms, r.errors) for r in rows}))
    for i, (name, per_database) in enumerate(lines):
        cells = [name]
        for latencies, errors in per_database.values():
            cells += [_ms(percentile(latencies, 50) if latencies else None),
                      _ms(percentile(latencies, 99) if latencies else None),
                      f"[red]{errors}[/red]" if errors else "0"]
        if compare:
            cells.append(_p50_ratio(per_database[SQLITE][0], per_database[POSTGRESQL][0]))
        table.add_row(*cells, end_section=i + 2 == len(lines))
    return table


def pgbench_comparison(results: Sequence[Result]) -> str | None:
    """Orders/s on PostgreSQL against pgbench's TPS on the same server, when both ran."""
    placed = next((r for r in results
                   if r.benchmark == orders.BENCHMARK and r.database == POSTGRESQL), None)
    yardstick = next((r for r in results if r.benchmark == pgbench.BENCHMARK), None)
    if placed is None or yardstick is None or not yardstick.rate:
        return None
    return (f"{orders.BENCHMARK} on PostgreSQL ÷ {pgbench.BENCHMARK} on the same server: "
            f"{placed.rate:,.1f} {placed.unit}/s ÷ {yardstick.rate:,.0f} tps = "
            f"{placed.rate / yardstick.rate:.4f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS),
                        help="run only this benchmark (may be given more than once)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes, for a smoke test of the benchmarks themselves")
    args = parser.parse_args(argv)

    console = Console()
    if not console.is_terminal:
        # Piped or captured output would otherwise wrap the table at 80 columns.
        console = Console(width=130)
    sizes = Sizes.quick() if args.quick else Sizes()
    backends = [SQLITE]
    unreachable = postgres_unreachable(PG_ADMIN_URL)
    if unreachable:
        console.print(f"[bold yellow]PostgreSQL is not reachable at {safe_url(PG_ADMIN_URL)} "
                      f"({unreachable}); benchmarking SQLite only.[/bold yellow] "
                      "Set OMS_BENCH_PG_URL to point at a server.")
    else:
        backends.append(POSTGRESQL)

    selected = [name for name in BENCHMARKS if not args.only or name in args.only]
    results: list[Result] = []
    started = time.perf_counter()
    with Databases(PG_ADMIN_URL) as databases:
        ctx = Context(databases, sizes, console)
        for name in selected:
            runs_on = [b for b in ONLY_ON.get(name, (SQLITE, POSTGRESQL))
                       if b != POSTGRESQL or POSTGRESQL in backends]
            if not runs_on:
                console.rule(f"{name} · skipped", align="left")
                console.print(f"  {name} needs PostgreSQL, which is not reachable.")
            for backend in runs_on:
                console.rule(f"{name} · {backend}", align="left")
                try:
                    results.extend(BENCHMARKS[name](ctx, backend))
                except Exception as exc:
                    console.print_exception(max_frames=5)
                    ctx.problem(f"{name} on {backend} did not finish: "
                                f"{exc.__class__.__name__}: {exc}")

    console.print()
    console.print(results_table(results, sizes))
    for benchmark in dict.fromkeys(r.benchmark for r in results if r.steps):
        console.print(steps_table([r for r in results if r.benchmark == benchmark]))
    yardstick = pgbench_comparison(results)
    if yardstick:
        console.print(yardstick)
    console.print(f"{'quick' if args.quick else 'full'} run in "
                  f"{time.perf_counter() - started:.0f} s")
    if ctx.problems:
        console.print("[bold red]problems:[/bold red]")
        for problem in ctx.problems:
            console.print(f"  - {problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
