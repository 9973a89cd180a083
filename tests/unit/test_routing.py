"""The routing function: examples, and properties over generated orders (hypothesis)."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from oms.domain.locations import Address, Capability, Location, LocationType
from oms.domain.routing import Destination, RoutingItem, RoutingRule, Verdict, route

BERLIN = Destination("DE", 52.517, 13.389)


def _location(location_id: str, lat: float, lon: float, *, priority: int = 10,
              active: bool = True, capabilities: frozenset[Capability] | None = None,
              kind: LocationType = LocationType.STORE) -> Location:
    return Location(
        id=location_id, type=kind, name=location_id,
        address=Address("Street 1", "City", "10000", "DE", lat, lon),
        capabilities=capabilities if capabilities is not None else frozenset(Capability),
        priority=priority, active=active, timezone="Europe/Berlin",
    )


BERLIN_STORE = _location("berlin", 52.52, 13.40)
POTSDAM_STORE = _location("potsdam", 52.39, 13.06)
MUNICH_STORE = _location("munich", 48.14, 11.58)
KASSEL_DC = _location("kassel", 51.31, 9.48, priority=5, kind=LocationType.DC,
                      capabilities=frozenset({Capability.SHIP}))


def test_one_location_takes_the_whole_order_when_it_can() -> None:
    items = [RoutingItem("1", "A", 1), RoutingItem("2", "B", 1)]
    stock = {("berlin", "A"): 5, ("potsdam", "B"): 5, ("munich", "A"): 5, ("munich", "B"): 5}
    plan = route(items, service_level="standard", destination=BERLIN, stock=stock,
                 locations=[BERLIN_STORE, POTSDAM_STORE, MUNICH_STORE])
    assert plan.assignments == {"1": "munich", "2": "munich"}
    reasons = {(c.item_id, c.location_id): c.reason for c in plan.considerations}
    assert reasons[("1", "berlin")] == "another location takes more of the order: fewer shipments"
    assert reasons[("2", "berlin")] == "not enough ATP: has 0, the item needs 1"


def test_priority_then_distance_decide_between_equal_candidates() -> None:
    items = [RoutingItem("1", "A", 2)]
    stock = {("berlin", "A"): 5, ("potsdam", "A"): 5, ("kassel", "A"): 5}
    plan = route(items, service_level="standard", destination=BERLIN, stock=stock,
                 locations=[BERLIN_STORE, POTSDAM_STORE, KASSEL_DC])
    assert plan.assignments == {"1": "kassel"}  # priority 5 beats 10
    plan = route(items, service_level="standard", destination=BERLIN, stock=stock,
                 locations=[BERLIN_STORE, POTSDAM_STORE])
    assert plan.assignments == {"1": "berlin"}
    potsdam = next(c for c in plan.considerations if c.location_id == "potsdam")
    assert potsdam.reason.startswith("farther (")


def test_split_when_no_location_has_everything() -> None:
    items = [RoutingItem("1", "A", 1), RoutingItem("2", "B", 1), RoutingItem("3", "C", 1)]
    stock = {("berlin", "A"): 1, ("berlin", "B"): 1, ("munich", "C"): 1}
    plan = route(items, service_level="standard", destination=BERLIN, stock=stock,
                 locations=[BERLIN_STORE, MUNICH_STORE])
    assert plan.assignments == {"1": "berlin", "2": "berlin", "3": "munich"}
    assert plan.on_hold == {}


def test_two_lines_of_one_sku_are_counted_together() -> None:
    items = [RoutingItem("1", "A", 2), RoutingItem("2", "A", 2)]
    plan = route(items, service_level="standard", destination=BERLIN,
                 stock={("berlin", "A"): 3, ("munich", "A"): 2},
                 locations=[BERLIN_STORE, MUNICH_STORE])
    assert sorted(plan.assignments.values()) == ["berlin", "munich"]


def test_pickup_goes_only_to_the_pickup_store_or_waits() -> None:
    items = [RoutingItem("1", "A", 1)]
    stock = {("berlin", "A"): 5, ("potsdam", "A"): 0}
    plan = route(items, service_level="pickup", destination=Destination(), stock=stock,
                 locations=[BERLIN_STORE, POTSDAM_STORE], pickup_location_id="potsdam")
    assert plan.assignments == {}
    assert plan.on_hold == {"1": "no eligible location has 1 of A available"}
    berlin = next(c for c in plan.considerations if c.location_id == "berlin")
    assert berlin.verdict is Verdict.INELIGIBLE
    assert berlin.reason == "a pickup item goes only to its pickup store"


def test_rule_groups_come_before_priority_and_outsiders_are_ineligible() -> None:
    rule = RoutingRule("standard", "DE", (("munich",), ("berlin", "kassel")))
    plan = route([RoutingItem("1", "A", 1)], service_level="standard", destination=BERLIN,
                 stock={("berlin", "A"): 5, ("munich", "A"): 5, ("potsdam", "A"): 5,
                        ("kassel", "A"): 5},
                 locations=[BERLIN_STORE, MUNICH_STORE, POTSDAM_STORE, KASSEL_DC], rule=rule)
    assert plan.assignments == {"1": "munich"}
    reasons = {c.location_id: c.reason for c in plan.considerations}
    assert reasons["potsdam"] == "not in the routing rule for standard to DE"
    assert reasons["kassel"] == "later rule group (2 against 1)"


def test_preorders_sell_future_stock_only() -> None:
    items = [RoutingItem("1", "P", 3, preorder=True)]
    plan = route(items, service_level="standard", destination=BERLIN,
                 stock={("berlin", "P"): 10}, future_stock={("kassel", "P"): 5},
                 locations=[BERLIN_STORE, KASSEL_DC])
    assert plan.assignments == {"1": "kassel"}


def test_excluded_and_required_locations() -> None:
    items = [RoutingItem("1", "A", 1)]
    stock = {("berlin", "A"): 5, ("munich", "A"): 5}
    plan = route(items, service_level="standard", destination=BERLIN, stock=stock,
                 locations=[BERLIN_STORE, MUNICH_STORE], excluded=frozenset({"berlin"}))
    assert plan.assignments == {"1": "munich"}
    plan = route(items, service_level="standard", destination=BERLIN, stock={},
                 locations=[BERLIN_STORE, MUNICH_STORE], required_location_id="munich")
    assert plan.on_hold


LOCATION_IDS = ["a", "b", "c", "d"]
SKUS = ["X", "Y", "Z"]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    locations = [
        _location(loc, draw(st.floats(47, 55)), draw(st.floats(6, 15)),
                  priority=draw(st.integers(1, 3)), active=draw(st.booleans()),
                  capabilities=frozenset(draw(st.sets(st.sampled_from(list(Capability))))))
        for loc in LOCATION_IDS
    ]
    stock = {(loc, sku): draw(st.integers(-2, 6)) for loc in LOCATION_IDS for sku in SKUS}
    future = {(loc, sku): draw(st.integers(0, 4)) for loc in LOCATION_IDS for sku in SKUS}
    items = [
        RoutingItem(str(i), draw(st.sampled_from(SKUS)), draw(st.integers(1, 4)),
                    preorder=draw(st.booleans()))
        for i in range(draw(st.integers(1, 5)))
    ]
    return {"items": items, "stock": stock, "future": future, "locations": locations}


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_routing_properties(case: dict[str, object]) -> None:
    items: list[RoutingItem] = case["items"]  # type: ignore[assignment]
    stock: dict[tuple[str, str], int] = case["stock"]  # type: ignore[assignment]
    future: dict[tuple[str, str], int] = case["future"]  # type: ignore[assignment]
    locations: list[Location] = case["locations"]  # type: ignore[assignment]

    def run() -> object:
        return route(items, service_level="standard", destination=BERLIN, stock=stock,
                     future_stock=future, locations=locations)

    plan = run()
    assert plan == run()  # deterministic
    by_id = {loc.id: loc for loc in locations}
    used: dict[tuple[bool, str, str], int] = defaultdict(int)
    for item in items:
        assert (item.item_id in plan.assignments) != (item.item_id in plan.on_hold)
        location_id = plan.assignments.get(item.item_id)
        if location_id is None:
            continue
        location = by_id[location_id]
        assert location.active
        assert Capability.SHIP in location.capabilities
        used[(item.preorder, location_id, item.sku)] += item.quantity
    for (preorder, location_id, sku), quantity in used.items():
        assert quantity <= max((future if preorder else stock)[(location_id, sku)], 0)

    capable = [loc for loc in locations if loc.active and Capability.SHIP in loc.capabilities]
    one_takes_all = any(
        all(sum(i.quantity for i in items if (i.preorder, i.sku) == key)
            <= max((future if key[0] else stock)[(loc.id, key[1])], 0)
            for key in {(i.preorder, i.sku) for i in items})
        for loc in capable
    )
    if one_takes_all:
        assert plan.on_hold == {}
        assert len(plan.locations_used()) == 1
