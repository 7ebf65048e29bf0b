"""/api/v1/tasks: the user's tasks. Writes honour If-Match; creation honours
Idempotency-Key."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import CurrentPrincipal
from app.core.db import SessionDep
from app.core.openapi import problems
from app.tasks import queries, service
from app.tasks.dependencies import IdempotencyKeyHeader, LockedTask, OwnedTask, Precondition
from app.tasks.schemas import (
    TaskCompletion,
    TaskCreate,
    TaskList,
    TaskPublic,
    TaskQuery,
    TaskUpdate,
)

router = APIRouter(prefix="/tasks", tags=["tasks"])


def _etag(response: Response, task: TaskPublic) -> TaskPublic:
    response.headers["ETag"] = f'"{task.version}"'
    return task


@router.post("", status_code=201, response_model=TaskPublic, responses=problems(401, 409, 415))
async def create_task(
    data: TaskCreate,
    db: SessionDep,
    user: CurrentPrincipal,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> TaskPublic:
    """Create a task; a retry with the same Idempotency-Key replays the first response."""
    created = await service.create_task(db, user.id, data, idempotency_key)
    response.headers["Location"] = f"/api/v1/tasks/{created.task.id}"
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _etag(response, created.task)


@router.get("", response_model=TaskList, responses=problems(401))
async def list_tasks(
    query: Annotated[TaskQuery, Query()], db: SessionDep, user: CurrentPrincipal
) -> Response:
    """List the user's tasks: filter, search, sort and paginate."""
    # Already-rendered JSON (by PostgreSQL itself where it can): the same TaskList shape.
    body = await queries.list_tasks_json(db, user.id, query)
    return Response(body, media_type="application/json")


@router.get("/{task_id}", response_model=TaskPublic, responses=problems(401, 404))
async def get_task(task: OwnedTask, response: Response) -> TaskPublic:
    """Get one task (its ETag is its version)."""
    return _etag(response, task.public())


@router.put("/{task_id}", response_model=TaskPublic, responses=problems(401, 404, 412, 415))
async def replace_task(
    data: TaskCreate,
    db: SessionDep,
    task: LockedTask,
    precondition: Precondition,
    response: Response,
) -> TaskPublic:
    """Replace a task: omitted fields return to their defaults."""
    return _etag(response, await service.replace_task(db, task, data, precondition))


@router.patch("/{task_id}", response_model=TaskPublic, responses=problems(401, 404, 412, 415))
async def update_task(
    data: TaskUpdate,
    db: SessionDep,
    task: LockedTask,
    precondition: Precondition,
    response: Response,
) -> TaskPublic:
    """Change some fields of a task; `null` clears a nullable one, `tags` replaces the set."""
    return _etag(response, await service.update_task(db, task, data, precondition))


@router.patch(
    "/{task_id}/complete", response_model=TaskPublic, responses=problems(401, 404, 412, 415)
)
async def complete_task(
    db: SessionDep,
    task: LockedTask,
    precondition: Precondition,
    response: Response,
    data: TaskCompletion | None = None,
) -> TaskPublic:
    """Set `completed` from the body, or toggle it when the body is empty."""
    completed = data.completed if data is not None else None
    return _etag(response, await service.set_completion(db, task, completed, precondition))


@router.delete("/{task_id}", status_code=204, responses=problems(401, 404, 412))
async def delete_task(db: SessionDep, task: LockedTask, precondition: Precondition) -> None:
    """Delete a task."""
    await service.delete_task(db, task, precondition)
