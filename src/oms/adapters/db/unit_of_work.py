"""One use case = one database transaction, with the events it records."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection, NestedTransaction, RootTransaction

from oms.adapters.db.api_key_repositories import ApiKeyRepository
from oms.adapters.db.cart_repositories import (
    CartRepository,
    GiftCardRepository,
    PaymentLinkRepository,
    SettingsRepository,
    ShippingRateRepository,
    TaxRateRepository,
)
from oms.adapters.db.catalog_repositories import ProductRepository
from oms.adapters.db.engine import READ_ONLY
from oms.adapters.db.event_repositories import EventRepository
from oms.adapters.db.fulfillment_repositories import FulfillmentRepository
from oms.adapters.db.gate import Turn
from oms.adapters.db.idempotency import IdempotencyRepository
from oms.adapters.db.import_runs import ImportRunRepository
from oms.adapters.db.location_repositories import LocationRepository
from oms.adapters.db.order_repositories import (
    CustomerRepository,
    OrderRepository,
    RoutingRepository,
)
from oms.adapters.db.placement_reads import PlacementReads, read_for_placement
from oms.adapters.db.provider_calls import ProviderCallRepository
from oms.adapters.db.reference import Reference, cache_for
from oms.adapters.db.stock_repositories import ReservationRepository, StockRepository
from oms.adapters.db.upsert import HeldInserts
from oms.adapters.db.webhook_repositories import WebhookRepository
from oms.domain.access import EVERYTHING, Scope
from oms.domain.events import Event
from oms.domain.routing import RoutingRule

log = logging.getLogger(__name__)


T = TypeVar("T")


def _made_once(make: Callable[[UnitOfWork], T]) -> functools.cached_property[T]:
    """An attribute of the unit of work made when first used, then kept."""
    return functools.cached_property(make)


class UnitOfWork:
    """Rolls back unless committed. Events recorded during the work are written in the same
    transaction, just before it commits (DESIGN §3.2: a change and its events commit together).

    Work that must wait for the commit (a call to a PSP or a carrier) is registered with
    `after_commit` and runs once the transaction has committed and the connection is back in
    the pool, outside any transaction.

    With `defer_commit`, `commit()` ends the use case (its events are written) but the
    transaction stays open until `finish()`: an API request stores its answer in the same
    transaction as its change that way (DESIGN §3.3).

    `turn`: the request's turn among the process's (oms.adapters.db.gate), given back as the
    connection is.

    `scope` is what the caller may see: the repositories of orders, customers and fulfilment
    find nothing outside it. A use case that changes data works with every row (routing must
    see every location's requests) and checks its caller's scope itself, through `within`.
    """

    def __init__(self, engine: Engine, *, read_only: bool = False,
                 defer_commit: bool = False, scope: Scope = EVERYTHING,
                 turn: Turn | None = None) -> None:
        self.engine = engine
        self.turn = turn
        self.read_only = read_only
        self.defer_commit = defer_commit
        self.scope = scope
        self._pending: list[Event] = []
        self._after_commit: list[Callable[[], None]] = []
        self._on_begin: list[Callable[[], None]] = []
        self.committed = False

    def __enter__(self) -> UnitOfWork:
        # The connection is taken when the work first needs it, on the thread that does the
        # work: a request's unit of work is entered on the event loop, which must not wait
        # for the pool, and a hop to a thread of its own only for that costs as much as a
        # short read.
        return self

    @functools.cached_property
    def conn(self) -> Connection:
        conn = self.engine.connect()
        if self.read_only:
            conn = conn.execution_options(**{READ_ONLY: True})
            if conn.dialect.name == "postgresql":
                # Each statement sees its own snapshot under READ COMMITTED anyway: a read
                # needs no BEGIN, and no ROLLBACK, which would also drop the connection's
                # prepared statements.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        self._tx = conn.begin()
        return conn

    @property
    def connected(self) -> bool:
        return "conn" in self.__dict__

    def _transaction(self) -> RootTransaction:
        """The transaction, which begins as the connection is taken."""
        self.conn  # noqa: B018
        return self._tx

    # The repositories, each made when first used, on the unit of work's connection.
    idempotency = _made_once(lambda uow: IdempotencyRepository(uow.conn))
    calls = _made_once(lambda uow: ProviderCallRepository(uow.conn))
    products = _made_once(lambda uow: ProductRepository(uow.conn))
    locations = _made_once(lambda uow: LocationRepository(uow.conn))
    stock = _made_once(lambda uow: StockRepository(uow.conn))
    inserts = _made_once(lambda uow: HeldInserts(uow.conn))
    reservations = _made_once(lambda uow: ReservationRepository(uow.conn, uow.inserts))
    events = _made_once(lambda uow: EventRepository(uow.conn, uow.inserts))
    api_keys = _made_once(lambda uow: ApiKeyRepository(uow.conn))
    customers = _made_once(lambda uow: CustomerRepository(uow.conn, uow.scope))
    orders = _made_once(lambda uow: OrderRepository(uow.conn, uow.scope, uow.inserts))
    routing = _made_once(lambda uow: RoutingRepository(uow.conn, uow.inserts))
    fulfillment = _made_once(
        lambda uow: FulfillmentRepository(uow.conn, uow.scope, uow.inserts))
    webhooks = _made_once(lambda uow: WebhookRepository(uow.conn))
    import_runs = _made_once(lambda uow: ImportRunRepository(uow.conn))
    carts = _made_once(lambda uow: CartRepository(uow.conn, uow.scope))
    settings = _made_once(lambda uow: SettingsRepository(uow.conn))
    tax_rates = _made_once(lambda uow: TaxRateRepository(uow.conn))
    shipping_rates = _made_once(lambda uow: ShippingRateRepository(uow.conn))
    gift_cards = _made_once(lambda uow: GiftCardRepository(uow.conn))
    payment_links = _made_once(lambda uow: PaymentLinkRepository(uow.conn))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.connected:
            # Nothing was read or written.
            if self.turn is not None:
                self.turn.give_back()
            return
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self._pending.clear()
            self.inserts.clear()
            work, self._after_commit = self._after_commit, []
            try:
                self.conn.close()
            finally:
                if self.turn is not None:
                    self.turn.give_back()
        # With the connection back in the pool: work that takes connections of its own must
        # not hold this one while it waits for them.
        if self.committed:
            for step in work:
                try:
                    step()
                except Exception:
                    log.exception("work after commit failed; the worker will carry it out")

    def record(self, *events: Event) -> None:
        self._pending.extend(events)

    def record_at(self, mark: int, event: Event) -> None:
        """Record an event before those recorded since `mark` (its payload is known last)."""
        self._pending.insert(mark, event)

    def rollback(self) -> None:
        """Undo everything so far and begin again on the same connection."""
        self._transaction().rollback()
        self._pending.clear()
        self.inserts.clear()
        self._after_commit.clear()
        self._tx = self.conn.begin()
        for hook in self._on_begin:
            hook()

    def reference(self) -> Reference:
        """Locations and routing rules, as kept in the process a short while (see
        oms.adapters.db.reference)."""
        return cache_for(self.engine).get(self._read_reference)

    def _read_reference(self) -> Reference:
        return Reference(
            tuple(s.value for s in self.locations.page(after=None, limit=1_000_000)),
            {(r["service_level"], r["country"]): RoutingRule(
                r["service_level"], r["country"], tuple(tuple(g) for g in r["groups"]))
             for r in self.routing.rules()})

    def read_for_placement(self, skus: Sequence[str], email_key: str, *,
                           with_atp: bool = True) -> PlacementReads:
        """What placing an order reads before it writes (oms.adapters.db.placement_reads)."""
        return read_for_placement(self.conn, skus, email_key, with_atp=with_atp)

    def reference_changed(self) -> None:
        """This transaction changes locations or routing rules: once it commits, what the
        process keeps of them is read again."""
        self.after_commit(cache_for(self.engine).forget)

    def on_begin(self, hook: Callable[[], None]) -> None:
        """Run `hook` now and again whenever a rollback begins the transaction anew (it takes
        what the transaction must hold, such as the request's idempotency key)."""
        self._on_begin.append(hook)
        hook()

    def after_commit(self, work: Callable[[], None]) -> None:
        """Run `work` once the transaction has committed and the unit of work is closed;
        nothing if it rolls back. A failure of `work` is logged: what it does must be safe to
        leave to the worker."""
        self._after_commit.append(work)

    def pending_mark(self) -> int:
        return len(self._pending)

    def discard_since(self, mark: int) -> None:
        """Drop events recorded after `mark` (their savepoint was rolled back)."""
        del self._pending[mark:]

    def hold_inserts(self) -> None:
        """Rows added from now on are inserted when the events are, in the same statement on
        PostgreSQL (oms.adapters.db.upsert.HeldInserts): for work that reads none of them
        back before it commits."""
        self.inserts.holding = True

    def flush_events(self) -> None:
        self.events.append(self._pending)
        self._pending.clear()
        self.inserts.flush()

    def commit(self) -> None:
        self.flush_events()
        if not self.defer_commit:
            self.finish()

    def finish(self) -> None:
        """Commit the transaction; the work that waited for it runs as the unit of work
        closes."""
        self.flush_events()
        self._transaction().commit()
        self.committed = True

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[NestedTransaction]:
        """Work undone alone if it raises an error. An interrupt (Ctrl-C) is not an error of
        the work: SQLAlchemy drops a connection whose statement was interrupted, rolling back
        to the savepoint would fail on it and hide the interrupt, and the whole transaction
        is rolled back as the unit of work ends anyway."""
        nested = self.conn.begin_nested()
        try:
            yield nested
        except Exception:
            if nested.is_active:
                nested.rollback()
            raise
        if nested.is_active:
            nested.commit()
