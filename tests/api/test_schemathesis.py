"""Schemathesis over the whole API, with every check: no 5xx, no status, content type or
header the document does not give, no answer that breaks its schema, no valid request
refused and no invalid one taken, 405 with the right `Allow` for a method a path lacks, a
resource gone once deleted and there once made, and a key that is needed.

It runs in process, against a shop in the middle of its day (tests/api/shop_data.py), on
both databases: the checks meet PostgreSQL's own refusals (a text longer than its column),
which SQLite never makes. Each operation is tried with the examples of the document, the
coverage cases schemathesis derives from its schema (each bound and each keyword, valid and
not) and drawn cases (tests/api/schemathesis.toml: how many, and the seed); then scenarios
chain operations by the links schemathesis infers from the document. Requests are mended
into those a real client sends where a rule cannot be put in JSON Schema
(tests/api/realistic.py). A failure shows schemathesis' account with the curl command that
reproduces it (on a shop seeded the same way).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import Case, HookContext
from schemathesis.core.failures import FailureGroup
from sqlalchemy import Engine
from starlette.types import Receive, Scope, Send

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.app import create_app
from oms.api.routers.imports import JSONL_TYPES
from oms.domain.access import Role
from oms.services import apikeys
from oms.settings import Settings
from tests.api.realistic import Mender, sendable
from tests.api.shop_data import ShopData, seed_shop
from tests.conftest import empty
from tests.helpers import Api

CONFIG = Path(__file__).with_name("schemathesis.toml")
#: The seed of the first suite of scenarios (the cases' seed is in CONFIG).
SEED = 20261129
STATEFUL_SUITES = 8
STATEFUL_SCENARIOS = 10
STATEFUL_STEPS = 6


@dataclass
class Target:
    """The app of one database, with the shop it holds and an admin key."""

    app: FastAPI
    key: str
    data: ShopData
    mend: Mender


class AppUnderTest:
    """What schemathesis calls: the app of the database being tested. Operations are
    collected before any database is made, so the app is named here later. Its lifespan is
    the test client's."""

    target: Target | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.target is not None, "no app under test"
        await self.target.app(scope, receive, send)


under_test = AppUnderTest()
#: The answers the app gave, by status class ("2xx", "4xx", ...): what the run tried. Each
#: test's share goes into the run's summary (tests/api/conftest.py, tests/conftest.py).
ANSWERS: Counter[str] = Counter()
# A JSON Lines file is text, sent as it is.
schemathesis.serializer.alias(list(JSONL_TYPES), "text/plain")
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite://")).openapi(),
    config=schemathesis.Config.from_path(CONFIG))
schema.app = under_test


@pytest.fixture(scope="module")
def shop(session_engine: Engine, settings: Settings) -> Iterator[Target]:
    engine = empty(session_engine)
    app = create_app(settings, engine)

    def key(role: str, locations: list[str] | None = None) -> str:
        with UnitOfWork(engine) as uow:
            return apikeys.create_key(uow, Role(role), locations or [], f"fuzz {role}")[1]

    with TestClient(app, raise_server_exceptions=False) as client:
        admin_key = key("admin")
        admin = Api(client, admin_key)
        data = seed_shop(admin, lambda role, locations: Api(client, key(role, locations)),
                         client, engine)

        def read(path: str) -> Any:
            answer = admin.get(path)
            return answer.json() if answer.status_code == 200 else None

        under_test.target = Target(app, admin_key, data, Mender(data, read))
        yield under_test.target
        under_test.target = None


#: What cases carry for the admin key: many are made while the operations are collected,
#: before there is a database and a key; the key of the database under test replaces it when
#: a case is sent.
ADMIN = "Bearer admin-key-of-the-database-under-test"


@schema.auth()
class AdminKey:
    """The admin key, on every request but those that try the API without one."""

    def get(self, case: Case, context: schemathesis.AuthContext) -> str:
        return ADMIN

    def set(self, case: Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": data}


@schema.hook
def filter_case(context: HookContext, case: Case) -> bool:
    return sendable(case)


# Schemathesis' call hooks are process-wide: they act only while a shop is under test.
@schemathesis.hook
def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    target = under_test.target
    if target is None:
        return
    if case.headers and case.headers.get("Authorization") == ADMIN:
        case.headers = {**case.headers, "Authorization": f"Bearer {target.key}"}
    target.mend(case)


@schemathesis.hook
def after_call(context: HookContext, case: Case, response: schemathesis.Response) -> None:
    if under_test.target is None:
        return
    ANSWERS[f"{response.status_code // 100}xx"] += 1
    if "json" in response.headers.get("content-type", [""])[0]:
        under_test.target.mend.learn(response.json())


@schema.parametrize()
def test_api(case: Case, shop: Target) -> None:
    """Every operation on its own, its cases in the order of the document's paths: a step
    that moves a resource on finds it moved by those before."""
    case.call_and_validate()


def test_stateful(shop: Target) -> None:
    """Scenarios of up to STATEFUL_STEPS calls that chain operations by the links
    schemathesis infers from the document (an order placed, then read, cancelled, its
    requests stepped; a subscription made, changed, deleted, then asked for), each suite of
    scenarios drawn from a seed of its own."""
    found: list[FailureGroup] = []
    steps = 0

    class Scenario(schema.as_state_machine()):  # type: ignore[misc]
        def validate_response(self, response: Any, case: Case,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            nonlocal steps
            steps += 1
            try:
                super().validate_response(response, case, additional_checks, **kwargs)
            except FailureGroup as failure:
                found.append(failure)
                raise

    for suite in range(STATEFUL_SUITES):
        machine = hypothesis.seed(SEED + suite)(Scenario)
        machine.rule_order_seed = SEED + suite
        # The scenarios change the shop they run against, so a scenario drawn again can meet
        # another answer and go another way than it did (Flaky); schemathesis' own runner
        # takes that as no failure too, and goes on with the next suite. What a check found
        # is raised below.
        with contextlib.suppress(hypothesis.errors.Flaky):
            machine.run(settings=hypothesis.settings(
                max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS,
                phases=[hypothesis.Phase.generate], deadline=None, database=None,
                suppress_health_check=list(hypothesis.HealthCheck)))
        if found:
            raise found[0]
    # Two steps at least to a scenario, but suites a replay cut short.
    assert steps >= STATEFUL_SUITES * STATEFUL_SCENARIOS, f"only {steps} steps ran"
