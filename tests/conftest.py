"""Fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL: a fresh database per test run on the server named by OMS_TEST_PG_URL (default
127.0.0.1:5432, user postgres, trust auth), dropped at the end. Where no server answers the
PostgreSQL half is skipped with the reason shown; on CI (CI=true) that is a failure instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from oms.adapters.db.engine import make_engine
from oms.adapters.db.migrate import upgrade
from oms.adapters.db.tables import metadata
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.app import create_app
from oms.domain.access import Role
from oms.services import apikeys
from oms.settings import Settings, get_settings
from tests.helpers import Api, location_body, product_body, served

#: What the simulated PSP signs its notifications with in the tests.
PSP_SECRET = "simulated-psp-secret"
PG_ADMIN_URL = os.environ.get(
    "OMS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked postgres_only (races that SQLite's single writer cannot have) run only
    with the PostgreSQL database."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        on_sqlite = "[sqlite" in item.nodeid
        (drop if on_sqlite and item.get_closest_marker("postgres_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the schemathesis run tried (tests/api/test_schemathesis.py records it per test,
    in whichever process ran the test): operations, requests and their answers."""
    tests = 0
    answers: dict[str, int] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", []):
                if name == "schemathesis_answers":
                    tests += 1
                    for status, count in value.items():
                        answers[status] = answers.get(status, 0) + count
    if tests:
        by_status = ", ".join(f"{s} {n:,}" for s, n in sorted(answers.items()))
        terminalreporter.write_line(
            f"schemathesis: {tests} tests (operations and scenario suites, on each "
            f"database), {sum(answers.values()):,} requests: {by_status}")


def _postgres_database() -> Iterator[str]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must test PostgreSQL)")
        pytest.skip(reason)
    name = f"oms_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "oms.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    for url in _postgres_database():
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # Test orders carry fixed dates: they stay live orders as the calendar moves on. Tests
    # revoke keys and change locations and expect the next request to see it: the answers
    # kept in the process (a second or two in production) are tested on their own. Every
    # request's transaction may overlap another's (one at a time per process in production,
    # tested on its own): races are what many tests look for.
    return Settings(database_url=database_url, import_chunk_size=100,
                    egress_allow_private=True, live_order_max_age_days=100 * 365,
                    api_key_cache_seconds=0, reference_cache_seconds=0, db_concurrency=0,
                    psp_notification_secrets={"simulated": PSP_SECRET})


@pytest.fixture(scope="session")
def session_engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    yield engine
    engine.dispose()


def empty(engine: Engine) -> Engine:
    """The migrated database, its rows all deleted."""
    names = [table.name for table in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))
    return engine


@pytest.fixture
def engine(session_engine: Engine) -> Engine:
    """A migrated database with no rows in it."""
    return empty(session_engine)


@pytest.fixture
def backend(engine: Engine) -> str:
    return engine.dialect.name


@pytest.fixture
def app_client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
        yield client


MakeKey = Callable[..., str]


@pytest.fixture
def make_key(engine: Engine) -> MakeKey:
    def make(role: str = "admin", locations: list[str] | None = None) -> str:
        with UnitOfWork(engine) as uow:
            _, key = apikeys.create_key(uow, Role(role), locations or [], f"test {role}")
        return key

    return make


@pytest.fixture
def api(app_client: TestClient, make_key: MakeKey) -> Api:
    return Api(app_client, make_key("admin"))


@pytest.fixture
def as_role(app_client: TestClient, make_key: MakeKey) -> Callable[..., Api]:
    def make(role: str, locations: list[str] | None = None) -> Api:
        return Api(app_client, make_key(role, locations))

    return make


@pytest.fixture
def stocked(api: Api) -> Callable[..., None]:
    """Create locations and products (if needed) and set stock levels."""

    def make(levels: dict[tuple[str, str], int], safety_stock: int = 0) -> None:
        for location_id in {loc for loc, _ in levels}:
            assert api.put(f"/v1/locations/{location_id}", json=location_body()).status_code in (
                200, 201)
        for sku in {sku for _, sku in levels}:
            assert api.put(f"/v1/products/{sku}", json=product_body()).status_code in (200, 201)
        for (location_id, sku), on_hand in levels.items():
            r = api.put(f"/v1/inventory/{location_id}/{sku}",
                        json={"on_hand": on_hand, "safety_stock": safety_stock})
            assert r.status_code == 200, r.text

    return make


@pytest.fixture
def live_url(engine: Engine, settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on a free port, for clients that really run in parallel."""
    with served(create_app(settings, engine)) as url:
        yield url


@pytest.fixture
def cli_env(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The `oms` command pointed at the test database."""
    monkeypatch.setenv("OMS_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
