"""Generated requests made into those a real client sends, for the schemathesis run.

Each rule here is one the OpenAPI document cannot state, because JSON Schema cannot say it: a
reference to what the shop holds, a check digit, a sum, uniqueness by key inside a list, an
opaque cursor, a time near now, a file's header line, a query parameter that must agree with
the Content-Type. Rather than have every request schemathesis draws refused for breaking one
of them, the request is mended the way a real client would have made it, so that the run goes
on into the code behind the check. Schemathesis judges the request again after this, so one
that still breaks its schema stays a negative case.

A value drawn for an id becomes the id of something the shop holds, chosen by the drawn value
(a run is repeatable), but for one drawn value in four, left as drawn: those mostly name
nothing (404).

Drawn values may be shared between cases (schemathesis keeps some), so they are copied before
they are mended. Negative cases come in any shape: a part that is not the shape a rule reads
is left as drawn.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import itertools
import re
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from babel.numbers import get_territory_currencies
from schemathesis import Case
from schemathesis.core import NotSet
from schemathesis.transport.serialization import Binary
from stdnum import ean

from oms.domain.catalog import GTIN_LENGTHS, BarcodeType
from oms.domain.ids import is_valid_code
from oms.domain.money import minor_units
from tests.api.shop_data import ShopData

#: Path parameters that name something the shop holds.
RESOURCES = ("sku", "location_id", "order_id", "customer_id", "request_id", "shipment_id",
             "subscription_id", "import_id", "cart_id", "line_id", "discount_id",
             "payment_id")
#: Query parameters that name something the shop holds, by the kind of id they take.
QUERY_RESOURCES = {"sku": "sku", "location_id": "location_id", "order_id": "order_id",
                   "customer_id": "customer_id", "entity_id": "order_id"}
#: The header line of each kind's CSV file.
CSV_HEADERS = {
    "products": "sku,name,price,currency,tax_class,barcodes,preorder_ship_date",
    "locations": "id,type,name,line1,city,postal_code,country,lat,lon",
    "inventory": "location_id,sku,on_hand,safety_stock",
}
IMPORTS = {f"/v1/imports/{kind}" for kind in (*CSV_HEADERS, "orders")}
CSV = "text/csv"
UNTYPED = "application/octet-stream"
#: The ids the API gives its resources (UUIDs).
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: What a rule meets in a body of another shape than the one it reads.
MISSHAPEN = (TypeError, KeyError, AttributeError, ValueError, ArithmeticError, IndexError)


class Mender:
    """Mends each case before it is sent (schemathesis' `before_call`)."""

    def __init__(self, data: ShopData, read: Callable[[str], Any]) -> None:
        """`read` answers a GET of the API (None for a 404), for what the shop came to hold
        during the run."""
        self.data = data
        self.read = read
        self._sent = itertools.count()
        #: The ids answers gave: a stateful scenario passes them on by its links, and they
        #: are kept as they are.
        self.learned: set[str] = set()

    def learn(self, answer: Any) -> None:
        """Remember the ids in a JSON answer."""
        if isinstance(answer, dict):
            answer = list(answer.values())
        if isinstance(answer, list):
            for value in answer:
                self.learn(value)
        elif isinstance(answer, str) and ID.fullmatch(answer):
            self.learned.add(answer)

    def __call__(self, case: Case) -> None:
        self._idempotency_key(case)
        self._cursor(case)
        self._resources(case)
        mend = BODIES.get((case.method.upper(), case.operation.path))
        if mend is not None and isinstance(case.body, dict):
            body = copy.deepcopy(case.body)
            with contextlib.suppress(*MISSHAPEN):
                mend(self, case, body)
                case.body = body
        if case.method.upper() == "POST" and case.operation.path in IMPORTS:
            self._import_file(case)

    def choose(self, options: list[str], drawn: Any, *, always: bool = False) -> Any:
        """One of `options`, chosen by the drawn value; the drawn value itself for one in four
        (unless `always`) and when there are no options."""
        digest = zlib.crc32(repr(drawn).encode())
        if not options or (digest % 4 == 0 and not always):
            return drawn
        return options[digest // 4 % len(options)]

    # -- every request ---------------------------------------------------------------------

    def unique(self, drawn: str, max_length: int, separator: str = "~") -> str:
        """The drawn value made one of its kind (by a number after it), in its length."""
        suffix = f"{separator}{next(self._sent)}"
        return drawn[:max_length - len(suffix)] + suffix

    def _idempotency_key(self, case: Case) -> None:
        # A client makes a new key for each new request: a key sent before with another
        # request is refused (422), as the Idempotency-Key draft says.
        key = case.headers.get("Idempotency-Key") if case.headers else None
        if isinstance(key, str) and 1 <= len(key) <= 255:
            case.headers = {**case.headers, "Idempotency-Key": self.unique(key, 255)}

    def _cursor(self, case: Case) -> None:
        # A cursor is opaque: only one the API issued names a place in its list.
        if case.query and isinstance(case.query.get("cursor"), str):
            query = dict(case.query)
            cursor = self.data.cursors.get(case.operation.path)
            if cursor is None:
                del query["cursor"]
            else:
                query["cursor"] = cursor
            case.query = query

    def _resources(self, case: Case) -> None:
        operation = f"{case.method.upper()} {case.operation.path}"
        parameters = dict(case.path_parameters or {})
        for name, drawn in parameters.items():
            if name in RESOURCES and isinstance(drawn, str) and 0 < len(drawn) <= 64 and (
                    drawn not in self.learned):
                # What a step, a cancellation or a deletion acts on waits in the state the
                # operation starts from.
                options = self.data.targets.get(operation) or self.data.ids.get(name, [])
                parameters[name] = self.choose(options, drawn)
        if parameters:
            case.path_parameters = parameters
        query = dict(case.query or {})
        for name, kind in QUERY_RESOURCES.items():
            # Only a value of the form an id has becomes one: a negative case keeps the part
            # that breaks its schema.
            drawn = query.get(name)
            if isinstance(drawn, list):
                query[name] = [self.choose(self.data.ids[kind], x)
                               if isinstance(x, str) and is_valid_code(x) else x
                               for x in drawn]
            elif isinstance(drawn, str) and is_valid_code(drawn):
                query[name] = self.choose(self.data.ids[kind], drawn)
        if query:
            case.query = query

    # -- bodies ----------------------------------------------------------------------------

    def stock_key(self, row: dict[str, Any]) -> None:
        """A stock row names a location and a sku the shop has."""
        for name in ("location_id", "sku"):
            row[name] = self.choose(self.data.ids[name], row[name])

    def items_of(self, kind: str, owner: str, drawn: list[Any]) -> list[Any]:
        """Items of the order or fulfilment request (`kind`: their path) the shop has, for
        drawn item ids."""
        if owner not in self.data.items:
            # Made during the run: looked up as a client would.
            found = self.read(f"{kind}/{owner}") if len(owner) <= 64 else None
            self.data.items[owner] = [i["item_id"] if "item_id" in i else i["id"]
                                      for i in found["items"]] if (
                found) else []
        items = self.data.items[owner]
        if not items:
            return drawn
        return list(dict.fromkeys(self.choose(items, value, always=True) for value in drawn))

    def _import_file(self, case: Case) -> None:
        kind = case.operation.path.rsplit("/", 1)[-1]
        media_type = (case.media_type or "").lower()
        if media_type == UNTYPED:
            fmt = "jsonl" if kind == "orders" else self.choose(["csv", "jsonl"], case.body,
                                                               always=True)
        else:
            fmt = "csv" if media_type == CSV else "jsonl"
        # ?format= names the format of an untyped body, and must agree with a typed one.
        if media_type == UNTYPED or "format" in (case.query or {}):
            case.query = {**(case.query or {}), "format": fmt}
        body = case.body
        # A file is text: the bytes drawn, read as UTF-8 as far as they are.
        if isinstance(body, Binary):
            text = body.data.decode("utf-8", "replace")
        elif isinstance(body, str):
            text = body
        else:
            return
        if not text:
            return  # No file: refused, as the document says.
        if fmt == "csv":
            # A CSV file starts with its header line.
            text = f"{CSV_HEADERS[kind]}\n{text}"
        case.body = Binary(text.encode()) if isinstance(body, Binary) else text


def sendable(case: Case) -> bool:
    """Whether the case can be sent as it was drawn. A path holds text: a null drawn for a
    path parameter goes as the text "None", a code like any other. An import's body is a
    file, which is text too: a JSON value drawn in its place (a number, null) would go as its
    text, a file like any other. Neither would be the negative case it was drawn as."""
    if any(value is None for value in (case.path_parameters or {}).values()):
        return False
    return not (case.method.upper() == "POST" and case.operation.path in IMPORTS) or (
        isinstance(case.body, str | NotSet))


Mend = Callable[[Mender, Case, dict[str, Any]], None]


def _product(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    gtins = {kind.value: length for kind, length in GTIN_LENGTHS.items()}
    seen: set[str] = set()
    barcodes = []
    for barcode in body.get("barcodes", []):
        value = barcode["value"]
        if barcode["type"] in gtins and value.isdigit() and len(value) == gtins[
                BarcodeType(barcode["type"])]:
            # A GTIN ends in its GS1 check digit.
            value = barcode["value"] = value[:-1] + ean.calc_check_digit(value[:-1])
        # A barcode value is listed once, whatever its type.
        if value not in seen:
            seen.add(value)
            barcodes.append(barcode)
    if "barcodes" in body:
        body["barcodes"] = barcodes


def _adjustments(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    for row in body["adjustments"]:
        mender.stock_key(row)


def _future(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    for row in body["entries"]:
        mender.stock_key(row)
    # One entry per delivery: location, sku and date.
    body["entries"] = list({(row["location_id"], row["sku"], row["available_on"]): row
                            for row in reversed(body["entries"])}.values())[::-1]


def _routing_rules(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    for rule in body["rules"]:
        rule["groups"] = [list(dict.fromkeys(mender.choose(mender.data.ids["location_id"], x)
                                             for x in group)) for group in rule["groups"]]
    # One rule per service level and country.
    body["rules"] = list({(rule["service_level"], rule["country"]): rule
                          for rule in reversed(body["rules"])}.values())[::-1]


def _tax_rates(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    # One rate per country, region and tax class.
    body["rates"] = list({(rate["country"], rate.get("region"), rate["tax_class"]): rate
                          for rate in reversed(body["rates"])}.values())[::-1]


def _shipping_rates(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    """Rates in a currency: the country's unless given, their amounts in its minor units; one
    rate per country, service level and currency."""
    for rate in body["rates"]:
        if "currency" not in rate and not get_territory_currencies(rate["country"]):
            rate["currency"] = "EUR"
        currency = rate.get("currency") or get_territory_currencies(rate["country"])[0]
        places = minor_units(currency)
        for name in ("price", "free_above"):
            if isinstance(rate.get(name), str):
                rate[name] = _amount(Decimal(rate[name]), places)
    body["rates"] = list({
        (rate["country"], rate["service_level"],
         rate.get("currency") or get_territory_currencies(rate["country"])[0]): rate
        for rate in reversed(body["rates"])}.values())[::-1]


def _approval_rules(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    # One rule per id.
    body["rules"] = list({rule["id"]: rule for rule in reversed(body["rules"])}.values())[::-1]


def _gift_card(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    # An amount in its currency's minor units; a code of its own.
    body["amount"] = _amount(Decimal(body["amount"]), minor_units(body["currency"]))
    if "code" in body:
        body["code"] = mender.unique(body["code"], 32, "-")


def _cart_shipping(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    # The option the shop's rates offer, to where they offer it.
    body["option_id"] = mender.choose(["standard:dhl"], body["option_id"])
    if isinstance(body.get("address"), dict):
        body["address"]["country"] = mender.choose(["DE"], body["address"].get("country"))


def _cart_item(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    """Goods of the shop, by their sku or their barcode; a pickup at one of its stores."""
    if "sku" in body:
        body["sku"] = mender.choose(mender.data.ids["sku"], body["sku"])
    if "barcode" in body:
        body["barcode"] = mender.choose(["4006381333931"], body["barcode"])
    fulfillment = body.get("fulfillment")
    if isinstance(fulfillment, dict) and "location_id" in fulfillment:
        fulfillment["location_id"] = mender.choose(mender.data.stores,
                                                   fulfillment["location_id"])


def _order(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    """The order of a real shop: its skus and locations are the shop's, a live order is
    placed now, and its money adds up in its currency."""
    data = mender.data
    for item in body["items"]:
        item["sku"] = mender.choose(data.ids["sku"], item["sku"], always=True)
    option = body["shipping"]["option"] if body.get("shipping") else {}
    if option.get("pickup_location_id") is not None:
        option["pickup_location_id"] = mender.choose(data.stores, option["pickup_location_id"],
                                                     always=True)
    if body.get("fulfillment_location_id") is not None:
        body["fulfillment_location_id"] = mender.choose(
            data.ids["location_id"], body["fulfillment_location_id"], always=True)
    if isinstance(body.get("external_id"), str) and body["external_id"].strip():
        # A shop numbers its orders: another order under a number taken is refused (409).
        body["external_id"] = mender.unique(body["external_id"], 100)
    historical = body["channel"] == "historical" or body.get("historical") is True
    now = dt.datetime.now(dt.UTC)
    if not historical:
        # A live order is placed now.
        body["placed_at"] = now.isoformat()
    elif not _in_the_past(body["placed_at"], now):
        body["placed_at"] = (now - dt.timedelta(days=400)).isoformat()

    places = minor_units(body["currency"])
    total = Decimal(option.get("price", "0"))
    for item in body["items"]:
        # A whole number may come as 2.0: JSON does not tell them apart.
        line = Decimal(repr(item["quantity"])) * Decimal(item["unit_price"])
        # A discount is at most the line's price.
        if Decimal(item.get("discount", "0")) > line:
            item["discount"] = _amount(line, places)
        total += line - Decimal(item.get("discount", "0")) + Decimal(item.get("tax", "0"))
    body["totals"]["grand_total"] = _amount(total, places)
    if not historical and total > 0:
        # Paid in full before it is placed: the first payment authorised for the total.
        first = body["payments"][0] if body.get("payments") else {"method": "card"}
        body["payments"] = [{**first, "amount": _amount(total, places),
                             "status": "authorized"}]


def _in_the_past(value: str, now: dt.datetime) -> bool:
    """Whether a historical order's time is one in the past that UTC can hold."""
    try:
        placed_at = dt.datetime.fromisoformat(value).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return False
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) <= placed_at <= now


def _amount(value: Decimal, places: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places)):f}"


def _cancel(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    # The items cancelled are the order's.
    if body.get("items") is not None:
        body["items"] = mender.items_of("/v1/orders", case.path_parameters["order_id"],
                                        body["items"])


def _request_items(field: str) -> Mend:
    def mend(mender: Mender, case: Case, body: dict[str, Any]) -> None:
        # The items named are the request's.
        if body.get(field) is not None:
            body[field] = mender.items_of("/v1/fulfillment-requests",
                                          case.path_parameters["request_id"], body[field])

    return mend


def _replay(mender: Mender, case: Case, body: dict[str, Any]) -> None:
    # The events replayed are events of the feed.
    events = mender.data.event_ids
    if "after" in body:
        body["after"] = mender.choose(events, body["after"], always=True)
    if "event_ids" in body:
        body["event_ids"] = list(dict.fromkeys(mender.choose(events, e, always=True)
                                               for e in body["event_ids"]))


BODIES: dict[tuple[str, str], Mend] = {
    ("PUT", "/v1/products/{sku}"): _product,
    ("POST", "/v1/inventory/adjustments"): _adjustments,
    ("POST", "/v1/inventory/future"): _future,
    ("PUT", "/v1/routing/rules"): _routing_rules,
    ("POST", "/v1/orders"): _order,
    ("POST", "/v1/orders/{order_id}/cancel"): _cancel,
    ("POST", "/v1/fulfillment-requests/{request_id}/pick"): _request_items("missing"),
    ("POST", "/v1/fulfillment-requests/{request_id}/reject"): _request_items("items"),
    ("POST", "/v1/fulfillment-requests/{request_id}/shipments"): _request_items("items"),
    ("POST", "/v1/webhooks/{subscription_id}/replay"): _replay,
    ("PUT", "/v1/tax/rates"): _tax_rates,
    ("PUT", "/v1/shipping/rates"): _shipping_rates,
    ("PUT", "/v1/approval-rules"): _approval_rules,
    ("POST", "/v1/gift-cards"): _gift_card,
    ("PUT", "/v1/carts/{cart_id}/shipping"): _cart_shipping,
    ("POST", "/v1/carts/{cart_id}/items"): _cart_item,
    ("PATCH", "/v1/carts/{cart_id}/items/{line_id}"): _cart_item,
}
