"""What every benchmark shares: throw-away databases, a server process, seed data, timing and
results."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from sqlalchemy import Engine, create_engine, make_url, text

from costs import Spent
from oms.adapters.db.engine import make_engine
from oms.adapters.db.migrate import upgrade
from oms.services.imports import FileFormat, ImportMode, run_import
from oms.settings import Settings

SQLITE = "SQLite"
POSTGRESQL = "PostgreSQL"
#: The database column of a benchmark that does not touch a database.
NO_DATABASE = "in-process"
PG_ADMIN_URL = os.environ.get(
    "OMS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def postgres_unreachable(admin_url: str = PG_ADMIN_URL) -> str | None:
    """Why the PostgreSQL server cannot be used, or None when it answers."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        # SQLAlchemy wraps the driver's error; the driver's own message is the useful part.
        cause = getattr(exc, "orig", None) or exc
        lines = str(cause).strip().splitlines()
        return f"{cause.__class__.__name__}: {lines[0] if lines else ''}"
    finally:
        admin.dispose()
    return None


class Databases:
    """Hands out one fresh, migrated database per benchmark and backend, and removes them.

    Each benchmark starts from an empty schema so that its figures do not depend on which
    benchmarks ran before it (table sizes, the event log, autovacuum debt).
    """

    def __init__(self, pg_admin_url: str = PG_ADMIN_URL) -> None:
        self.pg_admin_url = pg_admin_url
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Databases:
        self._tmp = tempfile.TemporaryDirectory(prefix="oms-bench-")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def tmp(self) -> Path:
        """Scratch space for SQLite files, generated import files and server logs."""
        if self._tmp is None:
            raise RuntimeError("use Databases as a context manager")
        return Path(self._tmp.name)

    @contextlib.contextmanager
    def fresh(self, backend: str, label: str) -> Iterator[str]:
        """A migrated database URL, removed when the block ends."""
        if backend == SQLITE:
            path = self.tmp / f"{label}.db"
            url = f"sqlite:///{path}"
            upgrade(url)
            try:
                yield url
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        with self.scratch_postgres(label) as url:
            upgrade(url)
            yield url

    @contextlib.contextmanager
    def scratch_postgres(self, label: str) -> Iterator[str]:
        """An empty PostgreSQL database `oms_bench_<pid>_<label>`, dropped when the block
        ends."""
        name = f"oms_bench_{os.getpid()}_{label}"
        admin = create_engine(self.pg_admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                yield make_url(self.pg_admin_url).set(database=name).render_as_string(
                    hide_password=False)
            finally:
                # FORCE: a server process that was killed may leave sessions behind briefly.
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


@contextlib.contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    """The engine the application itself would build (pool size, SQLite pragmas)."""
    engine = make_engine(Settings(database_url=url))
    try:
        yield engine
    finally:
        engine.dispose()


# -- a real server ----------------------------------------------------------------------------

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _oms_command() -> list[str]:
    """The `oms` script of the interpreter running the benchmark, so both use one install."""
    script = Path(sys.executable).parent / "oms"
    if script.exists():
        return [str(script)]
    found = shutil.which("oms")
    return [found] if found else [sys.executable, "-m", "oms.cli"]


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def cores() -> int:
    """CPU cores this process may run on: the worker processes each server gets."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def running(command: Sequence[str], env: dict[str, str], log_path: Path, health_url: str,
            name: str) -> Iterator[int]:
    """Run a server until the block ends, once `health_url` answers 200; yields its pid."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(command), env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n"
                                   f"{tail(log_path)}")
            try:
                if httpx.get(health_url, timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {health_url} within "
                                   f"{STARTUP_TIMEOUT:.0f} s:\n{tail(log_path)}")
            time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int


