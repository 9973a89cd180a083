"""The HTTP API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import Depends, FastAPI, Request, Response
from sqlalchemy import Engine

from oms import __version__
from oms.adapters.db.engine import make_engine
from oms.adapters.db.gate import limit_units_of_work
from oms.adapters.eventstream.http import HttpTransport
from oms.adapters.registry import providers_from
from oms.api import docs, models, openapi, problems, request_rules
from oms.api.auth import AuthenticationMiddleware
from oms.api.deps import check_path, no_nul_in_query
from oms.api.limits import BodyLimitMiddleware
from oms.api.request_log import RequestLogMiddleware
from oms.api.routers import (
    carts,
    events,
    fulfillment,
    gift_cards,
    imports,
    inventory,
    locations,
    orders,
    products,
    psp,
    routing,
    store_settings,
    webhooks,
)
from oms.api.transactions import Replay
from oms.settings import Settings, get_settings

DESCRIPTION = """
The oms API. Authenticate with `Authorization: Bearer <api key>` (make one with
`oms apikey create --role admin`). Errors are RFC 9457 `application/problem+json`.
Every state-changing request accepts an `Idempotency-Key` header. A query parameter a route
does not take is refused (422), as an unknown field of a body is.
"""


def health(request: Request) -> Response:
    with request.app.state.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    return openapi.answer({"status": "ok", "version": __version__})


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings)
    limit_units_of_work(engine, settings.db_concurrency)
    threads = settings.request_threads

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Requests run on this many threads (anyio's default is 40): fewer threads fight
        # less for the GIL between their waits for the database.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    # /docs and /redoc load Swagger UI and ReDoc from this server, not from a CDN.
    app = FastAPI(title="oms", version=__version__, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, lifespan=lifespan,
                  dependencies=[Depends(no_nul_in_query), Depends(check_path)])
    docs.install(app)
    app.state.settings = settings
    app.state.engine = engine
    app.state.providers = providers_from(settings)
    app.state.webhook_transport = HttpTransport(settings.webhook_timeout_seconds,
                                                allow_private=settings.egress_allow_private)
    problems.install(app)

    @app.exception_handler(Replay)
    async def _replay(_: Request, replay: Replay) -> Response:
        return replay.response()

    for module in (products, locations, inventory, orders, fulfillment, routing, events,
                   webhooks, imports, carts, gift_cards, store_settings, psp):
        app.include_router(module.router)

    app.add_api_route("/healthz", health, methods=["GET"], tags=["operations"],
                      summary="Liveness and database reachability",
                      response_model=models.Health)

    # The document says the rules every request meets, then what every route answers.
    request_rules.install(app)
    openapi.install(app)

    # The last added runs first: the caller is known before the body is looked at, and
    # every answer, a refusal or a replay too, carries the request id.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_import_bytes=settings.max_import_bytes)
    app.add_middleware(AuthenticationMiddleware, engine=engine,
                       cache_seconds=settings.api_key_cache_seconds)
    app.add_middleware(RequestLogMiddleware)
    return app
