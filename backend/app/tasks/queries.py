"""GET /tasks: filters, sorting and one page with its tags and total, in one statement
whatever the filters, rendered as the response's JSON by PostgreSQL (json_page.py).

Building a SQLAlchemy statement costs more CPU than PostgreSQL spends running it (a
few hundred expression objects per request), so the statement is built once per
*shape* of query (which filters are present, the sort, whether a cursor is given)
with bound parameters for every value, memoized, and executed with this request's
values.

A cursor (cursors.py) continues after the task it names: `(key, id) > (k, i)` in the
list's order, a range of the (user_id, <sort column>, id) index like the first page,
so a page deep in the list costs what the first one does (an offset reads and throws
away every task before it).
"""

import operator
import uuid
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Select,
    SmallInteger,
    Text,
    UnaryExpression,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    tuple_,
    union_all,
)
from sqlmodel import col

from app.core.db import CompiledStatement, Database, compile_statement
from app.tags import service as tags_service
from app.tasks import cursors, json_page
from app.tasks.cursors import Cursor
from app.tasks.models import PRIORITY_RANK, TASK, TaskCount
from app.tasks.schemas import (
    MAX_LIMIT,
    SortBy,
    SortDirection,
    TaskPublic,
    TaskQuery,
    TaskStatus,
)

# Sort columns come from this fixed mapping, never from the request's string. Titles
# sort by their casefolded copy; priorities by their rank (high > medium > low).
SORT_COLUMNS: dict[SortBy, Any] = {
    SortBy.CREATED_AT: TASK.c.created_at,
    SortBy.UPDATED_AT: TASK.c.updated_at,
    SortBy.TITLE: TASK.c.title_key,
    SortBy.DUE_DATE: TASK.c.due_date,
    SortBy.PRIORITY: TASK.c.priority,
    SortBy.POSITION: TASK.c.position,
}

# By due date, within a day: all-day tasks (no instant) first, then by instant; the
# expression of the due-date indexes (migration 0010), never NULL, so a cursor's row
# comparison holds for all-day tasks too.
DUE_AT_KEY: Any = func.coalesce(TASK.c.due_at, literal_column("'-infinity'::timestamptz"))

# What a task's JSON needs, and no more (search_text can be long): the columns named
# like `TaskPublic`'s fields.
PUBLIC_COLUMNS = tuple(TASK.c[name] for name in TaskPublic.model_fields if name != "tags")

LIKE_ESCAPE = "/"
# The most rows a page statement reads: the largest page and the row that says there is
# a next one; a SQL constant, so that PostgreSQL's cached generic plan is used (_page).
MAX_FETCH: ColumnElement[int] = literal_column(str(MAX_LIMIT + 1))


@dataclass(frozen=True, slots=True)
class Shape:
    """Everything that changes the statement's text (values are parameters)."""

    status: TaskStatus
    priority: bool
    tags: bool
    project: str | None  # "none", "id" or None
    parent: str | None  # the same
    search: bool
    due_before: bool
    due_after: bool
    updated_since: bool
    sort_by: SortBy
    sort_direction: SortDirection
    # The page starts after a cursor's task: "key", or "null" for one without a due date
    # (sorted by due date: it continues among the undated); None: no cursor.
    after: Literal["key", "null"] | None = None

    @classmethod
    def unfiltered(cls, sort_by: SortBy, sort_direction: SortDirection) -> "Shape":
        return cls(
            TaskStatus.ALL,
            False,
            False,
            None,
            None,
            False,
            False,
            False,
            False,
            sort_by,
            sort_direction,
        )

    @property
    def filtered(self) -> bool:
        return replace(self, after=None) != Shape.unfiltered(self.sort_by, self.sort_direction)

    @property
    def count_in_page(self) -> bool:
        """See json_page.page_statement. Not after a cursor: the page's rows are then only
        those after it, and `total` counts the whole list."""
        return (self.tags or self.search) and self.after is None

    @classmethod
    def of(cls, query: TaskQuery, cursor: Cursor | None = None) -> "Shape":
        return cls(
            query.status,
            bool(query.priority),
            bool(query.tag_names),
            _id_filter(query.project_id),
            _id_filter(query.parent_id),
            bool(query.search),
            query.due_before is not None,
            query.due_after is not None,
            query.updated_since is not None,
            query.sort_by,
            query.sort_direction,
            None if cursor is None else "null" if cursor.key is None else "key",
        )


def _id_filter(value: uuid.UUID | str | None) -> str | None:
    return None if value is None else "none" if value == "none" else "id"


def _like_pattern(term: str) -> str:
    """A substring pattern in which `%`, `_` and the escape character are literal."""
    for char in (LIKE_ESCAPE, "%", "_"):
        term = term.replace(char, LIKE_ESCAPE + char)
    return f"%{term}%"


