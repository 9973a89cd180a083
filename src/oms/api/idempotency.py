"""Idempotency-Key for state-changing requests (DESIGN §3.3, after Stripe and the IETF draft).

Keys are scoped to the API key that sent them. The first request with a key runs and its
answer is stored; the same key with the same request replays that answer; with another
request, 422; while the first is still running, 409. A 5xx answer is not stored, so the
client may retry. A request that holds a key longer than `stale_after` is taken as crashed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms.adapters.db.idempotency import IdempotencyStore
from oms.api.problems import problem
from oms.domain.events import utcnow

HEADER = b"idempotency-key"
STATE_CHANGING = frozenset({"POST", "PATCH", "PUT", "DELETE"})
MAX_KEY_LENGTH = 255


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, store: IdempotencyStore, ttl: dt.timedelta,
                 stale_after: dt.timedelta) -> None:
        self.app = app
        self.store = store
        self.ttl = ttl
        self.stale_after = stale_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] not in STATE_CHANGING
                or scope["path"].startswith("/v1/imports/")):  # imports resume runs themselves
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        auth = headers.get(b"authorization")
        if raw_key is None or auth is None:  # no key: nothing to do; no auth: the app says 401
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            response = problem("invalid-request",
                               f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                               status=400)
            await response(scope, receive, send)
            return

        body = await _read_body(receive)
        key_scope = hashlib.sha256(auth).hexdigest()
        # Percent-encoded, because a decoded path may hold NUL, which PostgreSQL cannot store.
        target = quote(scope["path"]) + ("?" + scope["query_string"].decode("latin-1")
                                         if scope.get("query_string") else "")
        request_hash = hashlib.sha256(
            b"\n".join([scope["method"].encode(), target.encode(), body])
        ).hexdigest()
        now = utcnow()
        if random.random() < 0.01:  # keep the table small without a scheduler
            await run_in_threadpool(self.store.purge, now - self.ttl)
        existing = await run_in_threadpool(
            self.store.claim, key_scope, key, request_hash, scope["method"], target, now
        )
        if existing is not None:
            expired = existing.created_at < now - self.ttl
            crashed = (existing.status == IdempotencyStore.RUNNING
                       and existing.locked_at is not None
                       and existing.locked_at < now - self.stale_after)
            if expired or (crashed and existing.request_hash == request_hash):
                taken = await run_in_threadpool(
                    self.store.take_over, key_scope, key, request_hash, existing.locked_at, now,
                    reset_created=expired,
                )
                if not taken:
                    await _in_use(scope, receive, send)
                    return
            elif existing.request_hash != request_hash:
                response = problem(
                    "idempotency-key-reused",
                    "this Idempotency-Key was used with a different request; use a new key",
                )
                await response(scope, receive, send)
                return
            elif existing.status == IdempotencyStore.RUNNING:
                await _in_use(scope, receive, send)
                return
            else:
                await _replay(existing.response_status or 200, existing.response_headers or [],
                              existing.response_body or "", send)
                return

        await self._run_and_store(scope, body, send, key_scope, key)

    async def _run_and_store(self, scope: Scope, body: bytes, send: Send, key_scope: str,
                             key: str) -> None:
        status = 500
        response_headers: list[list[str]] = []
        chunks: list[bytes] = []
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers.extend(
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in message.get("headers", [])
                    if k.lower() in (b"content-type", b"location")
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await run_in_threadpool(self.store.forget, key_scope, key)
            raise
        if status >= 500:
            await run_in_threadpool(self.store.forget, key_scope, key)
        else:
            await run_in_threadpool(self.store.finish, key_scope, key, status, response_headers,
                                    b"".join(chunks).decode("utf-8", "replace"))


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _in_use(scope: Scope, receive: Receive, send: Send) -> None:
    response = problem("idempotency-key-in-use",
                       "a request with this Idempotency-Key is still being processed; retry later",
                       headers={"Retry-After": "1"})
    await response(scope, receive, send)


async def _replay(status: int, headers: list[list[str]], body: str, send: Send) -> None:
    raw: list[tuple[bytes, bytes]] = [(k.encode("latin-1"), v.encode("latin-1"))
                                      for k, v in headers]
    encoded = body.encode()
    raw.append((b"content-length", str(len(encoded)).encode()))
    raw.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": encoded})


