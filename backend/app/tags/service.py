"""Tag use cases, on asyncpg. Tags come into being by being named on a task (see
`app.tags.links`); they are listed with their usage, renamed (merging) and deleted here.

A route names a tag by its key (`path_key`); every statement below finds it through
`_OWNED` (this owner, this key), so another user's tag is simply not found, and a write
needs no prior read: a tag that vanished since the request began is answered 404 like
any missing one. Values are always bound parameters.

The tasks domain depends on this one, never the reverse: the few statements that touch
tasks (bumping the version of tasks whose tag list changed) name the task table's
columns instead of importing `app.tasks`. The tasks domain builds its list statements
with `tag_names_json_of`, `tag_keys` and `tasks_with_all_tags`.
"""

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import ScalarSelect, Select, any_, func, literal_column, select
from sqlmodel import col

from app.core.db import Connection, Database
from app.core.errors import DatabaseConflict, ServiceUnavailable
from app.core.sanitize import forbidden_character
from app.core.schemas import utcnow
from app.tags import links
from app.tags.exceptions import TagNotFound
from app.tags.models import Tag, TaskTag
from app.tags.schemas import MAX_TAG_LENGTH, TagPublic, normalize_tag_name, tag_key


def tag_names_json_of(task_id: Any) -> ScalarSelect[Any]:
    """A subquery correlated to `task_id`: the names of the task's tags as a JSON
    array, by key (code point order), `[]` for none, for JSON rendered by the
    database."""
    names = func.json_agg(col(Tag.name)).aggregate_order_by(col(Tag.name_key).collate("C"))
    return (
        select(func.coalesce(names, literal_column("'[]'::json")))
        .select_from(TaskTag)
        .join(Tag, col(Tag.id) == col(TaskTag.tag_id))
        .where(col(TaskTag.task_id) == task_id)
        .scalar_subquery()
    )


def tag_keys(names: Sequence[str]) -> list[str]:
    """The distinct keys of these tag names, as `tasks_with_all_tags` expects them."""
    return sorted({tag_key(name) for name in names})


def tasks_with_all_tags(
    user_id: Any, keys: Any, key_count: Any, *, keys_array: bool = False
) -> Select[uuid.UUID]:
    """Ids of the user's tasks that carry every one of these tags (for list filters).
    Takes expressions (bound parameters), so one statement serves any tag list:
    `keys` from `tag_keys()` (an expanding parameter, or with `keys_array` an array
    parameter) and their number."""
    key = col(Tag.name_key)
    return (
        select(col(TaskTag.task_id))
        .join(Tag, col(Tag.id) == col(TaskTag.tag_id))
        .where(col(Tag.user_id) == user_id, key == any_(keys) if keys_array else key.in_(keys))
        .group_by(col(TaskTag.task_id))
        .having(func.count() == key_count)
    )


def prefix_key(prefix: str) -> str:
    """An autocomplete prefix compared like tag names; a trailing space is kept, so
    `work ` finds `work stuff` but not `workshop`."""
    key = " ".join(prefix.split()).casefold()
    return f"{key} " if key and prefix[-1].isspace() else key


def path_key(name: str) -> str:
    """The key of the tag a path names; 404 for a name no stored tag can have."""
    if forbidden_character(name):
        raise TagNotFound()
    normalized = normalize_tag_name(name)
    if not normalized or len(normalized) > MAX_TAG_LENGTH:
        raise TagNotFound()
    return normalized.casefold()


# The one owner scoping of this domain's statements: $1 the user's id, $2 the tag's key.
_OWNED = "tag.user_id = $1 AND tag.name_key = $2"

# A tag's usage count: how many of the user's tasks carry it (one definition, for the
# list and for sync's `tags_usage`). Through the view `task`: trashed tasks keep their
# links (a restored task has its tags back) but are not counted.
_USED_BY = "task_tag JOIN task ON task.id = task_tag.task_id"
_WITH_USAGE = f"""
SELECT tag.name, count(task_tag.task_id) AS usage_count
FROM tag LEFT JOIN ({_USED_BY}) ON task_tag.tag_id = tag.id
"""
# Most used first, then by key; `starts_with` compares the prefix as plain text (no
# LIKE wildcards to escape). $2: the prefix's key, or NULL for all.
_LIST = f"""{_WITH_USAGE}
WHERE tag.user_id = $1 AND ($2::text IS NULL OR starts_with(tag.name_key, $2::text))
GROUP BY tag.id
ORDER BY usage_count DESC, tag.name_key, tag.id
"""
# The user's tags of these exact names (as spelt), $2.
_USAGE_OF = f"""{_WITH_USAGE}
WHERE tag.user_id = $1 AND tag.name = ANY($2::text[])
GROUP BY tag.id
"""

