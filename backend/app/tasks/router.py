"""/api/v1/tasks: the user's tasks. Writes honour If-Match; creation honours
Idempotency-Key. Reads and writes answer the JSON the database rendered."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth.dependencies import CurrentPrincipal
from app.core import conditional
from app.core.conditional import IfNoneMatchHeader
from app.core.db import DatabaseDep
from app.core.errors import MethodNotAllowed
from app.core.openapi import header_schema, problems, sends
from app.core.query_model import QueryModel
from app.core.schemas import utcnow
from app.tasks import bulk, cursors, order, queries, service, stats, trash
from app.tasks.bulk_schemas import BulkRequest, BulkResults
from app.tasks.dependencies import IdempotencyKeyHeader, Precondition
from app.tasks.exceptions import (
    BulkAborted,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidParent,
    InvalidPosition,
    InvalidRecurrence,
    InvalidTimeZone,
    ParentNotFound,
    RecurrenceNeedsDue,
    TaskNotFound,
    TaskProjectNotFound,
)
from app.tasks.schemas import (
    MAX_LIMIT,
    MAX_OFFSET,
    StatsQuery,
    TaskCompletion,
    TaskCreate,
    TaskList,
    TaskMove,
    TaskPublic,
    TaskQuery,
    TaskReplace,
    TaskUpdate,
    TrashList,
)

router = APIRouter(prefix="/tasks", tags=["tasks"])
# What a body's due time, zone and rule can be refused with.
_DUE_ERRORS = (InvalidTimeZone, InvalidRecurrence, RecurrenceNeedsDue)


def _json(task: service.TaskJson) -> Response:
    """The task's JSON with its ETag (its version)."""
    return Response(task.body, media_type="application/json", headers={"ETag": _etag(task)})


def _etag(task: service.TaskJson) -> str:
    return f'"{task.version}"'


