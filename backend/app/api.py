"""The /api/v1 router (each domain's router) and the health checks."""

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from app.auth.router import router as auth_router
from app.core.errors import ServiceUnavailable
from app.core.openapi import problems

api_router = APIRouter(prefix="/api/v1", responses=problems(422, 500))
api_router.include_router(auth_router)

health_router = APIRouter(tags=["health"])


class HealthStatus(BaseModel):
    status: str


@health_router.get("/health", response_model=HealthStatus)
async def health() -> HealthStatus:
    """Liveness: 200 while the process serves."""
    return HealthStatus(status="ok")


@health_router.get("/health/ready", response_model=HealthStatus, responses=problems(503))
async def ready(request: Request) -> HealthStatus:
    """Readiness: 200 when the database answers, else 503."""
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable() from exc
    return HealthStatus(status="ok")
