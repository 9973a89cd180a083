"""Webhook requests over HTTP, sent through the egress policy (oms.adapters.egress)."""

from __future__ import annotations

import time

from oms.adapters import egress
from oms.adapters.eventstream import Answer


class HttpTransport:
    def __init__(self, timeout_seconds: float = 10.0, *, allow_private: bool = False,
                 connections: int = 16) -> None:
        self.policy = egress.EgressPolicy(allow_private=allow_private)
        # Redirects are not followed: a subscriber moves by changing its URL.
        self.client = egress.client(self.policy, timeout_seconds, connections=connections)

    def resolve(self, host: str) -> list[str]:
        return egress.lookup(host)

    def send(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        started = time.perf_counter()
        try:
            reply = egress.post(self.client, url, headers, body)
        except egress.SendFailed as exc:
            return Answer(None, self._since(started), error=str(exc))
        return Answer(reply.status_code, self._since(started), reply.retry_after)

    @staticmethod
    def _since(started: float) -> int:
        return int((time.perf_counter() - started) * 1000)

    def close(self) -> None:
        self.client.close()
