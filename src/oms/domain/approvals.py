"""Manager approvals: rules a cart must have a manager's approval for before checkout.

A rule is a set of criteria that must all hold of the cart (a rule of none holds of nothing).
Amounts are in the cart's currency, as decimal numbers; a percentage discount is the cart's
discount as a share of its subtotal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Criteria:
    order_value_at_least: Decimal | None = None
    has_discount: bool | None = None
    discount_percentage_at_least: Decimal | None = None
    discount_value_at_least: Decimal | None = None
    price_override: bool | None = None
    tax_exempt: bool | None = None
    #: Any of these payment methods among the cart's payments.
    payment_methods: frozenset[str] | None = None


@dataclass(frozen=True)
class ApprovalRule:
    id: str
    name: str
    criteria: Criteria


@dataclass(frozen=True)
class CartFacts:
    """What the rules look at, the amounts in the cart's currency."""

    subtotal: Decimal
    discount: Decimal
    grand_total: Decimal
    price_override: bool
    tax_exempt: bool
    payment_methods: frozenset[str]


def matches(criteria: Criteria, facts: CartFacts) -> bool:
    held: list[bool] = []
    if criteria.order_value_at_least is not None:
        held.append(facts.grand_total >= criteria.order_value_at_least)
    if criteria.has_discount is not None:
        held.append((facts.discount > 0) is criteria.has_discount)
    if criteria.discount_percentage_at_least is not None:
        held.append(facts.subtotal > 0 and facts.discount * 100 / facts.subtotal
                    >= criteria.discount_percentage_at_least)
    if criteria.discount_value_at_least is not None:
        held.append(facts.discount >= criteria.discount_value_at_least)
    if criteria.price_override is not None:
        held.append(facts.price_override is criteria.price_override)
    if criteria.tax_exempt is not None:
        held.append(facts.tax_exempt is criteria.tax_exempt)
    if criteria.payment_methods is not None:
        held.append(bool(facts.payment_methods & criteria.payment_methods))
    return bool(held) and all(held)


def matching(rules: Sequence[ApprovalRule], facts: CartFacts) -> list[str]:
    """The ids of the rules that hold of the cart, in the rules' order."""
    return [r.id for r in rules if matches(r.criteria, facts)]
