"""The caller is known before anything else is done with a request: the API key is checked
from the headers alone, before the body is read and before any Idempotency-Key is looked at.

What the check answered is kept in the process for `OMS_API_KEY_CACHE_SECONDS` (1 s by
default), so that a busy client costs the database nothing for it: a key revoked meanwhile is
still taken for at most that long by each process. When an answer runs out, the requests of
a busy client that miss it together wait for one check, not one check (a thread and a
connection) each.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.problems import database_problem, problem
from oms.domain.access import Principal
from oms.services.apikeys import authenticate, hash_key

#: Paths that need a key; the documentation and the health check do not, nor do a PSP's
#: notifications, which are signed instead (oms.api.routers.psp).
PROTECTED_PREFIX = "/v1/"
SIGNED_PREFIX = "/v1/psp/"
PRINCIPAL = "principal"


class KeyCache:
    """Answers of the key check (a principal, or None for an unknown or revoked key) by the
    key's hash, each kept `ttl` seconds; the least recently used goes first past `size`.
    Used from the event loop only, so it needs no lock."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._answers: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    def get(self, key_hash: str) -> tuple[bool, Principal | None]:
        """(whether an answer is kept, the answer)."""
        kept = self._answers.get(key_hash)
        if kept is None or kept[0] < time.monotonic():
            return False, None
        self._answers.move_to_end(key_hash)
        return True, kept[1]

    def put(self, key_hash: str, principal: Principal | None) -> None:
        if self.ttl <= 0:
            return
        self._answers[key_hash] = (time.monotonic() + self.ttl, principal)
        self._answers.move_to_end(key_hash)
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp, engine: Engine, cache_seconds: float = 1.0) -> None:
        self.app = app
        self.engine = engine
        self.cache = KeyCache(cache_seconds)
        #: The checks under way, by key hash and event loop (a test client may run each
        #: request on a loop of its own), when answers are kept; see `_principal`.
        self._checking: dict[tuple[str, asyncio.AbstractEventLoop],
                             asyncio.Future[Principal | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX)
                or scope["path"].startswith(SIGNED_PREFIX)):
            await self.app(scope, receive, send)
            return
        scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
        principal = None
        if scheme.lower() == "bearer" and key.strip():
            try:
                principal = await self._principal(hash_key(key.strip()))
            except (DBAPIError, SQLAlchemyTimeout) as exc:
                # Outside the app's exception handlers: answered here as they would.
                response = database_problem(exc, scope["method"], scope["path"])
                await response(scope, receive, send)
                return
        if principal is None:
            detail = ("the API key is unknown or revoked" if key.strip()
                      else "send an API key as 'Authorization: Bearer <key>'")
            response = problem("unauthorized", detail, instance=scope["path"],
                               headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL] = principal
        await self.app(scope, receive, send)

    async def _principal(self, key_hash: str) -> Principal | None:
        kept, principal = self.cache.get(key_hash)
        if kept:
            return principal
        if self.cache.ttl <= 0:
            # Nothing kept: every request is checked on its own, after it came.
            return await run_in_threadpool(self._check, key_hash)
        under_way = (key_hash, asyncio.get_running_loop())
        check = self._checking.get(under_way)
        if check is None:
            # A task of its own, so that a request that goes away (shielded below) leaves
            # the check to finish for the others waiting for it.
            check = asyncio.ensure_future(run_in_threadpool(self._check, key_hash))
            self._checking[under_way] = check
            check.add_done_callback(lambda done: self._settled(under_way, done))
        return await asyncio.shield(check)

    def _settled(self, under_way: tuple[str, asyncio.AbstractEventLoop],
                 done: asyncio.Future[Principal | None]) -> None:
        key_hash, _ = under_way
        del self._checking[under_way]
        if not done.cancelled() and done.exception() is None:
            self.cache.put(key_hash, done.result())

    def _check(self, key_hash: str) -> Principal | None:
        with UnitOfWork(self.engine, read_only=True) as uow:
            return authenticate(uow, key_hash)
