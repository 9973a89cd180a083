"""Bulk imports of products, locations and inventory from CSV or JSON Lines.

An import first reads and checks the whole file, so that a file that cannot be read (not
UTF-8, a CSV without its header, a field or a JSON line past the reader's limits) is refused
before any row is applied. Bad rows are reported with their line number and reason and never
stop or corrupt the others. The good rows are then written in chunks, one transaction per
chunk, each with the run's progress (see import_runs): a resend resumes where a run stopped. A
chunk that the database refuses is retried row by row, each in its own savepoint.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from oms.adapters.db.import_runs import ImportRunRecord
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.catalog import Product
from oms.domain.errors import FieldError, ValidationFailed
from oms.domain.events import Event, utcnow
from oms.domain.inventory import MAX_QUANTITY
from oms.domain.locations import Location
from oms.schemas import (
    InventoryRow,
    LocationRow,
    OrderIn,
    ProductRow,
    location_out,
    product_out,
)
from oms.services import import_runs
from oms.services.import_runs import ImportJob, RunHandle, Sender
from oms.services.inventory import record_change

MAX_REPORTED_ERRORS = 1000
#: A JSON line nested deeper than this is no row of any import (an order is 3 levels deep).
MAX_JSON_DEPTH = 32
#: Lines past the reader's limits named in the refusal of a file.
MAX_UNREADABLE_REPORTED = 20
#: An uploaded file stays in memory up to this size, then goes to a temporary file.
SPOOL_IN_MEMORY = 1024 * 1024


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
    format: FileFormat = FileFormat.CSV
    rows: int = 0
    imported: int = 0
    failed: int = 0
    zeroed: int = 0
    #: Rows already loaded before with the same content (orders sent again).
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    import_id: str | None = None
    status: str = import_runs.COMPLETED
    #: Every line up to this one was applied or is listed in `errors`; none after it.
    applied_through_line: int = 0
    #: Set when this request resumed a run that had stopped after this line.
    resumed_after_line: int | None = None
    #: The stored report of a run that had completed, sent again.
    replayed: bool = False

    def snapshot(self) -> tuple[int, int, int]:
        return self.imported, self.failed, len(self.errors)

    def restore(self, counts: tuple[int, int, int]) -> None:
        self.imported, self.failed = counts[0], counts[1]
        del self.errors[counts[2]:]

    def fail(self, line: int, reason: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line, reason))

    def counts(self) -> dict[str, Any]:
        """What a run stores after each step: the counts and the refused lines."""
        return {
            "rows": self.rows, "imported": self.imported, "failed": self.failed,
            "zeroed": self.zeroed, "duplicates": self.duplicates,
            "errors": [{"line": e.line, "reason": e.reason}
                       for e in sorted(self.errors, key=lambda e: e.line)],
        }

    def restore_counts(self, stored: dict[str, Any]) -> None:
        self.rows, self.imported, self.failed = stored["rows"], stored["imported"], stored["failed"]
        self.zeroed, self.duplicates = stored["zeroed"], stored["duplicates"]
        self.errors = [RowError(e["line"], e["reason"]) for e in stored["errors"]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id, "status": self.status, "kind": self.kind,
            "mode": self.mode.value, "format": self.format.value,
            **self.counts(),
            "errors_truncated": self.failed > len(self.errors),
            "applied_through_line": self.applied_through_line,
            "resumed_after_line": self.resumed_after_line,
        }


class ImportInterrupted(Exception):
    """An import stopped part way (the database failed, the process is stopping): the report
    says which lines were applied; a resend with the same Idempotency-Key resumes it."""

    def __init__(self, report: ImportReport, cause: BaseException) -> None:
        super().__init__(f"import {report.import_id} stopped after line "
                         f"{report.applied_through_line}: {cause.__class__.__name__}")
        self.report = report
        self.cause = cause


class ImportFile:
    """The bytes of one import file, read as often as the import needs (once to check every
    line, once to apply the good ones) with its SHA-256. An upload is spooled: kept in memory
    while small, in a temporary file beyond that."""

    def __init__(self, binary: IO[bytes], sha256: str | None = None) -> None:
        self._binary = binary
        self._digest = hashlib.sha256()
        self._sha256 = sha256
        self.size = 0
        #: Lines in a file opened from disk (for a progress bar).
        self.line_count: int | None = None

    @classmethod
    def spooled(cls) -> ImportFile:
        return cls(tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY))

    @classmethod
    def open(cls, path: Path) -> ImportFile:
        binary = path.open("rb")
        digest, newlines = hashlib.sha256(), 0
        for block in iter(lambda: binary.read(1024 * 1024), b""):
            digest.update(block)
            newlines += block.count(b"\n")
        file = cls(binary, digest.hexdigest())
        file.line_count = newlines
        return file

    @classmethod
    def of_lines(cls, lines: Iterable[str]) -> ImportFile:
        file = cls.spooled()
        for line in lines:
            file.write((line if line.endswith(("\n", "\r")) else line + "\n").encode())
        return file

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self._binary.write(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._sha256 or self._digest.hexdigest()

    def lines(self) -> Iterator[str]:
        """The file's lines from the start, decoded; a line that is not UTF-8 refuses the file.
        Lines end at LF, CRLF or a lone CR, as text files from any system do."""
        self._binary.seek(0)
        count = 0
        for raw in self._binary:
            try:
                text = raw.decode("utf-8-sig" if count == 0 else "utf-8")
            except UnicodeDecodeError as exc:
                line = count + 1
                raise ValidationFailed(
                    f"the file is not UTF-8 text: line {line} (byte {exc.start + 1} of the line)",
                    [FieldError(f"line {line}", "not UTF-8 text")]) from exc
            for part in _LONE_CR.split(text) if "\r" in text else (text,):
                if part:
                    count += 1
                    yield part

    def close(self) -> None:
        self._binary.close()

    def __enter__(self) -> ImportFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


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
    "orders": OrderIn,
}
#: The columns a CSV file's header must name (the others are optional).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "products": ("sku", "name", "price", "currency"),
    "locations": ("id", "type", "name", "line1", "city", "postal_code", "country", "lat", "lon"),
    "inventory": ("location_id", "sku", "on_hand"),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "products": ("tax_class", "barcodes", "preorder_ship_date"),
    "locations": ("line2", "region", "capabilities", "priority", "active", "timezone"),
    "inventory": ("safety_stock",),
}


@dataclass(frozen=True)
class Refused:
    """A row that is reported and skipped; `key` is the (location, sku) of an inventory row."""

    reason: str
    key: tuple[str, str] | None = None


@dataclass(frozen=True)
class Unreadable:
    """A line past the reader's limits: the file is refused whole."""

    reason: str


