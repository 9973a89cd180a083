"""Bulk imports of products, locations and inventory from CSV or JSON Lines.

Rows are validated one by one and written in chunks, one transaction per chunk. A bad row is
reported with its line number and reason and never stops or corrupts the others: a chunk
that the database refuses is retried row by row, each in its own savepoint.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.catalog import Product
from oms.domain.errors import ValidationFailed
from oms.domain.events import Event, utcnow
from oms.domain.inventory import MAX_QUANTITY
from oms.domain.locations import Location
from oms.schemas import (
    InventoryRow,
    LocationRow,
    ProductRow,
    location_out,
    product_out,
)
from oms.services.inventory import record_change

MAX_REPORTED_ERRORS = 1000


class ImportMode(StrEnum):
    FULL = "full"
    DELTA = "delta"


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    kind: str
    mode: ImportMode
    rows: int = 0
    imported: int = 0
    failed: int = 0
    zeroed: int = 0
    #: Rows already loaded before with the same content (orders sent again).
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    #: (location, sku) of inventory rows that failed: a full import must not zero them.
    failed_keys: set[tuple[str, str]] = field(default_factory=set)

    def snapshot(self) -> tuple[int, int, int]:
        return self.imported, self.failed, len(self.errors)

    def restore(self, counts: tuple[int, int, int]) -> None:
        self.imported, self.failed = counts[0], counts[1]
        del self.errors[counts[2]:]

    def fail(self, line: int, reason: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line, reason))

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "mode": self.mode.value, "rows": self.rows,
            "imported": self.imported, "failed": self.failed, "zeroed": self.zeroed,
            "duplicates": self.duplicates,
            "errors": [{"line": e.line, "reason": e.reason}
                       for e in sorted(self.errors, key=lambda e: e.line)],
            "errors_truncated": self.failed > len(self.errors),
        }


def guess_format(filename: str | None, content_type: str | None = None) -> FileFormat:
    name = (filename or "").lower()
    ctype = (content_type or "").lower()
    if name.endswith((".jsonl", ".ndjson")) or "ndjson" in ctype or "jsonl" in ctype:
        return FileFormat.JSONL
    return FileFormat.CSV


# -- reading ----------------------------------------------------------------------------------

def _split(value: str | None, sep: str = ";") -> list[str]:
    return [p.strip() for p in (value or "").split(sep) if p.strip()]


def _blank_to_none(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if v not in ("", None) else None) for k, v in row.items() if k is not None}


def _product_from_csv(row: dict[str, Any]) -> dict[str, Any]:
    """sku,name,price,currency,tax_class,barcodes,preorder_ship_date;
    barcodes as `ean13:4006381333931;code128:ABC-1`."""
    r = _blank_to_none(row)
    barcodes = []
    for code in _split(r.get("barcodes")):
        kind, _, value = code.partition(":")
        barcodes.append({"type": kind.strip().lower(), "value": value.strip()})
    out: dict[str, Any] = {
        "sku": r.get("sku"), "name": r.get("name"),
        "price": {"amount": r.get("price"), "currency": r.get("currency")},
        "barcodes": barcodes,
    }
    if r.get("tax_class"):
        out["tax_class"] = r["tax_class"]
    if r.get("preorder_ship_date"):
        out["preorder"] = {"tentative_ship_date": r["preorder_ship_date"]}
    return out


def _location_from_csv(row: dict[str, Any]) -> dict[str, Any]:
    """id,type,name,line1,line2,city,region,postal_code,country,lat,lon,capabilities,
    priority,active,timezone; capabilities as `ship;pickup;returns`."""
    r = _blank_to_none(row)
    out: dict[str, Any] = {
        "id": r.get("id"), "type": r.get("type"), "name": r.get("name"),
        "address": {k: r.get(k) for k in ("line1", "line2", "city", "region", "postal_code",
                                          "country", "lat", "lon")},
        "capabilities": _split(r.get("capabilities")),
    }
    for key in ("priority", "timezone"):
        if r.get(key) is not None:
            out[key] = r[key]
    if r.get("active") is not None:
        out["active"] = str(r["active"]).strip().lower() in ("1", "true", "yes", "y")
    return out


def _inventory_from_csv(row: dict[str, Any]) -> dict[str, Any]:
    """location_id,sku,on_hand[,safety_stock]"""
    r = _blank_to_none(row)
    out = {k: r.get(k) for k in ("location_id", "sku", "on_hand")}
    if r.get("safety_stock") is not None:
        out["safety_stock"] = r["safety_stock"]
    return out


_CSV_MAPPERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "products": _product_from_csv,
    "locations": _location_from_csv,
    "inventory": _inventory_from_csv,
}
_ROW_MODELS: dict[str, type[BaseModel]] = {
    "products": ProductRow,
    "locations": LocationRow,
    "inventory": InventoryRow,
}


def _raw_rows(
    lines: Iterable[str], kind: str, fmt: FileFormat
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row as a dict) or (line number, reason it cannot be read)."""
    if fmt is FileFormat.JSONL:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON: {exc.msg} at column {exc.colno}"
                continue
            yield (number, value) if isinstance(value, dict) else (number, "not a JSON object")
        return
    reader = csv.DictReader(lines)
    mapper = _CSV_MAPPERS[kind]
    for row in reader:
        number = reader.line_num
        if None in row:
            yield number, "more fields than the header names"
            continue
        if all(v in ("", None) for v in row.values()):
            continue
        yield number, mapper(row)


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {str(e['msg']).removeprefix('Value error, ')}" if where
                     else str(e["msg"]))
    return "; ".join(parts)


