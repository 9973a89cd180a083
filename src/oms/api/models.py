"""What the API answers, as Pydantic models: the schemas /openapi.json gives each route.

They document and do not filter: every route renders its own answer (see `oms.api.openapi`),
and `tests/api/test_openapi.py` proves that what the routes send is what these models say.
Every object is closed (`extra="forbid"`, so `additionalProperties: false`): an answer that
carries a field its model does not name breaks its schema. A field that is always sent is
required, `| None` when it may be null; a field that is sometimes left out is typed
`X | SkipJsonSchema[None] = sometimes(...)`, which the schema shows as optional and never
null. Lists are pages of their own named models (`ProductPage`), so that clients generated
from the document get readable names.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from oms.domain.carts import CartStatus, Fulfillment, TenderMethod
from oms.domain.catalog import BarcodeType
from oms.domain.fulfillment import LinkStatus, RequestStatus, RequestType, ShipmentStatus
from oms.domain.locations import Capability, LocationType
from oms.domain.orders import Channel, ItemStatus, OrderStatus, PaymentState, ServiceLevel
from oms.domain.routing import ReasonCode, Verdict
from oms.domain.webhooks import DeliveryStatus, SubscriptionStatus
from oms.schemas import ImportKind
from oms.services.imports import FileFormat, ImportMode

#: An amount of money: a decimal string with the currency's decimal places, never a number.
Amount = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?$", examples=["19.90"],
                              description="Decimal string with the currency's decimal places")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"],
                                description="ISO 4217 code")]
EventId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="Sortable event id")]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


T = TypeVar("T", bound=Out)


class Page(Out, Generic[T]):
    """A page of a list, in the order the list says."""

    items: list[T]
    next_cursor: str | None = Field(description="Give as `cursor` for the next page; "
                                                "null on the last page")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def sometimes(description: str) -> Any:
    """A field that some answers leave out (never sent as null): type it
    `X | SkipJsonSchema[None]`."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


# -- problems ---------------------------------------------------------------------------------


class FieldProblem(Out):
    field: str = Field(description="Dotted path of the field, e.g. `items.0.quantity`")
    message: str


class Problem(Out):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str = Field(pattern=r"^urn:oms:problem:[a-z-]+$",
                      examples=["urn:oms:problem:not-found"],
                      description="Stable name of the kind of error")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong, for a person")
    instance: str | SkipJsonSchema[None] = sometimes("The path of the request")
    errors: list[FieldProblem] | SkipJsonSchema[None] = sometimes(
        "Per field, when fields are to blame")
    line: int | SkipJsonSchema[None] = sometimes("A body that is no JSON: where it breaks")
    column: int | SkipJsonSchema[None] = sometimes("A body that is no JSON: where it breaks")
    import_id: str | SkipJsonSchema[None] = sometimes("An import that stopped part way")
    applied_through_line: int | SkipJsonSchema[None] = sometimes(
        "An import that stopped part way: every line up to this one was applied")
    report: ImportReport | SkipJsonSchema[None] = sometimes(
        "An import that stopped part way: its report so far")
    rules: list[str] | SkipJsonSchema[None] = sometimes(
        "approval-required: the ids of the rules a manager must approve")


# -- catalog, locations, stock ----------------------------------------------------------------


class Money(Out):
    amount: Amount
    currency: Currency


class Barcode(Out):
    type: BarcodeType
    value: str


class Preorder(Out):
    tentative_ship_date: dt.date


class Product(Out):
    sku: str
    name: str
    barcodes: list[Barcode]
    price: Money
    tax_class: str
    preorder: Preorder | None = Field(description="Set when the product sells as a pre-order")
    version: int
    updated_at: dt.datetime


class Address(Out):
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    lat: float
    lon: float


class Location(Out):
    id: str
    type: LocationType
    name: str
    address: Address
    capabilities: list[Capability]
    priority: int
    active: bool
    timezone: str
    fulfillment_callback_url: str | None
    version: int
    updated_at: dt.datetime


class CallbackSecret(Out):
    location_id: str
    secret: str
    signing: str = Field(description="How the callbacks are signed")


class StockLevel(Out):
    location_id: str
    sku: str
    on_hand: int
    reserved: int
    safety_stock: int
    atp: int = Field(description="Available to promise: on_hand - reserved - safety_stock; "
                                 "negative only when `discrepancy`")
    discrepancy: bool = Field(description="A physical report took on_hand below what is "
                                          "reserved: to reconcile")


class VersionedStockLevel(StockLevel):
    """A stock level as a change left it."""

    version: int


class Adjusted(Out):
    levels: list[VersionedStockLevel] = Field(description="In the order of the adjustments")


