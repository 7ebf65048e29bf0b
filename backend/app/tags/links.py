"""Tags named on a task: creating the missing ones and linking them, concurrency-safe.

Tags come into being by being named on a task. Two requests may create the same new
tag at once, and a tag may be deleted while a task is being linked to it; these
statements let the unique constraint and row locks decide (see `tag_ctes`), never a
prior read.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.db import Connection
from app.core.schemas import utcnow

# A tag deleted (or created) by a concurrent transaction can make one pass miss it.
ENSURE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class TagRef:
    id: uuid.UUID
    name: str
    key: str


def unique_by_key(names: Sequence[str]) -> dict[str, str]:
    """key -> first spelling, for names already normalized (see TagName)."""
    spellings: dict[str, str] = {}
    for name in names:
        spellings.setdefault(name.casefold(), name)
    return spellings


def tag_ctes(user: str, ids: str, names: str, keys: str, now: str, only_if: str) -> str:
    """The CTEs `wanted`, `inserted`, `existing` and `found`, with their parameters'
    placeholders: create the user's missing tags (in key order, so two writers never
    lock the same tags in opposite orders) when `only_if`, lock the existing ones FOR
    KEY SHARE (a concurrent tag deletion waits for our links); `found` is both. A tag
    created by a concurrent transaction after the statement's snapshot is neither
    inserted nor seen: the caller asks again for what is missing."""
    return f"""wanted AS (
    SELECT * FROM unnest({ids}::uuid[], {names}::varchar[], {keys}::varchar[])
        AS w(id, name, name_key)
), inserted AS (
    INSERT INTO tag (id, user_id, name, name_key, created_at)
    SELECT w.id, {user}, w.name, w.name_key, {now} FROM wanted w
    WHERE {only_if}
    ORDER BY w.name_key COLLATE "C"
    ON CONFLICT (user_id, name_key) DO NOTHING
    RETURNING id, name, name_key
), existing AS (
    SELECT id, name, name_key FROM tag
    WHERE user_id = {user} AND name_key = ANY({keys}::varchar[])
    FOR KEY SHARE
), found AS (
    SELECT * FROM inserted UNION ALL SELECT * FROM existing
)"""


_ENSURE = f"WITH {tag_ctes('$1', '$2', '$3', '$4', '$5', only_if='true')} SELECT * FROM found"

# The same, linking the tags found to a task ($6) in the same statement.
_LINK = f"""
WITH {tag_ctes("$1", "$2", "$3", "$4", "$5", only_if="true")},
linked AS (
    INSERT INTO task_tag (task_id, tag_id) SELECT $6, id FROM found ON CONFLICT DO NOTHING
)
SELECT * FROM found
"""

_UNLINK_OTHERS = "DELETE FROM task_tag WHERE task_id = $1 AND NOT (tag_id = ANY($2::uuid[]))"


async def _find_or_create(
    conn: Connection, user_id: uuid.UUID, names: Sequence[str], task_id: uuid.UUID | None
) -> list[TagRef]:
    spellings = unique_by_key(names)
    found: dict[str, TagRef] = {}
    now = utcnow()
    for _ in range(ENSURE_ATTEMPTS):
        missing = sorted(key for key in spellings if key not in found)
        if not missing:
            break
        args = [user_id, [uuid.uuid4() for _ in missing], [spellings[k] for k in missing]]
        args += [missing, now]
        if task_id is None:
            rows = await conn.fetch(_ENSURE, *args)
        else:
            rows = await conn.fetch(_LINK, *args, task_id)
        found.update({row[2]: TagRef(row[0], row[1], row[2]) for row in rows})
    return [found[key] for key in sorted(found)]


async def ensure_tags(conn: Connection, user_id: uuid.UUID, names: Sequence[str]) -> list[TagRef]:
    """The user's tags with these (normalized) names, created when missing (first
    spelling kept), in key order. Call inside a transaction: the found tags stay locked
    FOR KEY SHARE until it ends."""
    return await _find_or_create(conn, user_id, names, None)


async def set_task_tags(
    conn: Connection,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    names: Sequence[str],
    *,
    replace: bool,
) -> list[str]:
    """Link these (normalized) names to the task, creating missing tags; with `replace`
    unlink every other tag. Their stored names, in key order. Inside a transaction."""
    tags = await _find_or_create(conn, user_id, names, task_id)
    if replace:
        await conn.execute(_UNLINK_OTHERS, task_id, [tag.id for tag in tags])
    return [tag.name for tag in tags]
