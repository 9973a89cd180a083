"""Order routing: which location fulfils each item, and why.

A pure function of the order's items, its shipping option and destination, the stock the
candidates hold, the locations and the routing rule. Order of preference:

1. capable (ship, or pickup at the pickup store) and active, and not excluded;
2. enough ATP (future ATP for pre-orders) for the item's whole quantity, counting every line
   of the same sku together;
3. fewest locations for the whole order;
4. the rule's group order, then `priority`, then distance to the destination, then the
   location with the most ATP left; location id last, so the result is deterministic.

`route` here is the plain account: every candidate weighed, with the reason it was chosen or
passed over. It is the reference that `routing_fast.decide` (what orders are routed with) is
checked against, and its parts explain a stored run on request (`routing_record.explain`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from oms.domain.locations import Capability, Location, haversine_km


class Verdict(StrEnum):
    CHOSEN = "chosen"
    PASSED_OVER = "passed_over"
    INELIGIBLE = "ineligible"


class ReasonCode(StrEnum):
    """Why a location was or was not chosen for an item, in the order they are checked."""

    CHOSEN = "chosen"
    # Ineligible: the location was not weighed at all.
    INACTIVE = "inactive"
    REJECTED_BEFORE = "rejected_before"
    NOT_THE_PICKUP_STORE = "not_the_pickup_store"
    NO_PICKUP = "no_pickup"
    NO_SHIPPING = "no_shipping"
    NOT_THE_NAMED_LOCATION = "not_the_named_location"
    NOT_IN_RULE = "not_in_rule"
    # Passed over: weighed, and another location won.
    NOT_ENOUGH_ATP = "not_enough_atp"
    ATP_WENT_TO_OTHER_ITEMS = "atp_went_to_other_items"
    TAKES_LESS_OF_THE_ORDER = "takes_less_of_the_order"
    LATER_RULE_GROUP = "later_rule_group"
    LOWER_PRIORITY = "lower_priority"
    FARTHER = "farther"
    LESS_ATP_LEFT = "less_atp_left"
    # About a stored run: the location was not there to weigh, or nothing was weighed.
    NOT_A_LOCATION_YET = "not_a_location_yet"
    NOT_WEIGHED = "not_weighed"


INELIGIBLE_CODES = frozenset({
    ReasonCode.INACTIVE, ReasonCode.REJECTED_BEFORE, ReasonCode.NOT_THE_PICKUP_STORE,
    ReasonCode.NO_PICKUP, ReasonCode.NO_SHIPPING, ReasonCode.NOT_THE_NAMED_LOCATION,
    ReasonCode.NOT_IN_RULE, ReasonCode.NOT_A_LOCATION_YET,
})


def verdict_of(code: ReasonCode) -> Verdict:
    if code is ReasonCode.CHOSEN:
        return Verdict.CHOSEN
    return Verdict.INELIGIBLE if code in INELIGIBLE_CODES else Verdict.PASSED_OVER


@dataclass(frozen=True)
class RoutingItem:
    item_id: str
    sku: str
    quantity: int
    preorder: bool = False


@dataclass(frozen=True)
class Destination:
    country: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class RoutingRule:
    """Per service level and destination country: location groups to try, in order."""

    service_level: str
    country: str
    groups: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Conditions:
    """What the order asks of every location, besides stock."""

    service_level: str
    pickup_location_id: str | None = None
    required_location_id: str | None = None
    excluded: frozenset[str] = frozenset()
    rule: RoutingRule | None = None

    @property
    def pickup(self) -> bool:
        return self.service_level == "pickup"

    def needs(self) -> Capability:
        return Capability.PICKUP if self.pickup else Capability.SHIP


@dataclass(frozen=True)
class Score:
    """What a location offered in the round that placed the item, compared in this order:
    more items of the order, earlier rule group, lower priority, nearer, more ATP left."""

    takes: int
    rule_group: int | None
    priority: int
    distance_km: float
    atp_left: int

    def order_key(self, location_id: str) -> tuple[int, int, int, float, int, str]:
        return (-self.takes, self.rule_group or 0, self.priority, self.distance_km,
                -self.atp_left, location_id)


@dataclass(frozen=True)
class Consideration:
    item_id: str
    location_id: str
    verdict: Verdict
    reason: str
    code: ReasonCode
    #: For a location that could take the item in the round that placed it.
    score: Score | None = None


@dataclass
class RoutingPlan:
    assignments: dict[str, str] = field(default_factory=dict)
    on_hold: dict[str, str] = field(default_factory=dict)
    considerations: list[Consideration] = field(default_factory=list)

    def locations_used(self) -> set[str]:
        return set(self.assignments.values())


StockKey = tuple[str, str]
Pools = tuple[dict[StockKey, int], dict[StockKey, int]]


@dataclass(frozen=True)
class Rank:
    #: Index of the rule group the location is in; None without a rule.
    group: int | None
    priority: int
    distance_km: float
    location_id: str

    def order_key(self) -> tuple[int, int, float, str]:
        return (self.group or 0, self.priority, self.distance_km, self.location_id)


@dataclass(frozen=True)
class Offer:
    """What a location could take in one round, and the ATP it would keep of those skus."""

    items: frozenset[str]
    atp_left: int


@dataclass
class Rounds:
    assignments: dict[str, str] = field(default_factory=dict)
    #: Per item placed: every location's offer in the round that placed it.
    offers_of: dict[str, dict[str, Offer]] = field(default_factory=dict)


def route(
    items: Sequence[RoutingItem],
    *,
    service_level: str,
    destination: Destination,
    stock: Mapping[StockKey, int],
    locations: Sequence[Location],
    future_stock: Mapping[StockKey, int] | None = None,
    rule: RoutingRule | None = None,
    pickup_location_id: str | None = None,
    required_location_id: str | None = None,
    excluded: frozenset[str] = frozenset(),
) -> RoutingPlan:
    """Plan where each item goes, with every candidate's consideration. `stock` and
    `future_stock` give ATP per (location, sku); nothing is reserved here: the caller applies
    the plan."""
    plan = RoutingPlan()
    conditions = Conditions(service_level, pickup_location_id, required_location_id,
                            excluded, rule)
    group_of = rule_groups(rule)
    eligible: list[str] = []
    ranks: dict[str, Rank] = {}
    for location in sorted(locations, key=lambda loc: loc.id):
        ineligible = ineligibility(location.id, conditions, group_of, active=location.active,
                                   capable=conditions.needs() in location.capabilities)
        if ineligible is not None:
            code, reason = ineligible
            plan.considerations.extend(
                Consideration(i.item_id, location.id, Verdict.INELIGIBLE, reason, code)
                for i in items)
            continue
        distance = (haversine_km(destination.lat, destination.lon, location.address.lat,
                                 location.address.lon)
                    if destination.lat is not None and destination.lon is not None else 0.0)
        ranks[location.id] = Rank(group_of.get(location.id), location.priority,
                                  round(distance, 1), location.id)
        eligible.append(location.id)
    at_start = (clamped(stock), clamped(future_stock or {}))
    rounds = assign(items, eligible, ranks, at_start)
    plan.assignments = rounds.assignments

    in_rank_order = sorted(eligible, key=lambda loc: ranks[loc].order_key())
    for item in items:
        plan.considerations.extend(consider(item, loc, ranks, at_start, rounds)
                                   for loc in in_rank_order)
        if item.item_id not in rounds.assignments:
            plan.on_hold[item.item_id] = hold_reason(item, bool(eligible), excluded)
    return plan


def rule_groups(rule: RoutingRule | None) -> dict[str, int]:
    """The index of the first rule group each location is in."""
    group_of: dict[str, int] = {}
    if rule is not None:
        for index, group in enumerate(rule.groups):
            for location_id in group:
                group_of.setdefault(location_id, index)
    return group_of


def ineligibility(location_id: str, conditions: Conditions, group_of: Collection[str], *,
                  active: bool, capable: bool) -> tuple[ReasonCode, str] | None:
    """Why the location is not weighed for this order at all, or None when it is. `capable`:
    it offers what the order needs (pickup, or shipping)."""
    rule = conditions.rule
    if not active:
        return ReasonCode.INACTIVE, "location is inactive"
    if location_id in conditions.excluded:
        return ReasonCode.REJECTED_BEFORE, "location rejected these items before"
    if conditions.pickup and location_id != conditions.pickup_location_id:
        return ReasonCode.NOT_THE_PICKUP_STORE, "a pickup item goes only to its pickup store"
    if not capable:
        return ((ReasonCode.NO_PICKUP, "location does not offer pickup") if conditions.pickup
                else (ReasonCode.NO_SHIPPING, "location does not ship"))
    required = conditions.required_location_id
    if required is not None and location_id != required:
        return ReasonCode.NOT_THE_NAMED_LOCATION, f"the order names {required} to fulfil it"
    if rule is not None and location_id not in group_of:
        return (ReasonCode.NOT_IN_RULE,
                f"not in the routing rule for {rule.service_level} to {rule.country}")
    return None


def clamped(values: Mapping[StockKey, int]) -> dict[StockKey, int]:
    """Negative ATP (a location in discrepancy) sells nothing, and takes nothing away."""
    return defaultdict(int, {k: max(v, 0) for k, v in values.items()})


def assign(items: Sequence[RoutingItem], eligible: Sequence[str], ranks: Mapping[str, Rank],
           at_start: Pools) -> Rounds:
    """Round after round, the location that takes most of what is left (then the best
    ranked) takes it."""
    left = (defaultdict(int, at_start[0]), defaultdict(int, at_start[1]))
    rounds = Rounds()
    remaining = list(items)
    while remaining:
        offers = {loc: Offer(frozenset(i.item_id for i in fits), _left_after(loc, fits, left))
                  for loc in eligible if (fits := _what_fits(remaining, loc, left))}
        if not offers:
            break
        chosen = min(offers, key=lambda loc: (
            -len(offers[loc].items), *ranks[loc].order_key()[:3], -offers[loc].atp_left, loc))
        for item in remaining:
            if item.item_id in offers[chosen].items:
                _pool(item, left)[(chosen, item.sku)] -= item.quantity
                rounds.assignments[item.item_id] = chosen
                rounds.offers_of[item.item_id] = offers
        remaining = [item for item in remaining if item.item_id not in offers[chosen].items]
    return rounds


def consider(item: RoutingItem, location_id: str, ranks: Mapping[str, Rank], at_start: Pools,
             rounds: Rounds) -> Consideration:
    """Why an eligible location was chosen for the item, or passed over."""
    chosen_at = rounds.assignments.get(item.item_id)
    had = _pool(item, at_start).get((location_id, item.sku), 0)
    offers = rounds.offers_of.get(item.item_id, {})
    offer = offers.get(location_id)
    if location_id == chosen_at:
        code, reason = ReasonCode.CHOSEN, why_chosen(ranks[location_id])
    elif had < item.quantity:
        code, reason = ReasonCode.NOT_ENOUGH_ATP, _not_enough(item, had)
    elif chosen_at is None or offer is None or item.item_id not in offer.items:
        code, reason = (ReasonCode.ATP_WENT_TO_OTHER_ITEMS,
                        "its ATP went to other items of the order")
    else:
        code, reason = why_not(ranks[location_id], ranks[chosen_at],
                                takes_fewer=len(offer.items) < len(offers[chosen_at].items))
    score = None
    if offer is not None and item.item_id in offer.items:
        rank = ranks[location_id]
        score = Score(len(offer.items), None if rank.group is None else rank.group + 1,
                      rank.priority, rank.distance_km, offer.atp_left)
    return Consideration(item.item_id, location_id, verdict_of(code), reason, code, score)


def hold_reason(item: RoutingItem, any_eligible: bool, excluded: Collection[str]) -> str:
    return ("no eligible location" if not any_eligible
            else f"no eligible location has {item.quantity} of {item.sku} "
                 + ("in future stock" if item.preorder else "available")) + (
        # Say why a store that has the stock is not used: it rejected the items.
        f"; rejected before, not asked again: {', '.join(sorted(excluded))}"
        if excluded else "")


def _pool(item: RoutingItem, pools: Pools) -> dict[StockKey, int]:
    return pools[1] if item.preorder else pools[0]


def _what_fits(items: Sequence[RoutingItem], location_id: str, pools: Pools
               ) -> list[RoutingItem]:
    """The items this location can take, lines of one sku counted together."""
    used: dict[tuple[bool, str], int] = defaultdict(int)
    fits = []
    for item in items:
        need = used[(item.preorder, item.sku)] + item.quantity
        if _pool(item, pools)[(location_id, item.sku)] >= need:
            used[(item.preorder, item.sku)] = need
            fits.append(item)
    return fits


def _left_after(location_id: str, takes: Sequence[RoutingItem], pools: Pools) -> int:
    """ATP the location keeps of the skus it would ship: more left balances stock."""
    taken: dict[tuple[bool, str], int] = defaultdict(int)
    for item in takes:
        taken[(item.preorder, item.sku)] += item.quantity
    return sum(
        (pools[1] if preorder else pools[0])[(location_id, sku)] - quantity
        for (preorder, sku), quantity in taken.items()
    )


def _not_enough(item: RoutingItem, have: int) -> str:
    kind = "future ATP" if item.preorder else "ATP"
    return f"not enough {kind}: has {have}, the item needs {item.quantity}"


def why_chosen(rank: Rank) -> str:
    group = f"rule group {rank.group + 1}, " if rank.group is not None else ""
    return f"chosen: {group}priority {rank.priority}, {rank.distance_km:.1f} km away"


def why_not(rank: Rank, chosen: Rank, *, takes_fewer: bool) -> tuple[ReasonCode, str]:
    # The location could take the item in the round that placed it: it lost on how much of
    # the order it could take, or else on the ranking.
    if takes_fewer:
        code = ReasonCode.TAKES_LESS_OF_THE_ORDER
    elif rank.group is not None and chosen.group is not None and rank.group != chosen.group:
        code = ReasonCode.LATER_RULE_GROUP
    elif rank.priority != chosen.priority:
        code = ReasonCode.LOWER_PRIORITY
    elif rank.distance_km != chosen.distance_km:
        code = ReasonCode.FARTHER
    else:
        code = ReasonCode.LESS_ATP_LEFT
    return code, passed_over_reason(code, rank, chosen)


def passed_over_reason(code: ReasonCode, rank: Rank, chosen: Rank) -> str:
    """The words for a location passed over on the ranking (`why_not`'s code)."""
    if code is ReasonCode.TAKES_LESS_OF_THE_ORDER:
        return "another location takes more of the order: fewer shipments"
    if code is ReasonCode.LATER_RULE_GROUP:
        assert rank.group is not None
        assert chosen.group is not None
        return f"later rule group ({rank.group + 1} against {chosen.group + 1})"
    if code is ReasonCode.LOWER_PRIORITY:
        return f"lower priority ({rank.priority} against {chosen.priority})"
    if code is ReasonCode.FARTHER:
        return f"farther ({rank.distance_km:.1f} km against {chosen.distance_km:.1f} km)"
    return "less ATP left after the order than the chosen location"


def rank_of(score: Score, location_id: str) -> Rank:
    """The ranking part of a score (whose rule group counts from 1)."""
    return Rank(None if score.rule_group is None else score.rule_group - 1, score.priority,
                score.distance_km, location_id)
