"""A store's cart: what an associate builds with the customer before checkout.

A cart belongs to one store. Each line says how its goods reach the customer: carried out of
the store now (`take_now`), delivered (`ship`, routed like a web order at checkout) or
collected at another store (`pickup`). A take-now or pickup line holds its stock at its
location for a while (a reservation that expires); a ship line holds nothing until checkout.

Prices are the server's: a line's unit price is the catalog's unless overridden with a
reason; discounts are taken off a line or the whole cart; tax is worked out per line from
the rates a tax provider gives (see `price`). The client never sends totals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from oms.domain.errors import FieldError, InvalidState, NotFound, ValidationFailed

#: At most this many lines in a cart, and units in a line.
MAX_LINES = 200
MAX_LINE_QUANTITY = 999
#: At most this many discounts in a cart.
MAX_DISCOUNTS = 50


class Fulfillment(StrEnum):
    TAKE_NOW = "take_now"
    SHIP = "ship"
    PICKUP = "pickup"


class TenderMethod(StrEnum):
    CARD = "card"
    CASH = "cash"
    GIFT_CARD = "gift_card"
    PAY_BY_LINK = "pay_by_link"


class TenderStatus(StrEnum):
    #: Paid, or authorised: it counts toward the total.
    AUTHORIZED = "authorized"
    #: A payment link waiting for the customer.
    PENDING = "pending"
    #: A payment link the customer did not pay, or paid too late.
    FAILED = "failed"


@dataclass(frozen=True)
class Tender:
    """A payment toward the cart: a card authorised for `amount_minor`, or cash handed over
    (`tendered_minor`), of which `amount_minor` pays and the rest is the change."""

    id: str
    method: TenderMethod
    amount_minor: int
    tendered_minor: int
    psp: str | None = None
    #: The PSP's authorisation; a gift card's code; a payment link's reference.
    reference: str | None = None
    status: TenderStatus = TenderStatus.AUTHORIZED
    #: A payment link: where the customer pays, and until when.
    link_url: str | None = None
    link_expires_at: dt.datetime | None = None

    @property
    def change_minor(self) -> int:
        return self.tendered_minor - self.amount_minor

    def status_at(self, now: dt.datetime) -> TenderStatus:
        """A link not paid by its expiry has failed."""
        if (self.status is TenderStatus.PENDING and self.link_expires_at is not None
                and now >= self.link_expires_at):
            return TenderStatus.FAILED
        return self.status


@dataclass(frozen=True)
class Approval:
    """A manager's decision on rules of the cart; it holds while the cart stays as it was
    (`cart_version`)."""

    id: str
    rule_ids: tuple[str, ...]
    granted: bool
    by_key: str
    note: str | None
    at: dt.datetime
    cart_version: int


class CartStatus(StrEnum):
    OPEN = "open"
    CHECKED_OUT = "checked_out"


@dataclass(frozen=True)
class Customer:
    email: str | None = None
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class ShippingChoice:
    """How the ship lines are delivered: a service level of a carrier, to an address."""

    service_level: str
    carrier: str
    #: As the API takes it: line1, city, postal_code, country, and what else was given.
    address: Mapping[str, Any]

    @property
    def country(self) -> str:
        country: str = self.address["country"]
        return country

    @property
    def region(self) -> str | None:
        region: str | None = self.address.get("region")
        return region


@dataclass(frozen=True)
class PriceOverride:
    unit_price_minor: int
    reason: str


@dataclass
class CartLine:
    id: str
    sku: str
    name: str
    tax_class: str
    quantity: int
    fulfillment: Fulfillment
    #: Where its stock is held: the cart's store (take now), the pickup store; None (ship).
    location_id: str | None
    catalog_price_minor: int
    override: PriceOverride | None = None
    #: The barcode scanned for it, if it was scanned.
    barcode: str | None = None
    #: The reservation holding its stock (take now, pickup).
    hold_id: str | None = None

    @property
    def unit_price_minor(self) -> int:
        return self.override.unit_price_minor if self.override else self.catalog_price_minor

    @property
    def holds_stock(self) -> bool:
        return self.fulfillment is not Fulfillment.SHIP

    def same_goods(self, sku: str, fulfillment: Fulfillment, location_id: str | None) -> bool:
        """A scan of these goods adds to this line (not to one whose price was changed)."""
        return (self.sku == sku and self.fulfillment is fulfillment
                and self.location_id == location_id and self.override is None)


@dataclass(frozen=True)
class Discount:
    """A percentage or an amount off one line (`line_id`) or off the whole cart."""

    id: str
    reason: str
    line_id: str | None = None
    percentage: Decimal | None = None
    amount_minor: int | None = None

    def __post_init__(self) -> None:
        if (self.percentage is None) == (self.amount_minor is None):
            raise ValueError("a discount is a percentage or an amount, not both")


@dataclass(frozen=True)
class TaxRate:
    #: Percent, e.g. 19.
    rate: Decimal
    prices_include_tax: bool


@dataclass(frozen=True)
class LinePrice:
    line_id: str
    gross_minor: int
    discount_minor: int
    tax_minor: int
    #: The tax is in the price (EU) rather than on top of it (US).
    tax_included: bool = True
    #: A tax-exempt cart: the tax taken out of a price that includes it.
    exempted_minor: int = 0
    #: The rate applied, percent.
    rate: Decimal = Decimal(0)

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.discount_minor

    @property
    def added_tax_minor(self) -> int:
        """The tax the customer pays on top of the price."""
        return 0 if self.tax_included else self.tax_minor


@dataclass(frozen=True)
class Pricing:
    lines: Mapping[str, LinePrice]
    #: What each discount took off, by its id.
    discounts: Mapping[str, int]
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    tax_minor: int
    grand_total_minor: int
    #: Some tax came from the fallback rate: the provider gave none.
    tax_estimated: bool
    #: The tax on shipping the customer pays on top of its price.
    shipping_added_tax_minor: int = 0
    #: A tax-exempt cart: the tax taken out of prices that include it, shipping's too.
    exempted_minor: int = 0
    shipping_exempted_minor: int = 0


#: The tax class of shipping charges.
SHIPPING_TAX_CLASS = "standard"


def percent_of(minor: int, percentage: Decimal) -> int:
    """`percentage` % of an amount, rounded half up to the minor unit."""
    return int((Decimal(minor) * percentage / 100).quantize(Decimal(1), ROUND_HALF_UP))


def tax_of(net_minor: int, rate: TaxRate) -> int:
    """The tax on an amount, rounded half up to the minor unit: included in it (EU prices)
    or on top of it (US prices)."""
    if rate.prices_include_tax:
        share = Decimal(net_minor) * rate.rate / (100 + rate.rate)
    else:
        share = Decimal(net_minor) * rate.rate / 100
    return int(share.quantize(Decimal(1), ROUND_HALF_UP))


def _spread(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` over `weights` in proportion, the parts summing to it exactly (largest
    remainders take the leftover units; ties go to the earlier)."""
    total = sum(weights)
    if total == 0 or amount == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in remainders[:amount - sum(shares)]:
        shares[i] += 1
    return shares


