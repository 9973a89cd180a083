"""Signed HTTP callbacks to a DC's or 3PL's endpoint."""

from __future__ import annotations

import json

import httpx
from standardwebhooks.webhooks import Webhook

from oms.adapters.providers import Notification, NotifyFailed
from oms.domain.events import utcnow


class HttpCallbackNotifier:
    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self.timeout = timeout_seconds

    def notify(self, notification: Notification) -> None:
        body = json.dumps(notification.body, separators=(",", ":"))
        now = utcnow()
        headers = {
            "content-type": "application/json",
            "webhook-id": notification.message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(notification.secret).sign(
                notification.message_id, now, body),
        }
        try:
            answer = httpx.post(notification.url, content=body, headers=headers,
                                timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise NotifyFailed(f"{type(exc).__name__}: {exc}") from exc
        if not answer.is_success:
            raise NotifyFailed(f"HTTP {answer.status_code}: {answer.text[:200]}")