class FutureRecorded(Out):
    recorded: int


class FutureDelivery(Out):
    quantity: int
    reserved: int
    available: int
    available_on: dt.date


class LocationAvailability(StockLevel):
    future: list[FutureDelivery]


class AvailabilityTotals(Out):
    on_hand: int
    reserved: int
    atp: int
    future: int


class SkuAvailability(Out):
    sku: str
    locations: list[LocationAvailability]
    totals: AvailabilityTotals


class Availability(Out):
    items: list[SkuAvailability]


# -- orders -----------------------------------------------------------------------------------


class Customer(Out):
    id: str
    display_id: str
    email: str
    name: str | None
    phone: str | None
    created_at: dt.datetime


class OrderItem(Out):
    id: str
    line: int
    sku: str
    quantity: int
    unit_price: Amount
    discount: Amount
    tax: Amount
    status: ItemStatus
    location_id: str | None
    preorder: bool
    tentative_ship_date: dt.date | None
    hold_reason: str | None = Field(description="Why the item waits (only while on hold)")
    fulfillment_request_id: str | None
    pickup_location_id: str | None = Field(
        description="Collected at this store, whatever the rest of the order does (a "
                    "store's mixed cart); null otherwise")


class SoldAt(Out):
    location_id: str = Field(description="The store that sold it")
    key_id: str | None = Field(description="The API key of the associate who sold it")


class ShippingAddress(Out):
    name: str | None
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    lat: float | None
    lon: float | None
    phone: str | None


class Shipping(Out):
    service_level: ServiceLevel
    carrier: str | None
    price: Amount
    pickup_location_id: str | None
    address: ShippingAddress | None


class PendingAmounts(Out):
    """Asked of the payment provider and not answered yet."""

    capture: Amount
    refund: Amount
    void: Amount


class Payment(Out):
    id: str
    method: str
    psp: str | None
    reference: str | None
    amount: Amount
    captured: Amount
    refunded: Amount
    voided: Amount
    pending: PendingAmounts
    status: PaymentState
    failure_reason: str | None


class Totals(Out):
    grand_total: Amount


class Order(Out):
    id: str
    display_id: str
    channel: Channel
    external_id: str | None
    status: OrderStatus
    historical: bool
    placed_at: dt.datetime
    currency: Currency
    customer: Customer
    items: list[OrderItem]
    shipping: Shipping | None
    fulfillment_location_id: str | None
    sold_at: SoldAt | None = Field(description="A store's sale; null for other channels")
    payments: list[Payment]
    totals: Totals
    version: int
    updated_at: dt.datetime


class OrderEventRef(Out):
    id: EventId
    type: str
    sequence: int
    occurred_at: dt.datetime


class OrderRequestRef(Out):
    id: str
    location_id: str
    type: RequestType
    status: RequestStatus


class Parcel(Out):
    weight_grams: int
    length_mm: int | None
    width_mm: int | None
    height_mm: int | None


class TrackingEvent(Out):
    status: ShipmentStatus
    occurred_at: dt.datetime
    description: str | None
    place: str | None


class Label(Out):
    format: str = Field(examples=["zpl"])
    content: str = Field(description="The label file, base64")


class Shipment(Out):
    id: str
    request_id: str
    order_id: str
    location_id: str
    carrier: str
    tracking_number: str | None
    tracking_url: str | None
    label_status: Literal["pending", "booked", "failed"] | None = Field(
        description="Of the carrier booking the OMS makes; null when the DC or 3PL that "
                    "shipped it booked the carrier itself")
    label_error: str | None = Field(description="Why the carrier refused the booking")
    parcels: list[Parcel]
    item_ids: list[str]
    status: ShipmentStatus
    tracking_events: list[TrackingEvent]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    label: Label | SkipJsonSchema[None] = sometimes(
        "Once booked; shown by the shipment's own routes")


class OrderDetail(Order):
    """An order with its events, fulfilment requests and shipments."""

    events: list[OrderEventRef]
    fulfillment_requests: list[OrderRequestRef]
    shipments: list[Shipment]


class Score(Out):
    """What a location offered in the round that placed the item, compared in this order."""

    takes: int = Field(description="How many of the order's items still to place it could "
                                   "take; more wins (fewer shipments)")
    rule_group: int | None = Field(description="Its group in the routing rule, 1 first; "
                                               "null without a rule")
    priority: int = Field(description="Lower wins")
    distance_km: float = Field(description="From the shipping address; nearer wins")
    atp_left: int = Field(description="ATP it would keep of the skus it would ship; more wins")


