"""Statements and round trips as PostgreSQL sees them: a TCP proxy that reads the client's half
of the wire protocol.

Whatever the application does (SQLAlchemy, raw psycopg, pipelines, prepared statements, pool
pings, BEGIN/COMMIT/ROLLBACK), it reaches the server as protocol messages, so counting them
here needs no hook in the application and misses nothing:

- a **statement** is an Execute message (extended protocol) or a simple Query message;
- a **round trip** is a Sync or a simple Query: the points where the client stops and waits for
  the server's answer (a pipeline sends several statements before one Sync).

Connect through the proxy with `sslmode=disable`: an encrypted stream cannot be read.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from common import PerOperation

#: The untyped requests a client may send before its startup message.
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


@dataclass
class WireCounts:
    statements: int = 0
    round_trips: int = 0
    #: Statements by their first word (SELECT, INSERT, BEGIN, ...).
    verbs: Counter[str] = field(default_factory=Counter)

    def minus(self, earlier: WireCounts) -> WireCounts:
        return WireCounts(self.statements - earlier.statements,
                          self.round_trips - earlier.round_trips, self.verbs - earlier.verbs)

    def per(self, operations: int) -> PerOperation:
        return PerOperation(operations, self.statements / operations,
                            self.round_trips / operations,
                            {verb: n / operations for verb, n in self.verbs.most_common()})


def _verb(sql: str) -> str:
    words = sql.split(None, 1)
    if not words or words[0] == ";":
        return "(empty)"  # what SQLAlchemy's pool sends to ping a connection
    return words[0].upper().rstrip(";")


class _ClientStream:
    """Parses the messages one client connection sends, across TCP segment boundaries."""

    def __init__(self, counts: WireCounts, lock: threading.Lock) -> None:
        self.counts = counts
        self.lock = lock
        self.buffer = bytearray()
        self.started = False
        #: Prepared statement name -> its verb; "" is the unnamed statement.
        self.prepared: dict[str, str] = {}
        self.bound = "(unknown)"

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return
                length, code = struct.unpack("!II", self.buffer[:8])
                if len(self.buffer) < length:
                    return
                del self.buffer[:length]
                self.started = code not in (SSL_REQUEST, GSSENC_REQUEST)
                continue
            if len(self.buffer) < 5:
                return
            kind = bytes(self.buffer[0:1])
            (length,) = struct.unpack("!I", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            body = bytes(self.buffer[5:1 + length])
            del self.buffer[:1 + length]
            self._message(kind, body)

    def _message(self, kind: bytes, body: bytes) -> None:
        if kind == b"P":  # Parse: name, query, parameter types
            name, rest = body.split(b"\0", 1)
            query = rest.split(b"\0", 1)[0]
            self.prepared[name.decode()] = _verb(query.decode(errors="replace"))
        elif kind == b"B":  # Bind: portal, statement, ...
            statement = body.split(b"\0", 2)[1]
            self.bound = self.prepared.get(statement.decode(), "(unknown)")
        elif kind == b"E":  # Execute
            with self.lock:
                self.counts.statements += 1
                self.counts.verbs[self.bound] += 1
        elif kind == b"S":  # Sync: the client waits for the answers
            with self.lock:
                self.counts.round_trips += 1
        elif kind == b"Q":  # simple Query: sent, then waited for
            with self.lock:
                self.counts.statements += 1
                self.counts.round_trips += 1
                self.counts.verbs[_verb(body.rstrip(b"\0").decode(errors="replace"))] += 1


class WireCounter:
    """Listens on a free local port and forwards every connection to `host:port`."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._counts = WireCounts()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def snapshot(self) -> WireCounts:
        with self._lock:
            return WireCounts(self._counts.statements, self._counts.round_trips,
                              Counter(self._counts.verbs))

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            stream = _ClientStream(self._counts, self._lock)
            threading.Thread(target=self._pump, args=(client, server, stream.feed),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None),
                             daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket,
              observe: Callable[[bytes], None] | None) -> None:
        try:
            while data := source.recv(65536):
                if observe is not None:
                    observe(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def counting(host: str, port: int) -> Iterator[WireCounter]:
    counter = WireCounter(host, port)
    try:
        yield counter
    finally:
        counter.close()