def parameters(
    query: TaskQuery, user_id: uuid.UUID, cursor: Cursor | None = None
) -> dict[str, Any]:
    """This request's values for the statement of its shape."""
    keys = tags_service.tag_keys(query.tag_names)
    key, second = cursor.key if cursor else None, None
    if isinstance(key, tuple):  # by due date: (day, instant or None)
        key, second = key
    return {
        "after_key": key,
        "after_second": second,
        "after_id": cursor.id if cursor else None,
        "user_id": user_id,
        "priorities": sorted({PRIORITY_RANK[p] for p in query.priority}),
        "tag_keys": keys,
        "tag_count": len(keys),
        "project_id": query.project_id if query.project_id != "none" else None,
        "parent_id": query.parent_id if query.parent_id != "none" else None,
        # Matched against the casefolded copy of title and description.
        "search": _like_pattern(query.search.casefold()) if query.search else None,
        "due_before": query.due_before,
        "due_after": query.due_after,
        "updated_since": query.updated_since,
        "limit": query.limit,
        # After a cursor, one row more than the page: whether it comes (json_page).
        "fetch": query.limit + 1,
        "offset": query.offset,
    }


def _filters(shape: Shape) -> list[ColumnElement[bool]]:
    """The shape's conditions. List values are array parameters (`= ANY($n)`), so one
    statement serves any number of values."""
    conditions: list[ColumnElement[bool]] = [TASK.c.user_id == bindparam("user_id")]
    if shape.status is not TaskStatus.ALL:
        # `= true/false`, not `IS`: only the former can use the (user, status) index.
        conditions.append(TASK.c.completed == (shape.status is TaskStatus.COMPLETED))
    if shape.priority:
        priorities = bindparam("priorities", type_=ARRAY(SmallInteger))
        conditions.append(TASK.c.priority == any_(priorities))
    if shape.tags:
        keys = bindparam("tag_keys", type_=ARRAY(Text))
        tagged = tags_service.tasks_with_all_tags(
            bindparam("user_id"), keys, bindparam("tag_count"), keys_array=True
        )
        conditions.append(TASK.c.id.in_(tagged))
    if shape.project == "none":
        conditions.append(TASK.c.project_id.is_(None))
    elif shape.project == "id":
        conditions.append(TASK.c.project_id == bindparam("project_id"))
    if shape.parent == "none":
        conditions.append(TASK.c.parent_id.is_(None))
    elif shape.parent == "id":
        conditions.append(TASK.c.parent_id == bindparam("parent_id"))
    if shape.search:
        conditions.append(TASK.c.search_text.like(bindparam("search"), escape=LIKE_ESCAPE))
    if shape.due_before:
        conditions.append(TASK.c.due_date <= bindparam("due_before"))
    if shape.due_after:
        conditions.append(TASK.c.due_date >= bindparam("due_after"))
    if shape.updated_since:
        conditions.append(TASK.c.updated_at >= bindparam("updated_since"))
    return conditions


def _order(shape: Shape) -> list[UnaryExpression[Any]]:
    """The sort column then id, both in the requested direction, so equal keys keep
    one order and pages never repeat or skip. Tasks without a due date come last in
    either direction."""
    return json_page.page_order(
        SORT_COLUMNS[shape.sort_by], TASK.c.id, shape.sort_by, shape.sort_direction, DUE_AT_KEY
    )


def _after(shape: Shape) -> ColumnElement[bool]:
    """After the cursor's task in the list's order: a row comparison on (key, id), which
    PostgreSQL reads as the start of an index range. Only dated tasks compare with a
    dated key (a row comparison with NULL is never true); the undated come after all of
    them (_rows), and after an undated task only the undated with a later id."""
    column = SORT_COLUMNS[shape.sort_by]
    task_id: Any = TASK.c.id
    after_id = bindparam("after_id", type_=task_id.type)
    later = operator.lt if shape.sort_direction is SortDirection.DESC else operator.gt
    if shape.after == "null":
        return and_(column.is_(None), later(task_id, after_id))
    after_key = bindparam("after_key", type_=column.type)
    if shape.sort_by is SortBy.DUE_DATE:
        second = bindparam("after_second", type_=TASK.c.due_at.type)
        after_second = func.coalesce(second, literal_column("'-infinity'::timestamptz"))
        by_due: ColumnElement[bool] = later(
            tuple_(column, DUE_AT_KEY, task_id), tuple_(after_key, after_second, after_id)
        )
        return by_due
    condition: ColumnElement[bool] = later(tuple_(column, task_id), tuple_(after_key, after_id))
    return condition


