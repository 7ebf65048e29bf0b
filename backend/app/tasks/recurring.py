"""Completing a recurring task: its due moves to the rule's next occurrence.

The write that would complete it (PATCH `completed: true`, PUT, /complete, bulk)
matched no row (statements.write_statement leaves pending recurring tasks alone), so
this runs instead, in one transaction: lock the row (`FOR UPDATE`), check If-Match
against the locked version, compute the next occurrence in Python (dateutil, in the
task's zone), write it. Of two concurrent completions the second waits for the
first's commit, then reads the moved due: with one If-Match it gets 412 (the version
grew), without one it moves the task once more. Neither is ever lost.
"""

import uuid
from datetime import UTC, date, datetime
from typing import Any

from app.core.db import Connection
from app.core.schemas import utcnow
from app.tags import links
from app.tasks import recurrence, statements
from app.tasks.exceptions import PreconditionFailed, TaskNotFound, TaskProjectNotFound
from app.tasks.schemas import IfMatch
from app.tasks.types import TaskJson

_DUE = ("recurrence", "due_date", "due_at", "time_zone")
# date.max is stored by asyncpg as PostgreSQL's `infinity` (answered as null): the last
# day an occurrence may fall on is the one before.
_LAST_DAY = date.max


async def complete(
    conn: Connection,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    changes: dict[str, Any],
    tags: list[str] | None,
    precondition: IfMatch | None,
) -> TaskJson:
    """The write of `changes` (with `tags`), the completion done by the task's rule: in
    a transaction of its own on `conn` (a savepoint when `conn` is in one already)."""
    async with conn.transaction():
        row = await conn.fetchrow(statements.RECURRING_ROW, task_id, user_id)
        if row is None:
            raise TaskNotFound()
        if precondition is not None and not precondition.matches(row["version"]):
            raise PreconditionFailed()
        now = utcnow()
        changes = next_occurrence(dict(row), dict(changes), now)
        statement = statements.write_statement(frozenset(changes), False, recurring=True)
        params = statements.encode(changes) | {"task_id": task_id, "user_id": user_id, "now": now}
        written = await conn.fetchrow(statement.sql, *statement.args(params))
        if written is None:  # the only condition left: the project's
            raise TaskProjectNotFound()
        if tags is not None:
            await links.set_task_tags(conn, user_id, task_id, tags, replace=True)
            get = statements.get_statement()
            written = await conn.fetchrow(get.sql, *get.args(params))
    return TaskJson(written[0], written[1].encode())


def next_occurrence(row: dict[str, Any], changes: dict[str, Any], now: datetime) -> dict[str, Any]:
    """`changes` with the completion replaced by the move to the next occurrence, when
    the task (as the write leaves it) is a pending recurring one that it completes and
    the rule has one; else `changes` as they are (a plain write, or the last
    occurrence completed as usual)."""
    if row["completed"] or not (statements.TOGGLE in changes or changes.get("completed") is True):
        return changes
    due = {name: changes.get(name, row[name]) for name in _DUE}
    if due["recurrence"] is None or (due["due_at"] is None and due["due_date"] is None):
        return changes  # not recurring (or the database refuses the rule without a due)
    tz = recurrence.zone(due["time_zone"])
    if due["due_at"] is not None:
        current: datetime = due["due_at"].astimezone(tz)
    else:
        current = recurrence.day_start(due["due_date"], tz)
    anchor = row["recurrence_anchor"]
    start = current.replace(tzinfo=None)
    # A new series; or a start after the current due, which no write leaves (asyncpg
    # reads a timestamp near the year 10000 as its "infinity", datetime.max).
    if anchor is None or anchor > start or any(name in changes for name in _DUE):
        anchor = start
    following = recurrence.next_due(due["recurrence"], anchor, current, tz)
    if following is None or following <= current or following.date() >= _LAST_DAY:
        return changes
    moved = {k: v for k, v in changes.items() if k not in ("completed", statements.TOGGLE)}
    if due["due_at"] is not None:
        moved |= {"due_at": following.astimezone(UTC), "due_date": None}
    else:
        moved |= {"due_date": following.date(), "due_at": None}
    return moved | {"recurrence_anchor": anchor, "last_completed_at": now}
