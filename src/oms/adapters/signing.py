"""Signing outgoing requests as the Standard Webhooks spec says, for webhooks and for the
callbacks that tell DCs and 3PLs of their requests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from standardwebhooks.webhooks import Webhook


def signed_headers(message_id: str, secrets: Sequence[str], body: str, when: dt.datetime
                   ) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature`: one `v1,<sig>` per secret,
    space-separated, so that during a rotation either secret verifies."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(message_id, when, body)
                                      for s in secrets),
    }
