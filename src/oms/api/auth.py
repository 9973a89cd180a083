"""The caller is known before anything else is done with a request: the API key is checked
from the headers alone, before the body is read and before any Idempotency-Key is looked at.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.problems import database_problem, problem
from oms.domain.access import Principal
from oms.services.apikeys import authenticate

#: Paths that need a key; the documentation and the health check do not.
PROTECTED_PREFIX = "/v1/"
PRINCIPAL = "principal"


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
        principal = None
        if scheme.lower() == "bearer" and key.strip():
            try:
                principal = await run_in_threadpool(self._check, key.strip())
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

    def _check(self, key: str) -> Principal | None:
        with UnitOfWork(self.engine, read_only=True) as uow:
            return authenticate(uow, key)
