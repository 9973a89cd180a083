"""Every answer carries a request id (`X-Request-Id`, the caller's when it is a sane one),
every log line written while serving it carries the same id, and the access log never
writes query strings (order searches put customers' emails there)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from oms.logs import RequestIdFilter
from tests.helpers import Api


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(RequestIdFilter())
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_an_answer_carries_the_callers_request_id_or_a_new_one(api: Api) -> None:
    given = api.get("/v1/locations", headers={"X-Request-Id": "shop-7f3a:42"})
    assert given.headers["X-Request-Id"] == "shop-7f3a:42"
    made = [api.get("/v1/locations").headers["X-Request-Id"] for _ in range(2)]
    assert made[0] != made[1]
    for unfit in ("two words", "x" * 200, "a\tb", ""):
        answer = api.get("/v1/locations", headers={"X-Request-Id": unfit})
        assert answer.headers["X-Request-Id"] not in (unfit, ""), unfit
    # A refusal and a replayed answer carry one as well.
    refused = api.client.get("/v1/locations", headers={"X-Request-Id": "no-key"})
    assert (refused.status_code, refused.headers["X-Request-Id"]) == (401, "no-key")
    body = {"adjustments": [{"location_id": "nowhere", "sku": "A", "delta": 1,
                             "reason": "count"}]}
    for n in (1, 2):
        again = api.post("/v1/inventory/adjustments", json=body,
                         headers={"Idempotency-Key": "k-1", "X-Request-Id": f"try-{n}"})
        assert again.headers["X-Request-Id"] == f"try-{n}"


def test_every_log_line_of_a_request_carries_its_id(api: Api, app_client: TestClient,
                                                    records: Records) -> None:
    def fails() -> None:
        raise RuntimeError("a bug")

    app_client.app.add_api_route("/test-only/fails", fails)  # type: ignore[attr-defined]
    answer = api.get("/test-only/fails", headers={"X-Request-Id": "req-500"})
    assert answer.status_code == 500
    assert answer.headers["X-Request-Id"] == "req-500"
    lines = [r for r in records.seen if getattr(r, "request_id", None) == "req-500"]
    assert {r.name for r in lines} == {"oms.api.problems", "oms.access"}
    assert [r.getMessage() for r in lines if r.name == "oms.access"] == [
        "GET /test-only/fails 500"]
    assert [r for r in records.seen if r.name == "oms.api.problems"] == [
        r for r in lines if r.name == "oms.api.problems"]


def test_the_access_log_leaves_query_strings_out(api: Api, records: Records) -> None:
    assert api.get("/v1/orders", params={"q": "ada@example.com"}).status_code == 200
    [line] = [r for r in records.seen if r.name == "oms.access"]
    assert line.getMessage() == "GET /v1/orders 200"
    assert (line.path, line.status) == ("/v1/orders", 200)  # type: ignore[attr-defined]
    assert not [r for r in records.seen if "ada@example" in r.getMessage()
                or "ada@example" in json.dumps(r.__dict__, default=str)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.usefixtures("cli_env")
def test_oms_serve_writes_json_lines_without_query_strings(api: Api) -> None:
    port = _free_port()
    oms = Path(sys.executable).parent / "oms"
    server = subprocess.Popen([str(oms), "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OMS_LOG_FORMAT": "json"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "oms serve did not start"
                time.sleep(0.1)
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/orders",
                           params={"q": "ada@example.com"},
                           headers={**api.headers, "X-Request-Id": "search-1"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Request-Id"] == "search-1"
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert {"time", "level", "logger", "message"} <= lines[0].keys()
    [search] = [x for x in lines if x.get("request_id") == "search-1"]
    assert (search["logger"], search["path"], search["status"]) == (
        "oms.access", "/v1/orders", 200)
    assert "ada@example" not in stderr
