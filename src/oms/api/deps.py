"""FastAPI dependencies: the unit of work, the caller, pagination."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oms.adapters.db.gate import request_turn
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.auth import PRINCIPAL
from oms.domain.access import Principal, Role
from oms.domain.errors import DomainError, FieldError, Forbidden, ValidationFailed
from oms.domain.ids import is_valid_code

bearer = HTTPBearer(auto_error=False, description="An API key made by `oms apikey create`")


# The checks every request goes through are coroutines: they do no I/O, and FastAPI runs a
# plain function on a pool thread, a hand-over there and back for each request.
async def no_nul_in_query(request: Request) -> None:
    """PostgreSQL cannot compare text with NUL in it, so no query parameter may carry one.
    Nor does a request carry one its route does not take: a filter misspelt would otherwise
    be ignored, and the answer taken for a filtered one."""
    names = sorted({name for name, value in request.query_params.multi_items()
                    if "\x00" in name or "\x00" in value})
    if names:
        raise ValidationFailed(
            "query parameters must not contain NUL characters",
            [FieldError(f"query.{name}", "must not contain NUL characters") for name in names],
        )
    route = request.scope.get("route")
    taken = _query_names(route) if isinstance(route, APIRoute) else None
    unknown = sorted(set(request.query_params) - taken) if taken is not None else []
    if unknown:
        allowed = ", ".join(sorted(taken or ())) or "none"
        raise ValidationFailed(
            f"unknown query parameters: {', '.join(unknown)} (this route takes: {allowed})",
            [FieldError(f"query.{name}", "not a parameter of this route") for name in unknown])


_taken: dict[int, frozenset[str]] = {}


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters the route and its dependencies take, worked out once."""
    names = _taken.get(id(route))
    if names is None:
        found: set[str] = set()
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            found.update(p.alias for p in dependant.query_params)
            pending.extend(dependant.dependencies)
        names = _taken[id(route)] = frozenset(found)
    return names


#: No id or code in a path is longer: codes have at most 64 characters, ids 36.
MAX_PATH_PARAMETER = 64


async def check_path(request: Request) -> None:
    """Nor any path parameter, and none is longer than an id or code can be: ids in paths are
    compared with text columns."""
    errors = [FieldError(f"path.{name}", "must not contain NUL characters")
              for name, value in sorted(request.path_params.items()) if "\x00" in str(value)]
    if errors:
        raise ValidationFailed("path parameters must not contain NUL characters", errors)
    errors = [FieldError(f"path.{name}", f"must be at most {MAX_PATH_PARAMETER} characters")
              for name, value in sorted(request.path_params.items())
              if len(str(value)) > MAX_PATH_PARAMETER]
    if errors:
        raise ValidationFailed(f"no id in a path is longer than {MAX_PATH_PARAMETER} "
                               "characters", errors)


async def current_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, as AuthenticationMiddleware found it before the request was read (the
    bearer dependency only documents the scheme in the OpenAPI)."""
    principal = request.scope.get("state", {}).get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise DomainError("send an API key as 'Authorization: Bearer <key>'", [],
                          "unauthorized")
    return principal


CurrentKey = Annotated[Principal, Depends(current_principal)]


# The caller's key comes first (it is checked on a connection of its own before the request
# is read): a request holding its unit of work's connection while it waited for a second
# one could, under load, hold the whole pool with no request able to finish.
async def get_read_uow(request: Request, principal: CurrentKey) -> AsyncIterator[UnitOfWork]:
    """Every read sees only what the caller's scope holds (oms.domain.access.Scope). The
    unit of work takes its connection when the route first reads, on the route's thread;
    giving it back waits for nothing (a read ends no transaction on the server, see
    UnitOfWork), so it is done here."""
    engine = request.app.state.engine
    async with request_turn(engine) as turn:
        uow = UnitOfWork(engine, read_only=True, scope=principal.scope, turn=turn)
        uow.__enter__()
        try:
            yield uow
        finally:
            uow.__exit__(None, None, None)


ReadUow = Annotated[UnitOfWork, Depends(get_read_uow)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only these roles through."""

    # async: a pure check, so it needs no trip through the thread pool.
    async def check(principal: CurrentKey) -> Principal:
        if not principal.has_role(roles):
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"the {principal.role.value} role may not do this (needs {allowed})")
        return principal

    return check


AnyRole = CurrentKey
Admins = Annotated[Principal, Depends(require(Role.ADMIN))]
Integrators = Annotated[Principal, Depends(require(Role.ADMIN, Role.INTEGRATOR))]
Managers = Annotated[Principal, Depends(require(Role.ADMIN, Role.MANAGER))]
#: Who sells in a store: its associates and managers, and admins.
StoreStaff = Annotated[
    Principal, Depends(require(Role.ADMIN, Role.MANAGER, Role.ASSOCIATE))
]
Staff = Annotated[
    Principal, Depends(require(Role.ADMIN, Role.INTEGRATOR, Role.MANAGER, Role.ASSOCIATE))
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
CursorParam = Annotated[str | None, Query(
    max_length=256, description="`next_cursor` of the previous page")]


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_any_cursor(cursor: str) -> Any:
    """The JSON value a cursor holds; the caller checks its shape. No cursor this API issues
    holds NUL, which PostgreSQL cannot compare with text, nor a lone surrogate (JSON's
    `\ud800`), which is no character and cannot be sent to the database as UTF-8."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if _unstorable(value):
            raise ValueError("NUL or a lone surrogate in a cursor")
        return value
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("the cursor is not one this API issued",
                               [FieldError("cursor", "malformed")]) from exc


def _unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or (not value.isascii() and _has_surrogate(value))
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    return False


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def decode_cursor(cursor: str | None) -> str | None:
    """The key (sku or location id) of the last item of the previous page."""
    if cursor is None:
        return None
    value = decode_any_cursor(cursor)
    # A forged cursor must not reach the query with something no key could be.
    if not isinstance(value, str) or not is_valid_code(value):
        raise ValidationFailed("the cursor is not one this API issued",
                               [FieldError("cursor", "malformed")])
    return value


def decode_time_cursor(cursor: str | None) -> tuple[dt.datetime, str] | None:
    """The (time, id) of the last item of the previous page of a list newest first."""
    if cursor is None:
        return None
    try:
        at, item_id = decode_any_cursor(cursor)
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None or not isinstance(item_id, str) or len(item_id) > 36:
            raise ValueError("not a cursor of this list")
        return when, item_id
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("the cursor is not one this API issued",
                               [FieldError("cursor", "malformed")]) from exc


def page(items: list[Any], limit: int, key: Callable[[Any], Any]) -> dict[str, Any]:
    """Items fetched with limit + 1: the extra one only tells that another page exists."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": encode_cursor(key(items[-1])) if more else None}
