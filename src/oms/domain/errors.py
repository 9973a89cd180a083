"""Errors the domain and the services raise; the API turns each kind into problem+json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass
class DomainError(Exception):
    """Base of every refusal the business rules make. `kind` is a stable machine name."""

    detail: str
    errors: list[FieldError] = field(default_factory=list)
    kind: str = "invalid-request"
    #: The same request may well pass when sent again (the state it met was passing): its
    #: refusal is not kept as the answer of its Idempotency-Key.
    retryable: bool = False
    #: Members the problem carries besides its own (RFC 9457 extension members).
    extensions: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail


class ValidationFailed(DomainError):
    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail, errors or [], "validation-error")


class NotFound(DomainError):
    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail, errors or [], "not-found")


class Conflict(DomainError):
    def __init__(self, detail: str, errors: list[FieldError] | None = None, *,
                 retryable: bool = False) -> None:
        super().__init__(detail, errors or [], "conflict", retryable)


class Forbidden(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, [], "forbidden")


class UpstreamFailed(DomainError):
    """A carrier or PSP refused or could not be reached; nothing was written."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, [], "upstream-failed")


class InvalidState(DomainError):
    """The step does not apply to the resource as it is now (it is in another state)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, [], "invalid-state")


class InsufficientStock(DomainError):
    """A reservation asked for more than the available-to-promise quantity."""

    def __init__(self, location_id: str, sku: str, requested: int) -> None:
        super().__init__(
            f"not enough stock of {sku!r} at {location_id!r} to reserve {requested}",
            [FieldError("quantity", f"ATP of {sku} at {location_id} is below {requested}")],
            "insufficient-stock",
        )
        self.location_id = location_id
        self.sku = sku
        self.requested = requested


class ApprovalRequired(DomainError):
    """The cart matches rules a manager has not approved since it last changed."""

    def __init__(self, rule_ids: list[str]) -> None:
        super().__init__(f"a manager's approval is needed for: {', '.join(rule_ids)}", [],
                         "approval-required", retryable=True,
                         extensions={"rules": rule_ids})
