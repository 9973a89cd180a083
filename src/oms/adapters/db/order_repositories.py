"""Repositories of customers, orders and routing."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, TextClause, and_, bindparam, func, or_, select, text, tuple_, update
from sqlalchemy.engine import Connection, RowMapping

from oms.adapters.db import tables as t
from oms.adapters.db.scoping import customers_seen, located_seen, orders_seen
from oms.adapters.db.upsert import HeldInserts, insert_for
from oms.domain.access import EVERYTHING, Scope
from oms.domain.holds import HeldItem
from oms.domain.orders import ItemStatus, Order, OrderItem, OrderStatus

# The statements of placing an order, built once: building one costs more than running it.
CUSTOMER_BY_EMAIL = select(t.customers).where(
    t.customers.c.email_key == bindparam("email_key_"))
#: Set an order's status and take :count more versions (one per event), returning the last.
_ADVANCE = (update(t.orders).where(t.orders.c.id == bindparam("key_id"))
            .values(status=bindparam("status_"),
                    version=t.orders.c.version + bindparam("count", type_=Integer()),
                    updated_at=bindparam("now_"))
            .returning(t.orders.c.version))


#: An order and its items, a row per item (an order without items is not stored).
_ITEM_COLUMNS = [c.label(f"item_{c.name}") for c in t.order_items.c
                 if c.name not in ("order_id",)]
_WITH_ITEMS = (select(t.orders, *_ITEM_COLUMNS)
               .join_from(t.orders, t.order_items, t.order_items.c.order_id == t.orders.c.id)
               .order_by(t.order_items.c.line))

#: Not looked for yet.
UNREAD = object()


def _first(rows: Sequence[RowMapping]) -> Order | None:
    """The order of `_WITH_ITEMS` rows (those of one order)."""
    if not rows:
        return None
    return _order(rows[0], [_item({c.name: r[f"item_{c.name}"] for c in t.order_items.c
                                   if c.name != "order_id"}) for r in rows])


def _item(r: Mapping[str, Any] | RowMapping) -> OrderItem:
    return OrderItem(
        id=r["id"], line=r["line"], sku=r["sku"], quantity=r["quantity"],
        unit_price_minor=r["unit_price_minor"], discount_minor=r["discount_minor"],
        tax_minor=r["tax_minor"], status=ItemStatus(r["status"]), location_id=r["location_id"],
        reservation_id=r["reservation_id"], fulfillment_request_id=r["fulfillment_request_id"],
        hold_reason=r["hold_reason"], preorder=r["preorder"],
        tentative_ship_date=r["tentative_ship_date"], pickup_location_id=r["pickup_location_id"])


def _order(r: Mapping[str, Any] | RowMapping, items: list[OrderItem]) -> Order:
    return Order(
        id=r["id"], display_id=r["display_id"], channel=r["channel"],
        external_id=r["external_id"], request_hash=r["request_hash"],
        status=OrderStatus(r["status"]), historical=r["historical"], placed_at=r["placed_at"],
        currency=r["currency"], customer_id=r["customer_id"],
        service_level=r["service_level"], carrier=r["carrier"],
        shipping_price_minor=r["shipping_price_minor"],
        pickup_location_id=r["pickup_location_id"],
        fulfillment_location_id=r["fulfillment_location_id"],
        shipping_address=r["shipping_address"], grand_total_minor=r["grand_total_minor"],
        version=r["version"], created_at=r["created_at"], updated_at=r["updated_at"],
        items=items, routing_inputs=r["routing_inputs"], reroute_after=r["reroute_after"],
        reroute_wait_seconds=r["reroute_wait_seconds"],
        sold_at_location_id=r["sold_at_location_id"], sold_by_key=r["sold_by_key"])


def _order_row(o: Order) -> dict[str, Any]:
    return {
        "id": o.id, "display_id": o.display_id, "channel": o.channel,
        "external_id": o.external_id, "request_hash": o.request_hash,
        "status": o.status.value, "historical": o.historical, "placed_at": o.placed_at,
        "currency": o.currency, "customer_id": o.customer_id,
        "service_level": o.service_level, "carrier": o.carrier,
        "shipping_price_minor": o.shipping_price_minor,
        "pickup_location_id": o.pickup_location_id,
        "fulfillment_location_id": o.fulfillment_location_id,
        "shipping_address": o.shipping_address, "grand_total_minor": o.grand_total_minor,
        "version": o.version, "created_at": o.created_at, "updated_at": o.updated_at,
        "sold_at_location_id": o.sold_at_location_id, "sold_by_key": o.sold_by_key,
    }


def _item_row(order_id: str, i: OrderItem) -> dict[str, Any]:
    return {
        "id": i.id, "order_id": order_id, "line": i.line, "sku": i.sku,
        "quantity": i.quantity, "unit_price_minor": i.unit_price_minor,
        "discount_minor": i.discount_minor, "tax_minor": i.tax_minor,
        "status": i.status.value, "location_id": i.location_id,
        "reservation_id": i.reservation_id, "preorder": i.preorder,
        "tentative_ship_date": i.tentative_ship_date, "hold_reason": i.hold_reason,
        "fulfillment_request_id": i.fulfillment_request_id,
        "pickup_location_id": i.pickup_location_id,
    }


class CustomerRepository:
    """`get` and `by_email` find only customers within the scope (oms.domain.access.Scope)."""

    def __init__(self, conn: Connection, scope: Scope = EVERYTHING) -> None:
        self.conn = conn
        self.scope = scope

    def within(self, scope: Scope) -> CustomerRepository:
        return CustomerRepository(self.conn, scope)

    def find_or_create(self, row: dict[str, Any], now: dt.datetime, *,
                       found: Mapping[str, Any] | object | None = UNREAD
                       ) -> tuple[Mapping[Any, Any], bool]:
        """The customer with this email (any case), created if new; (row, created). Most
        customers come back: they are looked for first (unless the caller did, `found`),
        and created only when not found."""
        by_email = {"email_key_": row["email_key"]}
        if found is UNREAD:
            found = self.conn.execute(CUSTOMER_BY_EMAIL, by_email).mappings().first()
        if isinstance(found, Mapping):
            return found, False
        stmt = insert_for(self.conn, t.customers).on_conflict_do_nothing(
            index_elements=[t.customers.c.email_key]
        )
        self.conn.execute(stmt, {**row, "version": 1, "created_at": now, "updated_at": now})
        # Another order may have created the customer in between: whichever row is there.
        stored = self.conn.execute(CUSTOMER_BY_EMAIL, by_email).mappings().first()
        assert stored is not None
        # Not the INSERT's rowcount: SQLAlchemy keeps none for it on PostgreSQL (-1).
        return stored, bool(stored["id"] == row["id"])

    def find_or_create_many(self, rows: Sequence[dict[str, Any]], now: dt.datetime
                            ) -> dict[str, tuple[RowMapping, bool]]:
        """By email_key: each customer, created where new; (row, created)."""
        stmt = insert_for(self.conn, t.customers).on_conflict_do_nothing(
            index_elements=[t.customers.c.email_key]
        )
        self.conn.execute(stmt, [{**r, "version": 1, "created_at": now, "updated_at": now}
                                 for r in rows])
        proposed = {r["email_key"]: r["id"] for r in rows}
        found = self.conn.execute(
            select(t.customers).where(t.customers.c.email_key.in_(list(proposed)))
        ).mappings()
        return {c["email_key"]: (c, c["id"] == proposed[c["email_key"]]) for c in found}

    def by_email(self, email_key: str) -> RowMapping | None:
        return self.conn.execute(
            select(t.customers).where(t.customers.c.email_key == email_key,
                                      customers_seen(self.scope))
        ).mappings().first()

    def get(self, customer_id: str) -> RowMapping | None:
        return self.conn.execute(
            select(t.customers).where(
                or_(t.customers.c.id == customer_id, t.customers.c.display_id == customer_id),
                customers_seen(self.scope))
        ).mappings().first()


@dataclass(frozen=True)
class HeldOrder:
    """An order on hold, its items on hold, and what the worker's last look at it left."""

    id: str
    items: list[HeldItem]
    routing_inputs: str | None
    reroute_after: dt.datetime | None