@router.post(
    "",
    status_code=201,
    response_model=TaskPublic,
    responses={
        **problems(
            IdempotencyKeyReused,
            IdempotencyKeyInProgress,
            TaskProjectNotFound,
            ParentNotFound,
            InvalidParent,
            *_DUE_ERRORS,
        ),
        **sends(201, "Location", "ETag", "Idempotent-Replayed"),
    },
)
async def create_task(
    data: TaskCreate,
    db: DatabaseDep,
    user: CurrentPrincipal,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Create a task; a retry with the same Idempotency-Key replays the first response."""
    created = await service.create_task(db, user.id, data, idempotency_key)
    # Already JSON (TaskPublic's): answered as it is, not validated and rendered again.
    response = _json(service.TaskJson(created.version, created.body))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/tasks/{created.id}"
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@router.post(
    "/bulk",
    response_model=BulkResults,
    responses={
        **problems(IdempotencyKeyReused, IdempotencyKeyInProgress, BulkAborted),
        **sends(200, "Idempotent-Replayed"),
    },
)
async def bulk_tasks(
    data: BulkRequest,
    db: DatabaseDep,
    user: CurrentPrincipal,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Run 1-100 creates, updates, completions and deletions in order, each by the rules
    of its own route: one result per operation; `atomic`: all or nothing."""
    answer = await bulk.run_bulk(db, user.id, data, idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(answer.body, media_type="application/json", headers=headers)


_NOT_BULK = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


@router.api_route("/bulk", methods=_NOT_BULK, include_in_schema=False)
async def bulk_other_methods() -> None:
    """Only POST: without this route `/tasks/{task_id}` would take `bulk` for an id
    (422 invalid UUID, where a client should read 405)."""
    raise MethodNotAllowed(headers={"Allow": "POST"})


_LIST_QUERY = QueryModel(TaskQuery)


@router.get(
    "",
    response_model=TaskList,
    responses={
        **problems(InvalidCursor),
        **sends(200, "ETag (body)", "Link"),
        **conditional.documented(header_schema("ETag (body)")),
    },
    openapi_extra={"parameters": _LIST_QUERY.openapi_parameters()},
)
async def list_tasks(
    request: Request,
    query: Annotated[TaskQuery, Depends(_LIST_QUERY.dependency())],
    db: DatabaseDep,
    user: CurrentPrincipal,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """List the user's tasks: filter, search, sort and paginate (by offset, or by the
    `next_cursor` each page answers, also in `Link`). The ETag changes whenever
    anything in the page or its total does: send it back in If-None-Match for a 304."""
    secret = request.app.state.settings.secret_key_bytes
    page = await queries.list_tasks(db, user.id, query, secret)
    etag = conditional.body_etag(page.body)
    if conditional.matches(if_none_match, etag):
        return conditional.not_modified(etag)
    headers = {"ETag": etag}
    if page.next_cursor is not None:
        # This request's own path: under /api/{user_id} the compatibility route's.
        params = request.query_params.multi_items()
        headers["Link"] = cursors.next_link(request.url.path, params, page.next_cursor)
    return Response(page.body, media_type="application/json", headers=headers)


_STATS_QUERY = QueryModel(StatsQuery)


# Before /{task_id}, which would otherwise take `stats` for an id (a 422).
@router.get(
    "/stats",
    response_model=stats.TaskStats,
    responses=problems(InvalidTimeZone),
    openapi_extra={"parameters": _STATS_QUERY.openapi_parameters()},
)
async def task_stats(
    query: Annotated[StatsQuery, Depends(_STATS_QUERY.dependency())],
    db: DatabaseDep,
    user: CurrentPrincipal,
) -> Response:
    """Count the user's tasks: pending, completed, overdue, due today, by priority and project."""
    body = await stats.task_stats(db, user.id, query.time_zone, utcnow())
    return Response(body, media_type="application/json")


@router.api_route(
    "/stats", methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False
)
async def stats_other_methods() -> None:
    """405 with `Allow: GET`, not the 422 of /{task_id} with "stats" for an id, nor an
    `Allow` naming /{task_id}'s methods (as for /trash)."""
    raise MethodNotAllowed(headers={"Allow": "GET"})


_ONE = {
    **problems(TaskNotFound),
    **sends(200, "ETag"),
    **conditional.documented(header_schema("ETag")),
}
_WRITE = {
    **problems(TaskNotFound, TaskProjectNotFound, ParentNotFound, InvalidParent, *_DUE_ERRORS),
    **sends(200, "ETag"),
}


# Before /{task_id}: "trash" is no task id (a UUID path parameter would answer 422).
@router.get("/trash", response_model=TrashList)
async def list_trash(
    db: DatabaseDep,
    user: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """List the trashed tasks, newest first; they are deleted for good after
    TRASH_RETENTION_DAYS."""
    body = await trash.list_trash(db, user.id, limit, offset)
    return Response(body, media_type="application/json")


@router.api_route(
    "/trash", methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False
)
async def trash_other_methods() -> None:
    """405 with `Allow: GET`: not the 422 of /{task_id} with "trash" for an id, nor an
    `Allow` naming the methods of /{task_id} (its routes match any string; the UUID is
    checked after)."""
    raise MethodNotAllowed(headers={"Allow": "GET"})


@router.get("/{task_id}", response_model=TaskPublic, responses=_ONE)
async def get_task(
    task_id: uuid.UUID,
    db: DatabaseDep,
    user: CurrentPrincipal,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """Get one task (its ETag is its version; If-None-Match with it: 304)."""
    task = await service.get_task(db, user.id, task_id)
    etag = _etag(task)
    if conditional.matches(if_none_match, etag):
        return conditional.not_modified(etag)
    return _json(task)


@router.put("/{task_id}", response_model=TaskPublic, responses=_WRITE)
async def replace_task(
    task_id: uuid.UUID,
    data: TaskReplace,
    db: DatabaseDep,
    user: CurrentPrincipal,
    precondition: Precondition,
) -> Response:
    """Replace a task: omitted fields return to their defaults."""
    return _json(await service.replace_task(db, user.id, task_id, data, precondition))


@router.patch("/{task_id}", response_model=TaskPublic, responses=_WRITE)
async def update_task(
    task_id: uuid.UUID,
    data: TaskUpdate,
    db: DatabaseDep,
    user: CurrentPrincipal,
    precondition: Precondition,
) -> Response:
    """Change some fields of a task; `null` clears a nullable one, `tags` replaces the set."""
    return _json(await service.update_task(db, user.id, task_id, data, precondition))


@router.patch("/{task_id}/complete", response_model=TaskPublic, responses=_ONE)
async def complete_task(
    task_id: uuid.UUID,
    db: DatabaseDep,
    user: CurrentPrincipal,
    precondition: Precondition,
    data: TaskCompletion | None = None,
) -> Response:
    """Set `completed` from the body, or toggle it when the body is empty."""
    completed = data.completed if data is not None else None
    return _json(await service.set_completion(db, user.id, task_id, completed, precondition))


@router.delete("/{task_id}", status_code=204, responses=problems(TaskNotFound))
async def delete_task(
    task_id: uuid.UUID,
    db: DatabaseDep,
    user: CurrentPrincipal,
    precondition: Precondition,
    permanent: Annotated[
        bool, Query(description="Delete at once (trashed or not), instead of trashing")
    ] = False,
) -> None:
    """Move a task and its subtasks to the trash (`permanent=true`: delete them now)."""
    if permanent:
        await trash.delete_permanently(db, user.id, task_id, precondition)
    else:
        await service.delete_task(db, user.id, task_id, precondition)


@router.post(
    "/{task_id}/restore",
    response_model=TaskPublic,
    responses={**problems(TaskNotFound), **sends(200, "ETag")},
)
async def restore_task(task_id: uuid.UUID, db: DatabaseDep, user: CurrentPrincipal) -> Response:
    """Bring a task back from the trash, with the subtasks trashed with it."""
    version, body = await trash.restore(db, user.id, task_id)
    return _json(service.TaskJson(version, body))


@router.post(
    "/{task_id}/move",
    response_model=TaskPublic,
    responses={**problems(TaskNotFound, InvalidPosition), **sends(200, "ETag")},
)
async def move_task(
    task_id: uuid.UUID,
    data: TaskMove,
    db: DatabaseDep,
    user: CurrentPrincipal,
    precondition: Precondition,
) -> Response:
    """Place a task just before or just after one of its siblings (manual order)."""
    version, body = await order.move_task(db, user.id, task_id, data, precondition)
    return _json(service.TaskJson(version, body))
