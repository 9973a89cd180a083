"""Repositories of fulfilment requests, shipments, tracking updates and payments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, literal, or_, select, tuple_, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import ColumnElement

from oms.adapters.db import tables as t
from oms.adapters.db.local_days import in_zones, today_at, zones_by
from oms.adapters.db.scoping import located_seen
from oms.adapters.db.upsert import HeldInserts, insert_for
from oms.domain.access import EVERYTHING, Scope
from oms.domain.fulfillment import (
    FulfillmentRequest,
    LinkStatus,
    RequestItem,
    RequestStatus,
    RequestType,
    pickup_expiry,
)
from oms.domain.orders import line_total

R = t.fulfillment_requests.c
L = t.fulfillment_request_items.c


def queue_rank(today: ColumnElement[dt.date]) -> ColumnElement[int]:
    """Pre-orders whose stock is due (by the day it is at their location) come first, then
    everything else; pre-orders still waiting for their stock last (they cannot ship yet)."""
    return case(
        (R.available_on.is_(None), literal(1)),
        (R.available_on <= today, literal(0)),
        else_=literal(2),
    )


class FulfillmentRepository:
    """`get`, `page` and `shipment` find only requests and shipments within the scope
    (oms.domain.access.Scope); the other reads take ids already found, or serve the system's
    own work."""

    def __init__(self, conn: Connection, scope: Scope = EVERYTHING,
                 inserts: HeldInserts | None = None) -> None:
        self.conn = conn
        self.scope = scope
        self.inserts = inserts or HeldInserts(conn)

    def within(self, scope: Scope) -> FulfillmentRepository:
        return FulfillmentRepository(self.conn, scope, self.inserts)

    def add(self, requests: Sequence[FulfillmentRequest]) -> None:
        self.inserts.add(t.fulfillment_requests, [_request_row(r) for r in requests])
        self.inserts.add(t.fulfillment_request_items, [
            {"request_id": r.id, "item_id": x.item_id, "status": x.status.value,
             "reason": x.reason, "shipment_id": x.shipment_id} for r in requests for x in r.items])

    def load(self, request_id: str, *, for_update: bool = False) -> FulfillmentRequest | None:
        """The request with its items, within the scope; locked with `for_update`."""
        row = self.get(request_id, for_update=for_update)
        return None if row is None else self.assemble([row])[0]

    def assemble(self, rows: Sequence[RowMapping]) -> list[FulfillmentRequest]:
        """The requests of these rows, with their items."""
        items: dict[str, list[RequestItem]] = {r["id"]: [] for r in rows}
        for x in self.links([r["id"] for r in rows]):
            items[x["request_id"]].append(RequestItem(
                item_id=x["item_id"], line=x["line"], sku=x["sku"], quantity=x["quantity"],
                status=LinkStatus(x["status"]), reason=x["reason"],
                shipment_id=x["shipment_id"], item_status=x["item_status"],
                reservation_id=x["reservation_id"],
                value_minor=line_total(x["quantity"], x["unit_price_minor"],
                                       x["discount_minor"], x["tax_minor"]),
                stock_expected_on=x["stock_expected_on"]))
        return [FulfillmentRequest(
            id=r["id"], order_id=r["order_id"], location_id=r["location_id"],
            type=RequestType(r["type"]), status=RequestStatus(r["status"]),
            placed_at=r["placed_at"], available_on=r["available_on"], carrier=r["carrier"],
            parcels=r["parcels"], collected_by=r["collected_by"], reason=r["reason"],
            ready_at=r["ready_at"], version=r["version"], created_at=r["created_at"],
            updated_at=r["updated_at"], items=items[r["id"]], notify_state=r["notify_state"],
            notify_attempts=r["notify_attempts"], notify_next_at=r["notify_next_at"],
            notify_last_error=r["notify_last_error"]) for r in rows]

    def save(self, request: FulfillmentRequest, now: dt.datetime) -> int:
        """Write what changed since the request was loaded or saved, and take its next
        version (for the event of the change); returns that version."""
        parts: dict[tuple[str, str | None, str | None], list[str]] = {}
        for x in request.items:
            if x.item_id in request.changed_items:
                parts.setdefault((x.status.value, x.reason, x.shipment_id), []).append(x.item_id)
        for (status, reason, shipment_id), item_ids in sorted(parts.items(), key=str):
            self.set_links(request.id, item_ids, status, reason=reason, shipment_id=shipment_id)
        request.version = self.update(request.id, now, **request.changed)
        request.updated_at = now
        request.changed.clear()
        request.changed_items.clear()
        return request.version

    def get(self, request_id: str, *, for_update: bool = False) -> RowMapping | None:
        stmt = select(t.fulfillment_requests).where(R.id == request_id,
                                                    located_seen(R.location_id, self.scope))
        if for_update:
            stmt = stmt.with_for_update()
        return self.conn.execute(stmt).mappings().first()

    def of_order(self, order_id: str) -> list[RowMapping]:
        return list(self.conn.execute(
            select(t.fulfillment_requests).where(R.order_id == order_id)
            .order_by(R.created_at, R.id)).mappings())

    def links(self, request_ids: Sequence[str]) -> list[RowMapping]:
        """Each request's items with their part in it, the order item's details, and, for a
        pre-order still holding future stock, the date that stock is expected."""
        i = t.order_items.c
        r = t.reservations.c
        return list(self.conn.execute(
            select(t.fulfillment_request_items, i.sku, i.quantity, i.line, i.reservation_id,
                   i.status.label("item_status"), i.unit_price_minor, i.discount_minor,
                   i.tax_minor, i.preorder, r.available_on.label("stock_expected_on"))
            .join(t.order_items, i.id == L.item_id)
            .outerjoin(t.reservations, r.id == i.reservation_id)
            .where(L.request_id.in_(list(request_ids)))
            .order_by(L.request_id, i.line)).mappings())

    def set_links(self, request_id: str, item_ids: Sequence[str], status: str,
                  reason: str | None = None, shipment_id: str | None = None) -> None:
        self.conn.execute(
            update(t.fulfillment_request_items)
            .where(L.request_id == request_id, L.item_id.in_(list(item_ids)))
            .values(status=status, reason=reason, shipment_id=shipment_id))

    def open_links_of_items(self, item_ids: Sequence[str]) -> list[RowMapping]:
        return list(self.conn.execute(
            select(t.fulfillment_request_items)
            .where(L.item_id.in_(list(item_ids)), L.status == "open")).mappings())

    def rejected_locations(self, order_id: str) -> set[str]:
        """Locations that rejected items of this order: they are not asked again."""
        return set(self.conn.scalars(
            select(R.location_id).distinct()
            .join(t.fulfillment_request_items, L.request_id == R.id)
            .where(R.order_id == order_id, L.status == "rejected")))

    def update(self, request_id: str, now: dt.datetime, **values: Any) -> int:
        """Change the request and take its next version; returns that version."""
        row = self.conn.execute(
            update(t.fulfillment_requests).where(R.id == request_id)
            .values(**values, version=R.version + 1, updated_at=now)
            .returning(R.version)).one()
        return int(row.version)

    def page(self, *, now: dt.datetime, after: tuple[int, dt.datetime, str] | None,
             limit: int, location_ids: Sequence[str] | None = None, status: str | None = None,
             type: str | None = None, order_id: str | None = None) -> list[RowMapping]:
        rank = queue_rank(today_at(self.conn, R.location_id, now))
        stmt = (select(t.fulfillment_requests, rank.label("queue_rank"))
                .where(located_seen(R.location_id, self.scope))
                .order_by(rank, R.placed_at, R.id).limit(limit))
        if after is not None:
            stmt = stmt.where(tuple_(rank, R.placed_at, R.id) > tuple_(*after))
        if location_ids is not None:
            stmt = stmt.where(R.location_id.in_(list(location_ids)))
        if status is not None:
            stmt = stmt.where(R.status == status)
        if type is not None:
            stmt = stmt.where(R.type == type)
        if order_id is not None:
            stmt = stmt.where(R.order_id == order_id)
        return list(self.conn.execute(stmt).mappings())

    # -- telling DCs and 3PLs

    def due_notifications(self, now: dt.datetime, limit: int) -> list[RowMapping]:
        stmt = (select(t.fulfillment_requests)
                .where(R.notify_state == "pending", R.notify_next_at <= now)
                .order_by(R.notify_next_at, R.id).limit(limit))
        if self.conn.dialect.name == "postgresql":
            # Another worker's claim is skipped: it is delivering those right now.
            stmt = stmt.with_for_update(skip_locked=True)
        return list(self.conn.execute(stmt).mappings())

    def claim_notifications(self, request_ids: Sequence[str], until: dt.datetime) -> None:
        if request_ids:
            self.conn.execute(update(t.fulfillment_requests)
                              .where(R.id.in_(list(request_ids)))
                              .values(notify_next_at=until))

    def notification_done(self, request_id: str, *, delivered: bool, attempts: int,
                          next_at: dt.datetime | None, error: str | None) -> None:
        self.conn.execute(update(t.fulfillment_requests).where(R.id == request_id).values(
            notify_state="delivered" if delivered else "pending", notify_attempts=attempts,
            notify_next_at=next_at, notify_last_error=error))

    def uncollected(self, now: dt.datetime, days: int, limit: int) -> list[RowMapping]:
        """Pickups ready for longer than `days` of their store's calendar (pickup_expiry)."""
        by_expiry = zones_by(self.conn, lambda zone: pickup_expiry(zone, now, days))
        if not by_expiry:
            return []
        expired: ColumnElement[bool]
        if len(by_expiry) == 1:  # every store's calendar agrees
            [before] = by_expiry
            expired = R.ready_at < before
        else:
            expired = or_(*(in_zones(R.location_id, zones) & (R.ready_at < before)
                            for before, zones in by_expiry.items()))
        return list(self.conn.execute(
            select(R.id, R.order_id).where(R.status == "ready_for_pickup", expired)
            .order_by(R.ready_at).limit(limit)).mappings())

    # -- shipments

    def add_shipment(self, row: dict[str, Any]) -> None:
        self.conn.execute(t.shipments.insert(), row)

    def shipment(self, shipment_id: str, *, for_update: bool = False) -> RowMapping | None:
        stmt = select(t.shipments).where(t.shipments.c.id == shipment_id,
                                         located_seen(t.shipments.c.location_id, self.scope))
        if for_update:
            stmt = stmt.with_for_update()
        return self.conn.execute(stmt).mappings().first()

    def shipments(self, *, order_id: str | None = None, request_ids: Sequence[str] = ()
                  ) -> list[RowMapping]:
        s = t.shipments.c
        stmt = select(t.shipments).order_by(s.created_at, s.id)
        if order_id is not None:
            stmt = stmt.where(s.order_id == order_id)
        else:
            stmt = stmt.where(s.request_id.in_(list(request_ids)))
        return list(self.conn.execute(stmt).mappings())

    def add_tracking(self, row: dict[str, Any]) -> bool:
        """False when the same update (status and time) was recorded before."""
        stmt = insert_for(self.conn, t.tracking_events).on_conflict_do_nothing(
            index_elements=[t.tracking_events.c.shipment_id, t.tracking_events.c.status,
                            t.tracking_events.c.occurred_at])
        return bool(self.conn.execute(stmt.returning(t.tracking_events.c.id), row).first())

    def tracking(self, shipment_ids: Sequence[str]) -> list[RowMapping]:
        e = t.tracking_events.c
        return list(self.conn.execute(
            select(t.tracking_events).where(e.shipment_id.in_(list(shipment_ids)))
            .order_by(e.shipment_id, e.occurred_at, e.received_at)).mappings())

    def update_shipment(self, shipment_id: str, status: str, now: dt.datetime) -> int:
        s = t.shipments.c
        row = self.conn.execute(
            update(t.shipments).where(s.id == shipment_id)
            .values(status=status, version=s.version + 1, updated_at=now)
            .returning(s.version)).one()
        return int(row.version)

    def update_shipment_booking(self, shipment_id: str, now: dt.datetime, **values: Any
                                ) -> int:
        s = t.shipments.c
        row = self.conn.execute(
            update(t.shipments).where(s.id == shipment_id)
            .values(**values, version=s.version + 1, updated_at=now)
            .returning(s.version)).one()
        return int(row.version)

    # -- payments

    def update_payment(self, payment_id: str, **values: Any) -> int:
        p = t.payments.c
        row = self.conn.execute(
            update(t.payments).where(p.id == payment_id)
            .values(**values, version=p.version + 1).returning(p.version)).one()
        return int(row.version)


def _request_row(r: FulfillmentRequest) -> dict[str, Any]:
    return {
        "id": r.id, "order_id": r.order_id, "location_id": r.location_id,
        "type": r.type.value, "status": r.status.value, "placed_at": r.placed_at,
        "available_on": r.available_on, "carrier": r.carrier, "parcels": r.parcels,
        "collected_by": r.collected_by, "reason": r.reason, "version": r.version,
        "created_at": r.created_at, "updated_at": r.updated_at, "ready_at": r.ready_at,
        "notify_state": r.notify_state, "notify_attempts": r.notify_attempts,
        "notify_next_at": r.notify_next_at, "notify_last_error": r.notify_last_error,
    }
