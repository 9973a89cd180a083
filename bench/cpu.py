"""CPU time spent during a load, read from /proc: the server's processes (uvicorn and its
workers), and the PostgreSQL backends serving the benchmark's database when the server runs
on this machine. Divided by the operations of the load, they say what one order costs each
side, which is what capacity past one machine is computed from (see README, "Past one
machine"). On a system without /proc, or a remote PostgreSQL, the figures are left out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import make_url

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # utime and stime are fields 14 and 15 of stat(5); [0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / TICKS


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in (task / "children").read_text().split()]
    return pids


def _postgres_backends(url: str) -> list[int]:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    return [pid for pid in pids if _is_postgres(pid)]


def _is_postgres(pid: int) -> bool:
    # A server in a container or elsewhere has pids of its own: only ours are read.
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"postgres")
    except OSError:
        return False


def _snapshot(pids: list[int]) -> dict[int, float]:
    return {pid: cpu for pid in pids if (cpu := _cpu_seconds(pid)) is not None}


@dataclass
class CpuSpent:
    server: float | None = None
    database: float | None = None


@contextlib.contextmanager
def measuring(server_pid: int, postgres_url: str | None) -> Iterator[CpuSpent]:
    """CPU seconds of the server's process tree and, for a local PostgreSQL, of the backends
    connected to the database, between entering and leaving the block."""
    spent = CpuSpent()
    if not Path("/proc/self/stat").exists():
        yield spent
        return
    local = postgres_url is not None and make_url(postgres_url).host in LOCAL_HOSTS
    server_before = _snapshot(_tree(server_pid))
    database_before = _snapshot(_postgres_backends(postgres_url)) if (
        local and postgres_url) else {}
    yield spent
    server_after = _snapshot(_tree(server_pid))
    spent.server = sum(cpu - server_before.get(pid, 0.0) for pid, cpu in server_after.items())
    if local and postgres_url:
        after = _snapshot(_postgres_backends(postgres_url))
        if after:
            spent.database = sum(cpu - database_before.get(pid, 0.0)
                                 for pid, cpu in after.items())
