"""GET /tasks and single tasks: the database renders the whole response body.

Building 50 `TaskPublic` models and serializing them costs more CPU than the query
itself (measured: ~2 ms of the list's ~7 ms). PostgreSQL builds the same JSON in the
statement that selects the page, so the worker only forwards bytes. The shape and
formats match `TaskList` exactly (timestamps with microseconds and Z, dates
YYYY-MM-DD, tags ordered by their casefolded key); a test compares each item with
the model's rendering.
"""

from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    ARRAY,
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
    null,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from app.tags import service as tags_service
from app.tasks.models import PRIORITY_BY_RANK, TASK
from app.tasks.schemas import SortBy, SortDirection, TaskPublic

_EMPTY: ColumnElement[Any] = literal_column("'[]'::json")
_TASK_COLUMNS = TASK.c


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


def _fields(
    c: Any, correlate: Any = None, model: type[BaseModel] = TaskPublic
) -> list[tuple[str, Any]]:
    """`TaskPublic`'s fields in order, as SQL expressions on columns named like the task
    table's (the table's own, or a subquery's `.c`; `correlate`: that subquery, when
    the expressions go in a LATERAL subquery of it). A new field of `TaskPublic` that
    is a column of the same name is rendered without a change here."""
    tags = tags_service.tag_names_json_of(c.id)
    if correlate is not None:
        tags = tags.correlate(correlate)
    return [(name, tags if name == "tags" else _render(c, name)) for name in model.model_fields]


def task_json(c: Any, model: type[BaseModel] = TaskPublic) -> ColumnElement[Any]:
    """One task as `TaskPublic` JSON, or another model's whose fields are columns
    (json_build_object, for one row)."""
    args: list[Any] = []
    for name, value in _fields(c, model=model):
        args += [_text(name), value]
    return func.json_build_object(*args)


def page_order(
    key: Any, task_id: Any, sort_by: SortBy, direction: SortDirection, second: Any = None
) -> list[Any]:
    """The list's order: the sort key (by due date, then `second`, the due time within
    the day: all-day tasks first) then id, all in the requested direction (equal keys
    keep one order); tasks without a due date come last in either direction."""
    descending = direction is SortDirection.DESC
    first = key.desc() if descending else key.asc()
    order = [first]
    if sort_by is SortBy.DUE_DATE:
        order = [first.nulls_last(), second.desc() if descending else second.asc()]
    return [*order, task_id.desc() if descending else task_id.asc()]


def cursor_key(key: Any, sort_by: SortBy, second: Any = None) -> Any:
    """A page's sort key as a cursor carries it (cursors.py reads it back): timestamps
    with microseconds and Z, due dates as [YYYY-MM-DD, the due instant or null] (or
    null), the title key and the rank as they are."""
    if sort_by in (SortBy.CREATED_AT, SortBy.UPDATED_AT):
        return _timestamp(key)
    if sort_by is SortBy.DUE_DATE:  # [day, instant or null (all-day)]
        return func.json_build_array(func.to_char(key, _text("YYYY-MM-DD")), _timestamp(second))
    return key


# How `next_cursor`, the body's last key, reads in json_build_object's output.
_NEXT_CURSOR = ', "next_cursor" : '


