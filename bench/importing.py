"""Import throughput: a product catalog (JSON Lines), then a stock file of
`products x locations` rows (CSV) imported as a full snapshot and then as a delta.

Files are written to disk first and read back as the CLI reads them, so parsing and
validation are part of the figure; latency is per chunk (one transaction each).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import Engine

from common import Context, Result, engine_for, product_lines, seed_locations, sku_names, stock_csv
from oms.services.imports import FileFormat, ImportFile, ImportMode, ImportReport, run_import
from oms.services.order_imports import import_orders
from oms.settings import Settings

UNIT = "rows"


def _write(path: Path, lines: Iterable[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.writelines(lines)
    return path


def _timed_import(ctx: Context, engine: Engine, backend: str, name: str, kind: str,
                  path: Path, fmt: FileFormat, mode: ImportMode, expected: int) -> Result:
    chunk_size = Settings().import_chunk_size
    chunk_ms: list[float] = []
    last = time.perf_counter()

    def on_progress(_line: int) -> None:
        nonlocal last
        now = time.perf_counter()
        chunk_ms.append((now - last) * 1000)
        last = now

    started = last = time.perf_counter()
    with ImportFile.open(path) as file:
        report: ImportReport = (
            import_orders(engine, file, on_progress=on_progress) if kind == "orders"
            else run_import(engine, kind, file, fmt, mode, chunk_size, on_progress=on_progress))
    seconds = time.perf_counter() - started
    if report.failed or report.imported != expected:
        ctx.problem(f"{backend}: {name} imported {report.imported} of {expected} rows, "
                    f"{report.failed} failed; first: {report.errors[:1]}")
    result = Result(name, backend, report.rows, UNIT, seconds, chunk_ms, report.failed)
    ctx.say(f"{name}: {report.rows:,} rows in {seconds:.1f} s, {result.rate:,.0f} {UNIT}/s")
    return result


def _history(skus: list[str], count: int, rng: random.Random) -> Iterator[str]:
    """Fulfilled orders of a previous system: two lines each, a few hundred customers."""
    for n in range(count):
        lines = [{"sku": sku, "quantity": 1, "unit_price": "10.00", "tax": "1.90",
                  "status": "fulfilled"} for sku in rng.sample(skus, 2)]
        yield json.dumps({
            "channel": "historical", "external_id": f"H-{n}",
            "placed_at": f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}T12:00:00Z",
            "currency": "EUR", "customer": {"email": f"customer{n % 500}@example.com"},
            "items": lines, "totals": {"grand_total": "23.80"}, "historical": True,
        }) + "\n"


def run(ctx: Context, backend: str) -> list[Result]:
    sizes = ctx.sizes
    tmp = ctx.databases.tmp
    locations = [f"bench-loc-{i}" for i in range(sizes.import_locations)]
    skus = sku_names("IMP", sizes.import_products)
    rng = random.Random(7)
    products = _write(tmp / "products.jsonl", product_lines(skus))
    # A store system sends its whole count: location by location, every sku it carries.
    full = _write(tmp / "inventory-full.csv", stock_csv(
        (loc, sku, rng.randint(0, 500), rng.randint(0, 3)) for loc in locations for sku in skus))
    delta = _write(tmp / "inventory-delta.csv", stock_csv(
        (loc, sku, rng.randint(1, 20), rng.randint(0, 3)) for loc in locations for sku in skus))
    rows = sizes.import_rows
    orders = _write(tmp / "orders.jsonl", _history(skus, sizes.import_orders, rng))

    with ctx.databases.fresh(backend, "import") as url, engine_for(url) as engine:
        seed_locations(engine, locations)
        return [
            _timed_import(ctx, engine, backend, "import products (JSONL)", "products",
                          products, FileFormat.JSONL, ImportMode.DELTA, len(skus)),
            _timed_import(ctx, engine, backend, "import stock full (CSV)", "inventory",
                          full, FileFormat.CSV, ImportMode.FULL, rows),
            _timed_import(ctx, engine, backend, "import stock delta (CSV)", "inventory",
                          delta, FileFormat.CSV, ImportMode.DELTA, rows),
            _timed_import(ctx, engine, backend, "import orders (JSONL)", "orders",
                          orders, FileFormat.JSONL, ImportMode.DELTA, sizes.import_orders),
        ]
