"""Project use cases, on asyncpg. Nothing here knows HTTP.

Every statement names its project through `_owned()` (this id, this owner), so another
user's project is simply not found, and a write needs no prior read: a project that
vanished since the request began is answered 404 like any missing one. Statements are
built once (`compile_statement`); values are always bound parameters. A write is one
statement (its own transaction, so one commit) or one `db.transaction()` block.

The tasks domain depends on this one, never the reverse: counting, detaching and
deleting a project's tasks name the task table's columns below instead of importing
`app.tasks`.
"""

import uuid
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Integer,
    ScalarSelect,
    Uuid,
    and_,
    any_,
    bindparam,
    column,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    table,
    true,
    update,
)

from app.core.conditional import IfMatch
from app.core.db import CompiledStatement, Connection, Database, compile_statement
from app.core.errors import InvalidToken, PreconditionFailed
from app.core.schemas import utcnow
from app.projects.exceptions import ProjectNameTaken, ProjectNotFound
from app.projects.models import Project
from app.projects.schemas import ProjectCreate, ProjectList, ProjectPublic, ProjectUpdate

_project = Project.__table__  # type: ignore[attr-defined]
_p = _project.c
_task = table(
    "task",
    column("id", Uuid),
    column("user_id", Uuid),
    column("project_id", Uuid),
    column("version", Integer),
    column("updated_at", DateTime(timezone=True)),
)
_NAME_CONSTRAINT = "uq_project_user_id_name_key"


def _owned() -> ColumnElement[bool]:
    """The one owner scoping of this domain: the user's project of this id."""
    return and_(_p.id == bindparam("project_id"), _p.user_id == bindparam("user_id"))


def _task_count() -> ScalarSelect[int]:
    return (
        select(func.count())
        .select_from(_task)
        .where(_task.c.project_id == _p.id)
        .correlate(_project)
        .scalar_subquery()
    )


def _public_columns() -> tuple[Any, ...]:
    """A ProjectPublic's columns, as every read and write here returns them."""
    return (
        _p.id,
        _p.name,
        _p.description,
        _p.color,
        _task_count().label("task_count"),
        _p.created_at,
        _p.updated_at,
        _p.version,
    )


def _public(row: asyncpg.Record) -> ProjectPublic:
    return ProjectPublic.model_validate(dict(row))


def _integrity_error(exc: Exception) -> Exception:
    """The unique constraint, not a prior read, decides between concurrent requests
    for one name (a read would let two of them through). A foreign key violation means
    the caller's account was deleted meanwhile."""
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return InvalidToken()
    if getattr(exc, "constraint_name", None) == _NAME_CONSTRAINT:
        return ProjectNameTaken()
    return exc


@lru_cache(maxsize=1)
def _insert_statement() -> CompiledStatement:
    names = ("id", "user_id", "name", "name_key", "description", "color")
    values: dict[str, Any] = {name: bindparam(name, type_=_p[name].type) for name in names}
    values |= {"created_at": bindparam("now"), "updated_at": bindparam("now")}
    values["version"] = literal_column("1")
    return compile_statement(insert(_project).values(values))


async def create_project(db: Database, user_id: uuid.UUID, data: ProjectCreate) -> ProjectPublic:
    """One INSERT, its own transaction."""
    statement = _insert_statement()
    project_id, now = uuid.uuid4(), utcnow()
    params = data.model_dump() | {"name_key": data.name.casefold()}
    params |= {"id": project_id, "user_id": user_id, "now": now}
    async with db.connection() as conn:
        try:
            await conn.execute(statement.sql, *statement.args(params))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _integrity_error(exc) from None
    return ProjectPublic(
        **data.model_dump(), id=project_id, task_count=0, created_at=now, updated_at=now, version=1
    )


@lru_cache(maxsize=1)
def _get_statement() -> CompiledStatement:
    return compile_statement(select(*_public_columns()).where(_owned()))


async def get_project(db: Database, user_id: uuid.UUID, project_id: uuid.UUID) -> ProjectPublic:
    statement = _get_statement()
    params = {"project_id": project_id, "user_id": user_id}
    async with db.connection() as conn:
        row = await conn.fetchrow(statement.sql, *statement.args(params))
    if row is None:
        raise ProjectNotFound()
    return _public(row)