class Alternative(Out):
    location_id: str
    code: ReasonCode
    reason: str
    score: Score | None = Field(description="Null in runs kept before scores were")


class ItemRouting(Out):
    item_id: str
    location_id: str | None = Field(description="Where the item went; null: it waits")
    reason: str = Field(description="Why that location, or why the item waits")
    score: Score | None
    alternatives: list[Alternative] = Field(
        description="The best locations passed over, best first (at most three)")
    not_chosen: dict[ReasonCode, int] = Field(
        description="Every other location, counted by why it lost or was not weighed")


class Consideration(Out):
    item_id: str
    location_id: str
    verdict: Verdict
    code: ReasonCode
    reason: str
    score: Score | None = Field(
        description="For a location that could take the item in the round that placed it")


class RoutingRun(Out):
    id: str
    trigger: str = Field(examples=["placement"],
                         description="What ran it: placement, reroute, rejection, worker")
    ran_at: dt.datetime
    assignments: dict[str, str] = Field(description="Item id to location id")
    on_hold: dict[str, str] = Field(description="Item id to the reason it waits")
    decisions: list[ItemRouting] = Field(
        description="Per item: the location chosen and why, the best passed over, and how "
                    "many others lost for each reason")
    considerations: list[Consideration] = Field(
        description="For each location asked about with `location_id`: its part in the run "
                    "for each item, as the run weighed it")


class RoutingRuns(Out):
    items: list[RoutingRun]


# -- fulfilment -------------------------------------------------------------------------------


class RequestItem(Out):
    item_id: str
    line: int
    sku: str
    quantity: int
    status: LinkStatus = Field(description="The item's part in this request")
    reason: str | None
    shipment_id: str | None
    item_status: ItemStatus = Field(description="The order item's own status")
    value: Amount = Field(description="What the line costs the customer, in the order's "
                                      "currency")


class Notification(Out):
    """Whether a DC or 3PL was told of its request."""

    state: Literal["pending", "delivered"]
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None


class FulfillmentRequest(Out):
    id: str
    order_id: str
    location_id: str
    type: RequestType
    status: RequestStatus
    placed_at: dt.datetime
    available_on: dt.date | None = Field(description="A pre-order's: when its stock is due")
    carrier: str | None
    parcels: list[Parcel] | None
    collected_by: str | None
    reason: str | None
    items: list[RequestItem]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    ready_at: dt.datetime | None
    notification: Notification | SkipJsonSchema[None] = sometimes(
        "Only a DC's or 3PL's (`third_party`) request")


class FulfillmentRequestDetail(FulfillmentRequest):
    shipments: list[Shipment]


class ShippedRequest(FulfillmentRequest):
    """The request with the shipment this step made."""

    shipment: Shipment


# -- routing rules, events, webhooks, imports ---------------------------------------------------


class RoutingRule(Out):
    service_level: ServiceLevel
    country: str = Field(pattern=r"^[A-Z]{2}$")
    groups: list[list[str]] = Field(description="Location groups, tried in this order")


class RoutingRules(Out):
    rules: list[RoutingRule]


class Event(Out):
    id: EventId
    type: str = Field(examples=["order.created"])
    entity_id: str
    sequence: int = Field(description="Per entity, from 1")
    occurred_at: dt.datetime
    payload: dict[str, Any] = Field(description="The entity's new state; its shape depends "
                                                "on `type`")


class EventPage(Out):
    items: list[Event]
    next_after: EventId | None = Field(description="Give as `after` to read on; null while "
                                                   "nothing was read yet")
    held_back: int = Field(description="Committed events that follow once an older "
                                       "transaction ends: ask again shortly")


class Subscription(Out):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    status: SubscriptionStatus
    disabled_reason: str | None
    failing_since: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class NewSubscription(Subscription):
    secret: str = Field(pattern=r"^whsec_", description="Shown only here")


class RotatedSecret(Subscription):
    secret: str = Field(pattern=r"^whsec_", description="Shown only here")
    previous_secret_expires_at: dt.datetime = Field(
        description="Until then the old secret signs alongside the new one")


class Attempt(Out):
    attempted_at: dt.datetime
    status_code: int | None = Field(description="The subscriber's answer; its body is "
                                                "never kept")
    duration_ms: int
    error: str | None


class Delivery(Out):
    id: str
    event_id: EventId
    event_type: str
    entity_id: str
    status: DeliveryStatus
    attempt_count: int
    attempts: list[Attempt]
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


class Replayed(Out):
    queued: int
    event_ids: list[EventId] = Field(description="The first 100 queued")


class RowError(Out):
    line: int
    reason: str


