"""Opaque, time-sortable identifiers (UUIDv7)."""

from __future__ import annotations

import base64
import re
import secrets

import uuid6

#: Skus and location ids are chosen by the retailer; they travel in URLs, so keep them simple.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_CODE_RE = re.compile(CODE_PATTERN)


def new_id() -> str:
    return str(uuid6.uuid7())


def is_valid_code(value: str) -> bool:
    return bool(_CODE_RE.match(value))


def new_webhook_secret() -> str:
    """A signing secret as Standard Webhooks writes them: `whsec_` and base64 of 32 random
    bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
