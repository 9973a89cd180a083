"""Webhook requests over HTTP, refusing private targets unless they are allowed."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx

from oms.adapters.eventstream import Answer
from oms.domain.webhooks import is_public

#: What the delivery log keeps of an answer.
BODY_KEPT = 1024


class HttpTransport:
    def __init__(self, timeout_seconds: float = 10.0, *, allow_private: bool = False,
                 connections: int = 16) -> None:
        self.allow_private = allow_private
        # Redirects are not followed: a subscriber moves by changing its URL.
        self.client = httpx.Client(
            timeout=timeout_seconds, follow_redirects=False,
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections))

    def resolve(self, host: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):  # UnicodeError: no IDNA name (label > 63)
            return []
        return sorted({str(info[4][0]) for info in infos})

    def send(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        started = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - started) * 1000)

        if not self.allow_private:
            host = urlsplit(url).hostname or ""
            addresses = self.resolve(host)
            if not addresses:
                return Answer(None, took(), error=f"cannot resolve {host}")
            private = [a for a in addresses if not is_public(a)]
            if private:
                return Answer(None, took(), error=f"{host} resolves to a private address "
                                                  f"({private[0]}); not allowed")
        try:
            with self.client.stream("POST", url, content=body, headers=headers) as answer:
                kept = b""
                for chunk in answer.iter_bytes():
                    kept += chunk
                    if len(kept) >= BODY_KEPT:
                        break
                return Answer(answer.status_code, took(),
                              kept[:BODY_KEPT].decode("utf-8", errors="replace"),
                              answer.headers.get("retry-after"))
        except httpx.TimeoutException:
            return Answer(None, took(), error="timed out")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError
            return Answer(None, took(), error=f"{type(exc).__name__}: {exc}"[:500])

    def close(self) -> None:
        self.client.close()
