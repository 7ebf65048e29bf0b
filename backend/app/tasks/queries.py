"""GET /tasks: filters, sorting and one page with its tags and total, in one statement
whatever the filters, rendered as the response's JSON by PostgreSQL (json_page.py).

Building a SQLAlchemy statement costs more CPU than PostgreSQL spends running it (a
few hundred expression objects per request), so the statement is built once per
*shape* of query (which filters are present, the sort) with bound parameters for
every value, memoized, and executed with this request's values.
"""

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Select,
    SmallInteger,
    Text,
    UnaryExpression,
    any_,
    bindparam,
    cast,
    func,
    select,
)
from sqlmodel import col

from app.core.db import CompiledStatement, Database, compile_statement
from app.tags import service as tags_service
from app.tasks import json_page
from app.tasks.models import PRIORITY_RANK, Task, TaskCount
from app.tasks.schemas import SortBy, SortDirection, TaskPublic, TaskQuery, TaskStatus

# Sort columns come from this fixed mapping, never from the request's string. Titles
# sort by their casefolded copy; priorities by their rank (high > medium > low).
SORT_COLUMNS: dict[SortBy, Any] = {
    SortBy.CREATED_AT: col(Task.created_at),
    SortBy.UPDATED_AT: col(Task.updated_at),
    SortBy.TITLE: col(Task.title_key),
    SortBy.DUE_DATE: col(Task.due_date),
    SortBy.PRIORITY: col(Task.priority),
}

# What a task's JSON needs, and no more (search_text can be long): the columns named
# like `TaskPublic`'s fields.
PUBLIC_COLUMNS = tuple(
    Task.__table__.c[name]  # type: ignore[attr-defined]
    for name in TaskPublic.model_fields
    if name != "tags"
)

LIKE_ESCAPE = "/"


@dataclass(frozen=True, slots=True)
class Shape:
    """Everything that changes the statement's text (values are parameters)."""

    status: TaskStatus
    priority: bool
    tags: bool
    project: str | None  # "none", "id" or None
    search: bool
    due_before: bool
    due_after: bool
    updated_since: bool
    sort_by: SortBy
    sort_direction: SortDirection

    @classmethod
    def unfiltered(cls, sort_by: SortBy, sort_direction: SortDirection) -> "Shape":
        return cls(
            TaskStatus.ALL, False, False, None, False, False, False, False, sort_by, sort_direction
        )

    @classmethod
    def of(cls, query: TaskQuery) -> "Shape":
        project = (
            None if query.project_id is None else "none" if query.project_id == "none" else "id"
        )
        return cls(
            query.status,
            bool(query.priority),
            bool(query.tag_names),
            project,
            bool(query.search),
            query.due_before is not None,
            query.due_after is not None,
            query.updated_since is not None,
            query.sort_by,
            query.sort_direction,
        )


def _like_pattern(term: str) -> str:
    """A substring pattern in which `%`, `_` and the escape character are literal."""
    for char in (LIKE_ESCAPE, "%", "_"):
        term = term.replace(char, LIKE_ESCAPE + char)
    return f"%{term}%"


def parameters(query: TaskQuery, user_id: uuid.UUID) -> dict[str, Any]:
    """This request's values for the statement of its shape."""
    keys = tags_service.tag_keys(query.tag_names)
    return {
        "user_id": user_id,
        "priorities": sorted({PRIORITY_RANK[p] for p in query.priority}),
        "tag_keys": keys,
        "tag_count": len(keys),
        "project_id": query.project_id if query.project_id != "none" else None,
        # Matched against the casefolded copy of title and description.
        "search": _like_pattern(query.search.casefold()) if query.search else None,
        "due_before": query.due_before,
        "due_after": query.due_after,
        "updated_since": query.updated_since,
        "limit": query.limit,
        "offset": query.offset,
    }


