"""Signed HTTP callbacks to a DC's or 3PL's endpoint, sent through the egress policy
(oms.adapters.egress)."""

from __future__ import annotations

import json

from oms.adapters import egress
from oms.adapters.providers import Notification, NotifyFailed
from oms.adapters.signing import signed_headers
from oms.domain.events import utcnow


class HttpCallbackNotifier:
    def __init__(self, timeout_seconds: float = 10.0, *, allow_private: bool = False) -> None:
        self.client = egress.client(egress.EgressPolicy(allow_private=allow_private),
                                    timeout_seconds)

    def notify(self, notification: Notification) -> None:
        body = json.dumps(notification.body, separators=(",", ":"))
        headers = signed_headers(notification.message_id, [notification.secret], body,
                                 utcnow())
        try:
            reply = egress.post(self.client, notification.url, headers, body.encode())
        except egress.SendFailed as exc:
            raise NotifyFailed(str(exc)) from exc
        if not reply.succeeded:
            # The provider's answer is shown to our API's callers: its status, not its body.
            raise NotifyFailed(egress.status_line(reply.status_code))
