"""Bulk loading of orders from JSON Lines, typically history from a previous system.

A line that says `"historical": true` is history: written as it was, without routing or
touching stock. Any other line is a LIVE order, placed as `POST /v1/orders` places it: routed,
its stock reserved. The file is checked whole first, then loaded in chunks, one transaction
per chunk and one savepoint per order, so that a refused order is reported with its line
number and the others still load; a resend resumes after the last chunk (see import_runs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import partial
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.errors import DomainError
from oms.domain.events import Event
from oms.domain.orders import PlacementWindow
from oms.schemas import OrderIn
from oms.services.import_runs import Sender
from oms.services.imports import (
    FileFormat,
    ImportFile,
    ImportMode,
    ImportReport,
    Progress,
    execute,
)
from oms.services.orders import (
    customer_row,
    new_order,
    order_hash,
    place_in_transaction,
    validate_order,
)
from oms.services.views import customer_out, render_order


def import_orders(
    engine: Engine,
    source: ImportFile | Iterable[str],
    chunk_size: int = 500,
    on_progress: Progress | None = None,
    *,
    sender: Sender | None = None,
    window: PlacementWindow = PlacementWindow(),
) -> ImportReport:
    """Load orders; one already loaded (same channel and external_id, same content) is
    counted as a duplicate and left as it is. Live orders must be placed within `window`."""
    return execute(engine, ImportReport("orders", ImportMode.DELTA, FileFormat.JSONL), source,
                   partial(_load, window=window), None, chunk_size, on_progress,
                   sender or Sender())


def _load(uow: UnitOfWork, chunk: list[tuple[int, OrderIn]], report: ImportReport,
          now: dt.datetime, *, window: PlacementWindow) -> None:
    """Historical orders of the chunk go in with a few statements for all of them; current
    orders are placed (and routed) one by one."""
    fresh = _new_orders(uow, chunk, report)
    historical = [(n, o, h) for n, o, h in fresh if o.historical]
    current = [(n, o, h) for n, o, h in fresh if not o.historical]
    mark, counts = uow.pending_mark(), report.snapshot()
    try:
        with uow.savepoint():
            _load_historical(uow, historical, report, now, window)
    except IntegrityError:
        # Another importer loaded some of the same orders meanwhile: one by one instead.
        uow.discard_since(mark)
        report.restore(counts)
        current = historical + current
    for number, order, fingerprint in sorted(current, key=lambda x: x[0]):
        mark = uow.pending_mark()
        try:
            with uow.savepoint():
                place_in_transaction(uow, order, fingerprint, window)
            report.imported += 1
        except (DomainError, IntegrityError, DataError) as exc:
            uow.discard_since(mark)
            report.fail(number, _reason(exc))


def _new_orders(uow: UnitOfWork, chunk: list[tuple[int, OrderIn]], report: ImportReport
                ) -> list[tuple[int, OrderIn, str]]:
    """Orders not loaded before; one sent again with the same content counts as a duplicate."""
    keys = [(o.channel.value, o.external_id) for _, o in chunk if o.external_id is not None]
    known = {k: r["request_hash"] for k, r in uow.orders.hashes_by_external(keys).items()}
    fresh = []
    for number, order in chunk:
        fingerprint = order_hash(order)
        key = (order.channel.value, order.external_id) if order.external_id else None
        if key is not None and key in known:
            if known[key] == fingerprint:
                report.duplicates += 1
            else:
                report.fail(number, f"external_id {order.external_id} belongs to another "
                                    "order with other content")
            continue
        if key is not None:
            known[key] = fingerprint
        fresh.append((number, order, fingerprint))
    return fresh


def _load_historical(uow: UnitOfWork, batch: list[tuple[int, OrderIn, str]],
                     report: ImportReport, now: dt.datetime, window: PlacementWindow) -> None:
    if not batch:
        return
    dates = uow.products.preorder_dates(i.sku for _, o, _ in batch for i in o.items)
    valid = []
    for number, order, fingerprint in batch:
        try:
            validate_order(order, dates, now, window)
        except DomainError as exc:
            report.fail(number, _reason(exc))
            continue
        valid.append((order, fingerprint))
    proposed: dict[str, dict[str, Any]] = {}
    for order, _ in valid:
        row = customer_row(order)
        proposed.setdefault(row["email_key"], row)
    customers = uow.customers.find_or_create_many(list(proposed.values()), now)
    for email_key in proposed:
        customer, created = customers[email_key]
        if created:
            uow.record(Event("customer.created", customer["id"], 1, customer_out(customer), now))
    new = [new_order(order, fingerprint, dates,
                     customers[order.customer.email.lower()][0]["id"], now)
           for order, fingerprint in valid]
    uow.orders.add([n.order for n in new], [p for n in new for p in n.payments])
    by_id = {c["id"]: c for c, _ in customers.values()}
    for n in new:
        body = render_order(n.order, by_id[n.order.customer_id], n.payments)
        uow.record(Event("order.created", n.order.id, 1, body, now))
    report.imported += len(new)


def _reason(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        fields = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
        return fields or exc.detail
    return "refused by the database (a duplicate external_id in this file?)"

