"""GET /tasks: filters, sorting and one page with its tags and total, in one statement
whatever the filters."""

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, UnaryExpression, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.tags import service as tags_service
from app.tasks import json_page
from app.tasks.models import PRIORITY_RANK, Task
from app.tasks.schemas import SortBy, SortDirection, TaskList, TaskPublic, TaskQuery, TaskStatus

# Sort columns come from this fixed mapping, never from the request's string. Titles
# sort by their casefolded copy; priorities by their rank (high > medium > low).
SORT_COLUMNS: dict[SortBy, Any] = {
    SortBy.CREATED_AT: col(Task.created_at),
    SortBy.UPDATED_AT: col(Task.updated_at),
    SortBy.TITLE: col(Task.title_key),
    SortBy.DUE_DATE: col(Task.due_date),
    SortBy.PRIORITY: col(Task.priority),
}


def _filters(user_id: uuid.UUID, query: TaskQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [col(Task.user_id) == user_id]
    if query.status is not TaskStatus.ALL:
        # `= true/false`, not `IS`: only the former can use the (user, status) index.
        conditions.append(col(Task.completed) == (query.status is TaskStatus.COMPLETED))
    if query.priority:
        conditions.append(col(Task.priority).in_({PRIORITY_RANK[p] for p in query.priority}))
    if query.tag_names:
        tagged = tags_service.tasks_with_all_tags(user_id, query.tag_names)
        conditions.append(col(Task.id).in_(tagged))
    if query.project_id == "none":
        conditions.append(col(Task.project_id).is_(None))
    elif query.project_id is not None:
        conditions.append(col(Task.project_id) == query.project_id)
    if query.search:
        # Matched against the casefolded copy; autoescape makes % and _ literal.
        term = query.search.casefold()
        conditions.append(col(Task.search_text).contains(term, autoescape=True))
    if query.due_before is not None:
        conditions.append(col(Task.due_date) <= query.due_before)
    if query.due_after is not None:
        conditions.append(col(Task.due_date) >= query.due_after)
    if query.updated_since is not None:
        conditions.append(col(Task.updated_at) >= query.updated_since)
    return conditions


def _order(query: TaskQuery) -> list[UnaryExpression[Any]]:
    """The sort column then id, both in the requested direction, so equal keys keep
    one order and pages never repeat or skip. Tasks without a due date come last in
    either direction."""
    column = SORT_COLUMNS[query.sort_by]
    descending = query.sort_direction is SortDirection.DESC
    key = column.desc() if descending else column.asc()
    if query.sort_by is SortBy.DUE_DATE:
        key = key.nulls_last()
    return [key, col(Task.id).desc() if descending else col(Task.id).asc()]


def _count(conditions: list[ColumnElement[bool]]) -> Select[int]:
    return select(func.count()).select_from(Task).where(*conditions)


# What a task's JSON needs, and no more (search_text can be long).
PUBLIC_COLUMNS = (
    col(Task.id),
    col(Task.title),
    col(Task.description),
    col(Task.completed),
    col(Task.completed_at),
    col(Task.priority),
    col(Task.due_date),
    col(Task.project_id),
    col(Task.created_at),
    col(Task.updated_at),
    col(Task.version),
)


async def list_tasks(db: AsyncSession, user_id: uuid.UUID, query: TaskQuery) -> TaskList:
    """One statement: the page, each task's tags (a correlated subquery, evaluated for
    the page's rows only) and the total (an uncorrelated scalar subquery, evaluated
    once: a count(*) OVER () window would make the database read every matching row).
    Past the end no row carries the total, so it is counted on its own."""
    conditions = _filters(user_id, query)
    tags = tags_service.tag_names_of(col(Task.id), db.get_bind().dialect.name)
    total = _count(conditions).correlate(None).scalar_subquery()
    result = await db.execute(
        select(*PUBLIC_COLUMNS, tags.label("tag_names"), total.label("total"))
        .where(*conditions)
        .order_by(*_order(query))
        .limit(query.limit)
        .offset(query.offset)
    )
    rows = result.all()
    if rows:
        count = int(rows[0].total)
    else:
        count = int(await db.scalar(_count(conditions)) or 0) if query.offset else 0
    items = [TaskPublic.from_task(row, tags_service.decode_names(row.tag_names)) for row in rows]
    return TaskList(items=items, total=count, limit=query.limit, offset=query.offset)


async def list_tasks_json(db: AsyncSession, user_id: uuid.UUID, query: TaskQuery) -> bytes:
    """The list as a JSON body: rendered by PostgreSQL itself (see json_page.py), or
    from the `TaskList` model on other databases."""
    if db.get_bind().dialect.name != "postgresql":
        return (await list_tasks(db, user_id, query)).model_dump_json().encode()
    conditions = _filters(user_id, query)
    page = (
        select(*PUBLIC_COLUMNS)
        .where(*conditions)
        .order_by(*_order(query))
        .limit(query.limit)
        .offset(query.offset)
    )
    total = _count(conditions).scalar_subquery()
    statement = json_page.page_statement(page, SORT_COLUMNS[query.sort_by], total, query)
    body: str = (await db.execute(statement)).scalar_one()
    return body.encode()
