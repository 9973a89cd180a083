"""Products and their barcodes, on the unit of work's connection (like every repository,
the only code that writes their SQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    bindparam,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Connection, RowMapping

from oms.adapters.db import tables as t
from oms.adapters.db.stored import Stored
from oms.adapters.db.upsert import insert_for
from oms.domain.catalog import Barcode, BarcodeType, Product
from oms.domain.money import Money

_PREORDER_DATES = select(t.products.c.sku, t.products.c.preorder_ship_date).where(
    t.products.c.sku.in_(bindparam("skus", expanding=True)))


class ProductRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def upsert(self, product: Product, now: dt.datetime) -> tuple[int, bool]:
        """Create or replace; returns (new version, created)."""
        row = {
            "sku": product.sku,
            "name": product.name,
            "price_minor": product.price.minor,
            "currency": product.price.currency,
            "tax_class": product.tax_class,
            "preorder_ship_date": product.preorder_ship_date,
        }
        version, created = self.upsert_many([row], now)[product.sku]
        self.replace_barcodes({product.sku: product.barcodes})
        return version, created

    def upsert_many(
        self, rows: Sequence[dict[str, Any]], now: dt.datetime
    ) -> dict[str, tuple[int, bool]]:
        stmt = insert_for(self.conn, t.products)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.products.c.sku],
            set_={
                "name": stmt.excluded.name,
                "price_minor": stmt.excluded.price_minor,
                "currency": stmt.excluded.currency,
                "tax_class": stmt.excluded.tax_class,
                "preorder_ship_date": stmt.excluded.preorder_ship_date,
                "updated_at": stmt.excluded.updated_at,
                "version": t.products.c.version + 1,
            },
        ).returning(t.products.c.sku, t.products.c.version)
        params = [{**row, "version": 1, "created_at": now, "updated_at": now} for row in rows]
        result = self.conn.execute(stmt, params)
        return {r.sku: (r.version, r.version == 1) for r in result}

    def replace_barcodes(self, barcodes: dict[str, Iterable[Barcode]]) -> None:
        skus = list(barcodes)
        self.conn.execute(delete(t.product_barcodes).where(t.product_barcodes.c.sku.in_(skus)))
        rows = [
            {"sku": sku, "position": i, "type": b.type.value, "value": b.value}
            for sku, codes in barcodes.items()
            for i, b in enumerate(codes)
        ]
        if rows:
            self.conn.execute(t.product_barcodes.insert(), rows)

    def barcode_owners(self, values: Iterable[str]) -> dict[str, str]:
        """Which sku holds each of these barcode values now."""
        values = list(values)
        if not values:
            return {}
        rows = self.conn.execute(
            select(t.product_barcodes.c.value, t.product_barcodes.c.sku).where(
                t.product_barcodes.c.value.in_(values)
            )
        )
        return {r.value: r.sku for r in rows}

    def barcode(self, value: str) -> tuple[str, BarcodeType] | None:
        """The sku a printed barcode identifies, and the barcode's type."""
        b = t.product_barcodes.c
        row = self.conn.execute(select(b.sku, b.type).where(b.value == value)).first()
        return None if row is None else (row.sku, BarcodeType(row.type))

    def get(self, sku: str) -> Stored[Product] | None:
        stmt = select(t.products).where(t.products.c.sku == sku)
        row = self.conn.execute(stmt).mappings().first()
        if row is None:
            return None
        return self._hydrate([row])[0]

    def preorder_dates(self, skus: Iterable[str]) -> dict[str, dt.date | None]:
        """For each known sku, its tentative ship date if it is a pre-order, else None."""
        rows = self.conn.execute(_PREORDER_DATES, {"skus": list(set(skus))})
        return {r.sku: r.preorder_ship_date for r in rows}

    def existing(self, skus: Iterable[str]) -> set[str]:
        skus = list(set(skus))
        found: set[str] = set()
        for i in range(0, len(skus), 1000):
            chunk = skus[i : i + 1000]
            found.update(
                self.conn.scalars(select(t.products.c.sku).where(t.products.c.sku.in_(chunk)))
            )
        return found

    def page(
        self, *, after: str | None, limit: int, barcode: str | None, q: str | None
    ) -> list[Stored[Product]]:
        stmt = select(t.products).order_by(t.products.c.sku).limit(limit)
        if after is not None:
            stmt = stmt.where(t.products.c.sku > after)
        if barcode is not None:
            stmt = stmt.where(
                t.products.c.sku.in_(
                    select(t.product_barcodes.c.sku).where(t.product_barcodes.c.value == barcode)
                )
            )
        if q:
            pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_"
            ) + "%"
            stmt = stmt.where(
                or_(
                    func.lower(t.products.c.name).like(pattern, escape="\\"),
                    func.lower(t.products.c.sku).like(pattern, escape="\\"),
                )
            )
        return self._hydrate(list(self.conn.execute(stmt).mappings()))

    def _hydrate(self, rows: list[RowMapping]) -> list[Stored[Product]]:
        if not rows:
            return []
        codes: dict[str, list[Barcode]] = {r["sku"]: [] for r in rows}
        barcode_rows = self.conn.execute(
            select(t.product_barcodes)
            .where(t.product_barcodes.c.sku.in_(list(codes)))
            .order_by(t.product_barcodes.c.sku, t.product_barcodes.c.position)
        )
        for b in barcode_rows:
            codes[b.sku].append(Barcode(BarcodeType(b.type), b.value))
        return [
            Stored(
                Product(
                    sku=r["sku"],
                    name=r["name"],
                    price=Money.from_minor(r["price_minor"], r["currency"]),
                    tax_class=r["tax_class"],
                    barcodes=tuple(codes[r["sku"]]),
                    preorder_ship_date=r["preorder_ship_date"],
                ),
                r["version"],
                r["created_at"],
                r["updated_at"],
            )
            for r in rows
        ]
