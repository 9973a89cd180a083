"""A PSP that keeps a ledger of authorisations, captures, refunds and voids in memory, for
development and tests. It refuses what a real PSP would: captures beyond what is left of the
authorisation, refunds beyond what was captured, and captures it was told to decline; and it
takes a call whose idempotency key it has seen as that same call."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from oms.adapters import ProviderUnavailable
from oms.adapters.payments import PaymentLink, PaymentRequest, PaymentResult


@dataclass(frozen=True)
class LedgerEntry:
    kind: str  # authorization | capture | refund | void
    reference: str
    amount_minor: int
    currency: str
    idempotency_key: str | None = None


class SimulatedPsp:
    def __init__(self) -> None:
        #: Every capture asked, as asked (a call made again appears again).
        self.calls: list[PaymentRequest] = []
        self.refund_calls: list[PaymentRequest] = []
        self.void_calls: list[PaymentRequest] = []
        self.ledger: list[LedgerEntry] = []
        #: Authorisation references whose captures are declined.
        self.declined: set[str] = set()
        #: Amounts (minor units) whose authorisation the issuer declines.
        self.declined_amounts: set[int] = set()
        #: The payment links made, with their expiry.
        self.links: list[tuple[PaymentRequest, dt.datetime]] = []
        #: While set, every call fails as an unreachable PSP's would.
        self.unreachable = False
        self._lock = threading.Lock()

    def total(self, kind: str, reference: str) -> int:
        return sum(e.amount_minor for e in self.ledger
                   if e.kind == kind and e.reference == reference)

    def captured(self, reference: str) -> int:
        return self.total("capture", reference)

    def authorize(self, request: PaymentRequest) -> PaymentResult:
        with self._lock:
            if self.unreachable:
                raise ProviderUnavailable("connection refused")
            if (seen := self._seen(request)) is not None:
                return seen
            if request.amount_minor in self.declined_amounts:
                return PaymentResult(False, reason="declined by the issuer")
            self.ledger.append(LedgerEntry("authorization", request.idempotency_key,
                                           request.amount_minor, request.currency,
                                           request.idempotency_key))
            return PaymentResult(True, psp_reference=request.idempotency_key)

    def create_payment_link(self, request: PaymentRequest, expires_at: dt.datetime
                            ) -> PaymentLink:
        with self._lock:
            if self.unreachable:
                raise ProviderUnavailable("connection refused")
            self.links.append((request, expires_at))
            return PaymentLink(f"https://pay.simulated.test/{request.idempotency_key}",
                               request.idempotency_key)

    def capture(self, request: PaymentRequest) -> PaymentResult:
        with self._lock:
            self.calls.append(request)
            reference = self._authorised(request)
            if (seen := self._seen(request)) is not None:
                return seen
            if reference in self.declined:
                return PaymentResult(False, reason="declined by the issuer")
            left = (request.authorized_minor - self.total("capture", reference)
                    - self.total("void", reference))
            if request.amount_minor > left:
                return PaymentResult(False, reason="amount exceeds the authorisation")
            return self._book("capture", reference, request)

    def refund(self, request: PaymentRequest) -> PaymentResult:
        with self._lock:
            self.refund_calls.append(request)
            if not any(e.reference == (request.reference or request.idempotency_key)
                       for e in self.ledger):
                # A payment first seen at a refund was captured by the shop's checkout.
                reference = self._authorised(request)
                self.ledger.append(LedgerEntry("capture", reference, request.authorized_minor,
                                               request.currency))
            reference = self._authorised(request)
            if (seen := self._seen(request)) is not None:
                return seen
            if request.amount_minor > (self.total("capture", reference)
                                       - self.total("refund", reference)):
                return PaymentResult(False, reason="amount exceeds what was captured")
            return self._book("refund", reference, request)

    def void(self, request: PaymentRequest) -> PaymentResult:
        with self._lock:
            self.void_calls.append(request)
            reference = self._authorised(request)
            if (seen := self._seen(request)) is not None:
                return seen
            left = (request.authorized_minor - self.total("capture", reference)
                    - self.total("void", reference))
            if request.amount_minor > left:
                return PaymentResult(False, reason="amount exceeds what is left authorised")
            return self._book("void", reference, request)

    def _authorised(self, request: PaymentRequest) -> str:
        if self.unreachable:
            raise ProviderUnavailable("connection refused")
        reference = request.reference or request.idempotency_key
        if not any(e.kind == "authorization" and e.reference == reference
                   for e in self.ledger):
            # The authorisation was made by the shop's checkout, before the OMS saw it.
            self.ledger.append(LedgerEntry("authorization", reference,
                                           request.authorized_minor, request.currency))
        return reference

    def _seen(self, request: PaymentRequest) -> PaymentResult | None:
        if any(e.idempotency_key == request.idempotency_key for e in self.ledger):
            return PaymentResult(True, psp_reference=request.idempotency_key)
        return None

    def _book(self, kind: str, reference: str, request: PaymentRequest) -> PaymentResult:
        self.ledger.append(LedgerEntry(kind, reference, request.amount_minor,
                                       request.currency, request.idempotency_key))
        return PaymentResult(True, psp_reference=request.idempotency_key)
