"""Project use cases. Each write ends with exactly one commit; nothing here knows HTTP.

The tasks domain depends on this one, never the reverse: counting, detaching and
deleting a project's tasks name the task table's columns below instead of importing
`app.tasks`.
"""

import uuid
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    ScalarSelect,
    Uuid,
    column,
    delete,
    func,
    select,
    table,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.schemas import utcnow
from app.projects.exceptions import ProjectNameTaken, ProjectNotFound
from app.projects.models import Project
from app.projects.schemas import ProjectCreate, ProjectList, ProjectPublic, ProjectUpdate

_task = table(
    "task",
    column("id", Uuid),
    column("user_id", Uuid),
    column("project_id", Uuid),
    column("version", Integer),
    column("updated_at", DateTime(timezone=True)),
)


def _task_count() -> ScalarSelect[int]:
    return (
        select(func.count())
        .select_from(_task)
        .where(_task.c.project_id == col(Project.id))
        .correlate(Project)
        .scalar_subquery()
    )


def _public(project: Project, task_count: int) -> ProjectPublic:
    return ProjectPublic.model_validate(
        {**project.model_dump(), "task_count": task_count}, from_attributes=False
    )


def _is_name_conflict(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    # PostgreSQL names the constraint; SQLite names the columns.
    return "uq_project_user_id_name_key" in message or "project.name_key" in message


async def _flush_name(db: AsyncSession) -> None:
    """Flush a new or renamed project: the unique constraint decides between concurrent
    requests (a prior read would let two of them through)."""
    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        if _is_name_conflict(exc):
            raise ProjectNameTaken() from None
        raise


async def create_project(
    db: AsyncSession, user_id: uuid.UUID, data: ProjectCreate
) -> ProjectPublic:
    now = utcnow()
    project = Project(
        user_id=user_id,
        name_key=data.name.casefold(),
        created_at=now,
        updated_at=now,
        **data.model_dump(),
    )
    db.add(project)
    await _flush_name(db)
    await db.commit()
    return _public(project, 0)


async def get_owned_project(db: AsyncSession, user_id: uuid.UUID, project_id: uuid.UUID) -> Project:
    """The owner-scoped read: another user's project is simply not found."""
    result = await db.execute(
        select(Project).where(col(Project.id) == project_id, col(Project.user_id) == user_id)
    )
    project = result.scalars().first()
    if project is None:
        raise ProjectNotFound()
    return project


async def owned_project_exists(db: AsyncSession, user_id: uuid.UUID, project_id: uuid.UUID) -> bool:
    """For filing a task: FOR KEY SHARE on PostgreSQL keeps the project from being
    deleted before the task's transaction commits."""
    found = await db.scalar(
        select(col(Project.id))
        .where(col(Project.id) == project_id, col(Project.user_id) == user_id)
        .with_for_update(read=True, key_share=True)
    )
    return found is not None


async def read_project(db: AsyncSession, project: Project) -> ProjectPublic:
    count = await db.scalar(
        select(_task_count()).select_from(Project).where(col(Project.id) == project.id)
    )
    return _public(project, int(count or 0))


async def list_projects(
    db: AsyncSession, user_id: uuid.UUID, limit: int, offset: int
) -> ProjectList:
    """One page by name (ignoring case; ties on id) and the total, in one statement."""
    owned = col(Project.user_id) == user_id
    total = select(func.count()).select_from(Project).where(owned).scalar_subquery()
    result = await db.execute(
        select(Project, _task_count().label("task_count"), total.label("total"))
        .where(owned)
        .order_by(col(Project.name_key), col(Project.id))
        .limit(limit)
        .offset(offset)
    )
    rows = result.all()
    if rows:
        count = int(rows[0].total)
    else:
        count = int(await db.scalar(select(func.count()).select_from(Project).where(owned)) or 0)
    items = [_public(row.Project, int(row.task_count)) for row in rows]
    return ProjectList(items=items, total=count, limit=limit, offset=offset)


async def update_project(db: AsyncSession, project: Project, data: ProjectUpdate) -> ProjectPublic:
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "name" in changes:
        changes["name_key"] = changes["name"].casefold()
    for field, value in changes.items():
        setattr(project, field, value)
    project.updated_at = utcnow()
    db.add(project)
    await _flush_name(db)
    public = await read_project(db, project)
    await db.commit()
    return public


async def delete_project(db: AsyncSession, project: Project, delete_tasks: bool) -> None:
    """Delete the project; its tasks go with it, or stay without a project (their
    version grows, as for any change)."""
    filed = (_task.c.user_id == project.user_id) & (_task.c.project_id == project.id)
    if delete_tasks:
        await db.execute(delete(_task).where(filed))
    else:
        await db.execute(
            update(_task)
            .where(filed)
            .values(project_id=None, version=_task.c.version + 1, updated_at=utcnow())
        )
    await db.execute(delete(Project).where(col(Project.id) == project.id))
    await db.commit()
