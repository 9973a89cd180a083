"""Telling a DC or 3PL about its fulfilment requests.

The built-in notifier POSTs the request, signed as Standard Webhooks sign (so a provider can
verify it with any of that spec's libraries), to the location's callback URL. Another
transport (SFTP files, an EDI gateway) is one module more: a class with `notify`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Notification:
    #: Stable across retries: the provider drops what it has seen.
    message_id: str
    url: str
    secret: str
    body: dict[str, Any]


class NotifyFailed(Exception):
    """The provider did not take the notification; it is tried again later."""


class Notifier(Protocol):
    def notify(self, notification: Notification) -> None: ...
