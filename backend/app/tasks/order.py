"""POST /tasks/{id}/move: a task placed just before or after one of its siblings.

Keys between close neighbours grow (about one character per six moves into the same
gap). Past MAX_KEY characters the siblings are renumbered with short keys, in their
order, the moved one at its new place (their `version` grows): moves into one gap then
go on for ever with keys that stay short (an index entry, and a cursor, has a size
limit).

The new position is computed between the anchor and its neighbour (positions.py) under
the user's tree lock (tree.py): two moves into one gap at once would otherwise both
compute the same key. The second one waits, then reads the first one's position and
goes between the two, so both succeed and every sibling keeps a distinct place.
"""

import uuid
from datetime import datetime
from typing import Any

from app.core.conditional import IfMatch
from app.core.db import Connection, Database, transaction_on
from app.core.errors import PreconditionFailed
from app.core.schemas import utcnow
from app.tasks import positions, statements, tree
from app.tasks.exceptions import InvalidPosition, TaskNotFound
from app.tasks.schemas import TaskMove

MAX_KEY = 64

# Locked (after the tree lock, the order of every reshaping write): nothing changes or
# deletes it between this read and _MOVE, so a move without If-Match never fails on a
# version it was not given.
_SELF = (
    "SELECT parent_id, project_id, version FROM task WHERE id = $1 AND user_id = $2 "
    "FOR NO KEY UPDATE"
)
# A sibling ($1) of a task with parent $3 and project $4, not the task itself ($5).
_SIBLINGS = (
    "user_id = $2 AND parent_id IS NOT DISTINCT FROM $3 "
    "AND project_id IS NOT DISTINCT FROM $4 AND id <> $5"
)
_ANCHOR = f"SELECT position FROM task WHERE id = $1 AND {_SIBLINGS}"
# The sibling just before (or after) the anchor, in (position, id) order.
_BEFORE = f"""
SELECT position FROM task WHERE {_SIBLINGS} AND (position, id) < ($6, $1)
ORDER BY position DESC, id DESC LIMIT 1
"""
_AFTER = f"""
SELECT position FROM task WHERE {_SIBLINGS} AND (position, id) > ($6, $1)
ORDER BY position, id LIMIT 1
"""
# Every sibling in order (the task itself included).
_ALL = """
SELECT id FROM task WHERE user_id = $1 AND parent_id IS NOT DISTINCT FROM $2
  AND project_id IS NOT DISTINCT FROM $3
ORDER BY position, id
"""
_RENUMBER = """
UPDATE task SET position = k.position, version = version + 1, updated_at = $3
FROM unnest($1::uuid[], $2::text[]) AS k(id, position)
WHERE task.id = k.id AND task.user_id = $4 AND task.position <> k.position
"""
_MOVE = """
UPDATE task SET position = $3, version = version + 1, updated_at = $4
WHERE id = $1 AND user_id = $2 AND ($5::int[] IS NULL OR version = ANY($5::int[]))
RETURNING version
"""


async def move_task(
    db: Database,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    data: TaskMove,
    precondition: IfMatch | None,
) -> tuple[int, bytes]:
    """Give the task its new position; the task's version and JSON."""
    async with db.connection() as conn:
        return await move_on(conn, user_id, task_id, data, precondition)


async def move_on(
    conn: Connection,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    data: TaskMove,
    precondition: IfMatch | None,
) -> tuple[int, bytes]:
    """move_task on this connection: in the caller's transaction (bulk) or its own."""
    anchor_id = data.before if data.before is not None else data.after
    assert anchor_id is not None  # TaskMove: exactly one of the two
    field = "body.before" if data.before is not None else "body.after"
    versions = None if precondition is None or precondition.any else sorted(precondition.versions)
    async with transaction_on(conn):
        await tree.lock(conn, user_id)
        me = await conn.fetchrow(_SELF, task_id, user_id)
        if me is None:
            raise TaskNotFound()
        if precondition is not None and not precondition.matches(me["version"]):
            raise PreconditionFailed()
        siblings = (user_id, me["parent_id"], me["project_id"], task_id)
        anchor = await conn.fetchval(_ANCHOR, anchor_id, *siblings)
        if anchor is None:
            raise InvalidPosition(field)
        if data.before is not None:
            low, high = await conn.fetchval(_BEFORE, anchor_id, *siblings, anchor), anchor
        else:
            low, high = anchor, await conn.fetchval(_AFTER, anchor_id, *siblings, anchor)
        # Equal neighbours (two tasks created in one microsecond whose ids end alike)
        # have no key between them: renumbering gives them distinct ones.
        position = positions.between(low, high) if low != high else None
        now = utcnow()
        if position is None or len(position) > MAX_KEY:
            position = await _renumber(conn, siblings, anchor_id, data.after is not None, now)
        moved = await conn.fetchval(_MOVE, task_id, user_id, position, now, versions)
        if moved is None:  # pragma: no cover - the row is locked since _SELF
            raise TaskNotFound()
        get = statements.get_statement()
        version, body = await conn.fetchrow(
            get.sql, *get.args({"task_id": task_id, "user_id": user_id})
        )
    return version, body.encode()


async def _renumber(
    conn: Connection,
    siblings: tuple[Any, ...],
    anchor_id: uuid.UUID,
    after: bool,
    now: datetime,
) -> str:
    """Short keys for every sibling in its order, the task (siblings[3]) placed before
    or after the anchor; the task's new key (written by the caller, If-Match checked)."""
    user_id, task_id = siblings[0], siblings[3]
    ids = [row[0] for row in await conn.fetch(_ALL, *siblings[:3])]
    ids.remove(task_id)
    ids.insert(ids.index(anchor_id) + after, task_id)
    keys, key = [], None
    for _ in ids:
        key = positions.between(key, None)
        keys.append(key)
    mine = keys[ids.index(task_id)]
    others = [(i, k) for i, k in zip(ids, keys, strict=True) if i != task_id]
    await conn.execute(_RENUMBER, [i for i, _ in others], [k for _, k in others], now, user_id)
    return mine