def _count(shape: Shape) -> Select[int]:
    """The total of the list. Without filters it is the user's task counter (kept by
    triggers, see TaskCount): a sum over a few rows instead of counting every task."""
    if not shape.filtered:
        counted = cast(func.coalesce(func.sum(col(TaskCount.n)), 0), BigInteger)
        return select(counted).where(col(TaskCount.user_id) == bindparam("user_id"))
    return select(func.count()).select_from(TASK).where(*_filters(shape))


def _rows(shape: Shape) -> Select[Any]:
    """The list's tasks in its order, with their sort key (`sort_key`) and, counted in
    the page, the total (`full_count`); after a cursor, their position (`n`, from 1),
    for json_page. The position is a window in the same order as the rows, so
    PostgreSQL numbers them as the index scan yields them, without a sort."""
    column = SORT_COLUMNS[shape.sort_by]
    columns = [*PUBLIC_COLUMNS, column.label("sort_key")]
    if shape.sort_by is SortBy.DUE_DATE:
        columns.append(DUE_AT_KEY.label("sort_key2"))
    if shape.count_in_page:
        columns.append(func.count().over().label("full_count"))
    filters, order = _filters(shape), _order(shape)
    if shape.after is None:
        return select(*columns).where(*filters).order_by(*order)
    if shape.sort_by is not SortBy.DUE_DATE or shape.after == "null":
        position = func.row_number().over(order_by=order).label("n")
        return select(*columns, position).where(*filters, _after(shape)).order_by(*order)
    # After a dated task: the later dates, then every undated task. Two index ranges,
    # each ordered and cut at the largest fetch (a cursor page has no offset), which
    # PostgreSQL merges in order (Merge Append) and reads only as far as the page needs;
    # one condition with OR, or the branches uncut, read and sort every task after the
    # cursor (measured: 5-12 ms instead of 0.8 for a 10,000-task user).
    dated = select(*columns).where(*filters, _after(shape)).order_by(*order).limit(MAX_FETCH)
    undated = select(*columns).where(*filters, column.is_(None)).order_by(*order).limit(MAX_FETCH)
    both = union_all(dated, undated).subquery("after_cursor")
    order = json_page.page_order(
        both.c.sort_key, both.c.id, shape.sort_by, shape.sort_direction, both.c.sort_key2
    )
    position = func.row_number().over(order_by=order).label("n")
    return select(*both.c, position).order_by(*order)


def _page(shape: Shape, *, bounded: bool) -> Select[Any]:
    """The page's rows past `offset`; after a cursor one row more (`fetch`): whether it
    comes says whether there is a next page (json_page).

    `bounded` (no offset: the first page, or after a cursor): a constant LIMIT (the
    largest) inside, the requested one outside. With a bound LIMIT/OFFSET the planner
    costs a generic plan for 10 % of the user's rows, so PostgreSQL re-plans the
    statement on every execution (custom plans, ~0.2 ms each); with these bounds the
    cached generic plan is used."""
    rows = _rows(shape)
    limit: Any = bindparam("limit") if shape.after is None else bindparam("fetch")
    if not bounded:
        return rows.limit(limit).offset(bindparam("offset"))
    largest = MAX_FETCH if shape.after is not None else literal_column(str(MAX_LIMIT))
    inner = rows.limit(largest).subquery("bounded")
    return select(*inner.c).limit(limit)


@lru_cache(maxsize=512)
def _json_statement(shape: Shape, bounded: bool) -> CompiledStatement:
    """The whole body in one statement, compiled once. The first page (offset 0, most
    requests) and the pages after a cursor have their own statement, which PostgreSQL
    can plan once (see _page)."""
    return compile_statement(
        json_page.page_statement(
            _page(shape, bounded=bounded),
            _count(shape).scalar_subquery(),
            shape.sort_by,
            shape.sort_direction,
            count_in_page=shape.count_in_page,
            numbered=shape.after is not None,
        )
    )


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes  # TaskList's JSON
    next_cursor: str | None


async def list_tasks(db: Database, user_id: uuid.UUID, query: TaskQuery, secret: bytes) -> Page:
    """The list as a JSON body (`TaskList`), rendered by the database (json_page.py);
    `secret` signs and checks the cursors (cursors.py: InvalidCursor, before any SQL)."""
    cursor = None
    if query.cursor is not None:
        cursor = cursors.decode(secret, query.cursor, query.sort_by, query.sort_direction)
    statement = _json_statement(Shape.of(query, cursor), query.offset == 0)
    async with db.connection() as conn:
        args = statement.args(parameters(query, user_id, cursor))
        text = await db.fetch_text(conn, statement.sql, *args)
    body, last = json_page.split_next(text)
    if last is None:
        return Page(body.encode(), None)
    next_cursor = cursors.encode(secret, query.sort_by, query.sort_direction, last)
    return Page(json_page.with_next_cursor(body, next_cursor).encode(), next_cursor)
