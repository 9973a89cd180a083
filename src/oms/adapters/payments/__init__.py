"""Payment service providers: authorise a card at a store's checkout, capture what was
authorised when the goods leave, refund what is given back, void what will not be captured.

A real PSP (Adyen, Stripe, ...) is one module more: a class with `authorize`, `capture`,
`refund` and `void` that take a `PaymentRequest`, named in `OMS_PSP_ADAPTERS` for the PSP
codes it serves. A refusal is a `PaymentResult` that did not succeed; a PSP that cannot be
reached raises `oms.adapters.ProviderUnavailable`, and the call is made again later with the
same key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PaymentRequest:
    #: Sent to the PSP as its idempotency key: a call made again is not taken twice.
    idempotency_key: str
    psp: str
    #: The PSP's reference of the authorisation.
    reference: str | None
    amount_minor: int
    currency: str
    #: What the authorisation was for, as the order recorded it.
    authorized_minor: int


@dataclass(frozen=True)
class PaymentResult:
    succeeded: bool
    psp_reference: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class PaymentLink:
    url: str
    #: Names the payment in the PSP's notification of its outcome.
    reference: str


class PaymentProvider(Protocol):
    def authorize(self, request: PaymentRequest) -> PaymentResult:
        """Authorise `amount_minor` (the card is at the terminal; `reference` is None). The
        result's `psp_reference` names the authorisation in the calls that follow; a
        declined card is a result that did not succeed."""
        ...

    def create_payment_link(self, request: PaymentRequest, expires_at: dt.datetime
                            ) -> PaymentLink:
        """A link the customer pays `amount_minor` at, on their phone, until `expires_at`;
        the PSP tells the outcome by a signed notification naming the link's reference."""
        ...

    def capture(self, request: PaymentRequest) -> PaymentResult: ...

    def refund(self, request: PaymentRequest) -> PaymentResult: ...

    def void(self, request: PaymentRequest) -> PaymentResult: ...
