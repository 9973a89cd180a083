"""A state-changing request is one transaction, and its answer commits with its change.

Idempotency-Key (DESIGN §3.3, after Stripe and the IETF draft): keys are scoped to the API
key that sent them. The request's answer is stored in the same transaction as its change, so
no crash can leave a change committed without its answer: a retry replays the answer or, if
nothing committed, runs afresh. The same key with another request is 422; while the first
request still runs, 409. A refusal of the business rules (4xx) is stored too, in place of the
change it refused; a request refused before it ran (authentication, validation) is not.

The caller is known before anything is read or stored: the key is looked at only after the
API key is checked, and the body is limited in size before it is read (see `app.py`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import anyio
import orjson
from fastapi import Depends, Header, Request, Response
from pydantic import Field
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

from oms.adapters.db.gate import Turn, gate_for, request_turn
from oms.adapters.db.idempotency import StoredAnswer
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.deps import CurrentKey
from oms.api.problems import domain_problem
from oms.domain.errors import DomainError
from oms.domain.events import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_KEY_LENGTH = 255
JSON_TYPE = "application/json"
#: The headers of an answer that a replay gives again.
KEPT_HEADERS = ("content-type", "location")
#: Refusals about the key itself, never kept as its answer.
KEY_REFUSALS = frozenset({"idempotency-key-in-use", "idempotency-key-reused"})


@dataclass(frozen=True)
class KeyedRequest:
    """A request sent with an Idempotency-Key."""

    scope: str
    key: str
    request_hash: str
    method: str
    target: str


class Replay(Exception):
    """The stored answer of an earlier request with the same key and body."""

    def __init__(self, answer: StoredAnswer) -> None:
        super().__init__("replay")
        self.answer = answer

    def response(self) -> Response:
        headers = dict(self.answer.headers)
        headers["idempotent-replayed"] = "true"
        return Response(self.answer.body.encode(), self.answer.status, headers)


class Tx:
    """The request's unit of work, opened when first used: an endpoint calls its service
    with `tx.uow` and answers with `tx.done(...)`, which stores the answer and commits."""

    def __init__(self, engine: Engine, keyed: KeyedRequest | None, ttl: dt.timedelta,
                 path: str, turn: Turn | None = None) -> None:
        #: The request's turn (oms.adapters.db.gate), given to its unit of work.
        self.turn = turn
        self.engine = engine
        self.keyed = keyed
        self.ttl = ttl
        self.path = path
        self._uow: UnitOfWork | None = None
        #: The key is ours to answer: nothing was stored under it (or only an expired answer).
        self._claimed = False
        #: The turn was given back for an outgoing call: the unit of work takes one again.
        self._turn_again = False

    def outside(self, call: Callable[[], T]) -> T:
        """Make an outgoing call (a PSP's authorisation) before the unit of work opens, with
        the request's turn given back meanwhile (oms.adapters.db.gate): the unit of work
        takes a turn again when it opens."""
        assert self._uow is None, "an outgoing call inside the request's transaction"
        if self.turn is not None:
            self.turn.give_back()
            self.turn = None
            self._turn_again = True
        return call()

    @property
    def uow(self) -> UnitOfWork:
        if self._uow is None:
            if self._turn_again:
                gate = gate_for(self.engine)
                self.turn = Turn(gate, gate.enter())
                self._turn_again = False
            uow = UnitOfWork(self.engine, defer_commit=True, turn=self.turn)
            uow.__enter__()
            self._uow = uow
            if self.keyed is not None:
                uow.on_begin(self._hold_key)
                self._claim(uow, self.keyed)
        return self._uow

    def _hold_key(self) -> None:
        assert self._uow is not None
        assert self.keyed is not None
        if not self._uow.idempotency.hold(self.keyed.scope, self.keyed.key):
            raise DomainError("a request with this Idempotency-Key is still being processed; "
                              "retry later", [], "idempotency-key-in-use")

    def _claim(self, uow: UnitOfWork, keyed: KeyedRequest) -> None:
        stored = uow.idempotency.get(keyed.scope, keyed.key)
        if stored is not None and stored.created_at >= utcnow() - self.ttl:
            if stored.request_hash != keyed.request_hash:
                raise DomainError("this Idempotency-Key was used with a different request; "
                                  "use a new key", [], "idempotency-key-reused")
            raise Replay(stored)
        self._claimed = True

    def done(self, body: Any, *, status: int = 200, headers: dict[str, str] | None = None,
             refresh: Callable[[UnitOfWork], Any] | None = None) -> Response:
        """Store the answer with the change and commit; then carry out the work that waited
        for the commit (PSP and carrier calls). With `refresh`, the answer is made again
        from what that work left (a label booked), and kept in place of the first."""
        all_headers = {**({"content-type": JSON_TYPE} if body is not None else {}),
                       **(headers or {})}
        content = render(body)
        uow = self.uow if self.keyed is not None else self._uow
        if uow is not None:
            if self._claimed:
                self._store(uow, status, all_headers, content)
            uow.finish()
            self.close()
            if refresh is not None:
                content = self._refreshed(refresh, status, all_headers, content)
        return Response(content, status, all_headers)

    def _refreshed(self, refresh: Callable[[UnitOfWork], Any], status: int,
                   headers: dict[str, str], committed: bytes) -> bytes:
        """The answer made again after the work that waited for the commit; the committed
        answer if that cannot be read now (the change is done either way, and a retry
        replays the committed one)."""
        try:
            with UnitOfWork(self.engine, read_only=True) as read:
                content = render(refresh(read))
            if self._claimed:
                self._store_again(status, headers, content)
        except (DBAPIError, SQLAlchemyTimeout):
            log.warning("the answer of %s could not be made again after its commit", self.path,
                        exc_info=True)
            return committed
        return content

    def _store(self, uow: UnitOfWork, status: int, headers: dict[str, str],
               content: bytes) -> None:
        assert self.keyed is not None
        k = self.keyed
        kept = [[name, value] for name, value in headers.items() if name in KEPT_HEADERS]
        now = utcnow()
        uow.idempotency.store(k.scope, k.key, k.request_hash, k.method, k.target, status,
                              kept, content.decode(), now, expired_before=now - self.ttl)

    def _store_again(self, status: int, headers: dict[str, str], content: bytes) -> None:
        assert self.keyed is not None
        k = self.keyed
        kept = [[name, value] for name, value in headers.items() if name in KEPT_HEADERS]
        with UnitOfWork(self.engine) as uow:
            uow.idempotency.replace_answer(k.scope, k.key, k.request_hash, status, kept,
                                           content.decode())
            uow.commit()

    def abort(self, exc: BaseException) -> None:
        """The request failed: nothing it changed commits. A refusal of the business rules
        is stored as the key's answer, so that a retry gets the same refusal."""
        uow = self._uow
        if uow is None:
            return
        try:
            if (self._claimed and not uow.committed and isinstance(exc, DomainError)
                    and not exc.retryable and exc.kind not in KEY_REFUSALS):
                answer = domain_problem(exc, self.path)
                uow.rollback()  # takes the key again
                headers = {name: value for name, value in answer.headers.items()
                           if name in KEPT_HEADERS}
                self._store(uow, answer.status_code, headers, bytes(answer.body))
                uow.finish()
        except Exception:
            pass
        finally:
            self.close()

    @property
    def open(self) -> bool:
        return self._uow is not None

    def close(self) -> None:
        if self._uow is not None:
            uow, self._uow = self._uow, None
            uow.__exit__(None, None, None)


async def in_turn(turn: Turn | None, work: Callable[[], Response]) -> Response:
    """A route's work, which makes no outgoing call: on the event loop when the request's turn
    is the process's only one (oms.adapters.db.gate, "Routes run on the event loop"),
    otherwise on a thread, as FastAPI runs a plain function."""
    if turn is not None and turn.alone:
        return work()
    return await anyio.to_thread.run_sync(work)


def render(body: Any) -> bytes:
    if body is None:
        return b""
    # orjson writes dates, times (as isoformat does) and enums (their values) itself.
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


#: An Idempotency-Key is printable ASCII (the IETF draft makes it a structured-field string)
#: with a character that is not a space; spaces around it are not part of it.
KEY_PATTERN = r"^[ -~]*[!-~][ -~]*$"
_KEY = re.compile(KEY_PATTERN.removeprefix("^").removesuffix("$"))


def checked_key(value: str) -> str:
    """The key as it is kept; 400 for a key the document does not allow."""
    if len(value) > MAX_KEY_LENGTH or not _KEY.fullmatch(value):
        raise DomainError(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII "
                          "characters, not only spaces", [], "invalid-request")
    return value.strip()


#: Declared so that the OpenAPI shows it on every route that takes it; it is checked by
#: `checked_key`, and answered 400 like any other bad key.
IdempotencyKey = Annotated[
    Annotated[str, Field(json_schema_extra={"minLength": 1, "maxLength": MAX_KEY_LENGTH,
                                            "pattern": KEY_PATTERN})]
    | None,
    Header(alias="Idempotency-Key",
           description=("Makes a retry safe: the same key with the same request, while the key "
                        "is kept (24 h by default), answers what the first one answered and "
                        "changes nothing again. Keys belong to the API key that sent them."))]


async def write_tx(request: Request, principal: CurrentKey,
                   idempotency_key: IdempotencyKey = None) -> AsyncIterator[Tx]:
    keyed = None
    if idempotency_key is not None:
        key = checked_key(idempotency_key)
        body = await request.body()
        # Percent-encoded, because a decoded path may hold NUL, which PostgreSQL cannot store.
        query = request.url.query
        target = quote(request.url.path) + (f"?{query}" if query else "")
        request_hash = hashlib.sha256(
            b"\n".join([request.method.encode(), target.encode(), body])).hexdigest()
        keyed = KeyedRequest(principal.key_id, key, request_hash, request.method, target)
    settings = request.app.state.settings
    engine = request.app.state.engine
    async with request_turn(engine) as turn:
        tx = Tx(engine, keyed, dt.timedelta(hours=settings.idempotency_ttl_hours),
                request.url.path, turn)
        try:
            yield tx
        except Exception as exc:
            if tx.open:
                await _closing(tx.abort, exc)
            raise
        finally:
            if tx.open:
                await _closing(tx.close)


async def _closing(func: Callable[..., None], *args: Any) -> None:
    """Give the request's connection back on a thread of its own: the shared pool of threads
    may be full of requests waiting for a connection, which this one holds (FastAPI closes
    its dependencies the same way)."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(func, *args, limiter=anyio.CapacityLimiter(1))


WriteTx = Annotated[Tx, Depends(write_tx)]
