"""/api/v1/tasks: the user's tasks. Writes honour If-Match; creation honours
Idempotency-Key."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from app.auth.dependencies import CurrentPrincipal
from app.core.db import DatabaseDep, SessionDep
from app.core.openapi import problems
from app.core.query_model import QueryModel
from app.tasks import pg, queries, service
from app.tasks.dependencies import IdempotencyKeyHeader, LockedTask, Precondition
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
    database: DatabaseDep,
    user: CurrentPrincipal,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> TaskPublic:
    """Create a task; a retry with the same Idempotency-Key replays the first response."""
    if database.pg is not None and idempotency_key is None:
        created = service.CreatedTask(await pg.create_task(database.pg, user.id, data))
    else:
        async with database.session() as db:
            created = await service.create_task(db, user.id, data, idempotency_key)
    response.headers["Location"] = f"/api/v1/tasks/{created.task.id}"
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _etag(response, created.task)


_LIST_QUERY = QueryModel(TaskQuery)


@router.get(
    "",
    response_model=TaskList,
    responses=problems(401),
    openapi_extra={"parameters": _LIST_QUERY.openapi_parameters()},
)
async def list_tasks(
    query: Annotated[TaskQuery, Depends(_LIST_QUERY.dependency())],
    database: DatabaseDep,
    user: CurrentPrincipal,
) -> Response:
    """List the user's tasks: filter, search, sort and paginate."""
    # Already-rendered JSON (by PostgreSQL itself where it can): the same TaskList shape.
    if database.pg is not None:
        body = await queries.list_tasks_json(database.pg, user.id, query)
    else:
        async with database.session() as db:
            body = (await queries.list_tasks(db, user.id, query)).model_dump_json().encode()
    return Response(body, media_type="application/json")


def _json_with_etag(version: int, body: bytes) -> Response:
    return Response(body, media_type="application/json", headers={"ETag": f'"{version}"'})


@router.get("/{task_id}", response_model=TaskPublic, responses=problems(401, 404))
async def get_task(task_id: uuid.UUID, database: DatabaseDep, user: CurrentPrincipal) -> Response:
    """Get one task (its ETag is its version)."""
    if database.pg is not None:
        return _json_with_etag(*await pg.get_task(database.pg, user.id, task_id))
    async with database.session() as db:
        task = (await service.get_owned_task(db, user.id, task_id)).public()
    return _json_with_etag(task.version, task.model_dump_json().encode())


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
    task_id: uuid.UUID,
    data: TaskUpdate,
    database: DatabaseDep,
    user: CurrentPrincipal,
    precondition: Precondition,
) -> Response:
    """Change some fields of a task; `null` clears a nullable one, `tags` replaces the set."""
    if database.pg is not None:
        pool = database.pg
        return _json_with_etag(*await pg.update_task(pool, user.id, task_id, data, precondition))
    async with database.session() as db:
        task = await service.get_owned_task(db, user.id, task_id, for_update=True)
        public = await service.update_task(db, task, data, precondition)
    return _json_with_etag(public.version, public.model_dump_json().encode())


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