def _raw_rows(
    lines: Iterable[str], kind: str, fmt: FileFormat
) -> Iterator[tuple[int, dict[str, Any] | Refused | Unreadable]]:
    """(line number, row as a dict), or why the line is refused or cannot be read at all."""
    if fmt is FileFormat.JSONL:
        yield from _json_rows(lines)
        return
    consumed = 0

    def counted() -> Iterator[str]:
        # The reader's own line_num lags on an error inside a quoted field.
        nonlocal consumed
        for line in lines:
            consumed += 1
            yield line

    reader = csv.DictReader(counted())
    _check_header(reader, kind)
    mapper = _CSV_MAPPERS[kind]
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader starts again on the next line; every such line is reported.
            yield consumed, Unreadable(_csv_reason(exc))
            continue
        number = consumed
        if None in row:
            yield number, Refused("more fields than the header names")
            continue
        if all(v in ("", None) for v in row.values()):
            continue
        yield number, mapper(row)


def _csv_reason(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"a field is longer than {csv.field_size_limit()} characters"
    return f"not readable as CSV: {exc}"


def _check_header(reader: csv.DictReader[str], kind: str) -> None:
    """The first line must name the columns: a file without it would be read as rows of
    nothing at all."""
    required, optional = REQUIRED_COLUMNS[kind], OPTIONAL_COLUMNS[kind]
    expected = ",".join(required) + "".join(f"[,{c}]" for c in optional)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise ValidationFailed(f"line 1 is not a CSV header: {_csv_reason(exc)}",
                               [FieldError("line 1", _csv_reason(exc))]) from exc
    if not header:
        raise ValidationFailed(f"the file is empty: a {kind} CSV starts with the header "
                               f"line {expected}", [FieldError("line 1", "no header")])
    reader.fieldnames = names = [name.strip() for name in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise ValidationFailed(
            f"the first line must be the header naming the columns {expected}; it lacks "
            f"{', '.join(missing)}",
            [FieldError("line 1", f"missing column {c}") for c in missing])


def _json_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | Refused | Unreadable]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except RecursionError:
            yield number, Unreadable(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            continue
        except json.JSONDecodeError as exc:
            yield number, Refused(f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        except ValueError as exc:  # e.g. an integer of more digits than Python converts
            yield number, Refused(f"not valid JSON: {exc}")
            continue
        if _nested_deeper(value, MAX_JSON_DEPTH):
            yield number, Unreadable(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif not isinstance(value, dict):
            yield number, Refused("not a JSON object")
        else:
            yield number, value


def _nested_deeper(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                   else item))
    return False


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {str(e['msg']).removeprefix('Value error, ')}" if where
                     else str(e["msg"]))
    return "; ".join(parts)


def read_rows(lines: Iterable[str], kind: str, fmt: FileFormat, mode: ImportMode
              ) -> Iterator[tuple[int, Any]]:
    """(line number, the row's model), or (line number, Refused or Unreadable)."""
    model = _ROW_MODELS[kind]
    for number, raw in _raw_rows(lines, kind, fmt):
        if isinstance(raw, Refused | Unreadable):
            yield number, raw
            continue
        try:
            # A CSV cell is text whatever it holds: it is read as the value it spells. JSON
            # Lines are JSON, taken as strictly as the API takes it (the models' own rule).
            row = model.model_validate(raw, strict=False if fmt is FileFormat.CSV else None)
        except ValidationError as exc:
            key = ((raw["location_id"], raw["sku"])
                   if isinstance(raw.get("location_id"), str) and isinstance(raw.get("sku"), str)
                   else None)
            yield number, Refused(describe_validation_error(exc), key)
            continue
        if isinstance(row, InventoryRow) and mode is ImportMode.FULL and row.on_hand < 0:
            yield number, Refused("on_hand must not be negative in a full import",
                                  (row.location_id, row.sku))
            continue
        yield number, row


@dataclass
class CheckedFile:
    """What reading the whole file found, before anything is applied."""

    report: ImportReport
    last_line: int = 0
    #: Full inventory imports: the skus each location's snapshot lists, and the (location,
    #: sku) of refused lines, which must not go to zero.
    listed: dict[str, set[str]] = field(default_factory=dict)
    keep: set[tuple[str, str]] = field(default_factory=set)


def check_file(file: ImportFile, report: ImportReport) -> CheckedFile:
    """Read every line: bad rows go into the report; a file with lines that cannot be read at
    all is refused whole (ValidationFailed), so that nothing of it is applied."""
    checked = CheckedFile(report)
    unreadable: list[FieldError] = []
    unreadable_count = 0
    kind, mode = report.kind, report.mode
    for number, row in read_rows(file.lines(), kind, report.format, mode):
        checked.last_line = number
        if isinstance(row, Unreadable):
            unreadable_count += 1
            if len(unreadable) < MAX_UNREADABLE_REPORTED:
                unreadable.append(FieldError(f"line {number}", row.reason))
            continue
        report.rows += 1
        if isinstance(row, Refused):
            report.fail(number, row.reason)
            if row.key is not None:
                checked.keep.add(row.key)
        elif kind == "inventory":
            checked.listed.setdefault(row.location_id, set()).add(row.sku)
    if unreadable:
        first = unreadable[0]
        more = (f" (and {unreadable_count - 1} more such line"
                f"{'s' if unreadable_count > 2 else ''})" if unreadable_count > 1 else "")
        raise ValidationFailed(f"the file cannot be read: {first.field}: {first.message}{more}; "
                               "nothing was imported", unreadable)
    return checked


def _chunks(rows: Iterator[tuple[int, Any]], size: int, key: Callable[[Any], Any] | None
            ) -> Iterator[list[tuple[int, Any]]]:
    """Chunks of at most `size` rows, in which no key appears twice (a later row for the same
    key starts a new chunk, so it is applied after the earlier one)."""
    chunk: list[tuple[int, Any]] = []
    keys: set[Any] = set()
    for number, row in rows:
        k = number if key is None else key(row)
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
    uow.reference_changed()
    for location in locations:
        version = versions[location.id][0]
        uow.record(Event("location.upserted", location.id, version,
                         location_out(location, version, now), now))
    report.imported += len(locations)


def _inventory_writer(mode: ImportMode) -> Writer:
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
            else:
                valid.append((number, row))
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
        changed = uow.stock.set_levels(params, now, add=mode is ImportMode.DELTA)
        for number, row in valid:
            level = changed.get((row.location_id, row.sku))
            if level is None:
                report.fail(number, f"a delta of {row.on_hand} would take on_hand below zero "
                                    f"or above {MAX_QUANTITY}")
                continue
            record_change(uow, level, f"import_{mode.value}", now)
            report.imported += 1

    return write


def _zero_missing(uow: UnitOfWork, now: dt.datetime, *, location_id: str, listed: set[str],
                  keep: set[tuple[str, str]], report: ImportReport) -> None:
    """A full snapshot of a location: skus it does not list go to zero on hand."""
    missing = sorted(s for s in uow.stock.skus_at(location_id) - listed
                     if (location_id, s) not in keep)
    for i in range(0, len(missing), 1000):
        params = [{"location_id": location_id, "sku": s, "on_hand": 0}
                  for s in missing[i : i + 1000]]
        for level in uow.stock.set_levels(params, now).values():
            record_change(uow, level, "import_full_missing", now)
    report.zeroed += len(missing)


Progress = Callable[[int], None]


def run_import(
    engine: Engine,
    kind: str,
    source: ImportFile | Iterable[str],
    fmt: FileFormat,
    mode: ImportMode = ImportMode.DELTA,
    chunk_size: int = 1000,
    on_progress: Progress | None = None,
    *,
    sender: Sender | None = None,
) -> ImportReport:
    """Import one file. For products and locations both modes upsert what the file lists;
    for inventory `delta` adds to on_hand and `full` replaces each listed location's
    snapshot. `on_progress` hears the line applied through after each chunk."""
    writer: Writer
    if kind == "products":
        writer, key = _write_products, (lambda r: r.sku)
    elif kind == "locations":
        writer, key = _write_locations, (lambda r: r.id)
    elif kind == "inventory":
        writer, key = _inventory_writer(mode), (lambda r: (r.location_id, r.sku))
    else:
        raise ValueError(f"unknown import kind {kind!r}")
    return execute(engine, ImportReport(kind, mode, fmt), source, _with_row_fallback(writer),
                   key, chunk_size, on_progress, sender or Sender())


def execute(engine: Engine, report: ImportReport, source: ImportFile | Iterable[str],
            apply: Writer, key: Callable[[Any], Any] | None, chunk_size: int,
            on_progress: Progress | None, sender: Sender) -> ImportReport:
    """Check the whole file, then apply its good rows chunk by chunk as one import run: a
    new one, or the one this request sends again (resumed after its last chunk, or its report
    replayed)."""
    if not isinstance(source, ImportFile):
        with ImportFile.of_lines(source) as file:
            return execute(engine, report, file, apply, key, chunk_size, on_progress, sender)
    file = source
    job = ImportJob(report.kind, report.mode.value, report.format.value, file.sha256)
    previous = import_runs.previous_run(engine, sender, job, utcnow())
    if previous is not None and previous.status == import_runs.COMPLETED:
        return _replayed(report, previous)
    checked = check_file(file, report)
    run = import_runs.begin(engine, sender, job, previous, report.counts())
    report.import_id, report.status = run.id, import_runs.RUNNING
    if run.report is not None:
        report.restore_counts(run.report)
        report.resumed_after_line = run.applied_through_line
    report.applied_through_line = run.applied_through_line
    committed = report.counts()
    try:
        rows = ((n, row) for n, row in read_rows(file.lines(), report.kind, report.format,
                                                 report.mode)
                if n > run.applied_through_line and not isinstance(row, Refused | Unreadable))
        for chunk in _chunks(rows, chunk_size, key):
            run = _step(engine, run, report, _chunk_step(apply, chunk, report),
                        through_line=chunk[-1][0])
            committed = report.counts()
            report.applied_through_line = run.applied_through_line
            if on_progress is not None:
                on_progress(run.applied_through_line)
        if report.kind == "inventory" and report.mode is ImportMode.FULL:
            for location_id in sorted(checked.listed):
                if run.zeroed_through is not None and location_id <= run.zeroed_through:
                    continue
                zero = partial(_zero_missing, location_id=location_id,
                               listed=checked.listed[location_id], keep=checked.keep,
                               report=report)
                run = _step(engine, run, report, zero, zeroed_through=location_id)
                committed = report.counts()
        report.applied_through_line = max(checked.last_line, run.applied_through_line)
        import_runs.finish(engine, run, report.counts(), checked.last_line)
    except import_runs.RunTakenOver as exc:
        raise import_runs.ImportInProgress(run.id, 1) from exc
    except (Exception, KeyboardInterrupt) as exc:
        # What the failed step counted did not commit: report what did, as stored (a stop
        # between a commit and its return leaves this process a step behind the database).
        report.restore_counts(committed)
        report.status = import_runs.INTERRUPTED
        try:
            import_runs.release(engine, run)
            stored = import_runs.get_run(engine, run.id)
            report.restore_counts(stored.report)
            report.applied_through_line = stored.applied_through_line
        except Exception as failure:  # the database may be what failed
            exc.add_note(f"reading the run's progress failed too: {failure!r}")
        raise ImportInterrupted(report, exc) from exc
    report.status = import_runs.COMPLETED
    if on_progress is not None:
        on_progress(report.applied_through_line)
    return report


def _replayed(report: ImportReport, run: ImportRunRecord) -> ImportReport:
    report.restore_counts(run.report)
    report.import_id, report.status, report.replayed = run.id, run.status, True
    report.applied_through_line = run.applied_through_line
    return report


def _chunk_step(apply: Writer, chunk: list[tuple[int, Any]], report: ImportReport
                ) -> Callable[[UnitOfWork, dt.datetime], None]:
    def write(uow: UnitOfWork, now: dt.datetime) -> None:
        apply(uow, chunk, report, now)

    return write


def _step(engine: Engine, run: RunHandle, report: ImportReport,
          write: Callable[[UnitOfWork, dt.datetime], None], *, through_line: int | None = None,
          zeroed_through: str | None = None) -> RunHandle:
    """One transaction: the run claimed for this step, the step's writes and the run's
    progress commit together, or none of them does."""
    with UnitOfWork(engine) as uow:
        now = utcnow()
        import_runs.claim_step(uow, run, now)
        write(uow, now)
        after = import_runs.record_step(uow, run, report.counts(), report.imported, now,
                                        through_line=through_line, zeroed_through=zeroed_through)
        uow.commit()
    return after


def _with_row_fallback(writer: Writer) -> Writer:
    """The chunk in one savepoint; if the database refuses it, each row in its own so that
    only the refused rows are reported and the others written."""

    def write(uow: UnitOfWork, chunk: list[tuple[int, Any]], report: ImportReport,
              now: dt.datetime) -> None:
        mark, counts = uow.pending_mark(), report.snapshot()
        try:
            with uow.savepoint():
                writer(uow, chunk, report, now)
        except (IntegrityError, DataError):
            # Forget what the failed attempt recorded, then find the row the database refuses.
            uow.discard_since(mark)
            report.restore(counts)
            _write_rows_one_by_one(uow, writer, chunk, report, now)

    return write


def _write_rows_one_by_one(uow: UnitOfWork, writer: Writer, chunk: list[tuple[int, Any]],
                           report: ImportReport, now: dt.datetime) -> None:
    for number, row in chunk:
        mark, counts = uow.pending_mark(), report.snapshot()
        try:
            with uow.savepoint():
                writer(uow, [(number, row)], report, now)
        except (IntegrityError, DataError) as exc:
            uow.discard_since(mark)
            report.restore(counts)
            report.fail(number, f"refused by the database: {exc.orig}")
