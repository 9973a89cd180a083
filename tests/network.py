"""The outside world of outgoing requests, for tests of where they may go: DNS answers as a
test says, and the internet beyond this machine, where every host is down.

    dns = Dns(monkeypatch)
    dns.resolve("dc.example", "93.184.215.14", "127.0.0.1")  # first lookup, then every later
    ...
    dns.lookups   # the names looked up, in turn
    dns.dialled   # (address, port) of each connection tried to a host on the internet

Names a test did not give resolve as the system resolves them; connections to this machine
go through. A connection to any other address a test gave is refused, as by a host that is
down, and recorded: nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

import pytest


class Dns:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._answers: dict[str, list[str]] = {}
        self._internet: set[str] = set()
        self._lock = threading.Lock()
        self.lookups: list[str] = []
        self.dialled: list[tuple[str, int]] = []
        self._getaddrinfo = socket.getaddrinfo
        self._create_connection = socket.create_connection
        monkeypatch.setattr(socket, "getaddrinfo", self._lookup)
        monkeypatch.setattr(socket, "create_connection", self._connect)

    def resolve(self, name: str, *answers: str) -> None:
        """Lookups of `name` answer `answers` in turn, one address each; every lookup after
        them the last one."""
        with self._lock:
            self._answers[name] = list(answers)
            self._internet.update(a for a in answers if not ipaddress.ip_address(a).is_loopback)

    def _lookup(self, host: str | bytes | None, port: str | int | bytes | None,
                *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        with self._lock:
            pending = self._answers.get(name or "")
            if pending is None:
                address = None
            else:
                self.lookups.append(name or "")
                address = pending.pop(0) if len(pending) > 1 else pending[0]
        if address is None:
            return self._getaddrinfo(host, port, *args, **kwargs)
        number = int(port) if port else 0
        if ipaddress.ip_address(address).version == 6:
            return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                     (address, number, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, number))]

    def _connect(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        with self._lock:
            remote = address[0] in self._internet
            if remote:
                self.dialled.append((address[0], address[1]))
        if remote:
            raise ConnectionRefusedError(111, "Connection refused")
        return self._create_connection(address, *args, **kwargs)
