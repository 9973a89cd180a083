"""pgbench on the PostgreSQL server the other benchmarks use: its TPC-B-like write transaction
(`tpcb-like`) and its primary-key read (`select-only`), 8 clients, scale 10.

Not a figure of oms: a yardstick for the server, disks and machine of this run, so that
orders/s can be read against what the same server does with a simple write transaction, and
availability reads against a simple read, with no application in front of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import make_url

from common import POSTGRESQL, Context, cores, tail

CLIENTS = 8
TPCB = "tpcb-like"
SELECT_ONLY = "select-only"


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


def run(ctx: Context, backend: str) -> None:
    assert backend == POSTGRESQL
    pgbench = pgbench_path()
    if pgbench is None:
        ctx.say("[yellow]pgbench is not installed (not on PATH, no /usr/bin/pgbench); "
                "skipping the PostgreSQL yardstick[/yellow]")
        return
    sizes = ctx.sizes
    work = ctx.databases.tmp / "pgbench"
    work.mkdir(exist_ok=True)
    threads = str(min(cores(), CLIENTS))
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
        for script, seconds in ((TPCB, sizes.pgbench_seconds),
                                (SELECT_ONLY, sizes.pgbench_select_seconds)):
            output = _run([pgbench, "-c", str(CLIENTS), "-j", threads, "-T", str(seconds),
                           "-b", script, *connection, target.database],
                          env, work, seconds + 120, work / f"{script}.log")
            tps = _number(r"^tps = ([0-9.]+) \(without initial connection time\)", output)
            failed = re.search(r"^number of failed transactions: (\d+)", output, re.MULTILINE)
            if failed and int(failed.group(1)):
                ctx.problem(f"pgbench {script}: {failed.group(1)} transactions failed")
            ctx.figures.tps[script] = tps
            ctx.say(f"pgbench {script}: scale {sizes.pgbench_scale}, {CLIENTS} clients, "
                    f"{threads} threads, {seconds} s: {tps:,.0f} tps")
