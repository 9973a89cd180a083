"""Wire formats (Pydantic): what the API, the importers and the event payloads speak.

Shape is checked here; business rules (check digits, currencies, countries) come from the
domain's own validators, called from here so that each error names its field. Every value is
taken as JSON writes it: no number from a string or a boolean, no boolean from "yes", no time
from a number; and the OpenAPI schema shows each rule checked here, so that a client built
from it sends nothing the API refuses for its form.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Strict as StrictTypes

from oms.domain.carts import MAX_LINE_QUANTITY, Fulfillment, TenderMethod
from oms.domain.catalog import GTIN_LENGTHS, Barcode, BarcodeType, Product, validate_barcode
from oms.domain.ids import CODE_PATTERN
from oms.domain.inventory import MAX_QUANTITY, FutureStock, StockLevel
from oms.domain.locations import (
    COUNTRIES,
    Address,
    Capability,
    Location,
    LocationType,
    time_zones,
    validate_country,
    validate_timezone,
)
from oms.domain.money import CURRENCIES, Money, minor_units, validate_currency
from oms.domain.orders import Channel, PaymentStatus, ServiceLevel
from oms.domain.webhooks import check_url

#: Strict models want an enum's Python member; on the wire it is its value, a JSON string,
#: compared exactly (no number, no other case).
AsValue = StrictTypes(False)

Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Quantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY)]
Delta = Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
DECIMAL_PATTERN = r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$"  # ASCII digits only


def amount_pattern(decimals: int, *, integer_digits: int, signed: bool) -> str:
    """A decimal string with at most `decimals` places that are not trailing zeros (JPY 1500.00
    is 1500) and six places in all."""
    places = r"\.0{1,6}" if decimals == 0 else rf"\.[0-9]{{1,{decimals}}}0{{0,{6 - decimals}}}"
    return rf"^{'-?' if signed else ''}[0-9]{{1,{integer_digits}}}({places})?$"


def amounts_in_currency(paths: list[tuple[str, ...]], *, integer_digits: int,
                        signed: bool = False) -> list[Any]:
    """JSON Schema for amounts (at `paths` in an object: property names, `[]` for a list's
    items) whose decimal places depend on the object's `currency`: EUR 2, JPY 0, KWD 3."""
    by_decimals: dict[int, list[str]] = {}
    for code in sorted(CURRENCIES):
        by_decimals.setdefault(minor_units(code), []).append(code)
    rules = []
    for decimals, codes in sorted(by_decimals.items()):
        then: dict[str, Any] = {}
        for path in paths:
            node = then
            for step in path:
                node = (node.setdefault("items", {}) if step == "[]"
                        else node.setdefault("properties", {}).setdefault(step, {}))
            node["pattern"] = amount_pattern(decimals, integer_digits=integer_digits,
                                             signed=signed)
        rules.append({"if": {"properties": {"currency": {"enum": codes}},
                             "required": ["currency"]}, "then": then})
    return rules


Currency = Annotated[str, AfterValidator(validate_currency),
                     Field(json_schema_extra={"enum": sorted(CURRENCIES)}, examples=["EUR"])]
Country = Annotated[str, AfterValidator(validate_country),
                    Field(json_schema_extra={"enum": sorted(COUNTRIES)}, examples=["DE"])]


def _list_time_zones(schema: dict[str, Any]) -> None:
    # Listed when the schema is written, not when this module is imported: it takes a while.
    schema["enum"] = sorted(time_zones())


TimeZone = Annotated[str, AfterValidator(validate_timezone),
                     Field(json_schema_extra=_list_time_zones, examples=["Europe/Berlin"])]


