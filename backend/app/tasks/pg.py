"""The task routes clients call most, on PostgreSQL over asyncpg (see app/core/pg.py).

Same rules as service.py, fewer round trips, no ORM:
- get one: one statement; PostgreSQL renders the task's JSON (json_page.task_json).
- create: one statement (its own transaction): project check, tags, task, links.
- update (PATCH): one `UPDATE ... WHERE version = ANY(If-Match) RETURNING <json>`;
  derived columns are computed from the row being updated (`search_text` keeps the
  casefolded half that did not change), so no prior read or row lock is needed and
  concurrent writers still get exactly one winner per version. When nothing was
  updated, one more read tells 404 from 412 from a missing project. A tag change adds
  the tag statement and a read of the result, in one transaction.
The SQLite path (service.py, queries.py) implements the same contract; the test suite
runs on both databases.
"""

import uuid
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import (
    ARRAY,
    Integer,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    null,
    or_,
    select,
    true,
    update,
)
from sqlmodel import col

from app.auth.exceptions import InvalidToken
from app.core.errors import ServiceUnavailable
from app.core.pg import CompiledStatement, Connection, PgPool, compile_statement
from app.core.schemas import utcnow
from app.projects.models import Project
from app.tags import service as tags_service
from app.tasks.exceptions import PreconditionFailed, TaskNotFound, TaskProjectNotFound
from app.tasks.json_page import task_json
from app.tasks.models import PRIORITY_RANK, SEARCH_SEPARATOR, Task, search_text
from app.tasks.schemas import IfMatch, TaskCreate, TaskPublic, TaskUpdate

_table = Task.__table__  # type: ignore[attr-defined]
_task = _table.c

# The task as JSON text beside its version (for the ETag), as every route answers it.
_RESULT = (_task.version, cast(task_json(_task), Text))


@lru_cache(maxsize=1)
def _get_statement() -> CompiledStatement:
    return compile_statement(
        select(*_RESULT).where(
            _task.id == bindparam("task_id"), _task.user_id == bindparam("user_id")
        )
    )


async def get_task(pool: PgPool, user_id: uuid.UUID, task_id: uuid.UUID) -> tuple[int, bytes]:
    """(version, JSON body) of the user's task; another user's is not found."""
    statement = _get_statement()
    params = {"task_id": task_id, "user_id": user_id}
    async with pool.connection() as conn:
        row = await conn.fetchrow(statement.sql, *statement.args(params))
    if row is None:
        raise TaskNotFound()
    return row[0], row[1].encode()


def _tag_ctes(user: str, ids: str, names: str, keys: str, now: str, only_if: str) -> str:
    """The CTEs `wanted`, `inserted`, `existing` and `found` of the statements below,
    with their parameters' placeholders: create the user's missing tags (in key order,
    so two writers never lock the same tags in opposite orders) when `only_if`, lock
    the existing ones FOR KEY SHARE (a concurrent tag deletion waits for our links);
    `found` is both. A tag created by a concurrent transaction after the statement's
    snapshot is neither inserted nor seen: the caller asks again for what is missing."""
    return f"""wanted AS (
    SELECT * FROM unnest({ids}::uuid[], {names}::varchar[], {keys}::varchar[])
        AS w(id, name, name_key)
), inserted AS (
    INSERT INTO tag (id, user_id, name, name_key, created_at)
    SELECT w.id, {user}, w.name, w.name_key, {now} FROM wanted w
    WHERE {only_if}
    ORDER BY w.name_key COLLATE "C"
    ON CONFLICT (user_id, name_key) DO NOTHING
    RETURNING id, name, name_key
), existing AS (
    SELECT id, name, name_key FROM tag
    WHERE user_id = {user} AND name_key = ANY({keys}::varchar[])
    FOR KEY SHARE
), found AS (
    SELECT * FROM inserted UNION ALL SELECT * FROM existing
)"""