def parse_rows(
    lines: Iterable[str], kind: str, fmt: FileFormat, report: ImportReport
) -> Iterator[tuple[int, Any]]:
    model = _ROW_MODELS[kind]
    for number, raw in _raw_rows(lines, kind, fmt):
        report.rows += 1
        if isinstance(raw, str):
            report.fail(number, raw)
            continue
        try:
            # A CSV cell is text whatever it holds: it is read as the value it spells. JSON
            # Lines are JSON, taken as strictly as the API takes it (the models' own rule).
            yield number, model.model_validate(
                raw, strict=False if fmt is FileFormat.CSV else None)
        except ValidationError as exc:
            report.fail(number, describe_validation_error(exc))
            if isinstance(raw.get("location_id"), str) and isinstance(raw.get("sku"), str):
                report.failed_keys.add((raw["location_id"], raw["sku"]))


def _chunks(rows: Iterator[tuple[int, Any]], size: int, key: Callable[[Any], Any]) -> (
    Iterator[list[tuple[int, Any]]]
):
    """Chunks of at most `size` rows, in which no key appears twice (a later row for the same
    key starts a new chunk, so it is applied after the earlier one)."""
    chunk: list[tuple[int, Any]] = []
    keys: set[Any] = set()
    for number, row in rows:
        k = key(row)
        if len(chunk) >= size or k in keys:
            yield chunk
            chunk, keys = [], set()
        chunk.append((number, row))
        keys.add(k)
    if chunk:
        yield chunk


# -- writing ----------------------------------------------------------------------------------

Writer = Callable[[UnitOfWork, list[tuple[int, Any]], ImportReport, dt.datetime], None]


def _write_products(uow: UnitOfWork, chunk: list[tuple[int, Any]], report: ImportReport,
                    now: dt.datetime) -> None:
    products: list[tuple[int, Product]] = [(n, row.to_domain(row.sku)) for n, row in chunk]
    owners = uow.products.barcode_owners(b.value for _, p in products for b in p.barcodes)
    claimed: dict[str, str] = {}
    accepted: list[tuple[int, Product]] = []
    for number, product in products:
        clash = next(
            (b.value for b in product.barcodes
             if owners.get(b.value, product.sku) != product.sku
             or claimed.get(b.value, product.sku) != product.sku),
            None,
        )
        if clash is not None:
            owner = owners.get(clash) or claimed.get(clash)
            report.fail(number, f"barcode {clash} belongs to product {owner}")
            continue
        claimed.update({b.value: product.sku for b in product.barcodes})
        accepted.append((number, product))
    if not accepted:
        return
    versions = uow.products.upsert_many(
        [{"sku": p.sku, "name": p.name, "price_minor": p.price.minor,
          "currency": p.price.currency, "tax_class": p.tax_class,
          "preorder_ship_date": p.preorder_ship_date} for _, p in accepted],
        now,
    )
    uow.products.replace_barcodes({p.sku: p.barcodes for _, p in accepted})
    for _, product in accepted:
        version = versions[product.sku][0]
        uow.record(Event("product.upserted", product.sku, version,
                         product_out(product, version, now), now))
    report.imported += len(accepted)


def _write_locations(uow: UnitOfWork, chunk: list[tuple[int, Any]], report: ImportReport,
                     now: dt.datetime) -> None:
    locations: list[Location] = [row.to_domain(row.id) for _, row in chunk]
    versions = uow.locations.upsert_many(locations, now)
    for location in locations:
        version = versions[location.id][0]
        uow.record(Event("location.upserted", location.id, version,
                         location_out(location, version, now), now))
    report.imported += len(locations)