def _text_like(pattern: str, form: str) -> Callable[[Any], Any]:
    """A check that the value is a JSON string of this form, before it is read as a date or a
    time (which would also take a number of seconds since 1970, or "12345")."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not compiled.match(value):
            raise ValueError(f"must be {form}")
        return value

    return check


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: The http(s) URLs every check of a target URL passes, as the schema describes them: a DNS
#: name (or IPv4 address) as host, a port, printable ASCII after it. Whether the name resolves
#: and to what is found out when the URL is given, and said then.
HTTP_URL_PATTERN = (rf"^[Hh][Tt][Tt][Pp][Ss]?://({_LABEL}\.){{0,2}}{_LABEL}(:[0-9]{{1,4}})?"
                    r"([/?#][!-~]*)?$")

#: An event id as the feed gives it: two 64-bit numbers below 2**63, in hexadecimal.
EVENT_ID_PATTERN = r"^[0-7][0-9a-fA-F]{15}[0-7][0-9a-fA-F]{15}$"
#: Read by the event log's own parser, which answers "not an event id"; the schema shows its
#: rule.
EventId = Annotated[str, Field(max_length=32, json_schema_extra={"pattern": EVENT_ID_PATTERN})]

RFC3339_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
RFC3339_TIME = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")


def _in_utc(value: dt.datetime) -> dt.datetime:
    # Times are kept in UTC: year 1 at +14:00 or 9999-12-31 at -14:00 is no date there.
    try:
        value.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError("is out of range once converted to UTC") from exc
    return value


#: A calendar date as RFC 3339 writes it (JSON Schema's `date`).
Date = Annotated[dt.date, AsValue, BeforeValidator(_text_like(
    RFC3339_DATE, "a date as a string like 2026-11-20"))]
#: A time with its offset as RFC 3339 writes it (JSON Schema's `date-time`), that is a date in
#: UTC too.
UtcTime = Annotated[AwareDatetime, AsValue, BeforeValidator(_text_like(
    RFC3339_TIME, "an RFC 3339 time with its offset, as a string like 2026-11-20T10:15:00Z")),
    AfterValidator(_in_utc)]


def may_be_left_out(schema: dict[str, Any]) -> None:
    """The schema of an optional field that is refused as null (leaving it out is how to say
    nothing): its type alone, not "or null". Its model refuses null with `refuse_null`."""
    options = schema.pop("anyOf", None)
    if options:
        schema.update(next(o for o in options if o != {"type": "null"}))
    schema.pop("default", None)


def refuse_null(value: Any) -> Any:
    """A `mode="before"` field validator of the fields `may_be_left_out`: left out says
    nothing, null is refused, as the document says."""
    if value is None:
        raise ValueError("cannot be null: leave it out")
    return value


def left_out(**kwargs: Any) -> Any:
    """An optional field that may be left out but not sent as null."""
    return Field(default=None, json_schema_extra=may_be_left_out, **kwargs)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text or JSON; refusing it here names the field.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class MoneyIn(Strict):
    model_config = ConfigDict(json_schema_extra={"allOf": amounts_in_currency(
        [("amount",)], integer_digits=15, signed=True)})

    amount: Annotated[str, StringConstraints(pattern=DECIMAL_PATTERN, max_length=23)] = Field(
        description="Decimal string, e.g. \"19.90\"; numbers are refused so no float creeps in",
        examples=["19.90"],
    )
    currency: Currency

    @model_validator(mode="after")
    def _exact(self) -> MoneyIn:
        Money.parse(self.amount, self.currency)
        return self

    def to_domain(self) -> Money:
        return Money.parse(self.amount, self.currency)


def money_out(money: Money) -> dict[str, str]:
    return {"amount": money.formatted_amount(), "currency": money.currency}


def _barcode_forms() -> list[Any]:
    """The form of each type's value (the GS1 check digit of a GTIN can only be described)."""
    forms: dict[BarcodeType, dict[str, Any]] = {
        kind: {"pattern": f"^[0-9]{{{length}}}$"} for kind, length in GTIN_LENGTHS.items()}
    forms[BarcodeType.UPCE] = {"pattern": "^[01][0-9]{7}$"}
    forms[BarcodeType.CODE128] = {"pattern": r"^[ -~]*[!-~][ -~]*$", "maxLength": 48}
    return [{"if": {"properties": {"type": {"const": kind.value}}, "required": ["type"]},
             "then": {"properties": {"value": form}}} for kind, form in forms.items()]