# Creating a task is one statement (its own transaction): check the project, the tags
# (_tag_ctes), insert the task and link it. When a tag was missed (see _tag_ctes) no
# task is inserted and the caller runs the statement again (the tags it did create
# are kept, as a tag with no tasks may be). With a project that is missing or someone
# else's nothing at all is written.
_CREATE = f"""
WITH ok AS (
    SELECT $3::uuid IS NULL
        OR EXISTS (SELECT 1 FROM project WHERE id = $3 AND user_id = $2) AS project
), {_tag_ctes("$2", "$11", "$12", "$13", "$10", only_if="(SELECT project FROM ok)")},
new_task AS (
    INSERT INTO task (id, user_id, project_id, title, title_key, description, search_text,
                      completed, priority, due_date, created_at, updated_at, version)
    SELECT $1, $2, $3, $4, $5, $6, $7, false, $8, $9, $10, $10, 1 FROM ok
    WHERE ok.project AND (SELECT count(*) FROM found) = cardinality($13::varchar[])
    RETURNING id
), linked AS (
    INSERT INTO task_tag (task_id, tag_id) SELECT new_task.id, found.id FROM new_task, found
)
SELECT (SELECT project FROM ok), EXISTS (SELECT FROM new_task),
       array(SELECT name FROM found ORDER BY name_key COLLATE "C")
"""

# For PATCH: the tags of an existing task.
_LINK_TAGS = f"""
WITH {_tag_ctes("$2", "$3", "$4", "$5", "$6", only_if="true")},
linked AS (
    INSERT INTO task_tag (task_id, tag_id) SELECT $1, id FROM found ON CONFLICT DO NOTHING
)
SELECT id, name, name_key FROM found
"""

_UNLINK_OTHER_TAGS = "DELETE FROM task_tag WHERE task_id = $1 AND NOT (tag_id = ANY($2::uuid[]))"

_ENSURE_ATTEMPTS = 3


async def _link_tags(
    conn: Connection, user_id: uuid.UUID, task_id: uuid.UUID, names: list[str], *, replace: bool
) -> list[str]:
    """Make these (normalized) names the task's tags; their stored names, in key order."""
    spellings = tags_service.unique_by_key(names)
    found: dict[str, tuple[uuid.UUID, str]] = {}
    now = utcnow()
    for _ in range(_ENSURE_ATTEMPTS):
        missing = sorted(key for key in spellings if key not in found)
        if not missing:
            break
        rows = await conn.fetch(
            _LINK_TAGS,
            task_id,
            user_id,
            [uuid.uuid4() for _ in missing],
            [spellings[key] for key in missing],
            missing,
            now,
        )
        found.update({row[2]: (row[0], row[1]) for row in rows})
    if replace:
        await conn.execute(_UNLINK_OTHER_TAGS, task_id, [tag_id for tag_id, _ in found.values()])
    return [found[key][1] for key in sorted(found)]


async def create_task(pool: PgPool, user_id: uuid.UUID, data: TaskCreate) -> TaskPublic:
    task_id, now = uuid.uuid4(), utcnow()
    spellings = tags_service.unique_by_key(data.tags)
    keys = sorted(spellings)
    args: list[Any] = [
        task_id,
        user_id,
        data.project_id,
        data.title,
        data.title.casefold(),
        data.description,
        search_text(data.title, data.description),
        PRIORITY_RANK[data.priority],
        data.due_date,
        now,
        None,
        [spellings[key] for key in keys],
        keys,
    ]
    async with pool.connection() as conn:
        for _ in range(_ENSURE_ATTEMPTS):
            args[10] = [uuid.uuid4() for _ in keys]
            try:
                project_ok, created, names = await conn.fetchrow(_CREATE, *args)
            except asyncpg.ForeignKeyViolationError as exc:
                raise _gone(exc) from None
            if not project_ok:
                raise TaskProjectNotFound()
            if created:
                break
        else:  # pragma: no cover - tags deleted and re-created under us, three times over
            raise ServiceUnavailable(headers={"Retry-After": "1"})
    return TaskPublic(
        id=task_id,
        title=data.title,
        description=data.description,
        completed=False,
        completed_at=None,
        priority=data.priority,
        due_date=data.due_date,
        project_id=data.project_id,
        tags=names,
        created_at=now,
        updated_at=now,
        version=1,
    )


def _gone(exc: Exception) -> Exception:
    """A row checked at the start of the statement was deleted by a concurrent
    transaction before the write: the project (422, as if it never existed), or the
    caller's own account (401)."""
    if "project" in (getattr(exc, "constraint_name", None) or ""):
        return TaskProjectNotFound()
    return InvalidToken()