@contextlib.contextmanager
def serving(database_url: str, log_path: Path, workers: int = 1) -> Iterator[Server]:
    """Run `oms serve --workers <workers>` on a free port until the block ends."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMS_DATABASE_URL": database_url}
    command = [*_oms_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
    with running(command, env, log_path, f"{base_url}/healthz", "oms serve") as pid:
        yield Server(base_url, pid)


# -- seed data --------------------------------------------------------------------------------

def _import(engine: Engine, kind: str, lines: Iterable[str], fmt: FileFormat,
            mode: ImportMode = ImportMode.DELTA) -> None:
    report = run_import(engine, kind, lines, fmt, mode)
    if report.failed:
        raise RuntimeError(f"seeding {kind} failed: {report.errors[:3]}")


def location_lines(location_ids: Sequence[str]) -> list[str]:
    return [
        json.dumps({
            "id": location_id, "type": "store" if i else "dc", "name": f"Bench {location_id}",
            "address": {"line1": f"Benchstraße {i + 1}", "city": "Berlin",
                        "postal_code": "10178", "country": "DE",
                        "lat": 52.52 + i / 100, "lon": 13.41 + i / 100},
            "capabilities": ["ship", "pickup"], "priority": 10 + i, "timezone": "Europe/Berlin",
        }) + "\n"
        for i, location_id in enumerate(location_ids)
    ]


def product_lines(skus: Sequence[str]) -> list[str]:
    return [
        json.dumps({"sku": sku, "name": f"Bench product {sku}",
                    "price": {"amount": f"{10 + i % 90}.90", "currency": "EUR"}}) + "\n"
        for i, sku in enumerate(skus)
    ]


def stock_csv(rows: Iterable[tuple[str, str, int, int]]) -> Iterator[str]:
    yield "location_id,sku,on_hand,safety_stock\n"
    for location_id, sku, on_hand, safety_stock in rows:
        yield f"{location_id},{sku},{on_hand},{safety_stock}\n"


def seed_locations(engine: Engine, location_ids: Sequence[str]) -> None:
    _import(engine, "locations", location_lines(location_ids), FileFormat.JSONL)


def seed_products(engine: Engine, skus: Sequence[str]) -> None:
    _import(engine, "products", product_lines(skus), FileFormat.JSONL)


def seed_stock(engine: Engine, rows: Iterable[tuple[str, str, int, int]]) -> None:
    buffer = io.StringIO("".join(stock_csv(rows)), newline="")
    _import(engine, "inventory", buffer, FileFormat.CSV)


def sku_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:06d}" for i in range(count)]


# -- measuring --------------------------------------------------------------------------------

@dataclass
class Timing:
    seconds: float
    latencies_ms: list[float]
    errors: int = 0
    first_error: str | None = None


def run_concurrently(
    workers: int, total: int, op: Callable[[int, random.Random], None], seed: int = 1
) -> Timing:
    """Run `op(worker, rng)` `total` times across `workers` threads.

    Workers draw operations from one shared counter rather than a fixed share each, so all of
    them stay busy until the last operation and the tail does not run at lower concurrency.
    """
    counter = itertools.count()
    counter_lock = threading.Lock()
    start_line = threading.Barrier(workers + 1)
    latencies: list[list[float]] = [[] for _ in range(workers)]
    errors: list[str] = []
    errors_lock = threading.Lock()

    def take() -> bool:
        with counter_lock:
            return next(counter) < total

    def work(worker: int) -> None:
        rng = random.Random(seed * 1000 + worker)
        mine = latencies[worker]
        start_line.wait()
        while take():
            started = time.perf_counter()
            try:
                op(worker, rng)
            except Exception as exc:
                with errors_lock:
                    errors.append(f"{exc.__class__.__name__}: {exc}")
            mine.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(workers)]
    for thread in threads:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return Timing(seconds, [x for xs in latencies for x in xs], len(errors),
                  errors[0] if errors else None)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass
class Result:
    benchmark: str
    database: str
    count: int
    unit: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    errors: int = 0

    @property
    def rate(self) -> float:
        return (self.count - self.errors) / self.seconds if self.seconds > 0 else float("nan")

    @property
    def p50(self) -> float | None:
        return percentile(self.latencies_ms, 50) if self.latencies_ms else None

    @property
    def p95(self) -> float | None:
        return percentile(self.latencies_ms, 95) if self.latencies_ms else None

    @property
    def p99(self) -> float | None:
        return percentile(self.latencies_ms, 99) if self.latencies_ms else None


@dataclass(frozen=True)
class Sizes:
    """How long and how much each benchmark runs (`--quick` shrinks everything)."""

    # The order benchmark and what runs on its network (seconds of wrk unless named).
    throughput_connections: int = 32
    latency_connections: int = 4
    warm_up_seconds: int = 5
    order_seconds: int = 20
    latency_seconds: int = 10
    availability_seconds: int = 10
    floor_seconds: int = 15
    fulfillment_clients: int = 16
    fulfillment_seconds: int = 15
    #: Associates selling at once, each at a store of their own.
    checkout_clients: int = 16
    checkout_seconds: int = 15
    #: Operations placed one at a time through the statement-counting proxy.
    counted_operations: int = 50
    pgbench_scale: int = 10
    pgbench_seconds: int = 15
    pgbench_select_seconds: int = 10
    # The component benchmarks.
    workers: int = 16
    reservations: int = 4000
    reservation_skus: int = 200
    import_products: int = 20_000
    import_locations: int = 5
    import_orders: int = 5_000
    webhook_events: int = 5_000
    routing_locations: int = 500
    routing_iterations: int = 500

    @classmethod
    def quick(cls) -> Sizes:
        return cls(warm_up_seconds=2, order_seconds=6, latency_seconds=4,
                   availability_seconds=4, floor_seconds=5, fulfillment_seconds=5,
                   checkout_seconds=5,
                   counted_operations=20, pgbench_seconds=5, pgbench_select_seconds=4,
                   reservations=800, import_products=2_000, import_orders=1_000,
                   webhook_events=1_000, routing_iterations=100)

    @property
    def import_rows(self) -> int:
        return self.import_products * self.import_locations


@dataclass
class Load:
    """One timed load against a server: a wrk run, or the fulfilment client's."""

    generator: str
    connections: int
    seconds: float
    #: Operations answered as expected.
    ok: int
    #: Operations answered otherwise, or not at all (socket errors, timeouts).
    failed: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class PerOperation:
    """What one operation costs the database, averaged over `operations`."""

    operations: int
    statements: float
    round_trips: float
    #: Statements per operation by their first word (SELECT, INSERT, BEGIN, ...).
    verbs: dict[str, float]