class BarcodeIn(Strict):
    model_config = ConfigDict(json_schema_extra={"allOf": _barcode_forms()})

    type: Annotated[BarcodeType, AsValue]
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="EAN-13, UPC-A, UPC-E, EAN-8 and GTIN-14: digits ending in their GS1 "
                    "check digit (a UPC-E's is that of the UPC-A it expands to); Code 128: "
                    "printable ASCII")

    @field_validator("value")
    @classmethod
    def _check_digit(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("type")
        return validate_barcode(kind, value) if kind is not None else value


class PreorderIn(Strict):
    tentative_ship_date: Date


class ProductIn(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    barcodes: list[BarcodeIn] = Field(default_factory=list, max_length=20,
                                      json_schema_extra={"uniqueItems": True})
    price: MoneyIn = Field(description="Not negative", json_schema_extra={
        "properties": {"amount": {"pattern": r"^[0-9]{1,15}(\.[0-9]{1,6})?$"}}})
    tax_class: Code = "standard"
    preorder: PreorderIn | None = None

    @field_validator("price")
    @classmethod
    def _not_negative(cls, price: MoneyIn) -> MoneyIn:
        if Decimal(price.amount) < 0:
            raise ValueError("price must not be negative")
        return price

    @field_validator("barcodes")
    @classmethod
    def _distinct(cls, barcodes: list[BarcodeIn]) -> list[BarcodeIn]:
        values = [b.value for b in barcodes]
        if len(values) != len(set(values)):
            raise ValueError("a barcode value is listed twice")
        return barcodes

    def to_domain(self, sku: str) -> Product:
        return Product(
            sku=sku,
            name=self.name,
            price=self.price.to_domain(),
            tax_class=self.tax_class,
            barcodes=tuple(Barcode(b.type, b.value) for b in self.barcodes),
            preorder_ship_date=self.preorder.tentative_ship_date if self.preorder else None,
        )


class ProductRow(ProductIn):
    """A product in an import file: the PUT body plus its sku."""

    sku: Code


def product_out(product: Product, version: int, updated_at: dt.datetime) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "barcodes": [{"type": b.type.value, "value": b.value} for b in product.barcodes],
        "price": money_out(product.price),
        "tax_class": product.tax_class,
        "preorder": (
            {"tentative_ship_date": product.preorder_ship_date.isoformat()}
            if product.preorder_ship_date
            else None
        ),
        "version": version,
        "updated_at": updated_at.isoformat(),
    }


class AddressIn(Strict):
    line1: Text
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    region: Annotated[str, StringConstraints(max_length=100)] | None = None
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    country: Country
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class LocationIn(Strict):
    type: Annotated[LocationType, AsValue]
    name: Text
    address: AddressIn
    capabilities: list[Annotated[Capability, AsValue]] = Field(
        default_factory=list, max_length=len(Capability), json_schema_extra={"uniqueItems": True})
    priority: int = Field(default=100, ge=0, le=1_000_000)
    active: bool = True
    timezone: TimeZone = "UTC"
    # Kept as given (as a webhook's URL is): a URL read and written out again may grow past
    # the 2000 characters it is stored in ("http://0" is "http://0.0.0.0/").
    fulfillment_callback_url: Annotated[
        str, StringConstraints(max_length=2000),
        Field(json_schema_extra={"pattern": HTTP_URL_PATTERN})] | None = Field(
        default=None, description="DC and 3PL: where its fulfilment requests are POSTed, "
                                  "signed with the location's callback secret")

    @field_validator("capabilities")
    @classmethod
    def _distinct(cls, capabilities: list[Capability]) -> list[Capability]:
        if len(capabilities) != len(set(capabilities)):
            raise ValueError("a capability is listed twice")
        return capabilities

    @field_validator("fulfillment_callback_url")
    @classmethod
    def _callback_target(cls, url: str | None) -> str | None:
        # As a webhook's URL: a host, no credentials. Whether its address may be reached is
        # the egress policy's to say (services.locations, and when a request is sent).
        return check_url(url) if url is not None else None

    def to_domain(self, location_id: str) -> Location:
        a = self.address
        return Location(
            id=location_id,
            type=self.type,
            name=self.name,
            address=Address(
                line1=a.line1, line2=a.line2, city=a.city, region=a.region,
                postal_code=a.postal_code, country=a.country, lat=a.lat, lon=a.lon,
            ),
            capabilities=frozenset(self.capabilities),
            priority=self.priority,
            active=self.active,
            timezone=self.timezone,
            fulfillment_callback_url=self.fulfillment_callback_url,
        )


class LocationRow(LocationIn):
    id: Code


def location_out(location: Location, version: int, updated_at: dt.datetime) -> dict[str, Any]:
    a = location.address
    return {
        "id": location.id,
        "type": location.type.value,
        "name": location.name,
        "address": {
            "line1": a.line1, "line2": a.line2, "city": a.city, "region": a.region,
            "postal_code": a.postal_code, "country": a.country, "lat": a.lat, "lon": a.lon,
        },
        "capabilities": sorted(c.value for c in location.capabilities),
        "priority": location.priority,
        "active": location.active,
        "timezone": location.timezone,
        "fulfillment_callback_url": location.fulfillment_callback_url,
        "version": version,
        "updated_at": updated_at.isoformat(),
    }


class StockLevelIn(Strict):
    on_hand: Quantity
    safety_stock: Quantity = 0


class InventoryRow(Strict):
    """A line of an inventory import. In delta mode `on_hand` is the change (may be negative)."""

    location_id: Code
    sku: Code
    on_hand: Delta
    safety_stock: Quantity | None = None


class AdjustmentIn(Strict):
    location_id: Code
    sku: Code
    delta: Delta = Field(json_schema_extra={"not": {"const": 0}})
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

    @field_validator("delta")
    @classmethod
    def _non_zero(cls, delta: int) -> int:
        if delta == 0:
            raise ValueError("an adjustment of 0 changes nothing")
        return delta


class AdjustmentBatchIn(Strict):
    adjustments: list[AdjustmentIn] = Field(min_length=1, max_length=1000)


class FutureEntryIn(Strict):
    location_id: Code
    sku: Code
    quantity: Quantity
    available_on: Date

    def to_domain(self) -> FutureStock:
        return FutureStock(self.location_id, self.sku, self.quantity, self.available_on)


class FutureBatchIn(Strict):
    entries: list[FutureEntryIn] = Field(min_length=1, max_length=1000)

    @field_validator("entries")
    @classmethod
    def _one_per_delivery(cls, entries: list[FutureEntryIn]) -> list[FutureEntryIn]:
        keys = [(e.location_id, e.sku, e.available_on) for e in entries]
        if len(keys) != len(set(keys)):
            raise ValueError("a location, sku and date are listed twice")
        return entries


def level_out(level: StockLevel, version: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "location_id": level.location_id,
        "sku": level.sku,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "safety_stock": level.safety_stock,
        "atp": level.atp,
        "discrepancy": level.discrepancy,
    }
    if version is not None:
        out["version"] = version
    return out


ImportKind = Literal["products", "locations", "inventory", "orders"]


# -- orders -------------------------------------------------------------------------------------

Amount = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,13}(\.[0-9]{1,6})?$",
                                          max_length=20)]
