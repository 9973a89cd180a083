"""Pushing the event stream out: webhooks over HTTP, and NATS JetStream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Answer:
    """What came of one webhook request."""

    status_code: int | None
    duration_ms: int
    retry_after: str | None = None
    #: Why there is no status code (timeout, refused connection, forbidden target).
    error: str | None = None


class WebhookTransport(Protocol):
    def resolve(self, host: str) -> list[str]: ...

    def send(self, url: str, headers: dict[str, str], body: bytes) -> Answer: ...
