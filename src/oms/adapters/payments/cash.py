"""Cash taken at a store's till, as a payment provider: there is nobody to authorise or
capture it with (it was handed over), and a refund is cash the store hands back, which the
`payment.refunded` event tells it."""

from __future__ import annotations

from oms.adapters.payments import PaymentRequest, PaymentResult


class CashDrawer:
    def authorize(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(True, psp_reference=request.idempotency_key)

    def capture(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(True, psp_reference=request.idempotency_key)

    def refund(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(True, psp_reference=request.idempotency_key)

    def void(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(True, psp_reference=request.idempotency_key)