#: Unicode's White_Space, spelled out for patterns: what the server's regex engine and its
#: stripping of text take for space. `\s` means another set in each dialect (JavaScript's
#: lacks U+0085 and has U+FEFF), so a client would not read a pattern as the server does.
WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
EMAIL_PATTERN = (rf"^[^@{WHITE_SPACE}\x00]{{1,64}}@[^@{WHITE_SPACE}\x00]{{1,255}}"
                 rf"\.[^@{WHITE_SPACE}\x00]{{2,63}}$")


class CustomerIn(Strict):
    email: Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=320)]
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None


class OrderItemIn(Strict):
    sku: Code
    quantity: int = Field(ge=1, le=10_000)
    unit_price: Amount
    discount: Amount = "0"
    tax: Amount = "0"
    #: Historical orders only: the status the item ended in.
    status: Literal["fulfilled", "cancelled"] | None = None


class ShippingOptionIn(Strict):
    service_level: Annotated[ServiceLevel, AsValue]
    carrier: Annotated[str, StringConstraints(max_length=64)] | None = None
    price: Amount = "0"
    pickup_location_id: Code | None = None


class ShippingAddressIn(Strict):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    line1: Text
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    region: Annotated[str, StringConstraints(max_length=100)] | None = None
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    country: Country
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None


