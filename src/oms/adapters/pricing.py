"""What a cart's prices are worked out with, from outside the cart: tax rates and shipping
rates. A tax engine (Avalara, Vertex, ...) or a carrier's rate service is one class more,
with the method of its protocol. The built-in ones read the tables the API sets
(`PUT /v1/tax/rates`, `PUT /v1/shipping/rates`): oms.adapters.db.cart_repositories.

A provider that cannot answer raises `oms.adapters.ProviderUnavailable`: a cart's tax then
comes from the fallback rate and says it is estimated."""

from __future__ import annotations

from typing import Protocol

from oms.domain.carts import TaxRate
from oms.domain.shipping import ShippingRate


class TaxProvider(Protocol):
    def rate(self, country: str, region: str | None, tax_class: str) -> TaxRate | None:
        """The rate of goods of this tax class sold there; None: it knows none."""
        ...


class RateProvider(Protocol):
    def rates(self, country: str, currency: str) -> list[ShippingRate]:
        """The rates of delivery to this country priced in this currency."""
        ...
