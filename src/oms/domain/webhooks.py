"""Webhook subscriptions: which events a subscriber gets, where it may point, and what each
delivery attempt's answer means for the next one (Standard Webhooks)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from urllib.parse import urlsplit

from oms.domain.events import EVENT_PREFIXES, EVENT_TYPES
from oms.domain.retries import delay_after

#: A delivery still failing this long after its event is given up; a subscription failing
#: this long is disabled.
GIVE_UP_AFTER = dt.timedelta(days=3)
#: After a rotation the old secret signs alongside the new one this long.
SECRET_OVERLAP = dt.timedelta(hours=24)
#: A Retry-After further away than this is not waited for longer.
MAX_RETRY_AFTER = dt.timedelta(hours=10)
#: What a subscription may name: an event type (`order.created`), all events of one kind of
#: entity (`order.*`), or every event (`*`).
TYPE_PATTERNS = ("*", *sorted(f"{p}.*" for p in EVENT_PREFIXES), *sorted(EVENT_TYPES))
#: A label of a host name as URLs carry them (underscores occur in real names).
HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$")


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    #: Stopped by the OMS: the endpoint answered 410 or kept failing for three days.
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Given up after three days of failures (or the endpoint is gone); replay sends it again.
    FAILED = "failed"


def check_event_types(patterns: Sequence[str]) -> list[str]:
    """The patterns, each valid and none twice."""
    bad = [p for p in patterns if p not in TYPE_PATTERNS]
    if bad:
        raise ValueError(
            f"not an event type or prefix: {', '.join(map(repr, bad))} (an event type such as "
            "'order.created', one of "
            f"{', '.join(repr(f'{p}.*') for p in sorted(EVENT_PREFIXES))}, or '*')")
    if len(set(patterns)) != len(patterns):
        raise ValueError("an event type is listed twice")
    return list(patterns)


def matches(event_type: str, patterns: Iterable[str]) -> bool:
    for p in patterns:
        if p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1])):
            return True
    return False


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http or https URL with a host")
    if not _is_host(parts.hostname):
        raise ValueError("has a host that is neither a DNS name nor an IP address")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; the signature authenticates the OMS")
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number from 0 to 65535)
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    if any(c.isascii() and not c.isprintable() for c in url):
        raise ValueError("must not contain control characters")
    return url


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii")  # labels of 1 to 63 characters
    except UnicodeError:
        return False
    return len(name) <= 253 and all(HOST_LABEL.match(label)
                                    for label in name.removesuffix(".").split("."))


@dataclass(frozen=True)
class Outcome:
    """What an attempt's answer decides."""

    delivered: bool
    #: When to try again; None: no more attempts.
    retry_at: dt.datetime | None
    #: The endpoint said it is gone (410): the subscription is disabled.
    gone: bool = False


def judge(status_code: int | None, retry_after: str | None, attempts: int,
          first_attempt_due: dt.datetime, now: dt.datetime) -> Outcome:
    """Only a 2xx delivers. A timeout or any other answer is retried on the schedule, or
    after Retry-After on 429 and 503, until three days have passed since the event was due."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome(True, None)
    if status_code == 410:
        return Outcome(False, None, gone=True)
    wait = delay_after(attempts)
    if status_code in (429, 503) and retry_after is not None:
        asked = _retry_after(retry_after, now)
        if asked is not None:
            wait = min(max(asked, dt.timedelta(0)), MAX_RETRY_AFTER)
    retry_at = now + wait
    if retry_at - first_attempt_due > GIVE_UP_AFTER:
        return Outcome(False, None)
    return Outcome(False, retry_at)


def _retry_after(value: str, now: dt.datetime) -> dt.timedelta | None:
    value = value.strip()
    if value.isdigit():
        return dt.timedelta(seconds=int(value))
    try:  # or an HTTP date
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when - now
