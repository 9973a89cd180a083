"""pgbench's TPC-B-like load on the PostgreSQL server the other benchmarks use.

Not a figure of oms: a yardstick for the server, disks and machine of this run, so that the
orders/s on PostgreSQL can be read against what the same server does with a simple write
transaction and no application in front of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import make_url

from common import POSTGRESQL, Context, Result, tail

UNIT = "tx"
CLIENTS = 32
THREADS = 2
BENCHMARK = "pgbench tpcb-like"


def pgbench_path() -> str | None:
    return shutil.which("pgbench") or (
        "/usr/bin/pgbench" if Path("/usr/bin/pgbench").exists() else None)


def _run(command: list[str], env: dict[str, str], cwd: Path, timeout: float,
         log_path: Path) -> str:
    with log_path.open("w") as log:
        finished = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=timeout,
                                  check=False)
        log.write(finished.stdout)
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} exited with {finished.returncode}:\n"
                           f"{tail(log_path)}")
    return finished.stdout


def _number(pattern: str, output: str) -> float:
    found = re.search(pattern, output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"pgbench printed no {pattern!r}:\n{output[-1500:]}")
    return float(found.group(1))


def _latencies_ms(log_dir: Path) -> list[float]:
    """Per-transaction latencies from the `--log` files (one per thread): the third field of
    a line is the latency in microseconds, or `failed`/`skipped`."""
    latencies = []
    for path in log_dir.glob("pgbench_log.*"):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
    return latencies


def run(ctx: Context, backend: str) -> list[Result]:
    assert backend == POSTGRESQL
    pgbench = pgbench_path()
    if pgbench is None:
        ctx.say("[yellow]pgbench is not installed (not on PATH, no /usr/bin/pgbench); "
                "skipping the PostgreSQL yardstick[/yellow]")
        return []
    sizes = ctx.sizes
    work = ctx.databases.tmp / "pgbench"
    work.mkdir(exist_ok=True)
    with ctx.databases.scratch_postgres("pgbench") as url:
        target = make_url(url)
        env = {**os.environ}
        if target.password:
            env["PGPASSWORD"] = str(target.password)
        connection = [
            *(["-h", target.host] if target.host else []),
            *(["-p", str(target.port)] if target.port else []),
            *(["-U", target.username] if target.username else []),
        ]
        assert target.database is not None
        _run([pgbench, "-i", "-s", str(sizes.pgbench_scale), "-q", *connection,
              target.database], env, work, 300, work / "init.log")
        output = _run(
            [pgbench, "-c", str(CLIENTS), "-j", str(THREADS), "-T", str(sizes.pgbench_seconds),
             "-b", "tpcb-like", "--log", "--log-prefix", str(work / "pgbench_log"),
             *connection, target.database],
            env, work, sizes.pgbench_seconds + 120, work / "run.log")

    tps = _number(r"^tps = ([0-9.]+) \(without initial connection time\)", output)
    processed = int(_number(r"^number of transactions actually processed: (\d+)", output))
    failed = re.search(r"^number of failed transactions: (\d+)", output, re.MULTILINE)
    errors = int(failed.group(1)) if failed else 0
    if errors:
        ctx.problem(f"pgbench: {errors} transactions failed")
    latencies = _latencies_ms(work)
    # pgbench's own tps leaves out connecting; the duration is chosen to give the same rate.
    result = Result(BENCHMARK, POSTGRESQL, processed + errors, UNIT,
                    processed / tps if tps else 0.0, latencies, errors)
    ctx.say(f"{BENCHMARK}: scale {sizes.pgbench_scale}, {CLIENTS} clients, "
            f"{THREADS} threads, {sizes.pgbench_seconds} s: {tps:,.0f} tps")
    return [result]