@lru_cache(maxsize=1)
def _list_statement() -> CompiledStatement:
    """The total and one page in one statement: the page is joined to the total, so a
    page past the end still answers one row (the total, NULLs for the project)."""
    owned = _p.user_id == bindparam("user_id")
    total = select(func.count().label("total")).where(owned).subquery("total")
    page = (
        select(*_public_columns(), _p.name_key)
        .where(owned)
        .order_by(_p.name_key, _p.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .lateral("page")
    )
    return compile_statement(
        select(total.c.total, *(page.c[c] for c in ProjectPublic.model_fields))
        .select_from(total.outerjoin(page, true()))
        .order_by(page.c.name_key, page.c.id)
    )


@lru_cache(maxsize=1)
def _by_ids_statement() -> CompiledStatement:
    ids = bindparam("ids", type_=ARRAY(Uuid))
    return compile_statement(
        select(*_public_columns()).where(_p.user_id == bindparam("user_id"), _p.id == any_(ids))
    )


async def projects_by_ids(
    conn: Connection, user_id: uuid.UUID, project_ids: list[uuid.UUID]
) -> dict[uuid.UUID, ProjectPublic]:
    """Those of these ids that are the user's projects, as each route answers them."""
    statement = _by_ids_statement()
    rows = await conn.fetch(
        statement.sql, *statement.args({"user_id": user_id, "ids": project_ids})
    )
    return {row["id"]: _public(row) for row in rows}


async def list_projects(db: Database, user_id: uuid.UUID, limit: int, offset: int) -> ProjectList:
    """One page by name (ignoring case; ties on id) and the total: one statement."""
    statement = _list_statement()
    params = {"user_id": user_id, "limit": limit, "offset": offset}
    async with db.connection() as conn:
        rows = await conn.fetch(statement.sql, *statement.args(params))
    items = [_public(row) for row in rows if row["id"] is not None]
    return ProjectList(items=items, total=rows[0]["total"], limit=limit, offset=offset)


def _matching(checked: bool) -> ColumnElement[bool]:
    """The user's project of this id, at one of the If-Match versions when `checked`:
    the write itself checks them, so of two racing writers with one If-Match exactly
    one succeeds."""
    if not checked:
        return _owned()
    return and_(_owned(), _p.version == func.any(bindparam("versions", type_=ARRAY(Integer))))


def _precondition_params(precondition: IfMatch | None) -> tuple[bool, dict[str, Any]]:
    checked = precondition is not None and not precondition.any
    return checked, {"versions": sorted(precondition.versions)} if checked and precondition else {}


@lru_cache(maxsize=16)
def _update_statement(fields: frozenset[str], checked: bool) -> CompiledStatement:
    """The UPDATE for this set of PATCH fields (values are parameters of the same name)."""
    values: dict[str, Any] = {"updated_at": bindparam("now"), "version": _p.version + 1}
    for name in fields | ({"name_key"} if "name" in fields else set()):
        values[name] = bindparam(name, type_=_p[name].type)
    return compile_statement(
        update(_project).where(_matching(checked)).values(values).returning(*_public_columns())
    )


@lru_cache(maxsize=1)
def _version_statement() -> CompiledStatement:
    return compile_statement(select(_p.version).where(_owned()))


async def _why_not_written(conn: Any, params: dict[str, Any]) -> Exception:
    """404 when the project is not the user's (or is gone), else 412 (a stale If-Match)."""
    statement = _version_statement()
    version = await conn.fetchval(statement.sql, *statement.args(params))
    return ProjectNotFound() if version is None else PreconditionFailed()


async def update_project(
    db: Database,
    user_id: uuid.UUID,
    project_id: uuid.UUID,
    data: ProjectUpdate,
    precondition: IfMatch | None = None,
) -> ProjectPublic:
    """One UPDATE ... RETURNING, its own transaction: no prior read, no row lock held
    between statements; If-Match is checked by the UPDATE itself."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    checked, versions = _precondition_params(precondition)
    statement = _update_statement(frozenset(changes), checked)
    if "name" in changes:
        changes["name_key"] = changes["name"].casefold()
    params = changes | {"project_id": project_id, "user_id": user_id, "now": utcnow()}
    async with db.connection() as conn:
        try:
            row = await conn.fetchrow(statement.sql, *statement.args(params | versions))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _integrity_error(exc) from None
        if row is None:
            raise await _why_not_written(conn, params) if checked else ProjectNotFound()
    return _public(row)


@lru_cache(maxsize=2)
def _release_tasks_statement(delete_tasks: bool) -> CompiledStatement:
    """The project's tasks deleted, or left without a project (their version grows, as
    for any change). Scoped by the owner too: a project's tasks are its owner's.

    The rows are locked first, in id order, as the tag statements that touch many
    tasks lock theirs (app.tags.service), so deleting a project while one of its tags
    is deleted or renamed never deadlocks."""
    filed = and_(
        _task.c.user_id == bindparam("user_id"), _task.c.project_id == bindparam("project_id")
    )
    # FOR UPDATE to delete the rows, FOR NO KEY UPDATE (what an UPDATE takes) to change them.
    locked = (
        select(_task.c.id)
        .where(filed)
        .order_by(_task.c.id)
        .with_for_update(key_share=not delete_tasks)
        .cte("locked")
    )
    if delete_tasks:
        return compile_statement(delete(_task).where(_task.c.id == locked.c.id))
    values = {"project_id": null(), "version": _task.c.version + 1, "updated_at": bindparam("now")}
    return compile_statement(update(_task).where(_task.c.id == locked.c.id).values(values))


@lru_cache(maxsize=2)
def _delete_statement(checked: bool) -> CompiledStatement:
    return compile_statement(delete(_project).where(_matching(checked)).returning(_p.id))


async def delete_project(
    db: Database,
    user_id: uuid.UUID,
    project_id: uuid.UUID,
    delete_tasks: bool,
    precondition: IfMatch | None = None,
) -> None:
    """Delete the project; its tasks go with it, or stay without a project.

    Task rows first, the project second: the order in which a task write takes them
    (its row, then the project it is filed in, FOR KEY SHARE), so deleting a project
    and changing one of its tasks never deadlock. When the project is not the user's
    (or is gone) no task of theirs matched, and the transaction rolls back anyway."""
    checked, versions = _precondition_params(precondition)
    release, remove = _release_tasks_statement(delete_tasks), _delete_statement(checked)
    params = {"project_id": project_id, "user_id": user_id, "now": utcnow()}
    async with db.transaction() as conn:
        await conn.execute(release.sql, *release.args(params))
        if await conn.fetchval(remove.sql, *remove.args(params | versions)) is None:
            # Raised inside the transaction: the tasks' release is rolled back too.
            raise await _why_not_written(conn, params) if checked else ProjectNotFound()