# A new version (so ETags and updated_since tell) for the tasks whose tag list is about
# to change: those carrying the tag, unless it already has the name $4 (a rename to
# the same name changes nothing; NULL, for a deletion, touches them all). The rows are
# locked in id order, like the tasks of a project being deleted (app.projects.service),
# so the two (measured: a tag and a project deleted at once, sharing 40 tasks,
# deadlocked in most test runs) never wait on each other's rows in a cycle.
_TOUCH_TASKS = f"""
WITH touched AS (
    SELECT task.id FROM task
    WHERE task.user_id = $1 AND task.id IN (
        SELECT task_tag.task_id FROM task_tag JOIN tag ON tag.id = task_tag.tag_id
        WHERE {_OWNED} AND tag.name IS DISTINCT FROM $4::varchar
    )
    ORDER BY task.id
    FOR NO KEY UPDATE OF task
)
UPDATE task SET version = task.version + 1, updated_at = $3
FROM touched WHERE task.id = touched.id
RETURNING task.id
"""
# Once the tag ($2) is locked FOR UPDATE no task can link to it any more: the tasks that
# did between _TOUCH_TASKS and that lock ("late", not in $3) are locked and touched
# here, so the merge's or deletion's link changes never wait on a task row we hold not.
_TOUCH_LATE = """
WITH late AS (
    SELECT task.id FROM task
    WHERE task.user_id = $1 AND NOT (task.id = ANY($3::uuid[]))
      AND task.id IN (SELECT task_tag.task_id FROM task_tag WHERE task_tag.tag_id = $2)
    ORDER BY task.id
    FOR NO KEY UPDATE OF task
)
UPDATE task SET version = task.version + 1, updated_at = $4
FROM late WHERE task.id = late.id
"""
# The locks a rename or deletion takes after its task rows (the tag, the target, late
# tasks) are out of the order a task write takes (its row, then its tags, several in
# one statement): a writer holding one may be waiting for ours. Rather than wait into
# a deadlock (PostgreSQL cancels one side after deadlock_timeout, 1 s, and that may be
# the writer), these waits end after _STEP_BACK_AFTER and the whole transaction starts
# again, up to _ATTEMPTS times (then 503 database_conflict, Retry-After).
_STEP_BACK_AFTER = "SELECT set_config('lock_timeout', '200ms', true)"
_ATTEMPTS = 5
_LOCK = f"SELECT tag.id, tag.name FROM tag WHERE {_OWNED} FOR UPDATE"
_DELETE = f"DELETE FROM tag WHERE {_OWNED} RETURNING tag.id"

_USAGE = f"SELECT count(*) FROM {_USED_BY} WHERE task_tag.tag_id = $1"
_RESPELL = f"UPDATE tag SET name = $2 WHERE id = $1 RETURNING ({_USAGE})"
# The old tag's links move to the target ($2; a task carrying both keeps one link),
# then the old tag goes (its remaining links by ON DELETE CASCADE).
_MERGE = """
WITH moved AS (
    INSERT INTO task_tag (task_id, tag_id)
    SELECT task_id, $2 FROM task_tag WHERE tag_id = $1
    ON CONFLICT DO NOTHING
)
DELETE FROM tag WHERE id = $1
"""


async def list_tags(db: Database, user_id: uuid.UUID, prefix: str | None) -> list[TagPublic]:
    key = prefix_key(prefix) if prefix else ""
    async with db.connection() as conn:
        rows = await conn.fetch(_LIST, user_id, key or None)
    return [TagPublic(name=name, usage_count=count) for name, count in rows]


async def tags_usage(conn: Connection, user_id: uuid.UUID, names: list[str]) -> dict[str, int]:
    """name -> usage count, for those of these names (exact spelling) the user's tags have."""
    return dict(await conn.fetch(_USAGE_OF, user_id, names))


