"""The SQL of the single-task use cases (service.py), each built once.

- get one: one statement; PostgreSQL renders the task's JSON (json_page.task_json).
- create: one statement: project check, tags, task, links.
- write (PATCH, PUT, complete): one `UPDATE ... WHERE version = ANY(If-Match)
  RETURNING <json>`; derived columns are computed from the row being updated
  (`search_text` keeps the casefolded half that did not change), so no prior read or
  row lock is needed and concurrent writers still get exactly one winner per version.
- delete: see trash.py (a task is trashed with its subtree).
"""

import re
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    Date,
    DateTime,
    Integer,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlmodel import col

from app.core.db import CompiledStatement, compile_statement
from app.projects.models import Project
from app.tags.links import tag_ctes
from app.tasks.json_page import task_json
from app.tasks.models import PRIORITY_RANK, SEARCH_SEPARATOR, TASK

_table = TASK
_task = _table.c

# The task as JSON text beside its version (for the ETag), as every route answers it.
_RESULT = (_task.version, cast(task_json(_task), Text))

# The body's fields that are columns of the same name (POST, PUT, PATCH): adding a
# field to the task means adding it here (and to the model, its migration and the
# schemas); create, replace and update all write it from this list.
BODY_COLUMNS = (
    "title", "description", "priority", "due_date", "due_at", "time_zone", "recurrence",
    "project_id", "parent_id",
)  # fmt: skip
# Set by a recurring task's completion (service): the next occurrence keeps the series'
# start, and the completion's time is recorded.
RECURRING_COLUMNS = ("recurrence_anchor", "last_completed_at")
# What a write may also set: `completed` (PATCH, /complete), or TOGGLE (flip it).
TOGGLE = "toggle"
# And REPOSITION: a new position, last among its new siblings (parent or project changed).
REPOSITION = "reposition"
# A new task's (or a task's that changes siblings) position: the current microsecond
# as a fractional-indexing key (positions.py, migration 0009), after every older one.
NEW_POSITION = "task_position_key(clock_timestamp(), {})"


def encode(values: dict[str, Any]) -> dict[str, Any]:
    """Column values for these field values, derived ones included: priorities are
    stored as their rank, and a title or description change refreshes the casefolded
    copies that sorting and search read."""
    params = dict(values)
    if "priority" in params:
        params["priority"] = PRIORITY_RANK[params["priority"]]
    if "title" in params:
        params["title_key"] = params["title_fold"] = params["title"].casefold()
    if "description" in params:
        params["description_fold"] = (params["description"] or "").casefold()
    return params


def one_due(changes: dict[str, Any]) -> dict[str, Any]:
    """A due instant replaces the due day (the statement derives the day from it), a due
    day (or a cleared instant) replaces the instant: after this, a change of either
    names both."""
    if changes.get("due_at") is not None:
        changes["due_date"] = None
    elif "due_date" in changes or "due_at" in changes:
        changes["due_at"] = None
        changes.setdefault("due_date", None)
    return changes


def _new(fields: frozenset[str], name: str) -> Any:
    """The value a write leaves in this column: the parameter when it sets it."""
    return bindparam(name, type_=_task[name].type) if name in fields else _task[name]


def local_date(due_at: Any, time_zone: Any) -> Any:
    """The date of an instant in a zone (NULL: UTC), by PostgreSQL's zone database."""
    return cast(func.timezone(func.coalesce(time_zone, "UTC"), due_at), Date)


def _due(fields: frozenset[str]) -> dict[str, Any]:
    """due_date (a timed task's local date, recomputed when the instant or the zone
    changes) and the series' start (reset when the client sets any of due, zone or
    rule; a recurring completion sets it itself)."""
    values: dict[str, Any] = {}
    due_at, time_zone = _new(fields, "due_at"), _new(fields, "time_zone")
    due_date = _new(fields, "due_date")
    if fields & {"due_at", "time_zone"}:
        due_date = case((due_at.is_(None), due_date), else_=local_date(due_at, time_zone))
        values["due_date"] = due_date
    if "recurrence_anchor" not in fields and fields & {
        "due_date",
        "due_at",
        "time_zone",
        "recurrence",
    }:
        values["recurrence_anchor"] = case(
            (due_at.is_(None), cast(due_date, DateTime)),
            else_=func.timezone(func.coalesce(time_zone, "UTC"), due_at),
        )
    return values


