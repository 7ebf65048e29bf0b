"""POST /tasks/{id}/move: a task placed just before or after one of its siblings.

The new position is computed between the anchor and its neighbour (positions.py) under
the user's tree lock (tree.py): two moves into one gap at once would otherwise both
compute the same key. The second one waits, then reads the first one's position and
goes between the two, so both succeed and every sibling keeps a distinct place.
"""

import uuid

from app.core.conditional import IfMatch
from app.core.db import Database
from app.core.errors import PreconditionFailed
from app.core.schemas import utcnow
from app.tasks import positions, statements, tree
from app.tasks.exceptions import InvalidPosition, TaskNotFound
from app.tasks.schemas import TaskMove

_SELF = "SELECT parent_id, project_id, version FROM task WHERE id = $1 AND user_id = $2"
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
    anchor_id = data.before if data.before is not None else data.after
    field = "body.before" if data.before is not None else "body.after"
    versions = None if precondition is None or precondition.any else sorted(precondition.versions)
    async with db.transaction() as conn:
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
            low = await conn.fetchval(_BEFORE, anchor_id, *siblings, anchor)
            position = positions.between(low, anchor)
        else:
            high = await conn.fetchval(_AFTER, anchor_id, *siblings, anchor)
            position = positions.between(anchor, high)
        moved = await conn.fetchval(_MOVE, task_id, user_id, position, utcnow(), versions)
        if moved is None:  # changed since the read, by a write that takes no tree lock
            raise PreconditionFailed()
        get = statements.get_statement()
        version, body = await conn.fetchrow(
            get.sql, *get.args({"task_id": task_id, "user_id": user_id})
        )
    return version, body.encode()