def _half(column: Any, part: int) -> Any:
    return func.split_part(column, SEARCH_SEPARATOR, part)


@lru_cache(maxsize=256)
def _update_statement(fields: frozenset[str], versions: bool) -> CompiledStatement:
    """The UPDATE for this set of PATCH fields (values are parameters of the same name),
    checking If-Match versions when asked."""
    values: dict[str, Any] = {
        "version": _task.version + 1,
        "updated_at": bindparam("now"),
    }
    for name in fields & {"title", "description", "priority", "due_date", "project_id"}:
        values[name] = bindparam(name, type_=_task[name].type)
    if "title" in fields:
        values["title_key"] = bindparam("title_key", type_=Text)
    # search_text is `casefold(title) SEP casefold(description)`; casefolding works
    # character by character, so the half that did not change is kept as stored.
    title_half = (
        bindparam("title_fold", type_=Text) if "title" in fields else _half(_task.search_text, 1)
    )
    if "title" in fields or "description" in fields:
        description_half = (
            bindparam("description_fold", type_=Text)
            if "description" in fields
            else _half(_task.search_text, 2)
        )
        values["search_text"] = title_half.concat(SEARCH_SEPARATOR).concat(description_half)
    if "completed" in fields:
        completed = bindparam("completed", type_=_task.completed.type)
        values["completed"] = completed
        # Completing a completed task keeps its time; reopening clears it.
        values["completed_at"] = case(
            (completed == false(), null()),
            (_task.completed == true(), _task.completed_at),
            else_=bindparam("now"),
        )
    conditions = [_task.id == bindparam("task_id"), _task.user_id == bindparam("user_id")]
    if versions:
        conditions.append(_task.version == any_(bindparam("versions", type_=ARRAY(Integer))))
    if "project_id" in fields:
        project = bindparam("project_id", type_=_task.project_id.type)
        owned = exists().where(
            col(Project.id) == project, col(Project.user_id) == bindparam("user_id")
        )
        conditions.append(or_(project.is_(None), owned))
    return compile_statement(
        update(_table).where(and_(*conditions)).values(values).returning(*_RESULT)
    )


def _update_params(changes: dict[str, Any]) -> dict[str, Any]:
    params = dict(changes)
    if "priority" in params:
        params["priority"] = PRIORITY_RANK[params["priority"]]
    if "title" in params:
        params["title_key"] = params["title_fold"] = params["title"].casefold()
    if "description" in params:
        params["description_fold"] = (params["description"] or "").casefold()
    return params


async def update_task(
    pool: PgPool,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    data: TaskUpdate,
    precondition: IfMatch | None,
) -> tuple[int, bytes]:
    """PATCH: (new version, JSON body). Same answers as service.update_task."""
    changes = data.model_dump(exclude_unset=True)
    tags: list[str] | None = changes.pop("tags", None)
    versions = precondition is not None and not precondition.any
    statement = _update_statement(frozenset(changes), versions)
    params = _update_params(changes) | {"task_id": task_id, "user_id": user_id, "now": utcnow()}
    if versions:
        assert precondition is not None
        params["versions"] = sorted(precondition.versions)
    async with pool.connection() as conn:
        try:
            if tags is None:
                row = await conn.fetchrow(statement.sql, *statement.args(params))
            else:
                async with conn.transaction():
                    row = await conn.fetchrow(statement.sql, *statement.args(params))
                    if row is not None:
                        await _link_tags(conn, user_id, task_id, tags, replace=True)
                        get = _get_statement()
                        row = await conn.fetchrow(get.sql, *get.args(params))
        except asyncpg.ForeignKeyViolationError as exc:
            raise _gone(exc) from None
        if row is None:
            await _why_not_updated(conn, user_id, task_id, precondition)
            raise TaskProjectNotFound()
    return row[0], row[1].encode()


async def _why_not_updated(
    conn: Connection, user_id: uuid.UUID, task_id: uuid.UUID, precondition: IfMatch | None
) -> None:
    """Raise 404 or 412 when that is why the UPDATE matched no row (else it was the
    project)."""
    version = await conn.fetchval(
        "SELECT version FROM task WHERE id = $1 AND user_id = $2", task_id, user_id
    )
    if version is None:
        raise TaskNotFound()
    if precondition is not None and not precondition.matches(version):
        raise PreconditionFailed()