@functools.cache
def _update_items_statement(count: int) -> TextClause:
    """UPDATE of `count` items from a VALUES list (PostgreSQL), built once per count."""
    names = ("id", "status", "location_id", "reservation_id", "fulfillment_request_id",
             "hold_reason")
    rows = ", ".join("(" + ", ".join(f"CAST(:{name}_{n} AS VARCHAR)" for name in names) + ")"
                     for n in range(count))
    return text(f"UPDATE order_items SET status = new.status, location_id = new.location_id, "
                f"reservation_id = new.reservation_id, "
                f"fulfillment_request_id = new.fulfillment_request_id, "
                f"hold_reason = new.hold_reason FROM (VALUES {rows}) AS new({', '.join(names)})"
                f" WHERE order_items.id = new.id")


class OrderRepository:
    """`get` and `page` find only orders within the scope (oms.domain.access.Scope); the
    other reads take ids of orders already found, or serve the system's own work."""

    def __init__(self, conn: Connection, scope: Scope = EVERYTHING,
                 inserts: HeldInserts | None = None) -> None:
        self.conn = conn
        self.scope = scope
        self.inserts = inserts or HeldInserts(conn)

    def within(self, scope: Scope) -> OrderRepository:
        return OrderRepository(self.conn, scope, self.inserts)

    def add(self, orders: Sequence[Order], payments: Sequence[dict[str, Any]]) -> None:
        """New orders with their items and payments, written with the transaction's other
        held inserts."""
        self.inserts.add(t.orders, [_order_row(o) for o in orders])
        self.inserts.add(t.order_items, [_item_row(o.id, i) for o in orders for i in o.items])
        self.inserts.add(t.payments, payments)
        for o in orders:
            o.changed_items.clear()

    def load(self, order_id: str, *, for_update: bool = False) -> Order | None:
        """The order (by id or display id, within the scope) with its items. Read alone, in
        one query; locked (`for_update`), the order's row first and then its items: on
        PostgreSQL a statement that waited for the lock sees the locked row as committed
        since, but the other rows of its join as they were when it began."""
        if not for_update:
            return _first(self.conn.execute(_WITH_ITEMS.where(
                or_(t.orders.c.id == order_id, t.orders.c.display_id == order_id),
                orders_seen(self.scope))).mappings().all())
        row = self.get(order_id, for_update=True)
        return None if row is None else self.assemble([row])[0]

    def load_of_request(self, request_id: str, scope: Scope) -> Order | None:
        """The order of a fulfilment request the scope sees, locked, with its items: the
        request is found and its order locked in one statement."""
        r = t.fulfillment_requests.c
        of_request = (select(r.order_id)
                      .where(r.id == request_id, located_seen(r.location_id, scope))
                      .scalar_subquery())
        row = self.conn.execute(select(t.orders).where(t.orders.c.id == of_request)
                                .with_for_update()).mappings().first()
        return None if row is None else self.assemble([row])[0]

    def load_if_free(self, order_id: str) -> Order | None:
        """The order with its items, locked for this transaction; None if another worker
        holds it (PostgreSQL; on SQLite this waits for the single writer's lock, which the
        engine takes for a read that locks, before it reads)."""
        row = self.conn.execute(
            select(t.orders).where(t.orders.c.id == order_id)
            .with_for_update(skip_locked=self.conn.dialect.name == "postgresql")
        ).mappings().first()
        return None if row is None else self.assemble([row])[0]

    def assemble(self, rows: Sequence[RowMapping]) -> list[Order]:
        """The orders of these rows, with their items, in one more query."""
        items: dict[str, list[OrderItem]] = {r["id"]: [] for r in rows}
        for i in self.items([r["id"] for r in rows]):
            items[i["order_id"]].append(_item(i))
        return [_order(r, items[r["id"]]) for r in rows]

    def save(self, order: Order, now: dt.datetime, events: int) -> int:
        """Write the items that changed and the status they give the order, and take `events`
        more versions (one per event the change records, so the events' sequence has no
        gaps), in one statement for the order; returns the last version taken."""
        changed = [i for i in order.items if i.id in order.changed_items]
        self.update_items([{"id": i.id, "status": i.status.value, "location_id": i.location_id,
                            "reservation_id": i.reservation_id,
                            "fulfillment_request_id": i.fulfillment_request_id,
                            "hold_reason": i.hold_reason} for i in changed])
        order.status = order.derived_status
        order.version = self.advance(order.id, order.status.value, events, now)
        order.updated_at = now
        order.changed_items.clear()
        return order.version

    def hashes_by_external(self, channel_ids: Sequence[tuple[str, str]]
                           ) -> dict[tuple[str, str], RowMapping]:
        if not channel_ids:
            return {}
        o = t.orders.c
        rows = self.conn.execute(
            select(o.channel, o.external_id, o.request_hash, o.display_id)
            .where(tuple_(o.channel, o.external_id).in_(list(channel_ids)))
        ).mappings()
        return {(r["channel"], r["external_id"]): r for r in rows}

    def by_external(self, channel: str, external_id: str) -> RowMapping | None:
        return self.conn.execute(
            select(t.orders).where(t.orders.c.channel == channel,
                                   t.orders.c.external_id == external_id)
        ).mappings().first()

    def held(self) -> list[HeldOrder]:
        """Current orders on hold, oldest first, with their items on hold."""
        o, i = t.orders.c, t.order_items.c
        rows = self.conn.execute(
            select(o.id, o.routing_inputs, o.reroute_after, i.id.label("item_id"), i.sku,
                   i.quantity)
            .join_from(t.orders, t.order_items, i.order_id == o.id)
            .where(o.status == "on_hold", o.historical.is_(False), i.status == "on_hold")
            .order_by(o.placed_at, o.id, i.line))
        held: dict[str, HeldOrder] = {}
        for r in rows:
            order = held.setdefault(r.id, HeldOrder(r.id, [], r.routing_inputs, r.reroute_after))
            order.items.append(HeldItem(r.item_id, r.sku, r.quantity))
        return list(held.values())

    def set_reroute(self, order_id: str, routing_inputs: str, after: dt.datetime,
                    wait: dt.timedelta) -> None:
        """What the worker saw when it looked at the order on hold, and when to look again."""
        self.conn.execute(update(t.orders).where(t.orders.c.id == order_id).values(
            routing_inputs=routing_inputs, reroute_after=after,
            reroute_wait_seconds=int(wait.total_seconds())))

    def get(self, order_id: str, *, for_update: bool = False) -> RowMapping | None:
        stmt = select(t.orders).where(
            or_(t.orders.c.id == order_id, t.orders.c.display_id == order_id),
            orders_seen(self.scope))
        if for_update:
            stmt = stmt.with_for_update()
        return self.conn.execute(stmt).mappings().first()

    def items(self, order_ids: Sequence[str]) -> list[RowMapping]:
        return list(self.conn.execute(
            select(t.order_items).where(t.order_items.c.order_id.in_(list(order_ids)))
            .order_by(t.order_items.c.order_id, t.order_items.c.line)
        ).mappings())

    def currencies(self, order_ids: Sequence[str]) -> dict[str, str]:
        """Each order's currency, in one query."""
        if not order_ids:
            return {}
        o = t.orders.c
        return {r.id: r.currency for r in self.conn.execute(
            select(o.id, o.currency).where(o.id.in_(list(order_ids))))}

    def payments(self, order_id: str) -> list[RowMapping]:
        """In the order they were made (ids are time-ordered): captures take from the first,
        voids and refunds give back from the last."""
        return list(self.conn.execute(
            select(t.payments).where(t.payments.c.order_id == order_id)
            .order_by(t.payments.c.id)
        ).mappings())

    def update_items(self, changes: Sequence[dict[str, Any]]) -> None:
        """Status, location, reservation, request and hold reason of several items at once."""
        if not changes:
            return
        c = t.order_items.c
        columns = ("status", "location_id", "reservation_id", "fulfillment_request_id",
                   "hold_reason")
        if self.conn.dialect.name == "postgresql":
            # One statement for all of them (executemany sends one per item).
            self.conn.execute(_update_items_statement(len(changes)), {
                f"{name}_{n}": x[name] for n, x in enumerate(changes)
                for name in ("id", *columns)})
            return
        self.conn.execute(
            update(t.order_items).where(c.id == bindparam("item_id"))
            .values({name: bindparam(f"new_{name}") for name in columns}),
            [{"item_id": x["id"], **{f"new_{name}": x[name] for name in columns}}
             for x in changes])

    def advance(self, order_id: str, status: str, count: int, now: dt.datetime) -> int:
        """Set the status and take `count` more versions (one per event, so the events'
        sequence has no gaps), in one statement; returns the last version taken."""
        row = self.conn.execute(_ADVANCE, {"key_id": order_id, "status_": status,
                                           "count": count, "now_": now}).one()
        return int(row.version)

    def page(
        self,
        *,
        before: tuple[dt.datetime, str] | None,
        limit: int,
        customer_id: str | None = None,
        status: str | None = None,
        channel: str | None = None,
        placed_from: dt.datetime | None = None,
        placed_to: dt.datetime | None = None,
        q: str | None = None,
    ) -> list[RowMapping]:
        o = t.orders.c
        stmt = (select(t.orders).where(orders_seen(self.scope))
                .order_by(o.placed_at.desc(), o.id.desc()).limit(limit))
        if before is not None:
            stmt = stmt.where(tuple_(o.placed_at, o.id) < tuple_(*before))
        if customer_id is not None:
            stmt = stmt.where(o.customer_id == customer_id)
        if status is not None:
            stmt = stmt.where(o.status == status)
        if channel is not None:
            stmt = stmt.where(o.channel == channel)
        if placed_from is not None:
            stmt = stmt.where(o.placed_at >= placed_from)
        if placed_to is not None:
            stmt = stmt.where(o.placed_at < placed_to)
        if q:
            # email_key is unique: a scalar subquery, which the planner can look up in
            # ix_orders_customer_placed alongside the other two indexes (an IN would not be).
            customer = select(t.customers.c.id).where(t.customers.c.email_key == q.lower())
            stmt = stmt.where(or_(o.display_id == q.upper(), o.external_id == q,
                                  o.customer_id == customer.scalar_subquery()))
        return list(self.conn.execute(stmt).mappings())


