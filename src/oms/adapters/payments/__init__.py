"""Payment service providers: capture what was authorised when the goods leave.

A real PSP (Adyen, Stripe, ...) is one module more: a class with `capture` that takes a
`CaptureRequest`, named in `OMS_PSP_ADAPTERS` for the PSP codes it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CaptureRequest:
    #: Sent to the PSP as its idempotency key: a retried capture is not taken twice.
    idempotency_key: str
    psp: str
    #: The PSP's reference of the authorisation.
    reference: str | None
    amount_minor: int
    currency: str
    #: What the authorisation was for, as the order recorded it.
    authorized_minor: int


@dataclass(frozen=True)
class CaptureResult:
    succeeded: bool
    psp_reference: str | None = None
    reason: str | None = None


class PaymentProvider(Protocol):
    def capture(self, request: CaptureRequest) -> CaptureResult: ...
