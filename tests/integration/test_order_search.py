"""Searching orders (GET /v1/orders?q=) by the shop's order number, a display id or an email
reads indexes, not the whole orders table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, event, insert, text

from oms.adapters.db import tables as t
from oms.adapters.db.unit_of_work import UnitOfWork

ORDERS = 3000


def _seed(engine: Engine) -> None:
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    customers = [{"id": f"c-{n}", "display_id": f"C-{n}", "email": f"c{n}@example.com",
                  "email_key": f"c{n}@example.com", "name": None, "phone": None,
                  "version": 1, "created_at": now, "updated_at": now} for n in range(300)]
    orders = [{"id": f"o-{n:05d}", "display_id": f"O-{n:05d}", "channel": "web",
               "external_id": f"W-{n}", "request_hash": "x", "status": "routed",
               "historical": False, "placed_at": now + dt.timedelta(minutes=n),
               "currency": "EUR", "customer_id": f"c-{n % 300}", "service_level": None,
               "carrier": None, "shipping_price_minor": 0, "pickup_location_id": None,
               "fulfillment_location_id": None, "shipping_address": None,
               "grand_total_minor": 100, "version": 1, "created_at": now, "updated_at": now}
              for n in range(ORDERS)]
    with engine.begin() as conn:
        conn.execute(insert(t.customers), customers)
        conn.execute(insert(t.orders), orders)
        conn.execute(text("ANALYZE"))


def test_search_by_external_id_reads_its_index(engine: Engine) -> None:
    _seed(engine)
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                _many: bool) -> None:
        if "FROM orders" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with UnitOfWork(engine, read_only=True) as uow:
            found = uow.orders.page(before=None, limit=51, q="W-1234")
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [o["id"] for o in found] == ["o-01234"]
    [(statement, parameters)] = seen

    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
        else:
            plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                        parameters)]
    text_plan = "\n".join(plan)
    # Each of the three ways to match is an index lookup (a BitmapOr on PostgreSQL, a
    # MULTI-INDEX OR on SQLite), not a walk through every order newest first.
    assert "ix_orders_external_id" in text_plan, text_plan
    assert "ix_orders_customer_placed" in text_plan, text_plan
    assert "Seq Scan on orders" not in text_plan, text_plan
    assert "SCAN orders" not in text_plan, text_plan
