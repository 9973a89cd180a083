"""Payments as the OMS keeps them: what is authorised, captured, refunded and voided, what is
asked of the PSP and not answered yet, and what to ask next.

Calls to a PSP or a carrier are carried out after the step that needs them commits; each
carries an idempotency key made of what it is for, so that a step retried after a failed
commit asks for the same thing under the same key and the provider takes it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from oms.domain.orders import PaymentState


class CallKind(StrEnum):
    CAPTURE = "capture"
    REFUND = "refund"
    VOID = "void"
    LABEL = "label"


class CallStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    #: The provider refused; trying again with the same key would get the same answer.
    FAILED = "failed"


@dataclass(frozen=True)
class PaymentBook:
    """A payment's amounts in minor units, including calls not answered yet."""

    id: str
    amount: int
    captured: int
    refunded: int
    voided: int
    pending_capture: int = 0
    pending_refund: int = 0
    pending_void: int = 0

    @property
    def capturable(self) -> int:
        """Authorised, and neither captured, voided nor asked to be."""
        return (self.amount - self.captured - self.voided - self.pending_capture
                - self.pending_void)

    @property
    def refundable(self) -> int:
        return self.captured - self.refunded - self.pending_refund

    @property
    def taken(self) -> int:
        """What the customer pays through this payment once every call is answered."""
        return self.captured - self.refunded - self.pending_refund + self.pending_capture

    def key(self, kind: CallKind, amount: int, refusals: int) -> str:
        """The idempotency key of asking `amount` more of `kind`: the running total it makes
        tells this call from the others; a call after a refusal is a new one."""
        done = {CallKind.CAPTURE: self.captured + self.pending_capture,
                CallKind.REFUND: self.refunded + self.pending_refund,
                CallKind.VOID: self.voided + self.pending_void}[kind]
        return f"{self.id}:{kind.value}:{done + amount}" + (f":{refusals}" if refusals else "")


def plan_captures(books: Sequence[PaymentBook], owed: int) -> list[tuple[PaymentBook, int]]:
    """What to capture, from the payments in turn, so that `owed` is taken in all."""
    to_capture = owed - sum(b.taken for b in books)
    plan = []
    for book in books:
        if to_capture <= 0:
            break
        amount = min(book.capturable, to_capture)
        if amount > 0:
            plan.append((book, amount))
            to_capture -= amount
    return plan


def plan_release(books: Sequence[PaymentBook], needed: int
                 ) -> list[tuple[PaymentBook, CallKind, int]]:
    """Once items are cancelled only `needed` is owed: void the authorisation left over and
    refund what was captured beyond it, the last payment first."""
    taken = sum(b.taken for b in books)
    open_ = sum(b.capturable for b in books)
    void_total = max(open_ - max(needed - taken, 0), 0)
    refund_total = max(taken - needed, 0)
    plan: list[tuple[PaymentBook, CallKind, int]] = []
    for book in reversed(books):
        void = min(book.capturable, void_total)
        if void > 0:
            plan.append((book, CallKind.VOID, void))
            void_total -= void
        refund = min(book.refundable, refund_total)
        if refund > 0:
            plan.append((book, CallKind.REFUND, refund))
            refund_total -= refund
    return plan


def payment_state(book: PaymentBook, capture_refused: bool) -> PaymentState:
    """The payment's status as its amounts say; a refused capture shows until one succeeds."""
    if capture_refused:
        return PaymentState.CAPTURE_FAILED
    if book.refunded and book.refunded == book.captured:
        return PaymentState.REFUNDED
    if book.refunded:
        return PaymentState.PARTIALLY_REFUNDED
    if book.captured and book.captured + book.voided == book.amount:
        return PaymentState.CAPTURED
    if book.captured:
        return PaymentState.PARTIALLY_CAPTURED
    if book.voided and book.voided == book.amount:
        return PaymentState.VOIDED
    return PaymentState.AUTHORIZED
