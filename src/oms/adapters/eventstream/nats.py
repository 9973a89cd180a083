"""Publishing events to a NATS JetStream stream with the official client (nats-py)."""

from __future__ import annotations

from collections.abc import Sequence

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from oms.adapters.db.event_repositories import StoredEvent


def subject(event_type: str, prefix: str = "oms") -> str:
    return f"{prefix}.{event_type}"


class NatsPublisher:
    """Publishes to stream `stream` on subjects `<prefix>.<event type>` (`oms.` by default),
    each message with `Nats-Msg-Id` = event id so that JetStream drops one it has seen."""

    def __init__(self, url: str, stream: str, duplicate_window_seconds: int,
                 subject_prefix: str = "oms") -> None:
        self.url = url
        self.stream = stream
        self.duplicate_window = duplicate_window_seconds
        self.subject_prefix = subject_prefix
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def _connect(self) -> JetStreamContext:
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=3)
        js = self._nc.jetstream()
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(StreamConfig(
                name=self.stream, subjects=[f"{self.subject_prefix}.>"],
                duplicate_window=float(self.duplicate_window)))
        self._js = js
        return js

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """One after another, each acknowledged before the next: the stream keeps event
        order. Raises if the server does not acknowledge."""
        js = await self._connect()
        for e in events:
            await js.publish(subject(e.type, self.subject_prefix), e.document().encode(),
                             stream=self.stream,
                             headers={"Nats-Msg-Id": e.id})

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None
            self._js = None
