"""What a load costs: CPU time read from /proc, of the server's processes (uvicorn and its
workers) and of the PostgreSQL backends serving the benchmark's database when that server
runs on this machine; and the WAL PostgreSQL wrote meanwhile. Divided by the operations of
the load, they say what one order costs each side, which is what capacity past one machine
is worked out from (README, "Past one machine"). Without /proc, or with a PostgreSQL
elsewhere, the CPU figures are left out; the WAL is the whole server's, so anything else
writing to it at the same time counts too.
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
class Spent:
    #: CPU seconds.
    server: float | None = None
    database: float | None = None
    wal_bytes: int | None = None
    #: PostgreSQL sessions opened (connections made) on the database.
    sessions: int | None = None


def _server_counters(url: str) -> tuple[str, int]:
    """The WAL position, and the sessions ever opened on the database."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        # Statistics are read once per transaction unless cleared: clear them.
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT pg_current_wal_lsn()::text, sessions FROM pg_stat_database "
            "WHERE datname = current_database()").fetchone()
        assert row is not None
        return row[0], int(row[1])


def _wal_bytes(url: str, since: str) -> int:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)",
                           (since,)).fetchone()
        assert row is not None
        return int(row[0])


@contextlib.contextmanager
def measuring(server_pid: int, postgres_url: str | None) -> Iterator[Spent]:
    """What the server's process tree and, for PostgreSQL, the backends connected to the
    database spent between entering and leaving the block."""
    spent = Spent()
    proc = Path("/proc/self/stat").exists()
    local = postgres_url is not None and make_url(postgres_url).host in LOCAL_HOSTS
    server_before = _snapshot(_tree(server_pid)) if proc else {}
    database_before = _snapshot(_postgres_backends(postgres_url)) if (
        proc and local and postgres_url) else {}
    counters = _server_counters(postgres_url) if postgres_url else None
    yield spent
    if postgres_url and counters:
        spent.wal_bytes = _wal_bytes(postgres_url, counters[0])
        # The measuring connections themselves are sessions too: one before, two after.
        spent.sessions = _server_counters(postgres_url)[1] - counters[1] - 2
    if not proc:
        return
    server_after = _snapshot(_tree(server_pid))
    spent.server = sum(cpu - server_before.get(pid, 0.0) for pid, cpu in server_after.items())
    if local and postgres_url:
        after = _snapshot(_postgres_backends(postgres_url))
        if after:
            spent.database = sum(cpu - database_before.get(pid, 0.0)
                                 for pid, cpu in after.items())
