"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers import Api, location_body
from tests.ordering import COORDINATES, Shop, Stock


@pytest.fixture
def shop(api: Api, stocked: Callable[..., None]) -> Shop:
    """Stock levels at stores placed at their real coordinates (see COORDINATES)."""

    def make(levels: Stock, priorities: dict[str, int] | None = None) -> None:
        stocked(levels)
        for location_id in sorted({loc for loc, _ in levels}):
            lat, lon = COORDINATES[location_id]
            body = location_body(
                location_id.title(),
                address={"line1": "Hauptstrasse 1", "city": location_id.title(),
                         "postal_code": "10000", "country": "DE", "lat": lat, "lon": lon},
                priority=(priorities or {}).get(location_id, 10),
            )
            r = api.put(f"/v1/locations/{location_id}", json=body)
            assert r.status_code == 200, r.text

    return make


