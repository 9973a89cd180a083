"""Signed HTTP callbacks to a DC's or 3PL's endpoint."""

from __future__ import annotations

import json

import httpx

from oms.adapters.providers import Notification, NotifyFailed
from oms.adapters.signing import signed_headers
from oms.domain.events import utcnow


class HttpCallbackNotifier:
    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self.timeout = timeout_seconds

    def notify(self, notification: Notification) -> None:
        body = json.dumps(notification.body, separators=(",", ":"))
        headers = signed_headers(notification.message_id, [notification.secret], body,
                                 utcnow())
        try:
            answer = httpx.post(notification.url, content=body, headers=headers,
                                timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise NotifyFailed(f"{type(exc).__name__}: {exc}") from exc
        if not answer.is_success:
            raise NotifyFailed(f"HTTP {answer.status_code}: {answer.text[:200]}")