class RoutingRepository:
    def __init__(self, conn: Connection, inserts: HeldInserts | None = None) -> None:
        self.conn = conn
        self.inserts = inserts or HeldInserts(conn)

    def put_rules(self, rules: Sequence[dict[str, Any]], now: dt.datetime) -> None:
        """Replace every rule with these. Two replacements take turns: each removes what the
        other wrote (SQLite has one writer at a time anyway)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql("LOCK TABLE routing_rules IN EXCLUSIVE MODE")
        self.conn.execute(t.routing_rules.delete())
        if rules:
            self.conn.execute(t.routing_rules.insert(),
                              [{**r, "updated_at": now} for r in rules])

    def rules(self) -> list[RowMapping]:
        return list(self.conn.execute(
            select(t.routing_rules).order_by(t.routing_rules.c.service_level,
                                             t.routing_rules.c.country)
        ).mappings())

    def revision(self) -> str:
        """Changes whenever the rules are replaced."""
        r = t.routing_rules.c
        count, updated = self.conn.execute(select(func.count(), func.max(r.updated_at))).one()
        return f"{count}:{updated.isoformat() if updated else ''}"

    def rule(self, service_level: str, country: str) -> RowMapping | None:
        r = t.routing_rules.c
        return self.conn.execute(
            select(t.routing_rules).where(and_(r.service_level == service_level,
                                               r.country == country))
        ).mappings().first()

    def add_run(self, run: dict[str, Any]) -> None:
        self.inserts.add(t.routing_runs, [run])

    def runs(self, order_id: str, *, with_inputs: bool = False) -> list[RowMapping]:
        """The order's routing runs, oldest first; their inputs only when asked for (they
        are the larger part, needed only to explain a location)."""
        r = t.routing_runs.c
        columns = [c for c in t.routing_runs.c if with_inputs or c is not r.inputs]
        return list(self.conn.execute(
            select(*columns).where(r.order_id == order_id).order_by(r.ran_at, r.id)
        ).mappings())
