"""Routing runs kept before the compact record (every consideration) are converted by
migration 0011: their decisions are read from their considerations, any location's part is
still told as it was recorded, and going back restores them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from oms.adapters.db import tables as t
from oms.adapters.db.migrate import alembic_config, upgrade
from oms.domain.locations import Address, Capability, Location, LocationType
from oms.domain.routing import Destination, RoutingItem, route
from oms.domain.routing_record import explain_stored
from tests.conftest import _postgres_database

NOW = dt.datetime(2026, 11, 20, 10, 15, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own: this test takes it down a migration and up again."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'oms.db'}"
        return
    yield from _postgres_database()


def _store(location_id: str, lat: float, lon: float, **overrides: Any) -> Location:
    return Location(**{
        "id": location_id, "type": LocationType.STORE, "name": location_id,
        "address": Address("Street 1", "Berlin", "10000", "DE", lat, lon),
        "capabilities": frozenset(Capability), "priority": 10, "active": True,
        "timezone": "Europe/Berlin", **overrides})


def _as_recorded_before() -> dict[str, Any]:
    """A run as routing recorded it before: a consideration for every item everywhere."""
    items = [RoutingItem("item-1", "SKU-1", 2), RoutingItem("item-2", "SKU-2", 1)]
    plan = route(
        items, service_level="standard", destination=Destination("DE", 52.517, 13.389),
        stock={("mitte", "SKU-1"): 1, ("mitte", "SKU-2"): 4, ("potsdam", "SKU-1"): 5,
               ("potsdam", "SKU-2"): 5, ("hamburg", "SKU-1"): 5, ("hamburg", "SKU-2"): 5,
               ("munich", "SKU-1"): 9},
        locations=[_store("mitte", 52.5219, 13.4132), _store("potsdam", 52.3906, 13.0645),
                   _store("hamburg", 53.5511, 9.9937), _store("munich", 48.1374, 11.5755),
                   _store("closed", 52.52, 13.40, active=False)])
    return {"assignments": plan.assignments, "on_hold": plan.on_hold, "considerations": [
        {"item_id": c.item_id, "location_id": c.location_id, "verdict": c.verdict.value,
         "reason": c.reason} for c in plan.considerations]}


def test_runs_kept_before_are_converted_and_still_explain_every_location(
        fresh_url: str) -> None:
    upgrade(fresh_url, "0010")
    old_runs = sa.table("routing_runs", *(sa.column(name) for name in ("id", "order_id",
                                                                       "trigger", "ran_at")),
                        *(sa.column(name, t.JSONDocument)
                          for name in ("assignments", "on_hold", "considerations")))
    before = _as_recorded_before()
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(t.customers.insert(), {
                "id": "c-1", "display_id": "C-1", "email": "ada@example.com",
                "email_key": "ada@example.com", "version": 1, "created_at": NOW,
                "updated_at": NOW})
            conn.execute(t.orders.insert(), {
                "id": "o-1", "display_id": "O-1", "channel": "web", "request_hash": "h",
                "status": "routed", "historical": False, "placed_at": NOW, "currency": "EUR",
                "customer_id": "c-1", "shipping_price_minor": 0, "grand_total_minor": 0,
                "version": 1, "created_at": NOW, "updated_at": NOW})
            conn.execute(old_runs.insert(), [
                {"id": "r-1", "order_id": "o-1", "trigger": "placement", "ran_at": NOW,
                 **before},
                {"id": "r-2", "order_id": "o-1", "trigger": "worker", "ran_at": NOW,
                 "assignments": {}, "considerations": [],
                 "on_hold": {"item-1": "stock kept changing while routing; retry later"}}])

        upgrade(fresh_url)
        with engine.connect() as conn:
            first, weighed_nothing = conn.execute(
                sa.select(t.routing_runs).order_by(t.routing_runs.c.id)).mappings().all()
        shirt, socks = first["decisions"]
        assert (shirt["location_id"], socks["location_id"]) == ("potsdam", "potsdam")
        assert shirt["reason"].startswith("chosen: priority 10, ")
        assert shirt["not_chosen"] == {"farther": 1, "inactive": 1, "not_enough_atp": 1,
                                       "takes_less_of_the_order": 1}
        # Best first, as far as the old account tells: those that took as much first.
        assert [(a["location_id"], a["code"]) for a in shirt["alternatives"]] == [
            ("hamburg", "farther"), ("munich", "takes_less_of_the_order")]
        for location_id in ("mitte", "hamburg", "munich", "closed"):
            told = explain_stored(first["inputs"], first["on_hold"], location_id)
            assert [(c.item_id, c.verdict.value, c.reason) for c in told] == [
                (c["item_id"], c["verdict"], c["reason"]) for c in before["considerations"]
                if c["location_id"] == location_id]
        [waiting] = weighed_nothing["decisions"]
        assert (waiting["location_id"], waiting["reason"], weighed_nothing["inputs"]) == (
            None, "stock kept changing while routing; retry later", None)

        command.downgrade(alembic_config(fresh_url), "0010")
        with engine.connect() as conn:
            restored = conn.execute(sa.select(old_runs.c.considerations)
                                    .order_by(old_runs.c.id)).scalars().all()
        assert restored == [before["considerations"], []]
    finally:
        engine.dispose()
