"""Task dependencies: the caller's task loaded and checked in one step, and the
If-Match and Idempotency-Key headers."""

import uuid
from typing import Annotated

from fastapi import Depends, Header

from app.auth.dependencies import CurrentPrincipal
from app.core.db import SessionDep
from app.tasks import service
from app.tasks.schemas import IfMatch
from app.tasks.service import TaskView


async def get_locked_task(task_id: uuid.UUID, db: SessionDep, user: CurrentPrincipal) -> TaskView:
    """For writes: the row stays locked until the use case commits (PostgreSQL)."""
    return await service.get_owned_task(db, user.id, task_id, for_update=True)


LockedTask = Annotated[TaskView, Depends(get_locked_task)]


async def get_precondition(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=1024,
            description='`"<version>"` as in the ETag; a stale one is 412, `*` matches any',
        ),
    ] = None,
) -> IfMatch | None:
    return IfMatch.parse(if_match) if if_match is not None else None


Precondition = Annotated[IfMatch | None, Depends(get_precondition)]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e][\x20-\x7e]*$",
        description="Printable ASCII, 1-255 characters; retries with the same key and body "
        "replay the first response for 24 hours",
    ),
]