@dataclass(frozen=True)
class Cost:
    """What one operation of a load cost on average; None where it could not be read."""

    server_cpu_ms: float | None
    database_cpu_ms: float | None
    #: PostgreSQL's WAL, the whole server's.
    wal_kib: float | None
    events: float | None
    #: Connections made to PostgreSQL.
    sessions: float | None = None


@dataclass
class Figures:
    """What the headline table is made of, by (figure, database)."""

    loads: dict[tuple[str, str], Load] = field(default_factory=dict)
    per_operation: dict[tuple[str, str], PerOperation] = field(default_factory=dict)
    #: pgbench's transactions per second, by script.
    tps: dict[str, float] = field(default_factory=dict)
    #: Consistency checks after a load: passed or not, by (what, database).
    checks: dict[tuple[str, str], bool] = field(default_factory=dict)
    #: Which load generator produced which figures.
    generators: dict[str, str] = field(default_factory=dict)
    #: What one operation of a load cost, by (figure, database).
    costs: dict[tuple[str, str], Cost] = field(default_factory=dict)
    #: Failed requests of untimed loads (warm-ups), by database.
    untimed_failed: dict[str, int] = field(default_factory=dict)

    def warm_up_failed(self, database: str, failed: int) -> None:
        self.untimed_failed[database] = self.untimed_failed.get(database, 0) + failed

    def cost(self, name: str, database: str, spent: Spent, operations: int,
             events: int | None = None) -> None:
        if operations:
            self.costs[(name, database)] = Cost(
                None if spent.server is None else spent.server * 1000 / operations,
                None if spent.database is None else spent.database * 1000 / operations,
                None if spent.wal_bytes is None else spent.wal_bytes / 1024 / operations,
                None if events is None else events / operations,
                None if spent.sessions is None else spent.sessions / operations)


@dataclass
class Context:
    databases: Databases
    sizes: Sizes
    console: Console
    problems: list[str] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)

    def say(self, message: str) -> None:
        self.console.print(f"  {message}")

    def problem(self, message: str) -> None:
        """A failed check: reported at once and again at the end, and the run exits 1."""
        self.console.print(f"  [bold red]{message}[/bold red]")
        self.problems.append(message)
