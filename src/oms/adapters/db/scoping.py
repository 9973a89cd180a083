"""The scope rule (oms.domain.access.Scope) in SQL: which rows of orders, customers,
fulfilment requests and shipments a key sees. Repositories add these to their queries, so a
list never holds a row the key may not see and a lookup of one finds nothing."""

from __future__ import annotations

from sqlalchemy import Column, exists, or_, true
from sqlalchemy.sql.elements import ColumnElement

from oms.adapters.db import tables as t
from oms.domain.access import Scope


def orders_seen(scope: Scope) -> ColumnElement[bool]:
    """Orders that touch one of the scope's locations."""
    if scope.locations is None:
        return true()
    at = sorted(scope.locations)
    # Aliases: a query may read the order's items too, and its own must not be correlated.
    o, i, r = t.orders.c, t.order_items.alias().c, t.fulfillment_requests.alias().c
    # Each way an order touches a location; a return taken at one joins this list.
    return or_(
        o.pickup_location_id.in_(at),
        o.fulfillment_location_id.in_(at),
        o.sold_at_location_id.in_(at),
        exists().where(i.order_id == o.id, i.location_id.in_(at)),
        exists().where(r.order_id == o.id, r.location_id.in_(at)),
    )


def customers_seen(scope: Scope) -> ColumnElement[bool]:
    """Customers with an order the scope sees."""
    if scope.locations is None:
        return true()
    return exists().where(t.orders.c.customer_id == t.customers.c.id, orders_seen(scope))


def located_seen(location_id: Column[str], scope: Scope) -> ColumnElement[bool]:
    """Rows that are a location's own work (fulfilment requests, shipments)."""
    if scope.locations is None:
        return true()
    return location_id.in_(sorted(scope.locations))
