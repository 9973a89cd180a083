"""Fixtures of the API tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from tests.carting import stock_two_stores
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


@pytest.fixture
def store(api: Api) -> None:
    """The shop of tests/carting.py."""
    stock_two_stores(api)


@pytest.fixture
def associate(store: None, as_role: Callable[..., Api]) -> Api:
    """An associate of mitte."""
    return as_role("associate", ["mitte"])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test of a module that counts the answers it got (its ANSWERS) records its share with
    its report, for the run's summary, from whichever process ran it."""
    answers: Counter[str] | None = getattr(getattr(item, "module", None), "ANSWERS", None)
    if answers is None:
        return (yield)
    before = Counter(answers)
    try:
        return (yield)
    finally:
        item.user_properties.append(("schemathesis_answers", dict(answers - before)))
