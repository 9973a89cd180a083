"""Products and their barcodes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from stdnum import ean
from stdnum.exceptions import ValidationError as StdnumError

from oms.domain.money import Money


class BarcodeType(StrEnum):
    EAN13 = "ean13"
    UPCA = "upca"
    UPCE = "upce"
    EAN8 = "ean8"
    GTIN14 = "gtin14"
    CODE128 = "code128"


#: The GS1 types: digits only, this many, the last a check digit.
GTIN_LENGTHS = {BarcodeType.EAN13: 13, BarcodeType.UPCA: 12, BarcodeType.UPCE: 8,
                BarcodeType.EAN8: 8, BarcodeType.GTIN14: 14}


def upce_to_upca(value: str) -> str:
    """The UPC-A a zero-suppressed UPC-E stands for (GS1 General Specifications 2.1.3): its
    number system digit, the six digits expanded by the last of them, and its check digit."""
    system, d, check = value[0], value[1:7], value[7]
    last = d[5]
    if last in "012":
        body = d[0:2] + last + "0000" + d[2:5]
    elif last == "3":
        body = d[0:3] + "00000" + d[3:5]
    elif last == "4":
        body = d[0:4] + "00000" + d[4]
    else:
        body = d[0:5] + "0000" + last
    return system + body + check


def validate_barcode(kind: BarcodeType, value: str) -> str:
    """Return the barcode value if it is well formed, else raise ValueError saying why.

    The GS1 types carry a check digit, verified with python-stdnum; a UPC-E's is that of the
    UPC-A it expands to, and its number system is 0 or 1. Code 128 has no check digit in the
    printed value; it may hold any printable ASCII character.
    """
    if kind in GTIN_LENGTHS:
        length = GTIN_LENGTHS[kind]
        if len(value) != length or not value.isdigit():
            raise ValueError(f"{kind.value} barcode must be {length} digits, got {value!r}")
        if kind is BarcodeType.UPCE and value[0] not in "01":
            raise ValueError(f"upce barcode {value!r} must begin with 0 or 1")
        try:
            ean.validate(upce_to_upca(value) if kind is BarcodeType.UPCE else value)
        except StdnumError as exc:
            raise ValueError(f"{kind.value} barcode {value!r} has a wrong check digit") from exc
        return value
    if not 1 <= len(value) <= 48 or not all(32 <= ord(c) <= 126 for c in value):
        raise ValueError("code128 barcode must be 1 to 48 printable ASCII characters")
    return value


def ean13_with_check_digit(first_twelve: str) -> str:
    """Complete a 12-digit GS1 prefix with its check digit."""
    return first_twelve + ean.calc_check_digit(first_twelve)


@dataclass(frozen=True)
class Barcode:
    type: BarcodeType
    value: str

    def __post_init__(self) -> None:
        validate_barcode(self.type, self.value)


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: Money
    tax_class: str
    barcodes: tuple[Barcode, ...] = field(default_factory=tuple)
    preorder_ship_date: dt.date | None = None

    def __post_init__(self) -> None:
        if self.price.amount < 0:
            raise ValueError("price must not be negative")
        values = [b.value for b in self.barcodes]
        if len(values) != len(set(values)):
            raise ValueError("a barcode is listed twice")

    @property
    def is_preorder(self) -> bool:
        return self.preorder_ship_date is not None
