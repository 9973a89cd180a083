"""Shipping providers: book a delivery, get a tracking number and a label.

A real carrier (a label API) is one module more: a class with `book` that takes a
`BookingRequest`, named in `OMS_CARRIER_ADAPTERS` for the carrier codes it serves. It raises
`CarrierError` when the carrier refuses the booking, and `oms.adapters.ProviderUnavailable`
when it cannot be reached (the booking is asked again later with the same key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Parcel:
    weight_grams: int
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None


@dataclass(frozen=True)
class BookingRequest:
    #: Sent to the carrier as its idempotency key: asking again returns the same booking.
    idempotency_key: str
    shipment_id: str
    carrier: str
    service_level: str
    ship_from: dict[str, Any]
    ship_to: dict[str, Any]
    parcels: tuple[Parcel, ...]
    reference: str


@dataclass(frozen=True)
class Booking:
    tracking_number: str
    tracking_url: str | None
    label_format: str
    #: Base64 of the label document.
    label: str


class CarrierError(Exception):
    """The carrier refused the booking (an address it cannot serve, a parcel too heavy)."""


class Carrier(Protocol):
    def book(self, request: BookingRequest) -> Booking: ...