@lru_cache(maxsize=1)
def get_statement() -> CompiledStatement:
    return compile_statement(
        select(*_RESULT).where(
            _task.id == bindparam("task_id"), _task.user_id == bindparam("user_id")
        )
    )


@lru_cache(maxsize=1)
def by_ids_statement() -> CompiledStatement:
    """Several of the user's tasks (`ids`, an array) as JSON, each beside its id."""
    ids = bindparam("ids", type_=ARRAY(Uuid))
    return compile_statement(
        select(_task.id, _RESULT[1]).where(
            _task.user_id == bindparam("user_id"), _task.id == any_(ids)
        )
    )


VERSION_OF = "SELECT version FROM task WHERE id = $1 AND user_id = $2"
# A recurring task's due and rule, locked until its completion commits.
RECURRING_ROW = """
SELECT version, completed, recurrence, due_date, due_at, time_zone, recurrence_anchor
FROM task WHERE id = $1 AND user_id = $2 FOR UPDATE
"""


def _create_statement() -> CompiledStatement:
    """Creating a task is one statement: check the project, the tags (links.tag_ctes),
    insert the task and link it. When a tag was missed (see tag_ctes) no task is
    inserted and the caller runs the statement again (the tags it did create are kept,
    as a tag with no tasks may be). With a project that is missing or someone else's
    nothing at all is written."""
    names = ["task_id", "user_id", "now", "tag_ids", "tag_names", "tag_keys"]
    names += [*BODY_COLUMNS, "title_key", "search_text"]
    p = {name: f"${number}" for number, name in enumerate(names, 1)}
    # A timed task's due_date is its local date; the series starts at the due.
    zone = f"coalesce({p['time_zone']}::varchar, 'UTC')"
    local = f"timezone({zone}, {p['due_at']}::timestamptz)"
    p["due_date"] = f"coalesce({p['due_date']}::date, {local}::date)"
    p["recurrence_anchor"] = f"coalesce({local}, {p['due_date']}::timestamp)"
    columns = [*BODY_COLUMNS, "recurrence_anchor", "title_key", "search_text"]
    values = ", ".join(p[name] for name in columns)
    sql = f"""
WITH ok AS (
    SELECT {p["project_id"]}::uuid IS NULL
        OR EXISTS (SELECT 1 FROM project WHERE id = {p["project_id"]} AND user_id = $2) AS project
), {tag_ctes("$2", "$4", "$5", "$6", "$3", only_if="(SELECT project FROM ok)")},
new_task AS (
    INSERT INTO task (id, user_id, {", ".join(columns)},
                      completed, created_at, updated_at, version, position)
    SELECT $1, $2, {values}, false, $3, $3, 1, {NEW_POSITION.format("$1")} FROM ok
    WHERE ok.project AND (SELECT count(*) FROM found) = cardinality($6::varchar[])
    RETURNING id, position, due_date
), linked AS (
    INSERT INTO task_tag (task_id, tag_id) SELECT new_task.id, found.id FROM new_task, found
)
SELECT (SELECT project FROM ok), EXISTS (SELECT FROM new_task),
       array(SELECT name FROM found ORDER BY name_key COLLATE "C"),
       (SELECT position FROM new_task), (SELECT due_date FROM new_task)
"""
    return CompiledStatement(sql, tuple(names), {})


CREATE = _create_statement()

