"""The application factory: settings, shared services, middleware, handlers, routers."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.api import api_router, health_router
from app.auth.dependencies import require_local_auth
from app.auth.revocations import SessionCache
from app.auth.service import TOUCH_INTERVAL, AuthContext, ExternalAccounts
from app.core import migrations
from app.core.config import Settings, get_settings
from app.core.db import Database
from app.core.docs import add_docs_routes
from app.core.handlers import register_handlers
from app.core.logging import configure_logging
from app.core.middleware import BodyMiddleware, RequestContextMiddleware, body_routes
from app.core.openapi import api_routes, operation_id
from app.core.ratelimit import RateLimiter
from app.core.security import PasswordHasher
from app.core.tokens import TokenService
from app.maintenance import Maintenance

if TYPE_CHECKING:
    from app.core.embedded import EmbeddedDatabase

logger = logging.getLogger("app")

DESCRIPTION = """
A task-management backend: accounts and sessions, tasks with projects, tags,
priorities and due dates, strictly isolated per user.

Errors are RFC 9457 `application/problem+json` with a stable `code` and the
`request_id`. Use **Authorize** (email as username) to try authenticated routes.
"""


TAGS = [
    {
        "name": "tasks",
        "description": "The user's tasks: filter, sort, paginate; If-Match on writes",
    },
    {"name": "auth", "description": "Accounts, tokens and sessions"},
    {"name": "projects", "description": "The user's projects, each with its task count"},
    {"name": "tags", "description": "The user's tags: usage counts, rename (merging), delete"},
    {
        "name": "sync",
        "description": "Delta sync for offline-first clients: changes and deletions since a cursor",
    },
    {"name": "health", "description": "Liveness and readiness"},
    {
        "name": "compat",
        "description": "The task and tag routes under the older user-scoped paths "
        "`/api/{user_id}/...` (`user_id` must be the caller's own id, else 403)",
    },
]

# Response headers a browser client may read across origins (CORS hides all but a few
# by default): the request id, versions for If-Match, where a created task lives, when
# to retry, whether an Idempotency-Key replayed a stored response, the next page.
EXPOSED_HEADERS = (
    "X-Request-ID", "ETag", "Link", "Location", "Retry-After", "Idempotent-Replayed",
)  # fmt: skip


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.LOG_LEVEL)
    hasher = PasswordHasher(settings.BCRYPT_ROUNDS, settings.PASSWORD_HASH_THREADS)
    limiter = RateLimiter(settings)
    sessions = SessionCache(ttl=TOUCH_INTERVAL.total_seconds())
    database = Database(settings)
    tokens = TokenService(settings)
    maintenance = Maintenance(database, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logger.info("starting", extra={"environment": settings.ENVIRONMENT.value})
        server = await _start_embedded(settings, database) if database.url is None else None
        assert database.url is not None
        listener_url = database.url if server is not None else settings.session_listener_url
        if listener_url is not None:
            sessions.start(listener_url)
        maintenance.start()
        # Everything alive now (modules, routes, models, compiled statements) lives as
        # long as the process: keep it out of the collector's generations, so the
        # collections that per-request allocations trigger no longer walk it all
        # (py-spy: ~7 % of a worker's CPU was garbage collection).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await maintenance.stop()
            await sessions.stop()
            await tokens.close()
            hasher.close()
            await database.close()
            if server is not None:
                await asyncio.to_thread(server.release)

    app = FastAPI(
        title="Todo API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        servers=[{"url": "/", "description": "The server that serves this document"}],
        openapi_tags=TAGS,
        # Served by add_docs_routes from the app's own files, not from CDNs.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.auth = AuthContext(settings, hasher, tokens, limiter, sessions, ExternalAccounts())

    register_handlers(app)
    app.include_router(health_router)
    app.include_router(api_router)
    if not settings.LOCAL_AUTH_ENABLED:
        _hide_local_auth(app)
    add_docs_routes(app)

    # Added innermost first: the request context wraps everything else.
    app.add_middleware(
        BodyMiddleware,
        max_bytes=settings.MAX_BODY_BYTES,
        form_paths=frozenset({"/api/v1/auth/token"}),
        body_routes=body_routes(app.routes),
    )
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.CORS_ORIGINS,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=list(EXPOSED_HEADERS),
        )
    app.add_middleware(RequestContextMiddleware, timeout=settings.REQUEST_TIMEOUT)
    if settings.FORWARDED_ALLOW_IPS:
        # Outermost, so logs, rate limits and everything else see the client it names.
        # The served commands run uvicorn with --no-proxy-headers: this setting alone
        # decides (uvicorn's own default would trust any proxy on 127.0.0.1).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.FORWARDED_ALLOW_IPS)
    return app


def _hide_local_auth(app: FastAPI) -> None:
    """LOCAL_AUTH_ENABLED=false: our own sign-in routes answer 404, so the document
    leaves them out too (they are the routes with the `require_local_auth` dependency)."""
    local = {
        (route.path_format, method.lower())
        for route in api_routes(app.routes)
        if any(
            d.dependency is require_local_auth
            for d in getattr(route.original_route, "dependencies", ())
        )
        for method in route.methods or ()
    }
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for path, method in local:
            operations = schema["paths"].get(path, {})
            operations.pop(method, None)
            if not operations:
                schema["paths"].pop(path, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _start_embedded(settings: Settings, database: Database) -> "EmbeddedDatabase":
    """No DATABASE_URL: attach to (or start) the PostgreSQL server under DATA_DIR and
    bring its schema up to date. Every worker does this; the server is shared, and the
    migrations serialize on a lock of their own (app/alembic/env.py). Imported here:
    a deployment with DATABASE_URL never loads the embedded server's code."""
    from app.core import embedded

    server = await asyncio.to_thread(embedded.attach, settings.DATA_DIR)
    try:
        await asyncio.to_thread(migrations.upgrade, server.url)
    except BaseException:
        await asyncio.to_thread(server.release)
        raise
    database.use(server.url)
    return server


app = create_app()
