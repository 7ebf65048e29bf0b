"""Task use cases. Each write ends with exactly one commit; nothing here knows HTTP.

Writes load the task with its row locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite
serializes all access on one connection), check If-Match against that version, then
write with `WHERE version = <that version>` and a new version in the same statement:
of two racing writers with one If-Match, exactly one succeeds and the other gets 412.
"""

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.schemas import utcnow
from app.projects import service as projects_service
from app.tags import service as tags_service
from app.tasks import idempotency
from app.tasks.exceptions import PreconditionFailed, TaskNotFound, TaskProjectNotFound
from app.tasks.models import PRIORITY_RANK, Task, search_text
from app.tasks.schemas import IfMatch, TaskCreate, TaskPublic, TaskUpdate


@dataclass(frozen=True, slots=True)
class CreatedTask:
    task: TaskPublic
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task and its tag names, as one statement loads them."""

    task: Task
    tags: list[str]

    def public(self) -> TaskPublic:
        return TaskPublic.from_task(self.task, self.tags)


@lru_cache(maxsize=8)
def _owned_task_statement(dialect: str, for_update: bool) -> Any:
    """Built once (values are bound parameters): building it costs more than running it."""
    tags = tags_service.tag_names_of(col(Task.id), dialect)
    stmt = select(Task, tags.label("tag_names")).where(
        col(Task.id) == bindparam("task_id"), col(Task.user_id) == bindparam("user_id")
    )
    return stmt.with_for_update(of=Task) if for_update else stmt


async def get_owned_task(
    db: AsyncSession, user_id: uuid.UUID, task_id: uuid.UUID, *, for_update: bool = False
) -> TaskView:
    """The owner-scoped read (another user's task is simply not found), with the
    task's tags in the same statement; `for_update` locks the task's row."""
    stmt = _owned_task_statement(db.get_bind().dialect.name, for_update)
    row = (await db.execute(stmt, {"task_id": task_id, "user_id": user_id})).first()
    if row is None:
        raise TaskNotFound()
    return TaskView(row.Task, tags_service.decode_names(row.tag_names))


async def _check_project(
    db: AsyncSession, user_id: uuid.UUID, project_id: uuid.UUID | None
) -> None:
    if project_id is not None and not await projects_service.owned_project_exists(
        db, user_id, project_id
    ):
        raise TaskProjectNotFound()


def _fields(data: TaskCreate) -> dict[str, Any]:
    """Column values for a full body (POST, PUT)."""
    return {
        "title": data.title,
        "title_key": data.title.casefold(),
        "description": data.description,
        "search_text": search_text(data.title, data.description),
        "priority": PRIORITY_RANK[data.priority],
        "due_date": data.due_date,
        "project_id": data.project_id,
    }


async def create_task(
    db: AsyncSession, user_id: uuid.UUID, data: TaskCreate, key: str | None
) -> CreatedTask:
    if key is not None:
        stored = await idempotency.claim(db, user_id, key, idempotency.request_hash(data))
        if stored is not None:
            return CreatedTask(TaskPublic.model_validate_json(stored), replayed=True)
    await _check_project(db, user_id, data.project_id)
    now = utcnow()
    task = Task(user_id=user_id, created_at=now, updated_at=now, **_fields(data))
    db.add(task)
    await db.flush()
    names = await tags_service.set_task_tags(db, user_id, task.id, data.tags, new_task=True)
    public = TaskPublic.from_task(task, names)
    if key is not None:
        await idempotency.store(db, user_id, key, 201, public.model_dump_json())
    await db.commit()
    return CreatedTask(public)


def _check_precondition(task: Task, precondition: IfMatch | None) -> None:
    if precondition is not None and not precondition.matches(task.version):
        raise PreconditionFailed()


async def _write(db: AsyncSession, task: Task, values: dict[str, Any]) -> Task:
    """Check and write in one statement: the version read is the version replaced."""
    result = await db.execute(
        update(Task)
        .where(
            col(Task.id) == task.id,
            col(Task.user_id) == task.user_id,
            col(Task.version) == task.version,
        )
        .values(**values, version=col(Task.version) + 1, updated_at=utcnow())
        .returning(Task)
        .execution_options(populate_existing=True)
    )
    written = result.scalars().first()
    if written is None:
        raise PreconditionFailed()
    return written


async def _save(
    db: AsyncSession, view: TaskView, values: dict[str, Any], tags: list[str] | None
) -> TaskPublic:
    """Write the values (and the tag set, when given), commit, return the new state."""
    written = await _write(db, view.task, values)
    names = view.tags
    if tags is not None:
        names = await tags_service.set_task_tags(db, written.user_id, written.id, tags)
    public = TaskPublic.from_task(written, names)
    await db.commit()
    return public


async def replace_task(
    db: AsyncSession, view: TaskView, data: TaskCreate, precondition: IfMatch | None
) -> TaskPublic:
    """PUT: every field from the body; omitted ones return to their defaults."""
    _check_precondition(view.task, precondition)
    await _check_project(db, view.task.user_id, data.project_id)
    return await _save(db, view, _fields(data), data.tags)


def _changed_values(task: Task, changes: dict[str, Any]) -> dict[str, Any]:
    """Column values for a PATCH, derived columns included."""
    values = dict(changes)
    if "priority" in values:
        values["priority"] = PRIORITY_RANK[values["priority"]]
    if "title" in values:
        values["title_key"] = values["title"].casefold()
    if "title" in values or "description" in values:
        description = values.get("description", task.description)
        values["search_text"] = search_text(values.get("title", task.title), description)
    if "completed" in values:
        values.update(_completion(task, values["completed"]))
    return values


def _completion(task: Task, completed: bool) -> dict[str, Any]:
    """`completed_at` follows `completed`; completing a completed task keeps its time."""
    if not completed:
        return {"completed": False, "completed_at": None}
    return {"completed": True, "completed_at": task.completed_at if task.completed else utcnow()}


async def update_task(
    db: AsyncSession, view: TaskView, data: TaskUpdate, precondition: IfMatch | None
) -> TaskPublic:
    """PATCH: only the fields sent; `null` clears a nullable one; `tags` replaces the set."""
    _check_precondition(view.task, precondition)
    changes = data.model_dump(exclude_unset=True)
    tags: list[str] | None = changes.pop("tags", None)
    if changes.get("project_id") is not None:
        await _check_project(db, view.task.user_id, changes["project_id"])
    return await _save(db, view, _changed_values(view.task, changes), tags)


async def set_completion(
    db: AsyncSession, view: TaskView, completed: bool | None, precondition: IfMatch | None
) -> TaskPublic:
    """Set `completed` (and `completed_at`), or toggle it when `completed` is None."""
    _check_precondition(view.task, precondition)
    target = (not view.task.completed) if completed is None else completed
    return await _save(db, view, _completion(view.task, target), None)


async def delete_task(db: AsyncSession, view: TaskView, precondition: IfMatch | None) -> None:
    task = view.task
    _check_precondition(task, precondition)
    result = await db.execute(
        delete(Task).where(
            col(Task.id) == task.id,
            col(Task.user_id) == task.user_id,
            col(Task.version) == task.version,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise PreconditionFailed()
    await db.commit()