def _inventory_writer(mode: ImportMode, seen: dict[str, set[str]]) -> Writer:
    def write(uow: UnitOfWork, chunk: list[tuple[int, Any]], report: ImportReport,
              now: dt.datetime) -> None:
        rows: list[tuple[int, InventoryRow]] = chunk
        known_locations = uow.locations.existing(r.location_id for _, r in rows)
        known_skus = uow.products.existing(r.sku for _, r in rows)
        valid: list[tuple[int, InventoryRow]] = []
        for number, row in rows:
            if row.location_id not in known_locations:
                report.fail(number, f"no location {row.location_id!r}")
            elif row.sku not in known_skus:
                report.fail(number, f"no product {row.sku!r}")
            elif mode is ImportMode.FULL and row.on_hand < 0:
                report.fail(number, "on_hand must not be negative in a full import")
                report.failed_keys.add((row.location_id, row.sku))
            else:
                valid.append((number, row))
                seen.setdefault(row.location_id, set()).add(row.sku)
        if not valid:
            return
        if mode is ImportMode.DELTA:
            # A negative delta cannot create a level: on_hand would start below zero.
            negatives = [(r.location_id, r.sku) for _, r in valid if r.on_hand < 0]
            existing = uow.stock.existing_keys(negatives) if negatives else set()
            kept = []
            for number, row in valid:
                if row.on_hand < 0 and (row.location_id, row.sku) not in existing:
                    report.fail(number, f"no stock of {row.sku} at {row.location_id} to take "
                                        f"{-row.on_hand} from")
                else:
                    kept.append((number, row))
            valid = kept
        params = [
            {"location_id": r.location_id, "sku": r.sku, "on_hand": r.on_hand,
             **({"safety_stock": r.safety_stock} if r.safety_stock is not None else {})}
            for _, r in valid
        ]
        # Rows with and without safety_stock take different statements (one keeps the
        # stored safety stock, the other replaces it).
        changed = {}
        for group in ([p for p in params if "safety_stock" in p],
                      [p for p in params if "safety_stock" not in p]):
            if group:
                changed.update(uow.stock.set_levels(group, now, add=mode is ImportMode.DELTA))
        for number, row in valid:
            level = changed.get((row.location_id, row.sku))
            if level is None:
                report.fail(number, f"a delta of {row.on_hand} would take on_hand below zero "
                                    f"or above {MAX_QUANTITY}")
                continue
            record_change(uow, level, f"import_{mode.value}", now)
            report.imported += 1

    return write


def _zero_missing(engine: Engine, seen: dict[str, set[str]], keep: set[tuple[str, str]],
                  report: ImportReport) -> None:
    """A full snapshot of a location: skus it does not list go to zero on hand."""
    for location_id, skus in seen.items():
        with UnitOfWork(engine) as uow:
            now = utcnow()
            missing = sorted(s for s in uow.stock.skus_at(location_id) - skus
                             if (location_id, s) not in keep)
            for i in range(0, len(missing), 1000):
                params = [{"location_id": location_id, "sku": s, "on_hand": 0}
                          for s in missing[i : i + 1000]]
                for level in uow.stock.set_levels(params, now).values():
                    record_change(uow, level, "import_full_missing", now)
            report.zeroed += len(missing)
            uow.commit()


def run_import(
    engine: Engine,
    kind: str,
    lines: Iterable[str],
    fmt: FileFormat,
    mode: ImportMode = ImportMode.DELTA,
    chunk_size: int = 1000,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import one file. For products and locations both modes upsert what the file lists;
    for inventory `delta` adds to on_hand and `full` replaces each listed location's
    snapshot."""
    report = ImportReport(kind, mode)
    seen: dict[str, set[str]] = {}
    writer: Writer
    if kind == "products":
        writer, key = _write_products, (lambda r: r.sku)
    elif kind == "locations":
        writer, key = _write_locations, (lambda r: r.id)
    elif kind == "inventory":
        writer, key = _inventory_writer(mode, seen), (lambda r: (r.location_id, r.sku))
    else:
        raise ValueError(f"unknown import kind {kind!r}")
    rows = parse_rows(lines, kind, fmt, report)
    for chunk in _chunks(rows, chunk_size, key):
        _write_chunk(engine, writer, chunk, report)
        if on_progress is not None:
            on_progress(report.rows)
    if kind == "inventory" and mode is ImportMode.FULL:
        _zero_missing(engine, seen, report.failed_keys, report)
    return report


def _write_chunk(engine: Engine, writer: Writer, chunk: list[tuple[int, Any]],
                 report: ImportReport) -> None:
    with UnitOfWork(engine) as uow:
        now = utcnow()
        mark, counts = uow.pending_mark(), report.snapshot()
        try:
            with uow.savepoint():
                writer(uow, chunk, report, now)
        except IntegrityError:
            # Forget what the failed attempt recorded, then find the row the database refuses.
            uow.discard_since(mark)
            report.restore(counts)
            _write_rows_one_by_one(uow, writer, chunk, report, now)
        uow.commit()


def _write_rows_one_by_one(uow: UnitOfWork, writer: Writer, chunk: list[tuple[int, Any]],
                           report: ImportReport, now: dt.datetime) -> None:
    for number, row in chunk:
        mark, counts = uow.pending_mark(), report.snapshot()
        try:
            with uow.savepoint():
                writer(uow, [(number, row)], report, now)
        except IntegrityError as exc:
            uow.discard_since(mark)
            report.restore(counts)
            report.fail(number, f"refused by the database: {exc.orig}")


def lines_of(data: bytes) -> Iterator[str]:
    """Lines of an uploaded file (UTF-8, with or without a byte order mark)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"the file is not UTF-8 text (byte {exc.start})") from exc
    return iter(io.StringIO(text, newline=""))
