"""GET /tasks and single tasks: the database renders the whole response body.

Building 50 `TaskPublic` models and serializing them costs more CPU than the query
itself (measured: ~2 ms of the list's ~7 ms). PostgreSQL builds the same JSON in the
statement that selects the page, so the worker only forwards bytes. The shape and
formats match `TaskList` exactly (timestamps with microseconds and Z, dates
YYYY-MM-DD, tags ordered by their casefolded key); a test compares each item with
the model's rendering.
"""

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.selectable import Subquery

from app.tags import service as tags_service
from app.tasks.models import PRIORITY_BY_RANK
from app.tasks.schemas import SortBy, SortDirection

_EMPTY: ColumnElement[Any] = literal_column("'[]'::json")


def _timestamp(column: Any) -> ColumnElement[str]:
    return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')


def _priority(column: Any) -> ColumnElement[str]:
    return case({rank: str(name) for rank, name in PRIORITY_BY_RANK.items()}, value=column)


def task_json(c: Any) -> ColumnElement[Any]:
    """One task as `TaskPublic` JSON, from columns named like the task table's (the
    table's own, or a subquery's `.c`)."""
    return func.json_build_object(
        "id", c.id,
        "title", c.title,
        "description", c.description,
        "completed", c.completed,
        "completed_at", _timestamp(c.completed_at),
        "priority", _priority(c.priority),
        "due_date", func.to_char(c.due_date, "YYYY-MM-DD"),
        "project_id", c.project_id,
        "tags", tags_service.tag_names_json_of(c.id),
        "created_at", _timestamp(c.created_at),
        "updated_at", _timestamp(c.updated_at),
        "version", c.version,
    )  # fmt: skip


def _page_order(page: Subquery, sort_by: SortBy, direction: SortDirection) -> list[Any]:
    """The list's order again, on the page's columns, for json_agg."""
    descending = direction is SortDirection.DESC
    key = page.c.sort_key.desc() if descending else page.c.sort_key.asc()
    if sort_by is SortBy.DUE_DATE:
        key = key.nulls_last()
    return [key, page.c.id.desc() if descending else page.c.id.asc()]


def page_statement(
    page_select: Any,
    sort_column: Any,
    total: Any,
    sort_by: SortBy,
    direction: SortDirection,
    *,
    count_in_page: bool = False,
) -> Any:
    """`{items, total, limit, offset}` as text, from the page select of queries.py
    (whose `limit` and `offset` bound parameters are echoed in the body).

    `count_in_page`: when finding the page means reading every matching row anyway
    (tag filters, search), a `count(*) OVER ()` in the page counts them in the same
    pass instead of `total` finding them all again; `total` is then evaluated only for
    a page past the end (no row carries the count)."""
    columns = [sort_column.label("sort_key")]
    if count_in_page:
        columns.append(func.count().over().label("full_count"))
    page = page_select.add_columns(*columns).cte("page")  # read twice: computed once
    if count_in_page:
        total = func.coalesce(select(page.c.full_count).limit(1).scalar_subquery(), total)
    order = _page_order(page, sort_by, direction)
    items = select(func.json_agg(aggregate_order_by(task_json(page.c), *order))).scalar_subquery()
    body = func.json_build_object(
        "items", func.coalesce(items, _EMPTY),
        "total", total,
        "limit", bindparam("limit", type_=Integer),
        "offset", bindparam("offset", type_=Integer),
    )  # fmt: skip
    return select(cast(body, Text))