async def _lock(conn: Connection, user_id: uuid.UUID, key: str) -> tuple[uuid.UUID, str]:
    """Lock the user's tag FOR UPDATE: its (id, name), or 404 if it is not the user's or
    a concurrent request removed it."""
    tag = await conn.fetchrow(_LOCK, user_id, key)
    if tag is None:
        raise TagNotFound()
    return tag[0], tag[1]


async def _ensure(conn: Connection, user_id: uuid.UUID, name: str) -> links.TagRef:
    """The user's tag of that name, created if missing, else locked FOR KEY SHARE."""
    found = await links.ensure_tags(conn, user_id, [name])
    if not found:  # pragma: no cover - deleted and re-created under us, three times over
        raise ServiceUnavailable(headers={"Retry-After": "1"})
    return found[0]


async def _lock_for_merge(
    conn: Connection, user_id: uuid.UUID, key: str, new_name: str
) -> tuple[uuid.UUID, links.TagRef]:
    """The old tag's id (locked FOR UPDATE) and the target (found or created).

    Both are locked in key order, the order in which a task write locks its tags, so
    two merges in opposite directions (a -> b, b -> a) never deadlock: one waits for
    the other, then merges into what the first left."""
    if new_name.casefold() < key:
        target = await _ensure(conn, user_id, new_name)
        tag_id, _ = await _lock(conn, user_id, key)
    else:
        tag_id, _ = await _lock(conn, user_id, key)
        target = await _ensure(conn, user_id, new_name)
    return tag_id, target


T = TypeVar("T")


class _StepBack(Exception):
    """A lock taken out of order waited _STEP_BACK_AFTER: roll back and start again."""


async def _stepping_back(attempt: Callable[[], Awaitable[T]]) -> T:
    for tried in range(1, _ATTEMPTS + 1):
        try:
            return await attempt()
        except _StepBack:
            await asyncio.sleep(random.uniform(0.005, 0.02) * tried)
    raise DatabaseConflict()


async def _touched(conn: Connection, user_id: uuid.UUID, key: str, name: str | None) -> Any:
    """_TOUCH_TASKS (waiting as long as any write), then the out-of-order waits bounded."""
    now = utcnow()
    rows = await conn.fetch(_TOUCH_TASKS, user_id, key, now, name)
    await conn.execute(_STEP_BACK_AFTER)
    return [row[0] for row in rows], now


async def rename_tag(db: Database, user_id: uuid.UUID, key: str, new_name: str) -> TagPublic:
    """Rename; when the user already has a tag of the new name, merge into it (its
    spelling is kept, a task carrying both ends up with it once).

    Task rows first (_TOUCH_TASKS), tags second: the order in which a task write takes
    them (its row, then its tags); what is taken after them steps back (_StepBack)."""

    async def attempt() -> TagPublic:
        async with db.transaction() as conn:
            touched, now = await _touched(conn, user_id, key, new_name)
            try:
                if new_name.casefold() == key:  # the same tag: its name or a new spelling
                    tag_id, name = await _lock(conn, user_id, key)
                    if new_name == name:
                        return TagPublic(name=name, usage_count=await conn.fetchval(_USAGE, tag_id))
                    await conn.execute(_TOUCH_LATE, user_id, tag_id, touched, now)
                    count = await conn.fetchval(_RESPELL, tag_id, new_name)
                    return TagPublic(name=new_name, usage_count=count)
                tag_id, target = await _lock_for_merge(conn, user_id, key, new_name)
                await conn.execute(_TOUCH_LATE, user_id, tag_id, touched, now)
                await conn.execute(_MERGE, tag_id, target.id)
                return TagPublic(
                    name=target.name, usage_count=await conn.fetchval(_USAGE, target.id)
                )
            except asyncpg.LockNotAvailableError as exc:
                raise _StepBack() from exc

    return await _stepping_back(attempt)


async def delete_tag(db: Database, user_id: uuid.UUID, key: str) -> None:
    """Delete the tag; its links go with it (ON DELETE CASCADE). The tag is locked
    after its tasks were touched (the order of `rename_tag`)."""

    async def attempt() -> None:
        async with db.transaction() as conn:
            touched, now = await _touched(conn, user_id, key, None)
            try:
                tag_id, _ = await _lock(conn, user_id, key)
                await conn.execute(_TOUCH_LATE, user_id, tag_id, touched, now)
                await conn.execute(_DELETE, user_id, key)
            except asyncpg.LockNotAvailableError as exc:
                raise _StepBack() from exc

    await _stepping_back(attempt)