class ImportReport(Out):
    import_id: str
    status: Literal["completed", "running", "interrupted"]
    kind: ImportKind
    mode: ImportMode
    format: FileFormat
    rows: int
    imported: int
    failed: int
    zeroed: int = Field(description="Full inventory imports: levels not in the file, set to 0")
    duplicates: int = Field(description="Orders already loaded with the same content")
    errors: list[RowError]
    errors_truncated: bool
    applied_through_line: int = Field(description="Every line up to this one was applied "
                                                  "(but those listed in errors)")
    resumed_after_line: int | None = Field(description="A resent import: where it went on")


class ImportRun(ImportReport):
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None


class Health(Out):
    status: Literal["ok"]
    version: str


# -- pages ------------------------------------------------------------------------------------


class TaxRate(Out):
    country: str
    region: str | None
    tax_class: str
    rate: str = Field(description="Percent")
    prices_include_tax: bool


class TaxRates(Out):
    rates: list[TaxRate]


class BarcodeTypes(Out):
    types: list[BarcodeType]
    default: bool = Field(description="True: nothing was chosen, every type is accepted")


class ShippingRate(Out):
    country: str
    service_level: ServiceLevel
    carrier: str
    currency: Currency
    price: Amount
    free_above: Amount | None
    transit_days: int
    cutoff: str = Field(description="HH:MM at the location that ships")


class ShippingRates(Out):
    rates: list[ShippingRate]


class ShippingOption(Out):
    id: str = Field(description="Give it to PUT /v1/carts/{id}/shipping")
    service_level: ServiceLevel
    carrier: str
    price: Amount
    ships_on: dt.date
    promised_delivery_date: dt.date


class ShippingOptions(Out):
    country: str
    currency: Currency
    options: list[ShippingOption]


class CartShipping(Out):
    option_id: str
    service_level: ServiceLevel
    carrier: str
    address: ShippingAddress
    offered: bool = Field(description="False: the option is no longer offered there; "
                                      "choose again")
    price: Amount | None
    ships_on: dt.date | None
    promised_delivery_date: dt.date | None


class CartCustomer(Out):
    email: str | None
    name: str | None
    phone: str | None


class LineFulfillment(Out):
    type: Fulfillment
    location_id: str | None = Field(description="The pickup store; null otherwise")


class PriceOverride(Out):
    price: Amount
    reason: str


class Hold(Out):
    status: Literal["held", "expired", "lapsed"] = Field(
        description="held: the stock is kept for the cart until `expires_at`; expired: its "
                    "time ran out, the stock is kept still until the worker gives it back, "
                    "and the cart's next change keeps it again; lapsed: given back, and held "
                    "again by the cart's next change if the stock is still there")
    location_id: str | None
    quantity: int
    expires_at: dt.datetime | None


class CartLine(Out):
    id: str
    sku: str
    name: str
    barcode: str | None = Field(description="The barcode scanned for it")
    quantity: int
    fulfillment: LineFulfillment
    catalog_price: Amount
    unit_price: Amount = Field(description="What one unit costs: the override, else the "
                                           "catalog price")
    price_override: PriceOverride | None
    subtotal: Amount = Field(description="unit_price times quantity")
    discount: Amount = Field(description="Its own discounts and its share of the cart's")
    tax: Amount
    tax_class: str
    hold: Hold | None = Field(description="Take-now and pickup lines; null for ship lines")


class CartDiscount(Out):
    id: str
    line_id: str | None
    percentage: str | None
    amount: Amount | None
    reason: str
    taken: Amount = Field(description="What it takes off")


class CartPayment(Out):
    id: str
    method: TenderMethod
    amount: Amount = Field(description="What it pays of the cart")
    tendered: Amount = Field(description="What was handed over (cash), or authorised (card)")
    change: Amount = Field(description="What goes back to the customer")
    psp: str | None
    reference: str | None = Field(description="The PSP's authorisation; a gift card's code; "
                                              "a payment link's reference")
    status: Literal["authorized", "pending", "failed"] = Field(
        description="A payment link is pending until the customer pays it (then "
                    "authorized), and failed if they do not by its expiry")
    link: PaymentLinkOut | None = Field(description="A payment link: where the customer pays")


class PaymentLinkOut(Out):
    url: str
    expires_at: dt.datetime


class NotificationResult(Out):
    result: Literal["authorized", "failed", "ignored"] = Field(
        description="ignored: a notification of a link already settled (a replay)")


class GiftCard(Out):
    code: str
    currency: Currency
    balance: Amount
    initial: Amount
    created_at: dt.datetime
    updated_at: dt.datetime