def page_statement(
    page_select: Any,
    total: Any,
    sort_by: SortBy,
    direction: SortDirection,
    *,
    count_in_page: bool = False,
    numbered: bool = False,
) -> Any:
    """`{items, total, limit, offset, next_cursor}` as text, from the page select of
    queries.py: the page's tasks with their `sort_key` (the `limit` and `offset` bound
    parameters are echoed in the body).

    `next_cursor` is here the `[sort key, id]` JSON of the page's last task when there
    is a next page, else null: `split_next` takes it out and the caller signs it into
    the cursor. Whether there is a next page: on a page by offset, whether `total`
    goes beyond it (the same statement, so the same snapshot: exact); after a cursor
    (`numbered`) the page select brings one row more than the page, each with its
    position `n`, and the next page is there when that row came.

    `count_in_page`: when finding the page means reading every matching row anyway
    (tag filters, search), a `count(*) OVER ()` (`full_count`) in the page counts them
    in the same pass instead of `total` finding them all again; `total` is then
    evaluated only for a page past the end (no row carries the count).

    Everything is computed in one pass over the page's rows (one aggregate: the page
    is read once, never materialized): measured on the first page, a CTE read three
    times and a window numbering the rows cost ~100 µs more (+17 %); this costs
    ~10 µs more than the statement before cursors."""
    page = page_select.subquery("page")
    limit = bindparam("limit", type_=Integer)
    offset = bindparam("offset", type_=Integer)
    by_due = sort_by is SortBy.DUE_DATE
    second: Any = page.c.sort_key2 if by_due else None
    order = page_order(page.c.sort_key, page.c.id, sort_by, direction, second)
    # Each item is a row of a LATERAL subquery turned into JSON (json_agg of the whole
    # row): cheaper for PostgreSQL than json_build_object's 24 arguments per row, and
    # compact (no blanks around `:` and `,`).
    fields = [value.label(name) for name, value in _fields(page.c, page)]
    item = select(*fields).correlate(page).lateral("item")
    items: Any = func.json_agg(aggregate_order_by(item.table_valued(), *order))
    rows = func.count()
    if numbered:
        last = page.c.n == limit
        items = items.filter(page.c.n <= limit)  # the row after the page: counted only
        last_key: Any = _first(func.array_agg(page.c.sort_key).filter(last))
        last_id: Any = _first(func.array_agg(page.c.id).filter(last))
        last_second: Any = _first(func.array_agg(second).filter(last)) if by_due else None
    else:
        last_key = _last_key(page.c.sort_key, rows, sort_by, direction)
        last_id = func.array_agg(aggregate_order_by(page.c.id, *order))[rows]
        last_second = func.array_agg(aggregate_order_by(second, *order))[rows] if by_due else None
    extra = [last_second.label("last_second")] if by_due else []
    if count_in_page:
        total = func.coalesce(func.max(page.c.full_count), total)
    one_pass = (
        select(
            items.label("page_items"),
            rows.label("rows"),
            total.label("total"),  # once: a column (each mention would count again)
            last_key.label("last_key"),
            last_id.label("last_id"),
            *extra,
        )
        .select_from(page.join(item, true()))
        .subquery("one_pass")
    )
    c = one_pass.c
    more = c.rows > limit if numbered else offset + c.rows < c.total
    key = cursor_key(c.last_key, sort_by, c.last_second if by_due else None)
    next_key = func.json_build_array(key, c.last_id)
    body = func.json_build_object(
        _text("items"), func.coalesce(c.page_items, _EMPTY),
        _text("total"), c.total,
        _text("limit"), limit,
        _text("offset"), offset,
        _text("next_cursor"), case((more, next_key)),
    )  # fmt: skip
    return select(cast(body, Text)).select_from(one_pass)


def _first(array: Any) -> Any:
    return type_coerce(array, ARRAY(array.type.item_type))[literal_column("1")]


def _last_key(key: Any, rows: Any, sort_by: SortBy, direction: SortDirection) -> Any:
    """The sort key of the page's last task, from plain aggregates (no sort): the
    largest key ascending, the smallest descending; by due date, null as soon as one
    task of the page has none (they come last)."""
    extreme = func.min(key) if direction is SortDirection.DESC else func.max(key)
    if sort_by is not SortBy.DUE_DATE:
        return extreme
    return case((func.count(key) < rows, null()), else_=extreme)


def split_next(text: str) -> tuple[str, str | None]:
    """A body from page_statement: (the body, None) on the last page, else (the body up
    to `next_cursor`, the `[key, id]` JSON of the page's last task). The JSON strings
    before it cannot hold the marker: a `"` inside them is always escaped."""
    head, marker, tail = text.rpartition(_NEXT_CURSOR)
    if not marker or not tail.endswith("}"):
        raise ValueError("not a body of page_statement")
    key = tail[:-1]
    return (text, None) if key == "null" else (head, key)


def with_next_cursor(head: str, cursor: str) -> str:
    """The body again, its `next_cursor` now the (base64url, so plain) cursor."""
    return f'{head}{_NEXT_CURSOR}"{cursor}"}}'
