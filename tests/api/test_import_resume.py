"""An import interrupted by the death of its server is resumed by a resend with the same
Idempotency-Key, and every row is applied exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from oms.adapters.db import tables as t
from oms.domain.events import utcnow
from tests.helpers import Api, location_body, problem

OMS = Path(sys.executable).parent / "oms"
SKUS = [f"S{i:02d}" for i in range(50)]
LISTED = SKUS[:40]  # a full snapshot that leaves out S40..S49
LINES = 10000
KEY = "erp-counts-0001"


class Server:
    """`oms serve` in a process of its own, writing one row per transaction."""

    def __init__(self, database_url: str, folder: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = folder / "server.log"
        env = {**os.environ, "OMS_DATABASE_URL": database_url, "OMS_IMPORT_CHUNK_SIZE": "1",
               "OMS_IMPORT_LEASE_SECONDS": "2"}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(OMS), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        self.process.kill()
        assert self.process.wait(10) == -signal.SIGKILL


@pytest.fixture
def server(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[Server]:
    running = Server(database_url, tmp_path)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.kill()


def _run(engine: Engine) -> t.Row | None:  # type: ignore[name-defined]
    with engine.connect() as conn:
        return conn.execute(select(t.import_runs)
                            .where(t.import_runs.c.idempotency_key == KEY)).first()


def _levels(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.stock_levels.c.sku, t.stock_levels.c.on_hand)
                            .where(t.stock_levels.c.location_id == "berlin"))
        return {row.sku: row.on_hand for row in rows}


def _import_events(engine: Engine) -> dict[str, int]:
    """inventory.changed events of berlin, counted by reason."""
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for (payload,) in conn.execute(select(t.events.c.payload)
                                       .where(t.events.c.type == "inventory.changed")):
            counts[payload["reason"]] = counts.get(payload["reason"], 0) + 1
    return counts


def _send_in_background(url: str, key: str, body: bytes, mode: str) -> Callable[[], None]:
    """POST the file from a thread; the answer never comes (the server is killed)."""
    def send() -> None:
        with contextlib.suppress(httpx.TransportError):
            httpx.post(f"{url}/v1/imports/inventory", content=body, params={"mode": mode},
                       headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv",
                                "Idempotency-Key": KEY}, timeout=120)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return lambda: thread.join(10)


@pytest.mark.parametrize("mode", ["delta", "full"])
def test_a_killed_import_resumes_and_applies_each_row_once(
        mode: str, server: Server, engine: Engine, app_client: TestClient,
        make_key: Callable[..., str]) -> None:
    key = make_key("integrator")
    api = Api(app_client, key)
    assert api.put("/v1/locations/berlin", json=location_body()).status_code in (200, 201)
    products = "sku,name,price,currency\n" + "".join(f"{s},Shirt {s},9.90,EUR\n" for s in SKUS)
    assert api.post("/v1/imports/products", content=products,
                    headers={"Content-Type": "text/csv"}).json()["imported"] == len(SKUS)
    before = "location_id,sku,on_hand\n" + "".join(f"berlin,{s},100\n" for s in SKUS)
    assert api.post("/v1/imports/inventory", content=before, params={"mode": "full"},
                    headers={"Content-Type": "text/csv"}).json()["imported"] == len(SKUS)
    events_before = _import_events(engine)

    # Delta: +1 per line. Full: each line sets the sku's count; the last line of a sku wins.
    skus = LISTED if mode == "full" else SKUS
    lines = [(skus[n % len(skus)], 1 if mode == "delta" else n) for n in range(LINES)]
    body = ("location_id,sku,on_hand\n" + "".join(f"berlin,{s},{q}\n" for s, q in lines)
            ).encode()
    expected = dict.fromkeys(SKUS, 100)
    for sku, quantity in lines:
        expected[sku] = expected[sku] + quantity if mode == "delta" else quantity
    if mode == "full":
        expected.update({s: 0 for s in SKUS if s not in LISTED})

    joined = _send_in_background(server.url, key, body, mode)
    deadline = time.monotonic() + 60
    while (run := _run(engine)) is None or run.steps_applied < 50:
        assert time.monotonic() < deadline, "the import did not start"
        time.sleep(0.005)
    server.kill()
    joined()

    run = _run(engine)
    assert run is not None
    assert run.status == "running", "the import completed before it could be killed"
    # Each chunk committed with its progress: the stock holds exactly the rows the run says.
    applied = lines[: run.applied_through_line - 1]  # line 1 is the header
    assert run.rows_applied == len(applied) >= 50
    partial = dict.fromkeys(SKUS, 100)
    for sku, quantity in applied:
        partial[sku] = partial[sku] + quantity if mode == "delta" else quantity
    assert _levels(engine) == partial
    assert _import_events(engine).get(f"import_{mode}", 0) - events_before.get(
        f"import_{mode}", 0) == len(applied)

    # Until its lease runs out the run may still be going: a resend waits.
    resend_headers = {"Content-Type": "text/csv", "Idempotency-Key": KEY}
    busy = api.post("/v1/imports/inventory", content=body, params={"mode": mode},
                    headers=resend_headers)
    assert problem(busy, 409)["type"].endswith(":idempotency-key-in-use")
    assert int(busy.headers["retry-after"]) >= 1
    assert run.lease_until is not None
    time.sleep(max(0.0, (run.lease_until - utcnow()).total_seconds()) + 0.1)
    shown = api.get(f"/v1/imports/{run.id}").json()
    assert (shown["status"], shown["applied_through_line"], shown["imported"]) == (
        "interrupted", run.applied_through_line, len(applied))

    resumed = api.post("/v1/imports/inventory", content=body, params={"mode": mode},
                       headers=resend_headers)
    assert resumed.status_code == 200, resumed.text
    report = resumed.json()
    assert report["import_id"] == run.id
    assert report["resumed_after_line"] == run.applied_through_line
    assert (report["status"], report["imported"], report["failed"]) == ("completed", LINES, 0)
    assert report["applied_through_line"] == LINES + 1
    assert report["zeroed"] == (10 if mode == "full" else 0)
    assert _levels(engine) == expected
    events = _import_events(engine)
    assert events.get(f"import_{mode}", 0) - events_before.get(f"import_{mode}", 0) == LINES
    if mode == "full":
        assert events.get("import_full_missing", 0) == 10

    # Sent once more, the completed import is replayed, not applied.
    again = api.post("/v1/imports/inventory", content=body, params={"mode": mode},
                     headers=resend_headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["imported"] == LINES
    assert _levels(engine) == expected
    finished = _run(engine)
    assert finished is not None
    assert finished.status == "completed"
    assert finished.runner is None


@pytest.mark.postgres_only
def test_an_import_whose_connection_is_lost_says_what_was_applied_and_resumes(
        engine: Engine, api: Api, stocked: Callable[..., None]) -> None:
    stocked({("berlin", "A"): 0, ("berlin", "B"): 0})
    # A repeated sku starts a new chunk: chunks of two rows, one transaction each.
    body = ("location_id,sku,on_hand\n" + "berlin,A,1\nberlin,B,1\n" * 400).encode()
    headers = {"Content-Type": "text/csv", "Idempotency-Key": "lost-connection"}
    answers: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answers.append(
        api.post("/v1/imports/inventory", content=body, headers=headers)))
    sender.start()
    deadline = time.monotonic() + 60
    with engine.connect() as conn:
        while sender.is_alive():
            steps = conn.execute(select(t.import_runs.c.steps_applied)).scalar()
            if steps is not None and steps >= 20:
                # The server's other connections die, as when PostgreSQL restarts; the
                # import's transaction of the moment is lost with them.
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() "
                                  "AND pid <> pg_backend_pid()"))
                conn.commit()
                time.sleep(0.1)
            assert time.monotonic() < deadline
            time.sleep(0.005)
    sender.join()
    [stopped] = answers
    body_of = problem(stopped, 503)
    assert body_of["type"].endswith(":import-interrupted")
    assert stopped.headers["retry-after"] == "1"
    through, applied = body_of["applied_through_line"], body_of["report"]["imported"]
    assert body_of["report"]["status"] == "interrupted"
    assert applied == through - 1 >= 20
    assert f"stopped after line {through}" in body_of["detail"]
    assert _levels(engine)["A"] + _levels(engine)["B"] == applied

    resumed = api.post("/v1/imports/inventory", content=body, headers=headers)
    assert resumed.status_code == 200, resumed.text
    report = resumed.json()
    assert (report["import_id"], report["resumed_after_line"]) == (body_of["import_id"], through)
    assert (report["imported"], report["status"]) == (800, "completed")
    assert _levels(engine) == {"A": 400, "B": 400}
