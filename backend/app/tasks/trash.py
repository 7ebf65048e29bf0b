"""The trash: the only statements that name `task_row` (every other one reads the view
`task`, the rows with `deleted_at IS NULL`: migration 0009).

A task is trashed with its live subtree, all stamped with one `deleted_at`; restoring
a task brings back the part of its subtree stamped with the same instant (a subtask
trashed on its own earlier stays in the trash). Trashed tasks are deleted for good
TRASH_RETENTION_DAYS later (`purge`, run by app/maintenance.py).
"""

import uuid
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Text, bindparam, cast, select

from app.core.conditional import IfMatch
from app.core.db import (
    CompiledStatement,
    Connection,
    Database,
    compile_statement,
    delete_in_batches,
)
from app.core.errors import PreconditionFailed
from app.core.schemas import utcnow
from app.tasks import statements, tree
from app.tasks.exceptions import TaskNotFound
from app.tasks.json_page import task_json
from app.tasks.models import TaskRow
from app.tasks.schemas import TrashedTask

_row = TaskRow.__table__.c  # type: ignore[attr-defined]
PURGE_BATCH = 1_000

# The task $1 of the user $2 (If-Match versions $3, NULL: any) and its live subtree,
# into the trash at $4.
_TRASH = """
WITH RECURSIVE sub(id) AS (
    SELECT id FROM task
    WHERE id = $1 AND user_id = $2 AND ($3::int[] IS NULL OR version = ANY($3::int[]))
    UNION ALL
    SELECT t.id FROM task AS t JOIN sub ON t.parent_id = sub.id
)
UPDATE task SET deleted_at = $4 WHERE id IN (SELECT id FROM sub) RETURNING id
"""

# Locked: a permanent deletion of it (or of a trashed ancestor, by cascade) racing the
# restore waits for it, or, committed first, leaves nothing to restore (404).
_TRASHED = (
    "SELECT parent_id, project_id, deleted_at FROM task_row "
    "WHERE id = $1 AND user_id = $2 AND deleted_at IS NOT NULL FOR UPDATE"
)
# What was trashed with $1 (stamped $2): its ids and how deep the subtree goes.
_TRASHED_WITH = """
WITH RECURSIVE sub(id, depth) AS (
    SELECT $1::uuid, 0
    UNION ALL
    SELECT t.id, sub.depth + 1 FROM task_row AS t JOIN sub ON t.parent_id = sub.id
    WHERE t.deleted_at = $2 AND sub.depth < 16
)
SELECT array_agg(id), max(depth) FROM sub
"""
# Back from the trash ($1: the ids; $2 the restored task, with its parent $3, its
# project for the whole subtree $4 and, when its siblings change, a new position).
_RESTORE = f"""
UPDATE task_row SET deleted_at = NULL, project_id = $4, version = version + 1,
    updated_at = $5,
    parent_id = CASE WHEN id = $2 THEN $3 ELSE parent_id END,
    position = CASE WHEN id = $2 AND $6 THEN {statements.NEW_POSITION.format("id")}
                    ELSE position END
WHERE id = ANY($1::uuid[])
"""

_DELETE = """
DELETE FROM task_row
WHERE id = $1 AND user_id = $2 AND ($3::int[] IS NULL OR version = ANY($3::int[]))
RETURNING id
"""
_VERSION = "SELECT version FROM task_row WHERE id = $1 AND user_id = $2"
_COUNT = "SELECT count(*) FROM task_row WHERE user_id = $1 AND deleted_at IS NOT NULL"
_PURGE = (
    "DELETE FROM task_row WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM task_row WHERE deleted_at < $1 LIMIT $2))"
)


def _versions(precondition: IfMatch | None) -> list[int] | None:
    if precondition is None or precondition.any:
        return None
    return sorted(precondition.versions)


async def trash(
    conn: Connection,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    precondition: IfMatch | None,
    now: datetime,
) -> bool:
    """The task and its subtree into the trash; False when nothing matched."""
    rows = await conn.fetch(_TRASH, task_id, user_id, _versions(precondition), now)
    return bool(rows)


async def restore(db: Database, user_id: uuid.UUID, task_id: uuid.UUID) -> tuple[int, bytes]:
    """Back from the trash with what was trashed with it, under its parent when that is
    live (and the tree not too deep then), else top-level; in its project, if it still
    exists (a deleted project's tasks lost it already: ON DELETE SET NULL)."""
    async with db.transaction() as conn:
        await tree.lock(conn, user_id)
        trashed = await conn.fetchrow(_TRASHED, task_id, user_id)
        if trashed is None:
            raise TaskNotFound()
        parent_id, project_id, deleted_at = trashed
        ids, height = await conn.fetchrow(_TRASHED_WITH, task_id, deleted_at)
        if parent_id is not None:
            found, parent_project, depth, _, _ = await conn.fetchrow(
                tree.CHECK, parent_id, None, user_id
            )
            if found and depth + 1 + height <= tree.MAX_DEPTH:
                project_id = parent_project
            else:
                parent_id = None
        moved = (parent_id, project_id) != (trashed["parent_id"], trashed["project_id"])
        await conn.execute(_RESTORE, ids, task_id, parent_id, project_id, utcnow(), moved)
        get = statements.get_statement()
        restored = await conn.fetchrow(get.sql, *get.args({"task_id": task_id, "user_id": user_id}))
        if restored is None:  # pragma: no cover - the lock above keeps it; never a 500
            raise TaskNotFound()
        version, body = restored
    return version, body.encode()


async def delete_permanently(
    db: Database, user_id: uuid.UUID, task_id: uuid.UUID, precondition: IfMatch | None
) -> None:
    """Gone at once, trashed or not, with its whole subtree (ON DELETE CASCADE)."""
    async with db.connection() as conn:
        if await conn.fetchval(_DELETE, task_id, user_id, _versions(precondition)) is None:
            if await conn.fetchval(_VERSION, task_id, user_id) is None:
                raise TaskNotFound()
            raise PreconditionFailed()


@lru_cache(maxsize=1)
def _page_statement() -> CompiledStatement:
    return compile_statement(
        select(cast(task_json(_row, TrashedTask), Text))
        .where(_row.user_id == bindparam("user_id"), _row.deleted_at.is_not(None))
        .order_by(_row.deleted_at.desc(), _row.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


async def list_trash(db: Database, user_id: uuid.UUID, limit: int, offset: int) -> bytes:
    """`{items, total, limit, offset}` (TrashList's JSON), newest first."""
    statement = _page_statement()
    params = {"user_id": user_id, "limit": limit, "offset": offset}
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read"):
        rows = await conn.fetch(statement.sql, *statement.args(params))
        total = await conn.fetchval(_COUNT, user_id)
    items = b",".join(row[0].encode() for row in rows)
    return b'{"items":[%s],"total":%d,"limit":%d,"offset":%d}' % (items, total, limit, offset)


async def purge(conn: Connection, retention_days: int) -> int:
    """Delete for good what has been in the trash longer than the retention, in
    batches (a trashed subtree goes with its root). How many went."""
    cutoff = utcnow() - timedelta(days=retention_days)
    return await delete_in_batches(conn, _PURGE, cutoff, batch=PURGE_BATCH)
