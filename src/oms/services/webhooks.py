"""Webhook subscriptions and their delivery: events are turned into deliveries per
subscription (fan-out), and deliveries are sent, signed per Standard Webhooks, by any number
of workers that share them through the database."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.engine import RowMapping

from oms.adapters.db.event_repositories import StoredEvent, event_id, parse_event_id
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.adapters.egress import EgressPolicy
from oms.adapters.eventstream import Answer, WebhookTransport
from oms.adapters.signing import signed_headers
from oms.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from oms.domain.events import Event, utcnow
from oms.domain.ids import new_id, new_webhook_secret
from oms.domain.webhooks import (
    GIVE_UP_AFTER,
    SECRET_OVERLAP,
    DeliveryStatus,
    SubscriptionStatus,
    check_event_types,
    check_url,
    judge,
    matches,
)

log = logging.getLogger("oms.webhooks")

#: A worker holds the deliveries it took for as long as sending them all may take, plus this;
#: if it dies, others take them after.
CLAIM_MARGIN = dt.timedelta(seconds=30)
#: Events turned into deliveries per subscription and pass.
FAN_OUT_BATCH = 1000
#: Events a replay may name or reach at once.
MAX_REPLAY = 10_000


@dataclass(frozen=True)
class CheckedTarget:
    """A webhook URL that passed `check_target`: what `create` and `change` take, so that
    no subscription gets a URL that was not checked."""

    url: str


def check_target(url: str, transport: WebhookTransport, allow_private: bool,
                 field: str = "url") -> CheckedTarget:
    """Check the URL and, unless private targets are allowed, the addresses its host
    resolves to. Call it before the unit of work: a name lookup may take seconds, and no
    transaction should wait on it."""
    try:
        check_url(url)
    except ValueError as exc:
        raise ValidationFailed(f"{field}: {exc}", [FieldError(field, str(exc))]) from exc
    if not allow_private:
        host = urlsplit(url).hostname or ""
        addresses = transport.resolve(host)
        if not addresses:
            raise ValidationFailed(f"{field}: cannot resolve {host}",
                                   [FieldError(field, f"cannot resolve {host}")])
        refused = EgressPolicy().refusal(host, addresses)
        if refused is not None:
            raise ValidationFailed(f"{field}: {refused}", [FieldError(field, refused)])
    return CheckedTarget(url)


def _check_types(event_types: Sequence[str]) -> list[str]:
    try:
        return check_event_types(event_types)
    except ValueError as exc:
        raise ValidationFailed(f"event_types: {exc}",
                               [FieldError("event_types", str(exc))]) from exc


def subscription_out(s: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": s["id"], "url": s["url"], "event_types": s["event_types"],
        "description": s["description"], "status": s["status"],
        "disabled_reason": s["disabled_reason"],
        "failing_since": s["failing_since"].isoformat() if s["failing_since"] else None,
        "version": s["version"], "created_at": s["created_at"].isoformat(),
        "updated_at": s["updated_at"].isoformat(),
    }


def create(uow: UnitOfWork, target: CheckedTarget, event_types: Sequence[str],
           description: str | None) -> dict[str, Any]:
    """The new subscription with its secret, which is shown only here. It gets the events
    that happen from now on."""
    url = target.url
    now = utcnow()
    txid, position = uow.events.latest()
    row: dict[str, Any] = {
        "id": new_id(), "url": url, "event_types": _check_types(event_types),
        "description": description, "secret": new_webhook_secret(), "previous_secret": None,
        "previous_secret_expires_at": None, "status": SubscriptionStatus.ACTIVE.value,
        "disabled_reason": None, "failing_since": None, "fanout_txid": txid,
        "fanout_position": position, "version": 1, "created_at": now, "updated_at": now,
    }
    uow.webhooks.add(row)
    uow.record(Event("webhook_subscription.created", row["id"], 1, subscription_out(row), now))
    uow.commit()
    return {**subscription_out(row), "secret": row["secret"]}


def _get(uow: UnitOfWork, subscription_id: str, *, for_update: bool = False) -> RowMapping:
    found = uow.webhooks.get(subscription_id, for_update=for_update)
    if found is None:
        raise NotFound(f"no webhook subscription {subscription_id!r}")
    return found


def get(uow: UnitOfWork, subscription_id: str) -> dict[str, Any]:
    return subscription_out(_get(uow, subscription_id))


def change(uow: UnitOfWork, subscription_id: str, changes: dict[str, Any],
           target: CheckedTarget | None = None) -> dict[str, Any]:
    """Change url (`target`), event types, description, or pause and resume. Resuming a
    disabled subscription enables it again; its failed deliveries stay failed until
    replayed."""
    current = _get(uow, subscription_id, for_update=True)
    values: dict[str, Any] = {}
    if target is not None:
        values["url"] = target.url
    if "event_types" in changes:
        values["event_types"] = _check_types(changes["event_types"])
    if "description" in changes:
        values["description"] = changes["description"]
    if "paused" in changes:
        if changes["paused"]:
            values["status"] = SubscriptionStatus.PAUSED.value
        elif current["status"] != SubscriptionStatus.ACTIVE:
            values.update(status=SubscriptionStatus.ACTIVE.value, disabled_reason=None,
                          failing_since=None)
    now = utcnow()
    if values:
        uow.webhooks.update(current["id"], now, **values)
    body = subscription_out(_get(uow, current["id"]))
    if values:
        uow.record(Event("webhook_subscription.updated", current["id"], body["version"],
                         {**body, "changed": sorted(values)}, now))
    uow.commit()
    return body


def delete(uow: UnitOfWork, subscription_id: str) -> None:
    current = _get(uow, subscription_id, for_update=True)
    uow.webhooks.remove(current["id"])
    uow.record(Event("webhook_subscription.deleted", current["id"], current["version"] + 1,
                     {"id": current["id"], "url": current["url"]}, utcnow()))
    uow.commit()


def rotate_secret(uow: UnitOfWork, subscription_id: str) -> dict[str, Any]:
    """A new secret; the old one keeps signing alongside it for 24 hours."""
    current = _get(uow, subscription_id, for_update=True)
    now = utcnow()
    secret = new_webhook_secret()
    expires = now + SECRET_OVERLAP
    uow.webhooks.update(current["id"], now, secret=secret, previous_secret=current["secret"],
                        previous_secret_expires_at=expires)
    body = subscription_out(_get(uow, current["id"]))
    # Which secret is not said: subscribers learn it from the answer to this request only.
    uow.record(Event("webhook_subscription.secret_rotated", current["id"], body["version"],
                     {**body, "previous_secret_expires_at": expires.isoformat()}, now))
    uow.commit()
    return {**body, "secret": secret, "previous_secret_expires_at": expires.isoformat()}


def deliveries_out(uow: UnitOfWork, rows: Sequence[RowMapping]) -> list[dict[str, Any]]:
    attempts: dict[str, list[dict[str, Any]]] = {}
    for a in uow.webhooks.attempts([r["id"] for r in rows]):
        attempts.setdefault(a["delivery_id"], []).append({
            "attempted_at": a["attempted_at"].isoformat(), "status_code": a["status_code"],
            "duration_ms": a["duration_ms"], "error": a["error"]})
    return [{
        "id": r["id"], "event_id": event_id(r["event_txid"], r["event_position"]),
        "event_type": r["event_type"], "entity_id": r["entity_id"], "status": r["status"],
        "attempt_count": r["attempts"], "attempts": attempts.get(r["id"], []),
        "next_attempt_at": r["next_attempt_at"].isoformat()
        if r["next_attempt_at"] and r["status"] == DeliveryStatus.PENDING else None,
        "delivered_at": r["delivered_at"].isoformat() if r["delivered_at"] else None,
    } for r in rows]


def replay(uow: UnitOfWork, subscription_id: str, after: str | None,
           event_ids: Sequence[str] | None) -> dict[str, Any]:
    """Deliver again: every subscribed event after `after` that was fanned out, or the named
    events. Returns how many were queued."""
    sub = _get(uow, subscription_id, for_update=True)
    now = utcnow()
    if event_ids:
        keys = []
        errors = []
        for n, value in enumerate(event_ids):
            try:
                keys.append(parse_event_id(value))
            except ValueError:
                errors.append(FieldError(f"event_ids.{n}", "not an event id"))
        found = uow.events.by_keys(keys) if not errors else {}
        errors += [FieldError(f"event_ids.{n}", f"no event {event_ids[n]}")
                   for n, key in enumerate(keys) if key not in found]
        if errors:
            raise ValidationFailed("; ".join(e.message for e in errors), errors)
        # The subscription's types as they are now refuse these (changing them lets them
        # through): a conflict, not a fault of the request.
        unsubscribed = [FieldError(f"event_ids.{n}", f"{found[key].type} is not among the "
                                                     "subscription's event types")
                        for n, key in enumerate(keys)
                        if not matches(found[key].type, sub["event_types"])]
        if unsubscribed:
            raise Conflict("; ".join(e.message for e in unsubscribed), unsubscribed)
        events = [found[k] for k in keys]
    else:
        assert after is not None
        try:
            start = parse_event_id(after)
        except ValueError as exc:
            raise ValidationFailed("after: not an event id",
                                   [FieldError("after", "not an event id")]) from exc
        events = [e for e in uow.events.read(after=start, types=[], limit=MAX_REPLAY)
                  if parse_event_id(e.id) <= (sub["fanout_txid"], sub["fanout_position"])
                  and matches(e.type, sub["event_types"])]
    keys = [parse_event_id(e.id) for e in events]
    existing = uow.webhooks.existing_keys(sub["id"], keys)
    uow.webhooks.requeue(sub["id"], sorted(existing), now)
    uow.webhooks.add_deliveries([_delivery_row(sub["id"], e, now) for e in events
                                 if parse_event_id(e.id) not in existing])
    uow.commit()
    return {"queued": len(events), "event_ids": [e.id for e in events][:100]}


def _delivery_row(subscription_id: str, event: StoredEvent, now: dt.datetime
                  ) -> dict[str, Any]:
    txid, position = parse_event_id(event.id)
    return {"id": new_id(), "subscription_id": subscription_id, "event_txid": txid,
            "event_position": position, "event_type": event.type,
            "entity_id": event.entity_id, "status": DeliveryStatus.PENDING.value,
            "attempts": 0, "due_at": now, "next_attempt_at": now, "claimed_until": None,
            "last_attempt_at": None, "last_status_code": None, "delivered_at": None}


def fan_out(engine: Engine) -> int:
    """Turn new events into deliveries for each subscription whose types they match;
    returns how many deliveries were made. Workers share subscriptions: one that another
    worker is fanning out is skipped."""
    # Read-only first: an idle pass takes no write lock (SQLite has one for the database).
    with UnitOfWork(engine, read_only=True) as uow:
        subscriptions = uow.webhooks.to_fan_out(uow.events.latest())
    made = 0
    for subscription_id in subscriptions:
        with UnitOfWork(engine) as uow:
            sub = uow.webhooks.lock_for_fan_out(subscription_id)
            if sub is None:
                continue
            events = uow.events.read(after=(sub["fanout_txid"], sub["fanout_position"]),
                                     types=[], limit=FAN_OUT_BATCH)
            if not events:
                continue
            now = utcnow()
            rows = [_delivery_row(sub["id"], e, now) for e in events
                    if matches(e.type, sub["event_types"])]
            uow.webhooks.add_deliveries(rows)
            uow.webhooks.advance(sub["id"], parse_event_id(events[-1].id))
            uow.commit()
            made += len(rows)
    return made


@dataclass(frozen=True)
class Sent:
    delivery: RowMapping
    #: None: not sent (its hold was running out, or its subscription is gone).
    answer: Answer | None


def deliver_due(engine: Engine, transport: WebhookTransport, *, batch: int = 64,
                concurrency: int = 8, timeout_seconds: float = 10.0) -> int:
    """Send what is due, several at once; returns how many attempts were made.

    The deliveries taken are held long enough for every round of `concurrency` requests to
    time out twice over; a request is not started unless that much of the hold is left, so no
    other worker can take a delivery over while it is being sent."""
    now = utcnow()
    per_request = dt.timedelta(seconds=2 * timeout_seconds)
    rounds = -(-batch // max(1, concurrency))
    until = now + rounds * per_request + CLAIM_MARGIN
    with UnitOfWork(engine, read_only=True) as uow:
        if not uow.webhooks.any_due(now):
            return 0
    with UnitOfWork(engine) as uow:
        claimed = uow.webhooks.claim(now, until, batch)
        uow.commit()
    if not claimed:
        return 0
    with UnitOfWork(engine, read_only=True) as uow:
        events = uow.events.by_keys([(d["event_txid"], d["event_position"]) for d in claimed])
        subscriptions = {s: uow.webhooks.get(s) for s in {d["subscription_id"]
                                                           for d in claimed}}

    def send(delivery: RowMapping) -> Sent:
        event = events.get((delivery["event_txid"], delivery["event_position"]))
        sub = subscriptions[delivery["subscription_id"]]
        when = utcnow()
        if event is None or sub is None or when + per_request > until:
            return Sent(delivery, None)  # left for the next pass
        body = event.document()
        secrets = [sub["secret"]]
        if sub["previous_secret"] and sub["previous_secret_expires_at"] and (
                sub["previous_secret_expires_at"] > when):
            secrets.append(sub["previous_secret"])
        headers = {**signed_headers(event.id, secrets, body, when),
                   "user-agent": "oms-webhooks"}
        return Sent(delivery, transport.send(sub["url"], headers, body.encode()))

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(claimed)))) as pool:
        results = list(pool.map(send, claimed))
    _record(engine, [r for r in results if r.answer is not None],
            [r.delivery["id"] for r in results if r.answer is None])
    return sum(r.answer is not None for r in results)


def _record(engine: Engine, results: Sequence[Sent], unsent: Sequence[str]) -> None:
    now = utcnow()
    attempts, outcomes = [], []
    succeeded: set[str] = set()
    failed: set[str] = set()
    gone: set[str] = set()
    for sent in results:
        d, answer = sent.delivery, sent.answer
        assert answer is not None
        count = d["attempts"] + 1
        outcome = judge(answer.status_code, answer.retry_after, count, d["due_at"], now)
        attempts.append({"id": new_id(), "delivery_id": d["id"], "attempted_at": now,
                         "status_code": answer.status_code, "duration_ms": answer.duration_ms,
                         "error": answer.error})
        status = (DeliveryStatus.DELIVERED if outcome.delivered else
                  DeliveryStatus.PENDING if outcome.retry_at else DeliveryStatus.FAILED)
        outcomes.append({"delivery_id": d["id"], "new_status": status.value,
                         "new_attempts": count, "new_next_attempt_at": outcome.retry_at,
                         "new_last_attempt_at": now, "new_status_code": answer.status_code,
                         "new_delivered_at": now if outcome.delivered else None})
        (succeeded if outcome.delivered else failed).add(d["subscription_id"])
        if outcome.gone:
            gone.add(d["subscription_id"])
        log.info("%s %s (%s) to %s: %s in %d ms", "delivered" if outcome.delivered else
                 "failed", event_id(d["event_txid"], d["event_position"]), d["event_type"],
                 d["subscription_id"], answer.status_code or answer.error, answer.duration_ms)
    with UnitOfWork(engine) as uow:
        uow.webhooks.record_attempts(attempts, outcomes)
        uow.webhooks.release(unsent)
        for subscription_id in sorted(succeeded | failed):
            sub = uow.webhooks.get(subscription_id, for_update=True)
            if sub is None or sub["status"] == SubscriptionStatus.DISABLED:
                continue
            if subscription_id in gone:
                _disable(uow, sub, "the endpoint answered 410 Gone", now)
            elif subscription_id in failed and subscription_id not in succeeded:
                since = sub["failing_since"] or now
                if now - since > GIVE_UP_AFTER:
                    _disable(uow, sub, "every delivery failed for three days", now)
                elif sub["failing_since"] is None:
                    uow.webhooks.update(subscription_id, now, failing_since=now)
            elif sub["failing_since"] is not None:
                uow.webhooks.update(subscription_id, now, failing_since=None)
        uow.commit()


def _disable(uow: UnitOfWork, sub: RowMapping, reason: str, now: dt.datetime) -> None:
    uow.webhooks.update(sub["id"], now, status=SubscriptionStatus.DISABLED.value,
                        disabled_reason=reason)
    uow.webhooks.given_up(sub["id"], now)
    log.warning("disabled webhook subscription %s: %s", sub["id"], reason)
    uow.record(Event("webhook_subscription.disabled", sub["id"], sub["version"] + 1,
                     {"id": sub["id"], "url": sub["url"], "reason": reason}, now))
