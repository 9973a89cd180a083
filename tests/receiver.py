"""A real HTTP endpoint for tests: a ThreadingHTTPServer on 127.0.0.1 that records every
request it gets and answers as its `answer` callable says.

    with Receiver() as receiver:
        ...  # send to receiver.url
        [request] = receiver.requests()
        request.event, request.headers["webhook-id"], request.status

It speaks HTTP/1.1 with keep-alive (as a real subscriber would) and answers without Nagle's
delay. A request is recorded before its answer can reach the client, so once a client has its
answer, `requests()` shows the request. `close()` (or leaving the `with`) stops the server
within milliseconds and drops the connections still open.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: What the receiver answers: status, headers, body.
Answer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Request:
    """A request as it arrived. Header names are lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def event(self) -> dict[str, Any]:
        """The webhook's event: the JSON body."""
        return self.json

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass(frozen=True)
class Received(Request):
    """A request with the status it was answered with, and when (`time.monotonic()`) it
    started (before its body was read) and ended (once its answer was sent)."""

    status: int
    started: float
    ended: float


Answerer = Callable[[Request], Answer]


def ok(request: Request) -> Answer:
    return 200, {}, b"ok"


def in_turn(*first: Answer, then: Answer = (200, {}, b"ok")) -> Answerer:
    """Answers the first requests with `first`, one each, in turn; every later one with
    `then`."""
    pending = list(first)
    lock = threading.Lock()

    def answer(request: Request) -> Answer:
        with lock:
            return pending.pop(0) if pending else then

    return answer


class Receiver:
    """Records each request in `received` (read it with `requests()`) and answers as `answer`
    says (by default 200 `ok`), `delay` seconds later. Both may be changed at any time. With
    `tls`, it speaks HTTPS with that context."""

    def __init__(self, answer: Answerer = ok, *, delay: float = 0.0,
                 path: str = "/hook", tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.delay = delay
        self.received: list[Received] = []
        #: Guards `received`, and is held while an answer is sent (see `_answer`).
        self.lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._closed = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.base_url + path
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive
            disable_nagle_algorithm = True  # else each answer may wait ~40 ms for an ACK

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver._connections.add(self.connection)

            def finish(self) -> None:
                with receiver.lock:
                    receiver._connections.discard(self.connection)
                super().finish()

            def _handle(self) -> None:
                started = time.monotonic()
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = Request(self.command, self.path,
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                status, headers, content = receiver.answer(request)
                if receiver.delay:
                    time.sleep(receiver.delay)
                receiver._answer(self, request, started, status, headers, content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler, request: Request, started: float,
                status: int, headers: dict[str, str], content: bytes) -> None:
        # The lock is held while the answer is written: a client that has its answer finds
        # the request in `requests()`, and `ended` is when the answer was sent.
        with self.lock:
            try:
                handler.send_response(status)
                for name, value in headers.items():
                    handler.send_header(name, value)
                handler.send_header("Content-Length", str(len(content)))
                handler.end_headers()
                handler.wfile.write(content)
                handler.wfile.flush()
            except OSError:
                handler.close_connection = True  # the client went away; it was answered
            self.received.append(Received(request.method, request.path, request.headers,
                                          request.body, status, started, time.monotonic()))

    # -- what arrived ---------------------------------------------------------------------

    def requests(self, method: str | None = None) -> list[Received]:
        """Every request so far (only those with `method`, if given), in the order they were
        answered."""
        with self.lock:
            return [r for r in self.received if method is None or r.method == method]

    def delivered(self, event_id: str | None = None) -> list[Received]:
        """The requests answered with a 2xx (only those carrying the event `event_id`)."""
        return [r for r in self.requests() if 200 <= r.status < 300
                and (event_id is None or r.event["id"] == event_id)]

    def events(self, entity_id: str | None = None) -> list[dict[str, Any]]:
        """The events sent (only those of `entity_id`, if given), failed attempts included."""
        return [r.event for r in self.requests()
                if entity_id is None or r.event["entity_id"] == entity_id]

    def count(self, event_id: str) -> int:
        """How often the event `event_id` was sent."""
        return sum(1 for r in self.requests() if r.event["id"] == event_id)

    # -- the end ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            connections = list(self._connections)
        for connection in connections:  # idle keep-alive connections end their threads
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.thread.join(5)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
