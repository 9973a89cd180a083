"""Run the oms benchmarks and print the results.

    python bench/run.py [--quick] [--only pgbench|orders|availability|fulfillment|checkout|floor
                                         |routing|reservations|webhooks|import ...]

First the headline: oms selling for a retailer of 500 locations over HTTP (orders,
availability reads, the fulfilment cycle) on PostgreSQL and SQLite, against the stack's floor
and pgbench in the same run, in one table with the targets. Then, in a full run, the component
benchmarks (routing, reservations, webhooks, imports) in a second table.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial

from rich.console import Console
from rich.table import Table

import floor
import importing
import pgbench
import report
import reservations
import routing
import shop
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
    cores,
    postgres_unreachable,
    safe_url,
)
from loadgen import LoadGeneratorMissing
from oms.settings import Settings

Component = Callable[[Context, str], list[Result]]
COMPONENTS: dict[str, Component] = {
    "routing": routing.run,
    "reservations": reservations.run,
    "webhooks": webhooks.run,
    "import": importing.run,
}
#: Components that do not run once on each database.
ONLY_ON: dict[str, tuple[str, ...]] = {"routing": (NO_DATABASE,)}
HEADLINE = ("pgbench", *shop.PARTS, "floor")


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
        "deliveries: webhook requests sent, signed, by the worker's webhook loop to a local "
        "receiver answering 204; latency is the HTTP round trip" if webhooks.UNIT in units
        else "",
        routing.NOTE if routing.UNIT in units else "",
        f"rows: import latency is per {Settings().import_chunk_size}-row chunk "
        "(one transaction)" if "rows" in units else "",
        "PG/SQLite: ratio of throughputs",
    ]
    table = Table(title="oms components", title_justify="left", caption_justify="left",
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


def _attempt(ctx: Context, name: str, backend: str, call: Callable[[], object]) -> None:
    ctx.console.rule(f"{name} · {backend}", align="left")
    try:
        call()
    except LoadGeneratorMissing as exc:
        ctx.problem(f"{name} on {backend} needs a load generator: {exc}")
    except Exception as exc:
        ctx.console.print_exception(max_frames=5)
        ctx.problem(f"{name} on {backend} did not finish: {exc.__class__.__name__}: {exc}")


def _collect(results: list[Result], component: Component, ctx: Context, backend: str
             ) -> None:
    results.extend(component(ctx, backend))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", action="append", choices=[*HEADLINE, *COMPONENTS],
                        help="run only this benchmark (may be given more than once)")
    parser.add_argument("--quick", action="store_true",
                        help="shorter loads, and no component benchmarks unless named with "
                             "--only: a smoke test of the benchmarks themselves")
    args = parser.parse_args(argv)

    console = Console()
    if not console.is_terminal:
        # Piped or captured output would otherwise wrap the tables at 80 columns.
        console = Console(width=150)
    sizes = Sizes.quick() if args.quick else Sizes()
    backends = [POSTGRESQL, SQLITE]
    unreachable = postgres_unreachable(PG_ADMIN_URL)
    if unreachable:
        console.print(f"[bold yellow]PostgreSQL is not reachable at {safe_url(PG_ADMIN_URL)} "
                      f"({unreachable}); benchmarking SQLite only.[/bold yellow] "
                      "Set OMS_BENCH_PG_URL to point at a server.")
        backends.remove(POSTGRESQL)

    def chosen(name: str) -> bool:
        if args.only:
            return name in args.only
        return name in HEADLINE or not args.quick

    parts = tuple(p for p in shop.PARTS if chosen(p))
    results: list[Result] = []
    started = time.perf_counter()
    console.print(f"{cores()} cores: oms serve and the floor run {cores()} worker processes")
    with Databases(PG_ADMIN_URL) as databases:
        ctx = Context(databases, sizes, console)
        if chosen("pgbench") and POSTGRESQL in backends:
            _attempt(ctx, "pgbench", POSTGRESQL, partial(pgbench.run, ctx, POSTGRESQL))
        for backend in backends:
            if parts:
                _attempt(ctx, "oms: " + ", ".join(parts), backend,
                         partial(shop.run, ctx, backend, parts))
            if chosen("floor"):
                _attempt(ctx, "floor", backend, partial(floor.run, ctx, backend))
        for name, component in COMPONENTS.items():
            if chosen(name):
                for backend in ONLY_ON.get(name, tuple(backends)):
                    _attempt(ctx, name, backend,
                             partial(_collect, results, component, ctx, backend))

    console.print()
    if parts or chosen("floor") or chosen("pgbench"):
        console.print(report.headline(ctx.figures, sizes))
        generators = ctx.figures.generators
        load = [
            f"orders, availability and the floor: {generators['wrk']}, {cores()} threads"
            if "wrk" in generators else "",
            f"fulfilment: {generators['fulfillment']}" if "fulfillment" in generators else "",
            f"store checkout: {generators['checkout']}" if "checkout" in generators else "",
            f"pgbench: {pgbench.CLIENTS} clients, scale {sizes.pgbench_scale}"
            if ctx.figures.tps else "",
        ]
        console.print("load generators: " + "; ".join(x for x in load if x))
    if results:
        console.print(results_table(results, sizes))
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