class ShippingIn(Strict):
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"properties": {"option": {
            "properties": {"service_level": {"const": ServiceLevel.PICKUP.value},
                           "pickup_location_id": {"type": "string"}},
            "required": ["service_level", "pickup_location_id"]}}},
        {"properties": {"option": {"properties": {"service_level": {"enum": [
            s.value for s in ServiceLevel if s is not ServiceLevel.PICKUP]}}},
                        "address": {"type": "object"}},
         "required": ["address"]},
    ]})

    option: ShippingOptionIn
    address: ShippingAddressIn | None = None

    @model_validator(mode="after")
    def _pickup_or_address(self) -> ShippingIn:
        if self.option.service_level is ServiceLevel.PICKUP:
            if self.option.pickup_location_id is None:
                raise ValueError("a pickup order names option.pickup_location_id")
        elif self.address is None:
            raise ValueError(f"a {self.option.service_level.value} order needs an address")
        return self


class PaymentIn(Strict):
    method: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    psp: Annotated[str, StringConstraints(max_length=64)] | None = None
    reference: Annotated[str, StringConstraints(max_length=128)] | None = None
    amount: Amount
    status: Annotated[PaymentStatus, AsValue]


class TotalsIn(Strict):
    grand_total: Amount


class OrderIn(Strict):
    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"properties": {"channel": {"enum": [Channel.WEB.value, Channel.OFFLINE.value]}},
                "required": ["channel"]},
         "then": {"properties": {"external_id": {"type": "string"}},
                  "required": ["external_id"]}},
        {"if": {"properties": {"channel": {"not": {"const": Channel.HISTORICAL.value}},
                               "historical": {"const": False}}},
         "then": {"properties": {"items": {"items": {"properties": {
             "status": {"type": "null"}}}}}}},
        *amounts_in_currency([("items", "[]", "unit_price"), ("items", "[]", "discount"),
                              ("items", "[]", "tax"), ("shipping", "option", "price"),
                              ("payments", "[]", "amount"), ("totals", "grand_total")],
                             integer_digits=13),
    ]})

    channel: Annotated[Channel, AsValue]
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    placed_at: UtcTime
    currency: Currency
    customer: CustomerIn
    items: list[OrderItemIn] = Field(min_length=1, max_length=500)
    shipping: ShippingIn | None = None
    payments: list[PaymentIn] = Field(default_factory=list, max_length=20)
    totals: TotalsIn
    historical: bool = False
    fulfillment_location_id: Code | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OrderIn:
        if self.channel is Channel.HISTORICAL:
            self.historical = True
        if not self.historical and any(i.status is not None for i in self.items):
            raise ValueError("only historical orders carry item statuses")
        if self.channel is not Channel.HISTORICAL and self.channel is not Channel.STORE and (
                self.external_id is None):
            raise ValueError(f"{self.channel.value} orders carry their external_id")
        return self


# -- store carts ------------------------------------------------------------------------------

#: More than 0 and at most 100, with up to 4 decimals.
Percentage = Annotated[str, StringConstraints(
    pattern=r"^(100(\.0{1,4})?|[1-9][0-9]?(\.[0-9]{1,4})?|0\.[0-9]{0,3}[1-9])$", max_length=8)]
#: At most 100, with up to 4 decimals.
TaxPercentage = Annotated[str, StringConstraints(
    pattern=r"^(100(\.0{1,4})?|[0-9]{1,2}(\.[0-9]{1,4})?)$", max_length=8)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class CartCustomerIn(Strict):
    """Who buys: optional until checkout, which needs the email."""

    email: Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=320)] | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None


