"""Task use cases. Each write is one transaction (one commit, before the response is
built); nothing here knows HTTP. The SQL is in statements.py (single tasks) and
queries.py (the list).

Writes check If-Match inside the statement that writes (`WHERE version = ANY(...)`):
of two racing writers with one If-Match, exactly one succeeds and the other gets 412.
When a write matched no row, one more read tells 404 from 412 from a missing project.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from app.auth.exceptions import InvalidToken
from app.core.db import Connection, Database, transaction_on
from app.core.errors import ServiceUnavailable
from app.core.ids import uuid7
from app.core.schemas import utcnow
from app.tags import links
from app.tasks import idempotency, recurring, statements, trash, tree
from app.tasks.exceptions import (
    ParentNotFound,
    PreconditionFailed,
    RecurrenceNeedsDue,
    TaskNotFound,
    TaskProjectNotFound,
)
from app.tasks.models import search_text
from app.tasks.schemas import IfMatch, TaskCreate, TaskPublic, TaskReplace, TaskUpdate
from app.tasks.types import TaskJson as TaskJson  # re-exported (router)


@dataclass(frozen=True, slots=True)
class CreatedTask:
    """The new task (or the first response's, replayed) and its JSON body."""

    id: uuid.UUID
    version: int
    body: bytes
    replayed: bool = False


async def get_task(db: Database, user_id: uuid.UUID, task_id: uuid.UUID) -> TaskJson:
    """The owner-scoped read: another user's task is simply not found."""
    statement = statements.get_statement()
    async with db.connection() as conn:
        row = await conn.fetchrow(
            statement.sql, *statement.args({"task_id": task_id, "user_id": user_id})
        )
    if row is None:
        raise TaskNotFound()
    return TaskJson(row[0], row[1].encode())


async def tasks_json(
    conn: Connection, user_id: uuid.UUID, task_ids: list[uuid.UUID]
) -> dict[uuid.UUID, bytes]:
    """Those of these ids that are the user's tasks, as each route answers them (JSON)."""
    statement = statements.by_ids_statement()
    rows = await conn.fetch(statement.sql, *statement.args({"user_id": user_id, "ids": task_ids}))
    return {row[0]: row[1].encode() for row in rows}


async def create_task(
    db: Database, user_id: uuid.UUID, data: TaskCreate, key: str | None = None
) -> CreatedTask:
    """Create; with an Idempotency-Key, a retry replays the first response (the key is
    claimed in the same transaction, so a failed request does not use it up)."""
    if key is None and data.parent_id is None:
        # One statement, committed on its own: no transaction held open across round
        # trips (under load, open transactions holding the user's and tags' row locks
        # made the others wait).
        async with db.connection() as conn:
            public = await insert(db, conn, user_id, data)
        return CreatedTask(public.id, public.version, public.model_dump_json().encode())
    async with db.transaction() as conn:
        if key is not None:
            stored = await idempotency.claim(conn, user_id, key, idempotency.request_hash(data))
            if stored is not None:
                first = TaskPublic.model_validate_json(stored)
                return CreatedTask(first.id, first.version, stored.encode(), replayed=True)
        public = await insert(db, conn, user_id, data)
        body = public.model_dump_json()
        if key is not None:
            await idempotency.store(conn, user_id, key, 201, body)
    return CreatedTask(public.id, public.version, body.encode())


async def insert(
    db: Database, conn: Connection, user_id: uuid.UUID, data: TaskCreate
) -> TaskPublic:
    """The create statement for one task, on this connection (POST /tasks, bulk). A
    subtask is checked and inserted under the tree lock (tree.py), in the caller's
    transaction or one of its own."""
    row = new_row(user_id, data, utcnow())
    if row.body["parent_id"] is None:
        return await _insert_row(db, conn, row)
    async with transaction_on(conn):
        await tree.place_new(conn, user_id, row.body)
        row.params["project_id"] = row.body["project_id"]  # the parent's
        return await _insert_row(db, conn, row)


async def _insert_row(db: Database, conn: Connection, row: "NewRow") -> TaskPublic:
    params = row.params
    for _ in range(links.ENSURE_ATTEMPTS):
        params["tag_ids"] = [uuid.uuid4() for _ in params["tag_keys"]]
        try:
            found = await db.fetch_row(conn, statements.CREATE.sql, *statements.CREATE.args(params))
        except asyncpg.ForeignKeyViolationError as exc:
            raise _gone(exc) from None
        project_ok, created, names, position, due_date = found
        if not project_ok:
            raise TaskProjectNotFound()
        if created:
            break
    else:  # pragma: no cover - tags deleted and re-created under us, three times over
        raise ServiceUnavailable(headers={"Retry-After": "1"})
    return row.public(names, position, due_date)


@dataclass(frozen=True, slots=True)
class NewRow:
    """A task about to be inserted: the create statement's parameters (all but the new
    tags' ids, drawn per attempt) and what the answer is built from."""

    id: uuid.UUID
    now: datetime
    body: dict[str, Any]
    params: dict[str, Any]

    def public(self, tag_names: list[str], position: str, due_date: date | None) -> TaskPublic:
        """The new task; `due_date` as the statement stored it (a timed task's local
        date, which only the database computes)."""
        return TaskPublic(
            **(self.body | {"due_date": due_date}),
            id=self.id,
            completed=False,
            completed_at=None,
            last_completed_at=None,
            tags=tag_names,
            created_at=self.now,
            updated_at=self.now,
            version=1,
            position=position,
        )


def new_row(user_id: uuid.UUID, data: TaskCreate, now: datetime) -> NewRow:
    task_id = uuid7()
    spellings = links.unique_by_key(data.tags)
    keys = sorted(spellings)
    body = statements.one_due(data.model_dump(include=set(statements.BODY_COLUMNS)))
    params = statements.encode(body) | {
        "task_id": task_id,
        "user_id": user_id,
        "now": now,
        "tag_names": [spellings[key] for key in keys],
        "tag_keys": keys,
        "search_text": search_text(data.title, data.description),
    }
    return NewRow(task_id, now, body, params)


def _gone(exc: Exception) -> Exception:
    """A row checked at the start of the statement was deleted by a concurrent
    transaction before the write: the project (422, as if it never existed), or the
    caller's own account (401)."""
    constraint = getattr(exc, "constraint_name", None) or ""
    if "parent" in constraint:
        return ParentNotFound()
    if "project" in constraint:
        return TaskProjectNotFound()
    return InvalidToken()


async def update_task(
    db: Database,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    data: TaskUpdate,
    precondition: IfMatch | None,
) -> TaskJson:
    """PATCH: only the fields sent; `null` clears a nullable one; `tags` replaces the set."""
    return await _write(db, user_id, task_id, patch_changes(data), precondition)


async def replace_task(
    db: Database,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    data: TaskReplace,
    precondition: IfMatch | None,
) -> TaskJson:
    """PUT: every field from the body; omitted ones return to their defaults, but an
    omitted `completed` leaves the state as it is."""
    changes = data.model_dump(exclude={"completed"} if data.completed is None else set())
    return await _write(db, user_id, task_id, changes, precondition)


async def set_completion(
    db: Database,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    completed: bool | None,
    precondition: IfMatch | None,
) -> TaskJson:
    """Set `completed` (and `completed_at`), or toggle it when `completed` is None."""
    return await _write(db, user_id, task_id, completion_changes(completed), precondition)


def patch_changes(data: TaskUpdate) -> dict[str, Any]:
    """What a PATCH body changes: the fields sent (an explicit `null` included)."""
    return data.model_dump(exclude_unset=True)


def completion_changes(completed: bool | None) -> dict[str, Any]:
    return {statements.TOGGLE: True} if completed is None else {"completed": completed}


async def _write(
    db: Database,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    changes: dict[str, Any],
    precondition: IfMatch | None,
) -> TaskJson:
    async with db.connection() as conn:
        return await write_on(conn, user_id, task_id, changes, precondition)


async def write_on(
    conn: Connection,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    changes: dict[str, Any],
    precondition: IfMatch | None,
) -> TaskJson:
    """One UPDATE, committed on its own; in one transaction with what else the write
    needs (the caller's, when `conn` is already in one: bulk writes): the tag
    statement and a read of the result (`tags`), the tree checks and the subtree
    following a new project (`parent_id`, `project_id`: tree.py), the open subtasks
    completed with their parent."""
    tags: list[str] | None = changes.pop("tags", None)
    statements.one_due(changes)
    reshapes = "parent_id" in changes or "project_id" in changes
    completes = changes.get("completed") is True or statements.TOGGLE in changes
    now = utcnow()
    if not (tags is not None or reshapes or completes):
        return await _update(conn, user_id, task_id, changes, precondition, now)
    async with transaction_on(conn):
        try:
            moved = reshapes and await tree.place(conn, user_id, task_id, changes)
            result = await _update(conn, user_id, task_id, changes, precondition, now)
            if moved:
                await tree.follow(conn, user_id, task_id, changes["project_id"], now)
            if completes:
                await tree.complete_subtree(conn, user_id, task_id, now)
            if tags is not None:
                await links.set_task_tags(conn, user_id, task_id, tags, replace=True)
                result = await get_in(conn, user_id, task_id)
        except asyncpg.ForeignKeyViolationError as exc:
            raise _gone(exc) from None
    return result


async def get_in(conn: Connection, user_id: uuid.UUID, task_id: uuid.UUID) -> TaskJson:
    """get_task on this connection (in its transaction)."""
    get = statements.get_statement()
    row = await conn.fetchrow(get.sql, *get.args({"task_id": task_id, "user_id": user_id}))
    if row is None:  # pragma: no cover - read right after a write of the same transaction
        raise TaskNotFound()
    return TaskJson(row[0], row[1].encode())


async def _update(
    conn: Connection,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    changes: dict[str, Any],
    precondition: IfMatch | None,
    now: Any,
) -> TaskJson:
    """The UPDATE of these fields, checking If-Match; 404, 412 or 422 when it matched
    no row."""
    versions = precondition is not None and not precondition.any
    statement = statements.write_statement(frozenset(changes), versions)
    params = statements.encode(changes) | {"task_id": task_id, "user_id": user_id, "now": now}
    if versions:
        assert precondition is not None
        params["versions"] = sorted(precondition.versions)
    try:
        row = await conn.fetchrow(statement.sql, *statement.args(params))
        if row is None:
            await _why_not_written(conn, user_id, task_id, precondition)
            if not _completes(changes):
                raise TaskProjectNotFound() if "project_id" in changes else PreconditionFailed()
            # A recurring task to complete by its rule (or a missing project).
            return await recurring.complete(conn, user_id, task_id, changes, None, precondition)
    except asyncpg.ForeignKeyViolationError as exc:
        raise _gone(exc) from None
    except asyncpg.CheckViolationError:
        raise RecurrenceNeedsDue() from None
    return TaskJson(row[0], row[1].encode())


def _completes(changes: dict[str, Any]) -> bool:
    return statements.TOGGLE in changes or changes.get("completed") is True


async def _why_not_written(
    conn: Connection, user_id: uuid.UUID, task_id: uuid.UUID, precondition: IfMatch | None
) -> None:
    """Raise 404 or 412 when that is why a write matched no row."""
    version = await conn.fetchval(statements.VERSION_OF, task_id, user_id)
    if version is None:
        raise TaskNotFound()
    if precondition is not None and not precondition.matches(version):
        raise PreconditionFailed()


async def delete_task(
    db: Database, user_id: uuid.UUID, task_id: uuid.UUID, precondition: IfMatch | None
) -> None:
    """Move the task and its subtree to the trash (trash.py)."""
    async with db.connection() as conn:
        await delete_on(conn, user_id, task_id, precondition)


async def delete_on(
    conn: Connection, user_id: uuid.UUID, task_id: uuid.UUID, precondition: IfMatch | None
) -> None:
    """The trashing on this connection, in the caller's transaction if any, else one of
    its own, under the tree lock: a concurrent write cannot hang a new subtask under a
    task being trashed."""
    async with transaction_on(conn):
        await tree.lock(conn, user_id)
        if not await trash.trash(conn, user_id, task_id, precondition, utcnow()):
            await _why_not_written(conn, user_id, task_id, precondition)
            raise PreconditionFailed()  # pragma: no cover - changed and reverted in between
