"""/api/v1/sync: delta sync for clients that keep a local copy (see service.py)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import CurrentPrincipal
from app.core.db import DatabaseDep
from app.core.errors import InvalidCursor, SyncCursorExpired
from app.core.openapi import problems
from app.sync import cursor as cursors
from app.sync import service
from app.sync.schemas import MAX_SYNC_LIMIT, SyncResponse

router = APIRouter(prefix="/sync", tags=["sync"])

CursorQuery = Annotated[
    str | None,
    Query(
        max_length=cursors.MAX_CURSOR_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The `cursor` of the previous answer; none for a first sync (everything)",
    ),
]


@router.get(
    "",
    response_model=SyncResponse,
    responses=problems(InvalidCursor, SyncCursorExpired),
)
async def sync_changes(
    request: Request,
    db: DatabaseDep,
    user: CurrentPrincipal,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SYNC_LIMIT, description="Objects per page")] = 500,
) -> Response:
    """Everything that changed since the cursor: tasks, projects and tags created or
    changed (in their current state) and those deleted. Without a cursor: everything
    the user has. Nothing is ever skipped, whatever order transactions commit in."""
    decoded = cursors.decode(cursor, user.id) if cursor is not None else None
    retention = request.app.state.settings.SYNC_RETENTION_DAYS
    page = await service.sync(db, user.id, decoded, limit, retention)
    assert page.cursor is not None
    body = page.body(cursors.encode(page.cursor, user.id))
    return Response(body, media_type="application/json")