class CartIn(Strict):
    location_id: Code = Field(description="The store that sells")
    currency: Currency
    customer: CartCustomerIn | None = None


class TaxExemptionIn(Strict):
    certificate: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class CartChangeIn(Strict):
    """What changes; what is left out stays. `tax_exemption` null makes the sale taxed
    again; an exempt sale needs a manager's approval where a rule asks for one."""

    customer: CartCustomerIn | None = left_out()
    tax_exemption: TaxExemptionIn | None = None

    _not_null = field_validator("customer", mode="before")(refuse_null)


class LineFulfillmentIn(Strict):
    """How the goods reach the customer: carried out of this store now, delivered, or
    collected at another store (`location_id`)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"properties": {"type": {"const": Fulfillment.PICKUP.value}},
         "required": ["type", "location_id"]},
        {"properties": {"type": {"enum": [Fulfillment.TAKE_NOW.value, Fulfillment.SHIP.value]}},
         "not": {"required": ["location_id"]}},
    ]})

    type: Annotated[Fulfillment, AsValue] = Fulfillment.TAKE_NOW
    location_id: Code | None = left_out()

    _not_null = field_validator("location_id", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _pickup_names_its_store(self) -> LineFulfillmentIn:
        if (self.type is Fulfillment.PICKUP) != (self.location_id is not None):
            raise ValueError("a pickup line names its pickup store (location_id); no other "
                             "line does")
        return self


class PriceOverrideIn(Strict):
    price: Amount = Field(description="The unit price charged instead of the catalog's")
    reason: Reason


class CartItemIn(Strict):
    """A scanned barcode or a sku."""

    model_config = ConfigDict(json_schema_extra={
        "oneOf": [{"required": ["barcode"]}, {"required": ["sku"]}]})

    barcode: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = left_out()
    sku: Code | None = left_out()
    quantity: int = Field(default=1, ge=1, le=MAX_LINE_QUANTITY)
    fulfillment: LineFulfillmentIn = Field(default_factory=LineFulfillmentIn)

    _not_null = field_validator("barcode", "sku", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _one_of(self) -> CartItemIn:
        if (self.barcode is None) == (self.sku is None):
            raise ValueError("give a barcode or a sku, not both")
        return self


class CartItemChangeIn(Strict):
    """What changes; what is left out stays. `price_override` null gives the catalog price
    back."""

    quantity: int | None = left_out(ge=1, le=MAX_LINE_QUANTITY)
    fulfillment: LineFulfillmentIn | None = left_out()
    price_override: PriceOverrideIn | None = None

    _not_null = field_validator("quantity", "fulfillment", mode="before")(refuse_null)


class DiscountIn(Strict):
    model_config = ConfigDict(json_schema_extra={
        "oneOf": [{"required": ["percentage"]}, {"required": ["amount"]}]})

    line_id: Annotated[str, StringConstraints(max_length=36)] | None = left_out(
        description="The line it is taken off; left out: the whole cart")
    percentage: Percentage | None = left_out()
    amount: Amount | None = left_out(description="More than 0, in the cart's currency")
    reason: Reason

    _not_null = field_validator("line_id", "percentage", "amount", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _one_of(self) -> DiscountIn:
        if (self.percentage is None) == (self.amount is None):
            raise ValueError("give a percentage or an amount, not both")
        return self


class BarcodeTypesIn(Strict):
    types: list[Annotated[BarcodeType, AsValue]] = Field(min_length=1, max_length=len(BarcodeType))


class TaxRateIn(Strict):
    country: Country
    region: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    tax_class: Code
    rate: TaxPercentage = Field(description="Percent, e.g. \"19\"")
    prices_include_tax: bool


class TaxRatesIn(Strict):
    rates: list[TaxRateIn] = Field(max_length=1000)

    @field_validator("rates")
    @classmethod
    def _distinct(cls, rates: list[TaxRateIn]) -> list[TaxRateIn]:
        keys = [(r.country, r.region, r.tax_class) for r in rates]
        if len(keys) != len(set(keys)):
            raise ValueError("a (country, region, tax_class) is listed twice")
        return rates


class ShippingRateIn(Strict):
    country: Country
    service_level: Annotated[ServiceLevel, AsValue] = Field(
        json_schema_extra={"enum": [x.value for x in ServiceLevel
                                    if x is not ServiceLevel.PICKUP]})
    carrier: Code
    currency: Currency | None = left_out(description="Left out: the country's currency")
    price: Amount
    free_above: Amount | None = Field(default=None, description="Goods worth at least this "
                                                                "ship free")
    transit_days: int = Field(ge=0, le=60)
    cutoff: Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                             max_length=5)] = (
        Field(description="HH:MM at the location that ships: later orders leave the next "
                          "working day"))

    _not_null = field_validator("currency", mode="before")(refuse_null)

    @field_validator("service_level")
    @classmethod
    def _delivered(cls, level: ServiceLevel) -> ServiceLevel:
        if level is ServiceLevel.PICKUP:
            raise ValueError("a pickup is not delivered: it has no shipping rate")
        return level


class ShippingRatesIn(Strict):
    rates: list[ShippingRateIn] = Field(max_length=1000)


class CartShippingIn(Strict):
    option_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="An option's id, as GET /v1/carts/{id}/shipping-options gives it")
    address: ShippingAddressIn


class CartPaymentIn(Strict):
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"properties": {"method": {"const": TenderMethod.GIFT_CARD.value}},
         "required": ["method", "gift_card"]},
        {"properties": {"method": {"enum": [m.value for m in TenderMethod
                                            if m is not TenderMethod.GIFT_CARD]}},
         "not": {"required": ["gift_card"]}},
    ]})

    method: Annotated[TenderMethod, AsValue]
    amount: Amount = Field(description="A card, a gift card or a payment link: what it pays, "
                                       "at most what is due. Cash: what the customer hands "
                                       "over; what it pays over is change")
    gift_card: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = left_out(
        description="The gift card's code (gift_card payments only)")

    _not_null = field_validator("gift_card", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _gift_card_named(self) -> CartPaymentIn:
        if (self.method is TenderMethod.GIFT_CARD) != (self.gift_card is not None):
            raise ValueError("a gift_card payment names its card (gift_card); no other does")
        return self


class GiftCardIn(Strict):
    amount: Amount
    currency: Currency
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9-]{6,32}$",
                                           max_length=32)] | None = left_out(
        description="Left out: one is made (16 characters)")

    _not_null = field_validator("code", mode="before")(refuse_null)


class CriteriaIn(Strict):
    """All that are given must hold of the cart; amounts in the cart's currency."""

    order_value_at_least: Amount | None = left_out()
    has_discount: bool | None = left_out()
    discount_percentage_at_least: TaxPercentage | None = left_out()
    discount_value_at_least: Amount | None = left_out()
    price_override: bool | None = left_out()
    tax_exempt: bool | None = left_out()
    payment_methods: list[Annotated[TenderMethod, AsValue]] | None = left_out(
        min_length=1, max_length=len(TenderMethod))

    _not_null = field_validator("*", mode="before")(refuse_null)

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _some(self) -> CriteriaIn:
        if not self.model_fields_set:
            raise ValueError("a rule has at least one criterion")
        return self


class ApprovalRuleIn(Strict):
    id: Code
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    criteria: CriteriaIn


class ApprovalRulesIn(Strict):
    rules: list[ApprovalRuleIn] = Field(max_length=100)

    @field_validator("rules")
    @classmethod
    def _distinct(cls, rules: list[ApprovalRuleIn]) -> list[ApprovalRuleIn]:
        if len({r.id for r in rules}) != len(rules):
            raise ValueError("a rule id is listed twice")
        return rules


class ApprovalIn(Strict):
    rule_ids: list[Code] = Field(min_length=1, max_length=100)
    decision: Literal["grant", "deny"] = "grant"
    note: Annotated[str, StringConstraints(max_length=500)] | None = None
