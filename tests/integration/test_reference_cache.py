"""Locations and routing rules are kept a short while in each process for routing: a change
made in the process is seen by the next order at once, one made by another process within
that while."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from oms.adapters.db.engine import make_engine
from oms.api.app import create_app
from oms.settings import Settings
from tests.helpers import Api, location_body
from tests.ordering import order_body


def _routed_to(api: Api, external_id: str) -> str:
    r = api.post("/v1/orders", json=order_body(("SKU-1", 1), external_id=external_id))
    assert r.status_code == 201, r.text
    [item] = r.json()["items"]
    location: str = item["location_id"]
    return location


def test_a_change_in_this_process_is_seen_at_once_and_another_process_within_the_while(
        engine: Engine, settings: Settings, make_key: Callable[..., str],
        stocked: Callable[..., None]) -> None:
    kept = settings.model_copy(update={"reference_cache_seconds": 1.0})
    here_engine, there_engine = make_engine(kept), make_engine(kept)
    try:
        with TestClient(create_app(kept, here_engine)) as here_client, \
                TestClient(create_app(kept, there_engine)) as there_client:
            key = make_key("admin")
            here, there = Api(here_client, key), Api(there_client, key)
            stocked({("near", "SKU-1"): 50, ("far", "SKU-1"): 50})
            assert here.put("/v1/locations/far", json=location_body(
                "Munich", address={"line1": "Marienplatz 1", "city": "Munich",
                                   "postal_code": "80331", "country": "DE", "lat": 48.137,
                                   "lon": 11.575})).status_code == 200
            assert _routed_to(here, "W-1") == "near"
            assert _routed_to(there, "W-2") == "near"

            # This process closes the nearest store: its next order knows at once.
            closed = location_body(active=False)
            assert here.put("/v1/locations/near", json=closed).status_code == 200
            assert _routed_to(here, "W-3") == "far"
            # The other process kept what it read a moment ago, and learns within the while.
            assert _routed_to(there, "W-4") == "near"
            time.sleep(1.1)
            assert _routed_to(there, "W-5") == "far"
    finally:
        here_engine.dispose()
        there_engine.dispose()
