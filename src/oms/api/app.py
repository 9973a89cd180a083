"""The HTTP API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Depends, FastAPI
from sqlalchemy import Engine

from oms import __version__
from oms.adapters.db.engine import make_engine
from oms.adapters.db.idempotency import IdempotencyStore
from oms.adapters.eventstream.http import HttpTransport
from oms.adapters.registry import providers_from
from oms.api import openapi, problems
from oms.api.deps import check_path, no_nul_in_query
from oms.api.idempotency import IdempotencyMiddleware
from oms.api.routers import (
    events,
    fulfillment,
    imports,
    inventory,
    locations,
    orders,
    products,
    routing,
    webhooks,
)
from oms.settings import Settings, get_settings

DESCRIPTION = """
The oms API. Authenticate with `Authorization: Bearer <api key>` (make one with
`oms apikey create --role admin`). Errors are RFC 9457 `application/problem+json`.
Every state-changing request accepts an `Idempotency-Key` header.
"""


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings)
    app = FastAPI(title="oms", version=__version__, description=DESCRIPTION,
                  dependencies=[Depends(no_nul_in_query), Depends(check_path)])
    app.state.settings = settings
    app.state.engine = engine
    app.state.providers = providers_from(settings)
    app.state.webhook_transport = HttpTransport(settings.webhook_timeout_seconds,
                                                allow_private=settings.webhook_allow_private)
    problems.install(app)
    openapi.install(app)
    for module in (products, locations, inventory, orders, fulfillment, routing, events,
                   webhooks, imports):
        app.include_router(module.router)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database reachability")
    def health() -> dict[str, Any]:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok", "version": __version__}

    app.add_middleware(
        IdempotencyMiddleware,
        store=IdempotencyStore(engine),
        ttl=dt.timedelta(hours=settings.idempotency_ttl_hours),
        stale_after=dt.timedelta(seconds=settings.idempotency_stale_seconds),
    )
    return app
