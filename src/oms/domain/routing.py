"""Order routing: which location fulfils each item, and why.

A pure function of the order's items, its shipping option and destination, the stock the
candidates hold, the locations and the routing rule. Order of preference:

1. capable (ship, or pickup at the pickup store) and active, and not excluded;
2. enough ATP (future ATP for pre-orders) for the item's whole quantity, counting every line
   of the same sku together;
3. fewest locations for the whole order;
4. the rule's group order, then `priority`, then distance to the destination, then the
   location with the most ATP left; location id last, so the result is deterministic.

Every candidate weighed is recorded with the reason it was chosen or passed over.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from oms.domain.locations import Capability, Location, haversine_km


class Verdict(StrEnum):
    CHOSEN = "chosen"
    PASSED_OVER = "passed_over"
    INELIGIBLE = "ineligible"


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
class Consideration:
    item_id: str
    location_id: str
    verdict: Verdict
    reason: str


@dataclass
class RoutingPlan:
    assignments: dict[str, str] = field(default_factory=dict)
    on_hold: dict[str, str] = field(default_factory=dict)
    considerations: list[Consideration] = field(default_factory=list)

    def locations_used(self) -> set[str]:
        return set(self.assignments.values())


StockKey = tuple[str, str]


@dataclass(frozen=True)
class _Rank:
    #: Index of the rule group the location is in; None without a rule.
    group: int | None
    priority: int
    distance_km: float
    location_id: str


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
    """Plan where each item goes. `stock` and `future_stock` give ATP per (location, sku);
    nothing is reserved here: the caller applies the plan."""
    plan = RoutingPlan()
    eligible, ranks = _eligible_locations(
        plan, items, service_level, destination, locations, rule, pickup_location_id,
        required_location_id, excluded,
    )
    at_start = (_clamped(stock), _clamped(future_stock or {}))
    left = (_clamped(stock), _clamped(future_stock or {}))

    remaining = list(items)
    # Per item: what each location could take in the round that placed it, to say why the
    # others lost.
    round_of: dict[str, dict[str, set[str]]] = {}
    while remaining:
        options = [(loc, fits) for loc in eligible if (fits := _what_fits(remaining, loc, left))]
        if not options:
            break
        chosen, takes = min(
            options,
            key=lambda o: (-len(o[1]), *_order_key(ranks[o[0]])[:3],
                           -_left_after(o[0], o[1], left), o[0]),
        )
        could_take = {loc: {i.item_id for i in fits} for loc, fits in options}
        for item in takes:
            _pool(item, left)[(chosen, item.sku)] -= item.quantity
            plan.assignments[item.item_id] = chosen
            round_of[item.item_id] = could_take
        taken = {item.item_id for item in takes}
        remaining = [item for item in remaining if item.item_id not in taken]

    for item in items:
        chosen_at = plan.assignments.get(item.item_id)
        for location_id in sorted(eligible, key=lambda loc: _order_key(ranks[loc])):
            had = _pool(item, at_start)[(location_id, item.sku)]
            if location_id == chosen_at:
                verdict, reason = Verdict.CHOSEN, _why_chosen(ranks[location_id])
            elif had < item.quantity:
                verdict, reason = Verdict.PASSED_OVER, _not_enough(item, had)
            elif chosen_at is None or item.item_id not in round_of[item.item_id].get(
                    location_id, set()):
                verdict, reason = Verdict.PASSED_OVER, "its ATP went to other items of the order"
            else:
                could_take = round_of[item.item_id]
                verdict, reason = Verdict.PASSED_OVER, _why_not(
                    ranks[location_id], ranks[chosen_at],
                    takes_fewer=len(could_take[location_id]) < len(could_take[chosen_at]))
            plan.considerations.append(Consideration(item.item_id, location_id, verdict, reason))
        if chosen_at is None:
            plan.on_hold[item.item_id] = (
                "no eligible location" if not eligible
                else f"no eligible location has {item.quantity} of {item.sku} "
                     + ("in future stock" if item.preorder else "available")) + (
                # Say why a store that has the stock is not used: it rejected the items.
                f"; rejected before, not asked again: {', '.join(sorted(excluded))}"
                if excluded else "")
    return plan


Pools = tuple[dict[StockKey, int], dict[StockKey, int]]


def _clamped(values: Mapping[StockKey, int]) -> dict[StockKey, int]:
    """Negative ATP (a location in discrepancy) sells nothing, and takes nothing away."""
    return defaultdict(int, {k: max(v, 0) for k, v in values.items()})


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


def _order_key(rank: _Rank) -> tuple[int, int, float, str]:
    return (rank.group or 0, rank.priority, rank.distance_km, rank.location_id)


def _eligible_locations(
    plan: RoutingPlan,
    items: Sequence[RoutingItem],
    service_level: str,
    destination: Destination,
    locations: Sequence[Location],
    rule: RoutingRule | None,
    pickup_location_id: str | None,
    required_location_id: str | None,
    excluded: frozenset[str],
) -> tuple[list[str], dict[str, _Rank]]:
    group_of: dict[str, int] = {}
    if rule is not None:
        for index, group in enumerate(rule.groups):
            for location_id in group:
                group_of.setdefault(location_id, index)
    eligible: list[str] = []
    ranks: dict[str, _Rank] = {}
    pickup = service_level == "pickup"
    for location in sorted(locations, key=lambda loc: loc.id):
        reason = None
        if not location.active:
            reason = "location is inactive"
        elif location.id in excluded:
            reason = "location rejected these items before"
        elif pickup and location.id != pickup_location_id:
            reason = "a pickup item goes only to its pickup store"
        elif pickup and Capability.PICKUP not in location.capabilities:
            reason = "location does not offer pickup"
        elif not pickup and Capability.SHIP not in location.capabilities:
            reason = "location does not ship"
        elif required_location_id is not None and location.id != required_location_id:
            reason = f"the order names {required_location_id} to fulfil it"
        elif rule is not None and location.id not in group_of:
            reason = (f"not in the routing rule for {rule.service_level} to {rule.country}")
        if reason is not None:
            plan.considerations.extend(
                Consideration(i.item_id, location.id, Verdict.INELIGIBLE, reason) for i in items)
            continue
        distance = (haversine_km(destination.lat, destination.lon, location.address.lat,
                                 location.address.lon)
                    if destination.lat is not None and destination.lon is not None else 0.0)
        ranks[location.id] = _Rank(group_of.get(location.id), location.priority,
                                   round(distance, 1), location.id)
        eligible.append(location.id)
    return eligible, ranks


def _not_enough(item: RoutingItem, have: int) -> str:
    kind = "future ATP" if item.preorder else "ATP"
    return f"not enough {kind}: has {have}, the item needs {item.quantity}"


def _why_chosen(rank: _Rank) -> str:
    group = f"rule group {rank.group + 1}, " if rank.group is not None else ""
    return f"chosen: {group}priority {rank.priority}, {rank.distance_km:.1f} km away"


def _why_not(rank: _Rank, chosen: _Rank, *, takes_fewer: bool) -> str:
    # The location could take the item in the round that placed it: it lost on how much of
    # the order it could take, or else on the ranking.
    if takes_fewer:
        return "another location takes more of the order: fewer shipments"
    if rank.group is not None and chosen.group is not None and rank.group != chosen.group:
        return f"later rule group ({rank.group + 1} against {chosen.group + 1})"
    if rank.priority != chosen.priority:
        return f"lower priority ({rank.priority} against {chosen.priority})"
    if rank.distance_km != chosen.distance_km:
        return f"farther ({rank.distance_km:.1f} km against {chosen.distance_km:.1f} km)"
    return "less ATP left after the order than the chosen location"