# Several tasks in one statement (a bulk request's run of consecutive creates; POST
# /tasks keeps CREATE: a multi-row statement for every create slowed single creates by
# 11-21 %). Each row gets what CREATE gives one task: its project checked (a bad one
# writes nothing for that row, not even its tags), its tags found or created (in key
# order, FOR KEY SHARE), inserted and linked only when every one of its tags was found.
# Per row (by `n`, its position from 1): project ok, created, its tags' stored names.
# Whatever CREATE checks (the project's owner) CREATE_MANY must check too, per row
# (subtasks, whose parent needs the tree lock and checks of tree.py, are created one
# by one: bulk.py never puts one in a run): tests/tasks/test_bulk.py runs both on the same
# bodies (TestCreateRuns).
# The per-row arrays of CREATE_MANY, in order ($3...), each typed as its column: a
# field added to BODY_COLUMNS joins them (and CREATE's parameters give the values).
MANY_COLUMNS = ("id", *BODY_COLUMNS, "title_key", "search_text")


def _create_many_statement() -> str:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    # Without a length: an explicit cast to varchar(n) would cut a longer value silently
    # (the schemas refuse one first; the column's own check stays the last word).
    types = [
        re.sub(r"\(\d+\)", "", _table.c[name].type.compile(dialect=dialect))
        for name in MANY_COLUMNS
    ]
    arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(types, 3))
    tags = len(MANY_COLUMNS) + 3  # the flattened tags' four arrays follow
    t = {name: f"${n}" for n, name in enumerate(("n", "id", "name", "key"), tags)}
    # As CREATE: a timed task's due_date is its local date; the series starts at the due.
    local = "timezone(coalesce(i.time_zone, 'UTC'), i.due_at)"
    derived = {"due_date": f"coalesce(i.due_date, {local}::date)"}
    values = [derived.get(c, f"i.{c}") for c in MANY_COLUMNS]
    values.append(f"coalesce({local}, {derived['due_date']}::timestamp)")
    return f"""
WITH item AS (
    SELECT * FROM unnest({arrays})
        WITH ORDINALITY AS i({", ".join(MANY_COLUMNS)}, n)
), ok AS (
    SELECT i.n, i.project_id IS NULL
        OR EXISTS (SELECT 1 FROM project WHERE id = i.project_id AND user_id = $1) AS project
    FROM item i
), item_tag AS (
    SELECT * FROM unnest({t["n"]}::bigint[], {t["id"]}::uuid[], {t["name"]}::varchar[],
                         {t["key"]}::varchar[]) AS t(n, id, name, name_key)
), wanted AS (
    SELECT DISTINCT ON (t.name_key) t.id, t.name, t.name_key
    FROM item_tag t JOIN ok ON ok.n = t.n WHERE ok.project
    ORDER BY t.name_key, t.n
), inserted AS (
    INSERT INTO tag (id, user_id, name, name_key, created_at)
    SELECT w.id, $1, w.name, w.name_key, $2 FROM wanted w
    ORDER BY w.name_key COLLATE "C"
    ON CONFLICT (user_id, name_key) DO NOTHING
    RETURNING id, name, name_key
), existing AS (
    SELECT id, name, name_key FROM tag
    WHERE user_id = $1 AND name_key = ANY({t["key"]}::varchar[])
    FOR KEY SHARE
), found AS (
    SELECT * FROM inserted UNION ALL SELECT * FROM existing
), ready AS (
    SELECT ok.n FROM ok WHERE ok.project AND NOT EXISTS (
        SELECT 1 FROM item_tag t
        WHERE t.n = ok.n AND NOT EXISTS (SELECT 1 FROM found f WHERE f.name_key = t.name_key)
    )
), new_task AS (
    INSERT INTO task (user_id, {", ".join(MANY_COLUMNS)}, recurrence_anchor,
                      completed, created_at, updated_at, version, position)
    SELECT $1, {", ".join(values)}, false, $2, $2, 1,
           {NEW_POSITION.format("i.id")}
    FROM item i JOIN ready USING (n) ORDER BY i.n
    RETURNING id, position, due_date
), linked AS (
    INSERT INTO task_tag (task_id, tag_id)
    SELECT i.id, f.id FROM item i JOIN new_task nt ON nt.id = i.id
    JOIN item_tag t ON t.n = i.n JOIN found f ON f.name_key = t.name_key
)
SELECT ok.n, ok.project, EXISTS (SELECT FROM ready WHERE ready.n = ok.n),
       array(SELECT f.name FROM item_tag t JOIN found f ON f.name_key = t.name_key
             WHERE t.n = ok.n ORDER BY f.name_key COLLATE "C"),
       (SELECT nt.position FROM item i JOIN new_task nt ON nt.id = i.id WHERE i.n = ok.n),
       (SELECT nt.due_date FROM item i JOIN new_task nt ON nt.id = i.id WHERE i.n = ok.n)
FROM ok ORDER BY ok.n
"""