@dataclass
class Cart:
    id: str
    location_id: str
    currency: str
    status: CartStatus
    created_by_key: str
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int = 1
    customer: Customer = field(default_factory=Customer)
    lines: list[CartLine] = field(default_factory=list)
    discounts: list[Discount] = field(default_factory=list)
    #: When the holds of its lines run out unless the cart changes again.
    holds_expire_at: dt.datetime | None = None
    shipping: ShippingChoice | None = None
    tenders: list[Tender] = field(default_factory=list)
    #: The order it became at checkout.
    order_id: str | None = None
    #: How many events it recorded (their sequence goes on from it).
    events: int = 0
    #: The certificate that exempts the sale from tax.
    tax_exemption: str | None = None
    approvals: list[Approval] = field(default_factory=list)
    #: What a receipt shows of the sale that the order does not keep (the tax in prices
    #: that include it, the rates, the discounts' reasons), as checkout priced it.
    receipt: dict[str, Any] | None = None

    def approved_rules(self) -> set[str]:
        """The rules a manager approved since the cart last changed."""
        return {r for a in self.approvals if a.granted and a.cart_version == self.version
                for r in a.rule_ids}

    @property
    def paid_minor(self) -> int:
        """What the payments authorised or paid cover (a link counts once it is paid)."""
        return sum(t.amount_minor for t in self.tenders
                   if t.status is TenderStatus.AUTHORIZED)

    @property
    def pending_minor(self) -> int:
        return sum(t.amount_minor for t in self.tenders if t.status is TenderStatus.PENDING)

    def tender(self, tender_id: str) -> Tender:
        for t in self.tenders:
            if t.id == tender_id:
                return t
        raise NotFound(f"cart {self.id} has no payment {tender_id!r}")

    @property
    def ship_lines(self) -> list[CartLine]:
        return [x for x in self.lines if x.fulfillment is Fulfillment.SHIP]

    def line(self, line_id: str) -> CartLine:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise NotFound(f"cart {self.id} has no line {line_id!r}")

    def check_open(self) -> None:
        if self.status is not CartStatus.OPEN:
            raise InvalidState(f"cart {self.id} is {self.status.value} (order "
                               f"{self.order_id}): it can no longer change")

    def find_same(self, sku: str, fulfillment: Fulfillment, location_id: str | None
                  ) -> CartLine | None:
        return next((x for x in self.lines if x.same_goods(sku, fulfillment, location_id)),
                    None)

    def add_line(self, line: CartLine) -> None:
        if len(self.lines) >= MAX_LINES:
            raise ValidationFailed(f"a cart holds at most {MAX_LINES} lines")
        self.lines.append(line)

    def remove_line(self, line_id: str) -> CartLine:
        line = self.line(line_id)
        self.lines.remove(line)
        # A discount of the line goes with it.
        self.discounts = [d for d in self.discounts if d.line_id != line_id]
        return line

    def add_discount(self, discount: Discount) -> None:
        if len(self.discounts) >= MAX_DISCOUNTS:
            raise ValidationFailed(f"a cart holds at most {MAX_DISCOUNTS} discounts")
        if discount.line_id is not None:
            self.line(discount.line_id)
        if discount.percentage is not None and not 0 < discount.percentage <= 100:
            raise ValidationFailed("a percentage discount is more than 0 and at most 100",
                                   [FieldError("percentage", "must be in (0, 100]")])
        if discount.amount_minor is not None and discount.amount_minor <= 0:
            raise ValidationFailed("a discount amount is more than 0",
                                   [FieldError("amount", "must be more than 0")])
        self.discounts.append(discount)

    def remove_discount(self, discount_id: str) -> None:
        found = [d for d in self.discounts if d.id == discount_id]
        if not found:
            raise NotFound(f"cart {self.id} has no discount {discount_id!r}")
        self.discounts.remove(found[0])

    def set_line(self, line_id: str, **changes: object) -> CartLine:
        line = self.line(line_id)
        changed = replace(line, **changes)  # type: ignore[arg-type]
        self.lines[self.lines.index(line)] = changed
        return changed

    def price(self, tax_rate: Callable[[str, bool], TaxRate | None], fallback: TaxRate,
              shipping_minor: int = 0) -> Pricing:
        """What the cart costs. `tax_rate(tax_class, delivered)` is the provider's rate
        where the goods are sold: the store, or where they are delivered (ship lines and the
        shipping charge). None: it has none, and `fallback` applies, marking the tax
        estimated.

        Line discounts are taken off their line's gross (together never more than it); the
        cart discounts off what is left, each of all of it, spread over the lines in
        proportion so that each line's tax is on what the customer pays for it."""
        gross = [x.unit_price_minor * x.quantity for x in self.lines]
        taken: dict[str, int] = {}
        line_off = [0] * len(self.lines)
        for i, line in enumerate(self.lines):
            for d in self.discounts:
                if d.line_id != line.id:
                    continue
                off = min(self._value(d, gross[i]), gross[i] - line_off[i])
                taken[d.id] = off
                line_off[i] += off
        left = [g - off for g, off in zip(gross, line_off, strict=True)]
        # Every cart discount is of what the line discounts left, whatever their order;
        # together never more than that.
        base = sum(left)
        off_cart = 0
        for d in self.discounts:
            if d.line_id is None:
                taken[d.id] = min(self._value(d, base), base - off_cart)
                off_cart += taken[d.id]
        for i, part in enumerate(_spread(off_cart, left)):
            left[i] -= part
            line_off[i] += part

        estimated = False

        def rate_of(tax_class: str, delivered: bool) -> TaxRate:
            nonlocal estimated
            found = tax_rate(tax_class, delivered)
            if found is None:
                estimated = True
                return fallback
            return found

        exempt = self.tax_exemption is not None

        def taxed(minor: int, rate: TaxRate) -> tuple[int, int]:
            """(tax, tax taken out of the price): an exempt cart pays none, and a price
            that includes tax is that much lower."""
            tax = tax_of(minor, rate)
            if not exempt:
                return tax, 0
            return 0, tax if rate.prices_include_tax else 0

        prices: dict[str, LinePrice] = {}
        added_tax = 0
        for i, line in enumerate(self.lines):
            rate = rate_of(line.tax_class, line.fulfillment is Fulfillment.SHIP)
            tax, exempted = taxed(left[i], rate)
            if not rate.prices_include_tax:
                added_tax += tax
            prices[line.id] = LinePrice(line.id, gross[i], line_off[i], tax,
                                        rate.prices_include_tax, exempted,
                                        Decimal(0) if exempt else rate.rate)
        shipping_tax = shipping_added = shipping_exempted = 0
        if shipping_minor:
            rate = rate_of(SHIPPING_TAX_CLASS, True)
            shipping_tax, shipping_exempted = taxed(shipping_minor, rate)
            if not rate.prices_include_tax:
                shipping_added = shipping_tax
                added_tax += shipping_tax
        subtotal = sum(gross)
        discount = sum(line_off)
        tax = sum(p.tax_minor for p in prices.values()) + shipping_tax
        exempted = sum(p.exempted_minor for p in prices.values()) + shipping_exempted
        return Pricing(prices, taken, subtotal, discount, shipping_minor, tax,
                       subtotal - discount + shipping_minor + added_tax - exempted,
                       estimated, shipping_added, exempted, shipping_exempted)

    @staticmethod
    def _value(discount: Discount, of_minor: int) -> int:
        if discount.percentage is not None:
            return percent_of(of_minor, discount.percentage)
        assert discount.amount_minor is not None
        return discount.amount_minor