def _filters(shape: Shape) -> list[ColumnElement[bool]]:
    """The shape's conditions. List values are array parameters (`= ANY($n)`), so one
    statement serves any number of values."""
    conditions: list[ColumnElement[bool]] = [col(Task.user_id) == bindparam("user_id")]
    if shape.status is not TaskStatus.ALL:
        # `= true/false`, not `IS`: only the former can use the (user, status) index.
        conditions.append(col(Task.completed) == (shape.status is TaskStatus.COMPLETED))
    if shape.priority:
        priorities = bindparam("priorities", type_=ARRAY(SmallInteger))
        conditions.append(col(Task.priority) == any_(priorities))
    if shape.tags:
        keys = bindparam("tag_keys", type_=ARRAY(Text))
        tagged = tags_service.tasks_with_all_tags(
            bindparam("user_id"), keys, bindparam("tag_count"), keys_array=True
        )
        conditions.append(col(Task.id).in_(tagged))
    if shape.project == "none":
        conditions.append(col(Task.project_id).is_(None))
    elif shape.project == "id":
        conditions.append(col(Task.project_id) == bindparam("project_id"))
    if shape.search:
        conditions.append(col(Task.search_text).like(bindparam("search"), escape=LIKE_ESCAPE))
    if shape.due_before:
        conditions.append(col(Task.due_date) <= bindparam("due_before"))
    if shape.due_after:
        conditions.append(col(Task.due_date) >= bindparam("due_after"))
    if shape.updated_since:
        conditions.append(col(Task.updated_at) >= bindparam("updated_since"))
    return conditions


def _order(shape: Shape) -> list[UnaryExpression[Any]]:
    """The sort column then id, both in the requested direction, so equal keys keep
    one order and pages never repeat or skip. Tasks without a due date come last in
    either direction."""
    column = SORT_COLUMNS[shape.sort_by]
    descending = shape.sort_direction is SortDirection.DESC
    key = column.desc() if descending else column.asc()
    if shape.sort_by is SortBy.DUE_DATE:
        key = key.nulls_last()
    return [key, col(Task.id).desc() if descending else col(Task.id).asc()]


def _count(shape: Shape) -> Select[int]:
    """The total of the list. Without filters it is the user's task counter (kept by
    triggers, see TaskCount): a sum over a few rows instead of counting every task."""
    if shape == Shape.unfiltered(shape.sort_by, shape.sort_direction):
        counted = cast(func.coalesce(func.sum(col(TaskCount.n)), 0), BigInteger)
        return select(counted).where(col(TaskCount.user_id) == bindparam("user_id"))
    return select(func.count()).select_from(Task).where(*_filters(shape))


def _page(shape: Shape, *, bounds: bool) -> Any:
    page = select(*PUBLIC_COLUMNS).where(*_filters(shape)).order_by(*_order(shape))
    return page.limit(bindparam("limit")).offset(bindparam("offset")) if bounds else page


@lru_cache(maxsize=512)
def _json_statement(shape: Shape, first_page: bool) -> CompiledStatement:
    """The whole body in one statement, compiled once. The first page (offset 0, most
    requests) has its own statement, which PostgreSQL can plan once (see
    json_page.page_statement)."""
    total = _count(shape).scalar_subquery()
    page = _page(shape, bounds=not first_page)
    return compile_statement(
        json_page.page_statement(
            page,
            SORT_COLUMNS[shape.sort_by],
            total,
            shape.sort_by,
            shape.sort_direction,
            count_in_page=shape.tags or shape.search,
            first_page=first_page,
        )
    )


async def list_tasks(db: Database, user_id: uuid.UUID, query: TaskQuery) -> bytes:
    """The list as a JSON body (`TaskList`), rendered by the database (json_page.py)."""
    statement = _json_statement(Shape.of(query), query.offset == 0)
    async with db.connection() as conn:
        args = statement.args(parameters(query, user_id))
        body = await db.fetch_text(conn, statement.sql, *args)
    return body.encode()
