"""Opaque, time-sortable identifiers (UUIDv7)."""

from __future__ import annotations

import re

import uuid6

#: Skus and location ids are chosen by the retailer; they travel in URLs, so keep them simple.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_CODE_RE = re.compile(CODE_PATTERN)


def new_id() -> str:
    return str(uuid6.uuid7())


def is_valid_code(value: str) -> bool:
    return bool(_CODE_RE.match(value))
