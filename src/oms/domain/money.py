"""Exact money: a Decimal amount in an ISO 4217 currency, never a float."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.core import get_global
from babel.numbers import get_currency_precision

#: ISO 4217 codes of money that is or was legal tender somewhere (CLDR). Not the codes of no
#: money: XXX (no currency), XTS (testing), gold and other metals, fund and accounting units.
CURRENCIES = frozenset(
    code
    for history in get_global("territory_currencies").values()
    for code, _start, _end, tender in history
    if tender
)

#: Amounts are stored as signed 64-bit counts of minor units.
MAX_MINOR = 2**63 - 1


def validate_currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"{code!r} is not an ISO 4217 code of a currency")
    return code


@functools.lru_cache(maxsize=1024)
def minor_units(currency: str) -> int:
    """Digits after the decimal point the currency uses (EUR 2, JPY 0, KWD 3). Kept per
    currency: an order's amounts ask a hundred times, and CLDR's answer does not change
    while the process runs."""
    return int(get_currency_precision(currency))


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        validate_currency(self.currency)
        if not self.amount.is_finite():
            raise ValueError("amount must be a finite number")
        digits = minor_units(self.currency)
        exponent = self.amount.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > digits and self.amount != self.amount.quantize(
            Decimal(1).scaleb(-digits)
        ):
            raise ValueError(f"{self.currency} amounts have at most {digits} decimal places")
        if abs(self.minor) > MAX_MINOR:
            raise ValueError(f"amount is too large for {self.currency}")

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        """Parse a decimal string as the API receives it; floats are refused upstream."""
        try:
            value = Decimal(amount.strip())
        except (InvalidOperation, AttributeError) as exc:
            raise ValueError(f"{amount!r} is not a decimal number") from exc
        return cls(value, currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        return cls(Decimal(minor).scaleb(-minor_units(currency)), currency)

    @property
    def minor(self) -> int:
        return int(self.amount.scaleb(minor_units(self.currency)))

    def formatted_amount(self) -> str:
        """The amount as a string with exactly the currency's decimal places."""
        return str(self.amount.quantize(Decimal(1).scaleb(-minor_units(self.currency))))


def format_minor(minor: int, currency: str) -> str:
    """`Money.from_minor(minor, currency).formatted_amount()`, without the Decimal: an order's
    view writes a few dozen amounts."""
    digits = minor_units(currency)
    whole, part = divmod(abs(minor), 10 ** digits)
    sign = "-" if minor < 0 else ""
    return f"{sign}{whole}.{part:0{digits}d}" if digits else f"{sign}{whole}"
