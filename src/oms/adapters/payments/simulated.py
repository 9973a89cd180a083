"""A PSP that keeps a ledger of authorisations and captures in memory, for development and
tests. It declines what a real PSP would: captures beyond the authorisation,
and authorisations it was told to decline."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from oms.adapters.payments import CaptureRequest, CaptureResult


@dataclass(frozen=True)
class LedgerEntry:
    kind: str  # authorization | capture
    reference: str
    amount_minor: int
    currency: str
    idempotency_key: str | None = None


class SimulatedPsp:
    def __init__(self) -> None:
        self.calls: list[CaptureRequest] = []
        self.ledger: list[LedgerEntry] = []
        #: Authorisation references whose captures are declined.
        self.declined: set[str] = set()
        self._lock = threading.Lock()

    def captured(self, reference: str) -> int:
        return sum(e.amount_minor for e in self.ledger
                   if e.kind == "capture" and e.reference == reference)

    def capture(self, request: CaptureRequest) -> CaptureResult:
        with self._lock:
            self.calls.append(request)
            reference = request.reference or request.idempotency_key
            if any(e.idempotency_key == request.idempotency_key for e in self.ledger):
                return CaptureResult(True, psp_reference=request.idempotency_key)
            if reference in self.declined:
                return CaptureResult(False, reason="declined by the issuer")
            if not any(e.kind == "authorization" and e.reference == reference
                       for e in self.ledger):
                # The authorisation was made by the shop's checkout, before the OMS saw it.
                self.ledger.append(LedgerEntry("authorization", reference,
                                               request.authorized_minor, request.currency))
            if self.captured(reference) + request.amount_minor > request.authorized_minor:
                return CaptureResult(False, reason="amount exceeds the authorisation")
            self.ledger.append(LedgerEntry("capture", reference, request.amount_minor,
                                           request.currency, request.idempotency_key))
            return CaptureResult(True, psp_reference=request.idempotency_key)
