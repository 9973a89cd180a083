"""One use case = one database transaction, with the events it records."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.engine import NestedTransaction

from oms.adapters.db.engine import READ_ONLY
from oms.adapters.db.fulfillment_repositories import FulfillmentRepository
from oms.adapters.db.import_runs import ImportRunRepository
from oms.adapters.db.order_repositories import (
    CustomerRepository,
    OrderRepository,
    RoutingRepository,
)
from oms.adapters.db.repositories import (
    ApiKeyRepository,
    EventRepository,
    LocationRepository,
    ProductRepository,
    ReservationRepository,
    StockRepository,
)
from oms.adapters.db.webhook_repositories import WebhookRepository
from oms.domain.events import Event


class UnitOfWork:
    """Rolls back unless committed. Events recorded during the work are written in the same
    transaction, just before it commits (DESIGN §3.2: a change and its events commit together).
    """

    def __init__(self, engine: Engine, *, read_only: bool = False) -> None:
        self.engine = engine
        self.read_only = read_only
        self._pending: list[Event] = []

    def __enter__(self) -> UnitOfWork:
        conn = self.engine.connect()
        if self.read_only:
            conn = conn.execution_options(**{READ_ONLY: True})
        self.conn = conn
        self._tx = conn.begin()
        self.products = ProductRepository(conn)
        self.locations = LocationRepository(conn)
        self.stock = StockRepository(conn)
        self.reservations = ReservationRepository(conn)
        self.events = EventRepository(conn)
        self.api_keys = ApiKeyRepository(conn)
        self.customers = CustomerRepository(conn)
        self.orders = OrderRepository(conn)
        self.routing = RoutingRepository(conn)
        self.fulfillment = FulfillmentRepository(conn)
        self.webhooks = WebhookRepository(conn)
        self.import_runs = ImportRunRepository(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self._pending.clear()
            self.conn.close()

    def record(self, *events: Event) -> None:
        self._pending.extend(events)

    def record_at(self, mark: int, event: Event) -> None:
        """Record an event before those recorded since `mark` (its payload is known last)."""
        self._pending.insert(mark, event)

    def rollback(self) -> None:
        """Undo everything so far and begin again on the same connection."""
        self._tx.rollback()
        self._pending.clear()
        self._tx = self.conn.begin()

    def pending_mark(self) -> int:
        return len(self._pending)

    def discard_since(self, mark: int) -> None:
        """Drop events recorded after `mark` (their savepoint was rolled back)."""
        del self._pending[mark:]

    def flush_events(self) -> None:
        self.events.append(self._pending)
        self._pending.clear()

    def commit(self) -> None:
        self.flush_events()
        self._tx.commit()

    def savepoint(self) -> NestedTransaction:
        return self.conn.begin_nested()
