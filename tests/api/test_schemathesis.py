"""Schemathesis over the whole API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import Case, HookContext
from sqlalchemy import Engine
from starlette.types import Receive, Scope, Send

from oms.adapters.db.unit_of_work import UnitOfWork
from oms.api.app import create_app
from oms.api.routers.imports import JSONL_TYPES
from oms.domain.access import Role
from oms.services import apikeys
from oms.settings import Settings
from tests.api.realistic import Mender
from tests.api.shop_data import ShopData, seed_shop
from tests.conftest import empty
from tests.helpers import Api

CONFIG = Path(__file__).with_name("schemathesis.toml")


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
        data = seed_shop(Api(client, admin_key),
                         lambda role, locations: Api(client, key(role, locations)), client,
                         engine)
        under_test.target = Target(app, admin_key, data, Mender(data))
        yield under_test.target
        under_test.target = None


@schema.auth(refresh_interval=None)
class AdminKey:
    """The admin key of the database under test, on every request but those that try the
    API without one."""

    def get(self, case: Case, context: schemathesis.AuthContext) -> str:
        # Also asked while the operations are collected, before there is a database.
        return under_test.target.key if under_test.target else "none-yet"

    def set(self, case: Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.hook
def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    if under_test.target is not None:
        under_test.target.mend(case)


@schema.parametrize()
def test_api(case: Case, shop: Target) -> None:
    case.call_and_validate()