CREATE_MANY = _create_many_statement()


def _half(column: Any, part: int) -> Any:
    return func.split_part(column, SEARCH_SEPARATOR, part)


def _search_text(fields: frozenset[str]) -> Any:
    """search_text is `casefold(title) SEP casefold(description)`; casefolding works
    character by character, so the half that did not change is kept as stored."""
    title = (
        bindparam("title_fold", type_=Text) if "title" in fields else _half(_task.search_text, 1)
    )
    description = (
        bindparam("description_fold", type_=Text)
        if "description" in fields
        else _half(_task.search_text, 2)
    )
    return title.concat(SEARCH_SEPARATOR).concat(description)


def _completion(fields: frozenset[str]) -> dict[str, Any]:
    """`completed` and `completed_at`: completing a completed task keeps its time,
    reopening clears it; TOGGLE flips the stored value."""
    if TOGGLE in fields:
        completed: Any = not_(_task.completed)
    else:
        completed = bindparam("completed", type_=_task.completed.type)
    return {
        "completed": completed,
        "completed_at": case(
            (completed == false(), null()),
            (_task.completed == true(), _task.completed_at),
            else_=bindparam("now"),
        ),
        "last_completed_at": case(
            (and_(completed == true(), _task.completed == false()), bindparam("now")),
            else_=_task.last_completed_at,
        ),
    }


def _completing(fields: frozenset[str]) -> Any:
    """Whether the write completes a pending task (True/False as SQL)."""
    if TOGGLE in fields:
        return _task.completed == false()
    completed = bindparam("completed", type_=_task.completed.type)
    return and_(completed == true(), _task.completed == false())


def _values(fields: frozenset[str]) -> dict[str, Any]:
    values: dict[str, Any] = {"version": _task.version + 1, "updated_at": bindparam("now")}
    for name in fields & {*BODY_COLUMNS, *RECURRING_COLUMNS}:
        values[name] = bindparam(name, type_=_task[name].type)
    values.update(_due(fields))
    if "title" in fields:
        values["title_key"] = bindparam("title_key", type_=Text)
    if "title" in fields or "description" in fields:
        values["search_text"] = _search_text(fields)
    if "completed" in fields or TOGGLE in fields:
        values.update(_completion(fields))
    if REPOSITION in fields:
        values["position"] = literal_column(NEW_POSITION.format("task.id"))
    return values


@lru_cache(maxsize=256)
def write_statement(
    fields: frozenset[str], versions: bool, recurring: bool = False
) -> CompiledStatement:
    """The UPDATE for this set of fields (values are parameters of the same name),
    checking If-Match versions when asked, and the project's owner when it is set.

    A write that may complete a task leaves a recurring one alone (no row: the service
    then completes it by its rule, `recurring`, with the row locked)."""
    conditions = [_task.id == bindparam("task_id"), _task.user_id == bindparam("user_id")]
    if not recurring and ("completed" in fields or TOGGLE in fields):
        rule = _new(fields, "recurrence")  # the rule the write leaves
        conditions.append(or_(rule.is_(None), not_(_completing(fields))))
    if versions:
        conditions.append(_task.version == any_(bindparam("versions", type_=ARRAY(Integer))))
    if "project_id" in fields:
        project = bindparam("project_id", type_=_task.project_id.type)
        owned = exists().where(
            col(Project.id) == project, col(Project.user_id) == bindparam("user_id")
        )
        conditions.append(or_(project.is_(None), owned))
    return compile_statement(
        update(_table).where(and_(*conditions)).values(_values(fields)).returning(*_RESULT)
    )
