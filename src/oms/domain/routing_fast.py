"""Routing at the rate orders arrive: the same choices as `routing.route`, computed over arrays
of the network's locations instead of location by location.

`Network` holds the locations as arrays in location id order, built once for a set of
locations. `decide` takes the order's ATP per sku as arrays in that order and, round after
round, scores every candidate at once: how many of the remaining items it can take (lines of
one sku counted together), then the rule group, priority and distance, then the ATP it
keeps, then its position (the id order). It returns the assignments and hold reasons
`route` would give, the compact account of the run (`routing_record.ItemDecision`) and the
inputs that explain any location later. The tests check all of it against `route` on
generated networks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from oms.domain.locations import EARTH_RADIUS_KM, Capability, Location, haversine_km
from oms.domain.routing import (
    Conditions,
    Destination,
    Rank,
    ReasonCode,
    RoutingItem,
    RoutingRule,
    Score,
    hold_reason,
    why_chosen,
)
from oms.domain.routing_record import (
    ALTERNATIVES,
    Alternative,
    Candidates,
    Decision,
    ItemDecision,
    RunInputs,
)

Ints = NDArray[np.int64]
Flags = NDArray[np.bool_]
Floats = NDArray[np.float64]

#: How many of a round's best candidates are sorted first: enough for the location chosen and
#: its alternatives for each item, nearly always.
_PREFIX = 16
#: The ranking reasons, by the number `_Round.lost_on` gives them; the last number is the
#: location chosen's own.
_RANKING = (ReasonCode.TAKES_LESS_OF_THE_ORDER, ReasonCode.LATER_RULE_GROUP,
            ReasonCode.LOWER_PRIORITY, ReasonCode.FARTHER, ReasonCode.LESS_ATP_LEFT)
_CHOSEN = len(_RANKING)
#: Row r of a round's reasons counted as r * (_CHOSEN + 1) + reason (orders of up to 64
#: lines take one offset each; longer ones are rare enough to build theirs).
_ROW_OFFSETS = np.arange(64)[:, None] * (_CHOSEN + 1)
#: The packed ranking's fields from the bottom (distance, priority, group), as the lowest
#: value of an exclusive or whose top bit lies in each; and what a candidate lost on when
#: that is the highest field it differs in (none: the ATP it keeps).
_FIELD_BITS = np.array([1, 1 << 18, 1 << 38], dtype=np.int64)
_LOST_ON_FIELD = np.array([4, 3, 2, 1], dtype=np.int64)


class Network:
    """The locations routing weighs, as arrays in location id order."""

    def __init__(self, locations: Iterable[Location]) -> None:
        ordered = sorted(locations, key=lambda loc: loc.id)
        self.ids: tuple[str, ...] = tuple(loc.id for loc in ordered)
        self.id_array = np.array(self.ids, dtype=object)
        self.index: dict[str, int] = {loc_id: i for i, loc_id in enumerate(self.ids)}
        self.lat = np.array([loc.address.lat for loc in ordered], dtype=np.float64)
        self.lon = np.array([loc.address.lon for loc in ordered], dtype=np.float64)
        self.unit = _unit_vectors(self.lat, self.lon)
        self.priority = np.array([loc.priority for loc in ordered], dtype=np.int64)
        self.priorities = (min((loc.priority for loc in ordered), default=0),
                           max((loc.priority for loc in ordered), default=0))
        self.active = np.array([loc.active for loc in ordered], dtype=np.bool_)
        self.capable = {cap: np.array([cap in loc.capabilities for loc in ordered],
                                      dtype=np.bool_)
                        for cap in (Capability.SHIP, Capability.PICKUP)}
        self.inactive = frozenset(loc.id for loc in ordered if not loc.active)
        self.cannot_ship = frozenset(loc.id for loc in ordered
                                     if loc.active and Capability.SHIP not in loc.capabilities)
        shipping = self.active & self.capable[Capability.SHIP]
        #: The usual case: an order shipped, nothing excluded.
        self._shipping = (shipping, _nonzero({
            ReasonCode.INACTIVE: len(self.inactive),
            ReasonCode.NO_SHIPPING: len(self.cannot_ship)}))
        self._groups: dict[RoutingRule, Ints] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def atp_table(self, levels: Iterable[tuple[str, str, int]], skus: Iterable[str]
                  ) -> dict[str, Ints]:
        """(location, sku, ATP) rows as one array per sku, in location order; locations not
        in the network are left out."""
        table = {sku: np.zeros(len(self.ids), dtype=np.int64) for sku in skus}
        # Hundreds of rows an order: gathered per sku in lists, then one numpy store per sku
        # (a store per row, or comparing the rows' skus as a numpy array, costs more).
        gathered: dict[str, tuple[list[int], list[int]]] = {sku: ([], []) for sku in table}
        index = self.index
        for location_id, sku, atp in levels:
            at = index.get(location_id)
            into = gathered.get(sku)
            if at is not None and into is not None:
                into[0].append(at)
                into[1].append(atp)
        for sku, (at_locations, atps) in gathered.items():
            if at_locations:
                table[sku][at_locations] = atps
        return table

    def groups(self, rule: RoutingRule) -> Ints:
        """Per location, the index of the first rule group it is in; -1 for none."""
        found = self._groups.get(rule)
        if found is None:
            found = np.full(len(self.ids), -1, dtype=np.int64)
            for number, group in reversed(list(enumerate(rule.groups))):
                for location_id in group:
                    at = self.index.get(location_id)
                    if at is not None:
                        found[at] = number
            self._groups[rule] = found
        return found

    def eligible(self, conditions: Conditions
                 ) -> tuple[Flags, dict[ReasonCode, int], frozenset[str]]:
        """Which locations are weighed; how many are not, per reason; and the active ones
        without the capability the order needs (kept to explain them later)."""
        if not conditions.pickup and not conditions.excluded:
            weighed, base = self._shipping
            counts = dict(base)
            incapable = self.cannot_ship
        else:
            counts = _nonzero({ReasonCode.INACTIVE: len(self.inactive)})
            weighed = self.active
            if conditions.excluded:
                weighed = self._keep(weighed, ~self._flags(conditions.excluded),
                                     ReasonCode.REJECTED_BEFORE, counts)
            if conditions.pickup:
                weighed = self._keep(weighed, self._flags({conditions.pickup_location_id}),
                                     ReasonCode.NOT_THE_PICKUP_STORE, counts)
                lacking = weighed & ~self.capable[Capability.PICKUP]
                incapable = frozenset(self.ids[i] for i in np.flatnonzero(lacking))
                weighed = self._keep(weighed, self.capable[Capability.PICKUP],
                                     ReasonCode.NO_PICKUP, counts)
            else:
                incapable = self.cannot_ship
                weighed = self._keep(weighed, self.capable[Capability.SHIP],
                                     ReasonCode.NO_SHIPPING, counts)
        if conditions.required_location_id is not None:
            weighed = self._keep(weighed, self._flags({conditions.required_location_id}),
                                 ReasonCode.NOT_THE_NAMED_LOCATION, counts)
        if conditions.rule is not None:
            weighed = self._keep(weighed, self.groups(conditions.rule) >= 0,
                                 ReasonCode.NOT_IN_RULE, counts)
        return weighed, counts, incapable

    def _flags(self, location_ids: Iterable[str | None]) -> Flags:
        flags = np.zeros(len(self.ids), dtype=np.bool_)
        for location_id in location_ids:
            at = self.index.get(location_id) if location_id is not None else None
            if at is not None:
                flags[at] = True
        return flags

    @staticmethod
    def _keep(weighed: Flags, passing: Flags, code: ReasonCode,
              counts: dict[ReasonCode, int]) -> Flags:
        dropped = int(np.count_nonzero(weighed & ~passing))
        if dropped:
            counts[code] = dropped
        return weighed & passing

    def tenths_of_km(self, destination: Destination) -> Ints:
        """Distance from the destination to every location, in tenths of a kilometre,
        rounded as `route` rounds `haversine_km`."""
        if destination.lat is None or destination.lon is None:
            return np.zeros(len(self.ids), dtype=np.int64)
        # The great circle through the chord between the two points on the unit sphere:
        # haversine_km's distance to within 1e-9 km, short of the antipode.
        phi, lam = math.radians(destination.lat), math.radians(destination.lon)
        apart = self.unit - np.array([[math.cos(phi) * math.cos(lam)],
                                      [math.cos(phi) * math.sin(lam)], [math.sin(phi)]])
        tenths = (20 * EARTH_RADIUS_KM) * np.arcsin(
            np.sqrt(np.einsum("ij,ij->j", apart, apart)) / 2)
        rounded = np.rint(tenths)
        # Where the last digits could tip the rounding, or near the antipode, where the
        # arcsine amplifies them, take haversine_km's own figure.
        if np.abs(tenths - rounded).max() > 0.5 - 1e-4 or tenths.max() > 100_000:
            unsure = (np.abs(tenths - rounded) > 0.5 - 1e-4) | (tenths > 100_000)
            for i in np.flatnonzero(unsure).tolist():
                km = round(haversine_km(destination.lat, destination.lon,
                                        float(self.lat[i]), float(self.lon[i])), 1)
                rounded[i] = round(km * 10)
        result: Ints = rounded.astype(np.int64)
        return result


def _unit_vectors(lat: Floats, lon: Floats) -> Floats:
    """Points on the unit sphere, one column each."""
    phi, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def _nonzero(counts: Mapping[ReasonCode, int]) -> dict[ReasonCode, int]:
    return {code: n for code, n in counts.items() if n}


class _Candidates:
    """The eligible locations holding any of the order's skus (positions in id order), and
    how they rank apart from what they can take: rule group, priority, distance."""

    def __init__(self, network: Network, at: Ints, rule: RoutingRule | None,
                 destination: Destination, items: int) -> None:
        self.count = len(at)
        self.ruled = rule is not None
        self.group = (network.groups(rule)[at] if rule is not None
                      else np.zeros(len(at), dtype=np.int64))
        self.priority = network.priority[at]
        self.tenths = network.tenths_of_km(destination)[at]
        self.items = items
        #: The ranking packed into one number each, when the values allow: with the items
        #: taken above it, it stays below 2**62 (distances stay below 2**18 tenths of a km:
        #: half the equator is 200,375).
        self.packed: Ints | None = None
        if (items < 1 << 14 and (rule is None or len(rule.groups) < 1 << 10)
                and network.priorities[0] >= 0 and network.priorities[1] < 1 << 20):
            self.packed = (self.priority << 18) | self.tenths
            if rule is not None:
                self.packed |= self.group << 38
        self.ids: list[str] = network.id_array[at].tolist()
        #: Kept as arrays: the run's inputs are stored as they are (the JSON columns write
        #: numpy arrays), and only the few locations an account names are read one by one.
        self.km: Floats = self.tenths / 10

        self._ranks: dict[int, Rank] = {}

    def rank(self, c: int) -> Rank:
        found = self._ranks.get(c)
        if found is None:
            found = self._ranks[c] = Rank(int(self.group[c]) if self.ruled else None,
                                          int(self.priority[c]), float(self.km[c]),
                                          self.ids[c])
        return found


class _Round:
    """One round: what each candidate could take of the items still unplaced (`fits`, one
    row per item), and the candidates best first; the first is chosen."""

    def __init__(self, cands: _Candidates, stock: Ints, items: Sequence[int],
                 key_of: Sequence[int], quantity: Sequence[int]) -> None:
        self.cands = cands
        keys = [key_of[j] for j in items]
        self.needed = np.array([[quantity[j]] for j in items], dtype=np.int64)
        if len(set(keys)) == len(keys):
            # One line per sku: each fits wherever its sku's ATP covers it.
            self.held = stock if keys == list(range(len(stock))) else stock[keys]
            self.fits = self.held >= self.needed
            self.used: Ints | None = None
        else:
            # Lines of one sku counted together, in item order.
            self.held = stock
            self.used = used = np.zeros_like(stock)
            self.fits = np.empty((len(items), cands.count), dtype=np.bool_)
            for row, (k, j) in enumerate(zip(keys, items, strict=True)):
                fit = self.fits[row]
                np.greater_equal(stock[k], used[k] + quantity[j], out=fit)
                np.add(used[k], quantity[j], out=used[k], where=fit)
        self.takes: Ints = self.fits.sum(axis=0)
        self.any = bool(self.takes.any())
        #: Per item, how many candidates could take it.
        self.could: list[int] = self.fits.sum(axis=1).tolist()
        self.left = np.zeros(cands.count, dtype=np.int64)
        self.key: Ints | None = None
        self.complete = False
        self._lost_on: list[list[int]] | None = None
        self._lost: Ints | None = None
        self._chosen: tuple[str, Score] | None = None
        #: Items placed in one round mostly share the chosen location and alternatives.
        self._alternatives: dict[int, Alternative] = {}
        if not self.any:
            return
        if cands.packed is None:
            self._sort_all()
            return
        self.key = key = ((cands.items - self.takes) << 48) | cands.packed
        if len(key) <= _PREFIX:
            self._sort_all()
            return
        # Only the best few need their ATP left and a full order: those up to the
        # _PREFIX-th best key, with any equal to it; all others come after them.
        top = np.flatnonzero(key <= np.partition(key, _PREFIX - 1)[_PREFIX - 1])
        self.left[top] = self._left(top)
        self.order = top[np.lexsort((-self.left[top], key[top]))]
        self.chosen = int(self.order[0])

    def _left(self, at: Ints | slice) -> Ints:
        """ATP each would keep of the skus it would ship: more left balances stock."""
        left: Ints
        if self.used is None:
            left = ((self.held[:, at] - self.needed) * self.fits[:, at]).sum(axis=0)
        else:
            used = self.used[:, at]
            left = np.where(used > 0, self.held[:, at] - used, 0).sum(axis=0)
        return left

    def _sort_all(self) -> None:
        """Every candidate best first (a stable sort keeps the id order of equals)."""
        cands = self.cands
        self.left = self._left(slice(None))
        self.order = (np.lexsort((-self.left, self.key)) if self.key is not None
                      else np.lexsort((-self.left, cands.tenths, cands.priority, cands.group,
                                       -self.takes)))
        self.chosen = int(self.order[0])
        self.complete = True

    def best(self) -> list[list[int]]:
        """Per item of the round, the candidates that could take it, best first: the chosen
        one and up to ALTERNATIVES more."""
        best = [self.order[fit[self.order]][:ALTERNATIVES + 1] for fit in self.fits]
        if not self.complete and any(len(b) < min(n, ALTERNATIVES + 1) for b, n in zip(
                best, self.could, strict=True)):
            # Fewer of the best few could take an item than its alternatives: sort them all.
            self._sort_all()
            best = [self.order[fit[self.order]][:ALTERNATIVES + 1] for fit in self.fits]
        return [b.tolist() for b in best]

    def lost_on(self) -> list[list[int]]:
        """Per item of the round, how many of the candidates that could take it lost on each
        ranking reason against the location chosen (by index in _RANKING, as
        `routing.why_not` says it; the last count is the location chosen)."""
        if self._lost_on is None:
            c, cands = self.chosen, self.cands
            if cands.packed is not None:
                # The first field (from the top) where the packed ranking differs from the
                # chosen one's: group, priority, distance, or none.
                differs = np.searchsorted(_FIELD_BITS, cands.packed ^ cands.packed[c],
                                          side="right")
                lost = _LOST_ON_FIELD[differs]
            else:
                lost = np.where(cands.tenths != cands.tenths[c], 3, 4)
                lost = np.where(cands.priority != cands.priority[c], 2, lost)
                if cands.ruled:
                    lost = np.where(cands.group != cands.group[c], 1, lost)
            lost[self.takes < self.takes[c]] = 0
            lost[c] = _CHOSEN
            self._lost = lost
            rows = len(self.fits)
            offsets = (_ROW_OFFSETS[:rows] if rows <= len(_ROW_OFFSETS)
                       else np.arange(rows)[:, None] * (_CHOSEN + 1))
            # One count of (item, reason) pairs over the candidates that could take each item.
            self._lost_on = np.bincount((lost + offsets)[self.fits],
                                        minlength=rows * (_CHOSEN + 1)
                                        ).reshape(rows, _CHOSEN + 1).tolist()
        return self._lost_on

    def alternative(self, b: int) -> Alternative:
        """Candidate b, as an alternative to the location chosen."""
        found = self._alternatives.get(b)
        if found is None:
            assert self._lost is not None
            found = self._alternatives[b] = Alternative(
                self.cands.ids[b], _RANKING[int(self._lost[b])], self.score(b))
        return found

    def chosen_account(self) -> tuple[str, Score]:
        """Why the location chosen was, and its score (the same for every item it takes)."""
        if self._chosen is None:
            c = self.chosen
            self._chosen = (why_chosen(self.cands.rank(c)), self.score(c))
        return self._chosen

    def score(self, c: int) -> Score:
        cands = self.cands
        rank = cands.rank(c)
        return Score(int(self.takes[c]), None if rank.group is None else rank.group + 1,
                     rank.priority, rank.distance_km, int(self.left[c]))


def decide(
    items: Sequence[RoutingItem],
    *,
    network: Network,
    service_level: str,
    destination: Destination,
    atp: Mapping[str, Ints],
    future_atp: Mapping[str, Ints] | None = None,
    rule: RoutingRule | None = None,
    pickup_location_id: str | None = None,
    required_location_id: str | None = None,
    excluded: frozenset[str] = frozenset(),
) -> Decision:
    """Where each item goes, as `routing.route` decides it. `atp` and `future_atp` give, per
    sku, the ATP at every location of the network (`Network.atp_table`); a sku missing has
    none. Item quantities are at least 1."""
    conditions = Conditions(service_level, pickup_location_id, required_location_id,
                            excluded, rule)
    weighed, ineligible, incapable = network.eligible(conditions)
    if not items:
        return Decision({}, {}, (), RunInputs((), conditions, network.inactive, incapable,
                                              Candidates()))
    keys = list(dict.fromkeys((i.preorder, i.sku) for i in items))
    key_of = [keys.index((i.preorder, i.sku)) for i in items]
    quantity = [i.quantity for i in items]
    none = np.zeros(len(network), dtype=np.int64)
    # Per (pre-order or not, sku): ATP at each location, negative counting as none.
    held = np.maximum(np.array([((future_atp or {}) if preorder else atp).get(sku, none)
                                for preorder, sku in keys]), 0)
    # Only eligible locations holding any of the skus can take anything: the candidates.
    at = np.flatnonzero(weighed & (held.max(axis=0) > 0))
    cands = _Candidates(network, at, rule, destination, len(items))
    # (take keeps rows contiguous; indexing [:, at] would not.)
    at_start = held.take(at, axis=1)
    eligible = int(np.count_nonzero(weighed))

    stock = at_start
    rounds: list[_Round] = []
    round_of: dict[int, tuple[int, int]] = {}
    remaining = list(range(len(items)))
    while remaining and cands.count:
        r = _Round(cands, stock, remaining, key_of, quantity)
        if not r.any:
            break
        stock = stock.copy()  # the round keeps what it saw
        for row, j in enumerate(remaining):
            if r.fits[row, r.chosen]:
                stock[key_of[j], r.chosen] -= quantity[j]
                round_of[j] = (len(rounds), row)
        rounds.append(r)
        remaining = [j for j in remaining if j not in round_of]

    # Per item, how many eligible locations held too little of it at the start: with one
    # line per sku, those the first round found could not take it.
    if rounds and rounds[0].used is None:
        too_little = [eligible - could for could in rounds[0].could]
    else:
        per_item = at_start if key_of == list(range(len(keys))) else at_start[key_of]
        too_little = ((per_item < np.array(quantity)[:, None]).sum(axis=1)
                      + (eligible - cands.count)).tolist()
    best = [r.best() for r in rounds]
    assignments: dict[str, str] = {}
    on_hold: dict[str, str] = {}
    decisions = []
    for j, item in enumerate(items):
        counts = dict(ineligible)
        counts[ReasonCode.NOT_ENOUGH_ATP] = too_little[j]
        placed = round_of.get(j)
        if placed is None:
            counts[ReasonCode.ATP_WENT_TO_OTHER_ITEMS] = eligible - too_little[j]
            on_hold[item.item_id] = hold_reason(item, eligible > 0, excluded)
            decisions.append(ItemDecision(item.item_id, None, on_hold[item.item_id], None, (),
                                          _nonzero(counts)))
            continue
        r_at, row = placed
        r = rounds[r_at]
        # Enough at the start, yet unable to take it when it was placed.
        counts[ReasonCode.ATP_WENT_TO_OTHER_ITEMS] = eligible - too_little[j] - r.could[row]
        counts.update(zip(_RANKING, r.lost_on()[row], strict=False))
        chosen, *others = best[r_at][row]
        assignments[item.item_id] = cands.ids[chosen]
        reason, score = r.chosen_account()
        decisions.append(ItemDecision(
            item.item_id, cands.ids[chosen], reason, score,
            tuple([r.alternative(b) for b in others]), _nonzero(counts)))

    pools: tuple[dict[str, Ints], dict[str, Ints]] = ({}, {})
    for (preorder, sku), values in zip(keys, at_start, strict=True):
        pools[preorder][sku] = values
    inputs = RunInputs(tuple(items), conditions, network.inactive, incapable,
                       Candidates(cands.ids, cands.priority, cands.km, *pools))
    return Decision(assignments, on_hold, tuple(decisions), inputs)
