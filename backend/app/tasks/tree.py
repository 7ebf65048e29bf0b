"""Subtask trees: where a task may go, and what its subtree does with it.

**Why a lock.** Whether a parent is valid (no cycle, at most MAX_DEPTH levels) depends
on rows other than the one written: two requests making A the parent of B and B the
parent of A each see a valid tree in their own snapshot, and both commit a cycle. So
every write that changes the shape of a user's trees (a parent set, a project changed,
a task trashed or restored, a move among siblings) first takes that user's tree lock,
`pg_advisory_xact_lock` on (a constant, the user id's hash): transaction-scoped, so it
is released at commit and holds through a transaction pooler, which forbids session
state (DATABASE_POOLER=transaction). The checks then read the committed state of
every earlier writer. Other users, and writes that leave trees alone (a title, a
completion), never wait for it.

Every walk goes through the view `task`: a trashed task is no parent, and a trashed
subtask is not part of its parent's live subtree.
"""

import uuid
from datetime import datetime
from typing import Any

from app.core.db import Connection
from app.tasks import statements
from app.tasks.exceptions import InvalidParent, ParentNotFound, TaskNotFound

# Levels of subtasks below a top-level task.
MAX_DEPTH = 4
# The first key of the tree lock ("tree" in ASCII); the second is the user's.
_LOCK_SPACE = 0x74726565
LOCK = f"SELECT pg_advisory_xact_lock({_LOCK_SPACE}, hashtext($1::uuid::text))"

# A parent ($1) for the task $2 (NULL when creating one) of the user $3: whether it is
# the user's live task, its project, how deep it is (0: top-level), whether the task is
# among its ancestors (a cycle) and how deep the task's own subtree goes.
CHECK = """
WITH RECURSIVE up(id, parent_id, project_id, depth) AS (
    SELECT id, parent_id, project_id, 0 FROM task WHERE id = $1 AND user_id = $3
    UNION ALL
    SELECT t.id, t.parent_id, t.project_id, up.depth + 1
    FROM task AS t JOIN up ON t.id = up.parent_id
    WHERE up.depth < 16
), down(id, depth) AS (
    SELECT $2::uuid, 0
    UNION ALL
    SELECT t.id, down.depth + 1 FROM task AS t JOIN down ON t.parent_id = down.id
    WHERE down.depth < 16
)
SELECT EXISTS (SELECT FROM up WHERE depth = 0),
       (SELECT project_id FROM up WHERE depth = 0),
       (SELECT max(depth) FROM up),
       EXISTS (SELECT FROM up WHERE id = $2),
       (SELECT max(depth) FROM down)
"""

_CURRENT = "SELECT parent_id, project_id FROM task WHERE id = $1 AND user_id = $2"

# The live subtree below $1 (not $1 itself), of the user $2.
_SUBTREE = """
WITH RECURSIVE sub(id) AS (
    SELECT id FROM task WHERE parent_id = $1 AND user_id = $2
    UNION ALL
    SELECT t.id FROM task AS t JOIN sub ON t.parent_id = sub.id
)
"""
# Follow the task's project ($3).
MOVE_SUBTREE = f"""{_SUBTREE}
UPDATE task SET project_id = $3, version = version + 1, updated_at = $4
WHERE id IN (SELECT id FROM sub) AND project_id IS DISTINCT FROM $3
"""
# Completing a task completes its open subtasks (when it is now completed).
COMPLETE_SUBTREE = f"""{_SUBTREE}
UPDATE task SET completed = true, completed_at = $3, version = version + 1, updated_at = $3
WHERE id IN (SELECT id FROM sub) AND NOT completed
  AND EXISTS (SELECT FROM task WHERE id = $1 AND completed)
"""


async def lock(conn: Connection, user_id: uuid.UUID) -> None:
    """The user's tree lock, until the transaction ends."""
    await conn.execute(LOCK, user_id)


async def parent_project(
    conn: Connection, user_id: uuid.UUID, parent_id: uuid.UUID, task_id: uuid.UUID | None
) -> uuid.UUID | None:
    """The project of a valid parent for this task (None: a new one); else 422."""
    found, project_id, depth, cycle, height = await conn.fetchrow(
        CHECK, parent_id, task_id, user_id
    )
    if not found:
        raise ParentNotFound()
    if cycle or depth + 1 + height > MAX_DEPTH:
        raise InvalidParent()
    result: uuid.UUID | None = project_id
    return result


async def place_new(conn: Connection, user_id: uuid.UUID, body: dict[str, Any]) -> None:
    """A new subtask (`body` has a parent): under the lock, in its parent's project."""
    await lock(conn, user_id)
    project_id = await parent_project(conn, user_id, body["parent_id"], None)
    if body.get("project_id") not in (None, project_id):
        raise InvalidParent("body.project_id")
    body["project_id"] = project_id


async def place(
    conn: Connection, user_id: uuid.UUID, task_id: uuid.UUID, changes: dict[str, Any]
) -> bool:
    """A write that sets `parent_id` or `project_id`: checked under the lock, and
    `changes` completed (the parent's project; a new position when the siblings
    change). Whether the subtree must then follow a new project."""
    await lock(conn, user_id)
    current = await conn.fetchrow(_CURRENT, task_id, user_id)
    if current is None:
        raise TaskNotFound()
    parent_id = changes["parent_id"] if "parent_id" in changes else current["parent_id"]
    if parent_id is not None:
        project_id = await parent_project(conn, user_id, parent_id, task_id)
        sent = changes.get("project_id", project_id)
        # With the parent sent, a null project means "the parent's".
        if sent != project_id and not ("parent_id" in changes and sent is None):
            raise InvalidParent("body.project_id")
        changes["project_id"] = project_id
    project_id = changes.get("project_id", current["project_id"])
    if (parent_id, project_id) != (current["parent_id"], current["project_id"]):
        changes[statements.REPOSITION] = True
    return bool(project_id != current["project_id"])


async def follow(
    conn: Connection,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    project_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """The task's subtree into its (new) project."""
    await conn.execute(MOVE_SUBTREE, task_id, user_id, project_id, now)


async def complete_subtree(
    conn: Connection, user_id: uuid.UUID, task_id: uuid.UUID, now: datetime
) -> None:
    await conn.execute(COMPLETE_SUBTREE, task_id, user_id, now)
