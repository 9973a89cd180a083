"""Payments taken in the store that no outside provider holds: cash at the till, and the
retailer's own gift cards. There is nobody to authorise or capture them with (the cash was
handed over, the card's balance taken at checkout). A cash refund is money the store hands
back, which the `payment.refunded` event tells it; a gift card's refund goes back onto the
card as the refund is recorded (oms.services.provider_calls)."""

from __future__ import annotations

import datetime as dt

from oms.adapters import ProviderUnavailable
from oms.adapters.payments import PaymentLink, PaymentRequest, PaymentResult


class InStore:
    def authorize(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(True, psp_reference=request.idempotency_key)

    def capture(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(True, psp_reference=request.idempotency_key)

    def refund(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(True, psp_reference=request.idempotency_key)

    def void(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(True, psp_reference=request.idempotency_key)

    def create_payment_link(self, request: PaymentRequest, expires_at: dt.datetime
                            ) -> PaymentLink:
        raise ProviderUnavailable("cash and gift cards are paid at the till, not by link")
