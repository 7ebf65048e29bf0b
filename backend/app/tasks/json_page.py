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
    Date,
    DateTime,
    Integer,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.selectable import Subquery

from app.tags import service as tags_service
from app.tasks.models import PRIORITY_BY_RANK, Task
from app.tasks.schemas import MAX_LIMIT, SortBy, SortDirection, TaskPublic

_EMPTY: ColumnElement[Any] = literal_column("'[]'::json")
_TASK_COLUMNS = Task.__table__.c  # type: ignore[attr-defined]


def _text(value: str) -> ColumnElement[str]:
    """A constant of the statement's own (JSON key, format) as a SQL literal, not a
    bound parameter: fewer values to encode and bind per request, and the planner sees
    constants. Only ever called with the fixed strings of this module."""
    if "'" in value or "\\" in value:
        raise ValueError("not a plain constant")
    return literal_column(f"'{value}'")


def _timestamp(column: Any) -> ColumnElement[str]:
    return func.to_char(func.timezone(_text("UTC"), column), _text('YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))


def _priority(column: Any) -> ColumnElement[str]:
    return case(
        *[
            (column == literal_column(str(int(rank))), _text(str(name)))
            for rank, name in PRIORITY_BY_RANK.items()
        ]
    )


def _render(c: Any, name: str) -> Any:
    """One `TaskPublic` field as a SQL expression, by the type of its column: timestamps
    and dates in the contract's formats, priorities by name, the rest as stored."""
    if name == "priority":  # stored as its rank
        return _priority(c.priority)
    column_type = _TASK_COLUMNS[name].type
    if isinstance(column_type, DateTime):
        return _timestamp(c[name])
    if isinstance(column_type, Date):
        return func.to_char(c[name], _text("YYYY-MM-DD"))
    return c[name]


def _fields(c: Any, correlate: Any = None) -> list[tuple[str, Any]]:
    """`TaskPublic`'s fields in order, as SQL expressions on columns named like the task
    table's (the table's own, or a subquery's `.c`; `correlate`: that subquery, when
    the expressions go in a LATERAL subquery of it). A new field of `TaskPublic` that
    is a column of the same name is rendered without a change here."""
    tags = tags_service.tag_names_json_of(c.id)
    if correlate is not None:
        tags = tags.correlate(correlate)
    return [
        (name, tags if name == "tags" else _render(c, name)) for name in TaskPublic.model_fields
    ]


def task_json(c: Any) -> ColumnElement[Any]:
    """One task as `TaskPublic` JSON (json_build_object, for one row)."""
    args: list[Any] = []
    for name, value in _fields(c):
        args += [_text(name), value]
    return func.json_build_object(*args)


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
    first_page: bool = False,
) -> Any:
    """`{items, total, limit, offset}` as text, from the page select of queries.py
    (whose `limit` and `offset` bound parameters are echoed in the body).

    `count_in_page`: when finding the page means reading every matching row anyway
    (tag filters, search), a `count(*) OVER ()` in the page counts them in the same
    pass instead of `total` finding them all again; `total` is then evaluated only for
    a page past the end (no row carries the count).

    `first_page`: `page_select` has no OFFSET (offset 0) and no LIMIT yet."""
    columns = [sort_column.label("sort_key")]
    if count_in_page:
        columns.append(func.count().over().label("full_count"))
    page_select = page_select.add_columns(*columns)
    if first_page:
        # A constant LIMIT (the largest page) inside, the requested one outside: with a
        # bound LIMIT/OFFSET the planner costs a generic plan for 10 % of the user's
        # rows, so PostgreSQL re-plans this statement on every execution (custom plans,
        # ~0.2 ms each); with these bounds the cached generic plan is used.
        inner = page_select.limit(literal_column(str(MAX_LIMIT))).subquery("bounded")
        page_select = select(*inner.c).limit(bindparam("limit"))
    page = page_select.cte("page")  # read twice: computed once
    if count_in_page:
        total = func.coalesce(select(page.c.full_count).limit(1).scalar_subquery(), total)
    order = _page_order(page, sort_by, direction)
    # Each item is a row of a LATERAL subquery turned into JSON (json_agg of the whole
    # row): cheaper for PostgreSQL than json_build_object's 24 arguments per row, and
    # compact (no blanks around `:` and `,`).
    fields = [value.label(name) for name, value in _fields(page.c, page)]
    item = select(*fields).correlate(page).lateral("item")
    items = (
        select(func.json_agg(aggregate_order_by(item.table_valued(), *order)))
        .select_from(page.join(item, true()))
        .scalar_subquery()
    )
    body = func.json_build_object(
        _text("items"), func.coalesce(items, _EMPTY),
        _text("total"), total,
        _text("limit"), bindparam("limit", type_=Integer),
        _text("offset"), bindparam("offset", type_=Integer),
    )  # fmt: skip
    return select(cast(body, Text))
