"""The fast routing against the plain one, on generated networks: the same assignments, hold
reasons and compact account, and every location's consideration told again from the stored
inputs exactly as the plain routing recorded it."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from oms.adapters.db.types import dumps
from oms.domain.locations import Address, Capability, Location, LocationType, haversine_km
from oms.domain.routing import (
    Consideration,
    Destination,
    ReasonCode,
    RoutingItem,
    RoutingPlan,
    RoutingRule,
    Verdict,
    route,
)
from oms.domain.routing_fast import Network, decide
from oms.domain.routing_record import (
    ALTERNATIVES,
    Alternative,
    Decision,
    ItemDecision,
    decisions_json,
    decisions_view,
    explain,
    inputs_from_json,
    inputs_json,
)

SKUS = ["X", "Y", "Z"]
#: Few places, so that distances tie; Berlin and the antipode of Munich among them.
PLACES = [(52.52, 13.40), (52.39, 13.06), (48.14, 11.58), (51.31, 9.48), (52.52, 13.40),
          (-48.14, -168.42), (53.55, 9.99)]


def summarize(items: Sequence[RoutingItem], plan: RoutingPlan) -> tuple[ItemDecision, ...]:
    """The compact account, as read from every consideration the plain routing records:
    the fast path must keep exactly this."""
    of_item: dict[str, list[Consideration]] = {i.item_id: [] for i in items}
    for c in plan.considerations:
        of_item[c.item_id].append(c)
    decisions = []
    for item in items:
        considered = of_item[item.item_id]
        chosen = next((c for c in considered if c.verdict is Verdict.CHOSEN), None)
        lost = [c for c in considered if c.verdict is not Verdict.CHOSEN]
        best = sorted((c for c in lost if c.score is not None),
                      key=lambda c: c.score.order_key(c.location_id) if c.score else ())
        decisions.append(ItemDecision(
            item.item_id, chosen.location_id if chosen else None,
            chosen.reason if chosen else plan.on_hold[item.item_id],
            chosen.score if chosen else None,
            tuple(Alternative(c.location_id, c.code, c.score) for c in best[:ALTERNATIVES]
                  if c.score is not None),
            dict(Counter(c.code for c in lost)),
        ))
    return tuple(decisions)


def _location(location_id: str, lat: float, lon: float, *, priority: int = 10,
              active: bool = True, capabilities: frozenset[Capability] | None = None
              ) -> Location:
    return Location(
        id=location_id, type=LocationType.STORE, name=location_id,
        address=Address("Street 1", "City", "10000", "DE", lat, lon),
        capabilities=capabilities if capabilities is not None else frozenset(Capability),
        priority=priority, active=active, timezone="Europe/Berlin",
    )


@dataclass
class Case:
    items: list[RoutingItem]
    locations: list[Location]
    stock: dict[tuple[str, str], int]
    future: dict[tuple[str, str], int]
    service_level: str
    destination: Destination
    rule: RoutingRule | None
    pickup_location_id: str | None
    required_location_id: str | None
    excluded: frozenset[str]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    # Small networks, and ones larger than the few best that a round sorts first.
    count = draw(st.integers(1, 8) | st.integers(17, 40))
    # Ids whose sort order is not the order they were made in.
    ids = sorted({f"{draw(st.sampled_from('abcxyz'))}{n:02d}" for n in range(count)},
                 key=lambda _: draw(st.integers(0, 1000)))
    # Now and then priorities beyond what one packed number holds.
    priorities = draw(st.sampled_from([[1, 2, 3], [0, 5], [-1, 2**21, 3]]))
    locations = []
    for location_id in ids:
        lat, lon = (draw(st.sampled_from(PLACES)) if draw(st.integers(0, 3))
                    else (draw(st.floats(47, 55)), draw(st.floats(6, 15))))
        locations.append(_location(
            location_id, lat, lon, priority=draw(st.sampled_from(priorities)),
            active=draw(st.integers(0, 9)) > 0,
            capabilities=frozenset(draw(st.sets(st.sampled_from(list(Capability)))))
            if draw(st.integers(0, 4)) == 0 else frozenset(Capability)))
    level = st.integers(-2, 6)
    stock = {(loc, sku): draw(level) for loc in ids for sku in SKUS if draw(st.booleans())}
    future = {(loc, sku): draw(level) for loc in ids for sku in SKUS
              if draw(st.integers(0, 3)) == 0}
    items = [RoutingItem(f"i{n}", draw(st.sampled_from(SKUS)), draw(st.integers(1, 4)),
                         preorder=draw(st.integers(0, 4)) == 0)
             for n in range(draw(st.integers(1, 6)))]
    pickup = draw(st.integers(0, 5)) == 0
    known_or_not = st.sampled_from([*ids, "nowhere"])
    rule = None
    if draw(st.integers(0, 3)) == 0:
        groups = draw(st.lists(st.lists(known_or_not, max_size=6), min_size=1, max_size=4))
        rule = RoutingRule("standard", "DE", tuple(tuple(g) for g in groups))
    return Case(
        items=items, locations=locations, stock=stock, future=future,
        service_level="pickup" if pickup else "standard",
        destination=(Destination("DE", *draw(st.sampled_from(PLACES)))
                     if draw(st.integers(0, 5)) else Destination()),
        rule=rule,
        pickup_location_id=draw(known_or_not) if pickup else None,
        required_location_id=draw(known_or_not) if draw(st.integers(0, 6)) == 0 else None,
        excluded=frozenset(draw(st.sets(known_or_not, max_size=3))
                           if draw(st.integers(0, 4)) == 0 else ()),
    )


def _both(case: Case) -> tuple[RoutingPlan, Decision]:
    plan = route(case.items, stock=case.stock, future_stock=case.future,
                 locations=case.locations, service_level=case.service_level,
                 destination=case.destination, rule=case.rule,
                 pickup_location_id=case.pickup_location_id,
                 required_location_id=case.required_location_id, excluded=case.excluded)
    network = Network(case.locations)
    skus = sorted({i.sku for i in case.items})
    decision = decide(
        case.items, network=network,
        atp=network.atp_table(((loc, sku, n) for (loc, sku), n in case.stock.items()), skus),
        future_atp=network.atp_table(((loc, sku, n) for (loc, sku), n in case.future.items()),
                                     skus),
        service_level=case.service_level, destination=case.destination, rule=case.rule,
        pickup_location_id=case.pickup_location_id,
        required_location_id=case.required_location_id, excluded=case.excluded)
    return plan, decision


@settings(max_examples=400, deadline=None)
@given(cases())
def test_the_fast_path_decides_and_explains_as_the_plain_routing(case: Case) -> None:
    plan, decision = _both(case)
    assert decision.assignments == plan.assignments
    assert decision.on_hold == plan.on_hold
    assert decision.items == summarize(case.items, plan)
    # The words for the locations passed over, built when the stored account is read, are
    # the plain routing's.
    words = {(c.item_id, c.location_id): c.reason for c in plan.considerations}
    view = decisions_view(json.loads(dumps(decisions_json(decision.items))))
    assert [[a["reason"] for a in d["alternatives"]] for d in view] == [
        [words[d["item_id"], a["location_id"]] for a in d["alternatives"]] for d in view]

    # Every location's part, told again from the inputs as stored (JSON).
    assert decision.inputs is not None
    stored = inputs_from_json(json.loads(dumps(inputs_json(decision.inputs))))
    location_ids = [loc.id for loc in case.locations]
    recorded = {(c.item_id, c.location_id): c for c in plan.considerations}
    told = {(c.item_id, c.location_id): c for c in explain(stored, location_ids)}
    assert told == recorded


def test_a_routed_item_says_why_each_kind_of_location_lost() -> None:
    berlin, potsdam, munich, hamburg, kassel = (
        _location("berlin", 52.52, 13.40), _location("potsdam", 52.39, 13.06),
        _location("munich", 48.14, 11.58), _location("hamburg", 53.55, 9.99, priority=20),
        _location("kassel", 51.31, 9.48, active=False))
    network = Network([berlin, potsdam, munich, hamburg, kassel])
    items = [RoutingItem("1", "A", 2), RoutingItem("2", "B", 1)]
    stock = {("berlin", "A"): 1, ("berlin", "B"): 5, ("potsdam", "A"): 5, ("potsdam", "B"): 5,
             ("munich", "A"): 5, ("munich", "B"): 5, ("hamburg", "A"): 5, ("hamburg", "B"): 5,
             ("kassel", "A"): 9, ("kassel", "B"): 9}
    decision = decide(items, network=network, service_level="standard",
                      destination=Destination("DE", 52.517, 13.389),
                      atp=network.atp_table(((loc, sku, n) for (loc, sku), n in stock.items()),
                                            ["A", "B"]))
    first = decision.items[0]
    assert (first.location_id, first.reason) == ("potsdam", "chosen: priority 10, 26.4 km away")
    assert first.score is not None
    assert (first.score.takes, first.score.priority, first.score.atp_left) == (2, 10, 7)
    [first_view, _] = decisions_view(decisions_json(decision.items))
    assert [(a["location_id"], a["code"], a["reason"]) for a in first_view["alternatives"]] == [
        ("munich", ReasonCode.FARTHER, "farther (503.3 km against 26.4 km)"),
        ("hamburg", ReasonCode.LOWER_PRIORITY, "lower priority (20 against 10)")]
    assert first.not_chosen == {ReasonCode.INACTIVE: 1, ReasonCode.NOT_ENOUGH_ATP: 1,
                                ReasonCode.FARTHER: 1, ReasonCode.LOWER_PRIORITY: 1}
    assert decision.inputs is not None
    [berlin_for_1, berlin_for_2] = explain(decision.inputs, ["berlin"])
    assert (berlin_for_1.verdict, berlin_for_1.reason) == (
        Verdict.PASSED_OVER, "not enough ATP: has 1, the item needs 2")
    assert (berlin_for_2.code, berlin_for_2.reason) == (
        ReasonCode.TAKES_LESS_OF_THE_ORDER,
        "another location takes more of the order: fewer shipments")


def test_alternatives_beyond_the_best_few_are_found() -> None:
    # s39 takes the whole order. The next best take two items, but not X: X's alternatives
    # are among the locations that take it alone, far down the ranking.
    locations = [_location(f"s{n:02d}", 52.52, 13.40, priority=n) for n in range(40)]
    network = Network(locations)
    stock = {(f"s{n:02d}", sku): 5 for n in range(20) for sku in "AB"}
    stock |= {(f"s{n:02d}", "X"): 1 for n in range(30, 40)}
    stock |= {("s39", "A"): 1, ("s39", "B"): 1}
    items = [RoutingItem("1", "A", 1), RoutingItem("2", "B", 1), RoutingItem("3", "X", 1)]
    decision = decide(items, network=network, service_level="standard",
                      destination=Destination(),
                      atp=network.atp_table(((loc, sku, n) for (loc, sku), n in stock.items()),
                                            ["A", "B", "X"]))
    plan = route(items, service_level="standard", destination=Destination(), stock=stock,
                 locations=locations)
    assert decision.assignments == {"1": "s39", "2": "s39", "3": "s39"}
    assert decision.items == summarize(items, plan)
    assert [a.location_id for a in decision.items[2].alternatives] == ["s30", "s31", "s32"]
    assert [a.location_id for a in decision.items[0].alternatives] == ["s00", "s01", "s02"]


def test_distances_round_as_the_plain_routing_rounds_them() -> None:
    rng = random.Random(7)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(3000)]
    # Nearly antipodal pairs, and pairs a few metres apart.
    points += [(-52.52 + rng.uniform(-0.01, 0.01), -166.6 + rng.uniform(-0.01, 0.01))
               for _ in range(200)]
    points += [(52.52 + rng.uniform(-1e-4, 1e-4), 13.40 + rng.uniform(-1e-4, 1e-4))
               for _ in range(200)]
    # Pairs of points a bit apart, either side of where Berlin's distance rounds up to the
    # next tenth of a km: the last bits of the arithmetic decide those.
    for tenth in range(100, 4000, 37):
        south, north = 52.52, 70.0
        while (middle := (south + north) / 2) not in (south, north):
            if haversine_km(52.52, 13.40, middle, 13.40) < (tenth + 0.5) / 10:
                south = middle
            else:
                north = middle
        points += [(south, 13.40), (north, 13.40)]
    network = Network([_location(f"p{n:04d}", lat, lon) for n, (lat, lon) in enumerate(points)])
    for home in ((52.52, 13.40), (-33.9, 151.2)):
        tenths = network.tenths_of_km(Destination("DE", *home)).tolist()
        expected = [round(round(haversine_km(*home, lat, lon), 1) * 10)
                    for lat, lon in (points[int(i[1:])] for i in network.ids)]
        assert tenths == expected


def test_the_atp_table_holds_each_skus_atp_by_location_and_leaves_out_the_unknown() -> None:
    network = Network([_location(x, 52.5, 13.4) for x in ("b", "a", "c")])
    table = network.atp_table([("a", "SKU-1", 4), ("c", "SKU-1", -2), ("gone", "SKU-1", 9),
                               ("b", "SKU-2", 7), ("a", "SKU-3", 5)], ["SKU-1", "SKU-2"])
    # In location id order (a, b, c); a location missing from the network and a sku not
    # asked for are left out, and a location without a row has nothing.
    assert {sku: column.tolist() for sku, column in table.items()} == {
        "SKU-1": [4, 0, -2], "SKU-2": [0, 7, 0]}