class CartBalance(Out):
    paid: Amount
    pending: Amount = Field(description="Payment links the customer has not paid yet")
    due: Amount = Field(description="Still to pay before checkout")
    over: Amount = Field(description="Paid more than the total (the total fell since): take "
                                     "a payment back")


class TaxExemption(Out):
    certificate: str


class CartApproval(Out):
    id: str
    rule_ids: list[str]
    decision: Literal["grant", "deny"]
    by_key: str
    note: str | None
    at: dt.datetime
    valid: bool = Field(description="False once the cart changed after it")


class ApprovalCriteria(Out):
    order_value_at_least: Amount | SkipJsonSchema[None] = sometimes("Grand total at least")
    has_discount: bool | SkipJsonSchema[None] = sometimes("Any discount, or none")
    discount_percentage_at_least: str | SkipJsonSchema[None] = sometimes(
        "The discount as a percentage of the subtotal, at least")
    discount_value_at_least: Amount | SkipJsonSchema[None] = sometimes("Discount at least")
    price_override: bool | SkipJsonSchema[None] = sometimes("A price overridden, or none")
    tax_exempt: bool | SkipJsonSchema[None] = sometimes("Tax-exempt, or not")
    payment_methods: list[TenderMethod] | SkipJsonSchema[None] = sometimes(
        "Any of these payment methods")


class ApprovalRule(Out):
    id: str
    name: str
    criteria: ApprovalCriteria


class ApprovalRules(Out):
    rules: list[ApprovalRule]


class CartTotals(Out):
    subtotal: Amount
    discount: Amount
    shipping: Amount
    tax: Amount
    tax_exempted: Amount = Field(description="A tax-exempt cart: the tax taken out of "
                                             "prices that include it")
    grand_total: Amount = Field(description="subtotal - discount + shipping, plus the tax "
                                            "where prices exclude it, less tax_exempted")


class Cart(Out):
    id: str
    location_id: str
    currency: Currency
    status: CartStatus
    customer: CartCustomer | None
    lines: list[CartLine]
    discounts: list[CartDiscount]
    totals: CartTotals
    shipping: CartShipping | None = Field(description="How the ship lines are delivered")
    payments: list[CartPayment]
    balance: CartBalance
    order_id: str | None = Field(description="The order it became at checkout")
    tax_exemption: TaxExemption | None
    approvals: list[CartApproval]
    approvals_needed: list[str] = Field(
        description="The rules the cart matches that no manager approved since it last "
                    "changed: checkout answers approval-required until they are")
    tax_estimated: bool = Field(description="Some tax is at the fallback rate: the tax "
                                            "provider had none")
    holds_expire_at: dt.datetime | None
    created_by_key: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class CartPage(Page[Cart]):
    pass


class ReceiptStore(Out):
    id: str
    name: str
    address: str


class ReceiptLine(Out):
    line: int
    sku: str
    name: str
    quantity: int
    unit_price: Amount
    discount: Amount
    tax: Amount
    tax_included: bool
    total: Amount
    fulfillment: Fulfillment | None
    status: ItemStatus
    pickup_location_id: str | None
    pickup_location_name: str | None
    preorder: bool
    tentative_ship_date: dt.date | None


class ReceiptDiscount(Out):
    reason: str
    amount: Amount


class ReceiptShipping(Out):
    service_level: str
    carrier: str | None
    price: Amount
    tax: Amount


class ReceiptTax(Out):
    rate: str | None = Field(description="Percent; null where the order did not say")
    included: bool
    amount: Amount


class ReceiptPayment(Out):
    method: str
    amount: Amount
    change: Amount


class Receipt(Out):
    order_id: str
    display_id: str
    channel: Channel
    placed_at: dt.datetime
    placed_local: str = Field(description="When, in the time zone of the store that sold it "
                                          "(UTC otherwise), for people")
    currency: Currency
    store: ReceiptStore | None = Field(description="The store that sold it")
    lines: list[ReceiptLine]
    discounts: list[ReceiptDiscount]
    shipping: ReceiptShipping | None
    taxes: list[ReceiptTax]
    tax_exemption: str | None = Field(description="The certificate of a tax-exempt sale")
    tax_exempted: Amount
    payments: list[ReceiptPayment]
    grand_total: Amount


class ProductPage(Page[Product]):
    pass


class LocationPage(Page[Location]):
    pass


class OrderPage(Page[Order]):
    pass


class CustomerPage(Page[Customer]):
    pass


class FulfillmentRequestPage(Page[FulfillmentRequest]):
    pass


class SubscriptionPage(Page[Subscription]):
    pass


class DeliveryPage(Page[Delivery]):
    pass
