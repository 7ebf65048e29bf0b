"""The API routers (/api/v1 with each domain's router, then the user-scoped
compatibility routes) and the health checks."""

import uuid

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.auth.dependencies import CurrentPrincipal
from app.auth.router import router as auth_router
from app.core.db import DatabaseDep
from app.core.errors import Forbidden, ServiceUnavailable
from app.core.openapi import problems, raises
from app.projects.router import router as projects_router
from app.sync.router import router as sync_router
from app.tags.router import compat_router as tags_compat_router
from app.tags.router import router as tags_router
from app.tasks.router import router as tasks_router

# Every /api/v1 domain router is included here; routes are matched in this order, so
# the busiest come first (no two routers' paths overlap).
v1_router = APIRouter(prefix="/api/v1")
v1_router.include_router(tasks_router)
v1_router.include_router(auth_router)
v1_router.include_router(projects_router)
v1_router.include_router(tags_router)
v1_router.include_router(sync_router)


@raises(Forbidden)
async def require_own_user_id(user_id: str, user: CurrentPrincipal) -> None:
    """The older contract put the user's id in the path: it must be the caller's (or,
    for an external account, its identity provider's `sub`, as a front end knows it)."""
    if user.subject is not None and user_id == user.subject:
        return
    try:
        same = uuid.UUID(user_id) == user.id
    except ValueError:
        same = False
    if not same:
        raise Forbidden()


# The same task (and tag list) handlers under the older user-scoped paths.
compat_router = APIRouter(
    prefix="/api/{user_id}",
    tags=["compat"],
    deprecated=True,
    dependencies=[Depends(require_own_user_id)],
)
compat_router.include_router(tasks_router)
compat_router.include_router(tags_compat_router)

# The router main.py mounts. /api/v1 is registered first, so that /api/{user_id}/...
# never captures "v1" as a user id (see PITFALLS: route order).
api_router = APIRouter()
api_router.include_router(v1_router)
api_router.include_router(compat_router)

health_router = APIRouter(tags=["health"])


class HealthStatus(BaseModel):
    status: str


@health_router.get("/health", response_model=HealthStatus, name="live")
async def health() -> HealthStatus:
    """Liveness: 200 while the process serves."""
    return HealthStatus(status="ok")


@health_router.get(
    "/health/ready", response_model=HealthStatus, responses=problems(ServiceUnavailable)
)
async def ready(database: DatabaseDep) -> HealthStatus:
    """Readiness: 200 when the database answers, else 503."""
    try:
        async with database.connection() as conn:
            await conn.fetchval("SELECT 1")
    except Exception as exc:
        raise ServiceUnavailable(headers={"Retry-After": "5"}) from exc
    return HealthStatus(status="ok")
