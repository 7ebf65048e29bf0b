"""GET /sync: every change since a cursor, never skipping one.

**Why snapshots.** A change stamped with a sequence number when its statement runs
can commit after a reader has read past that number (two writers; the second commits
first): a cursor "everything up to n" would skip the first change forever. So the
change log (models.py) stamps each change with its transaction id instead, and a
cursor is the *snapshot* a sync read under (`pg_current_snapshot()`, in a REPEATABLE
READ transaction, so every statement of the sync sees that snapshot): the client has
every change of the transactions the snapshot sees as committed, and the next sync
reports the changes of every transaction the snapshot does not see
(`NOT pg_visible_in_snapshot(xid, cursor)`), committed since. A transaction still in
flight when the cursor was made is in the snapshot's in-progress list, so its change
comes the next time, whenever it commits. Only rows with `xid >= xmin(cursor)` can be
unseen: the sync reads an index range of the user's log from there, O(changes).

**Pages.** The objects of a sync are listed in one order (projects, tags, tasks; by
key within each), `limit` per page. Page 1 reads under snapshot S1; the next pages
read under newer snapshots, continuing after the last key listed, so they list those
objects in their newest state; when the last page is out, the cursor is S1: whatever
changed after S1 comes in the next sync (objects changed after S1 in a later page
come twice, never zero times).

**Deletions.** An object logged since the cursor but not found now is listed in
`deleted` (tasks and projects by id, tags by name as spelt: a tag renamed or respelt
reports its old name deleted and its new one changed). So an object is either in
the lists or in `deleted`, once.

**Retention.** Change log rows are purged SYNC_RETENTION_DAYS + 1 day after they
were written (`purge`, run by app/maintenance.py); a cursor older than
SYNC_RETENTION_DAYS is 410, so a client never relies on rows already gone (the extra
day covers transactions that committed late)."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from app.core.db import Connection, Database, delete_in_batches
from app.core.errors import SyncCursorExpired
from app.core.schemas import utcnow
from app.projects import service as projects_service
from app.sync.cursor import Cursor, Position, Snapshot
from app.sync.models import Kind
from app.tags import service as tags_service
from app.tasks import service as tasks_service

# Purged this long after SYNC_RETENTION_DAYS: a transaction that began before a
# cursor was made, and committed after, wrote rows older than the cursor.
PURGE_MARGIN = timedelta(days=1)
PURGE_BATCH = 10_000

_SNAPSHOT = "SELECT pg_current_snapshot()::text, now()"

# The keys of the user's objects changed since the cursor's snapshot ($2) that this
# page lists: after ($3, $4) in the sync's order, $5 of them at most.
_CHANGED = """
SELECT DISTINCT kind, key FROM sync_change
WHERE user_id = $1
  AND xid >= pg_snapshot_xmin($2::text::pg_snapshot)::text::bigint
  AND NOT pg_visible_in_snapshot(xid::text::xid8, $2::text::pg_snapshot)
  AND (kind, key) > ($3::smallint, $4::text COLLATE "C")
ORDER BY kind, key
LIMIT $5
"""

# A first sync lists every object: projects and tasks by id (an index range each),
# tags by name.
_ALL_TAGS = """
SELECT name FROM tag WHERE user_id = $1 AND name > $2::text COLLATE "C"
ORDER BY name COLLATE "C" LIMIT $3
"""
_ALL_IDS = {
    Kind.PROJECT: "SELECT id::text FROM project WHERE user_id = $1 AND id > $2::uuid "
    "ORDER BY id LIMIT $3",
    Kind.TASK: "SELECT id::text FROM task WHERE user_id = $1 AND id > $2::uuid "
    "ORDER BY id LIMIT $3",
}
_FIRST_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(slots=True)
class SyncPage:
    tasks: list[bytes] = field(default_factory=list)  # TaskPublic JSON, as rendered
    projects: list[bytes] = field(default_factory=list)
    tags: list[bytes] = field(default_factory=list)
    deleted: dict[str, list[str]] = field(
        default_factory=lambda: {"tasks": [], "projects": [], "tags": []}
    )
    cursor: Cursor | None = None
    has_more: bool = False

    def body(self, cursor: str) -> bytes:
        return b"".join(
            (
                b'{"tasks":[', b",".join(self.tasks),
                b'],"projects":[', b",".join(self.projects),
                b'],"tags":[', b",".join(self.tags),
                b'],"deleted":', orjson.dumps(self.deleted),
                b',"cursor":', orjson.dumps(cursor),
                b',"has_more":', b"true" if self.has_more else b"false",
                b"}",
            )
        )  # fmt: skip


def check_age(cursor: Cursor, retention_days: int, now: datetime) -> None:
    """410 for a cursor whose snapshot is older than the retention."""
    snapshots = [cursor.seen, cursor.paging[0] if cursor.paging else None]
    oldest = min(s.taken_at for s in snapshots if s is not None)
    if now - oldest > timedelta(days=retention_days):
        raise SyncCursorExpired()


async def _keys(
    conn: Connection, user_id: uuid.UUID, seen: Snapshot | None, after: Position, n: int
) -> list[tuple[Kind, str]]:
    """The next `n` keys of this sync after `after`, in its order."""
    if seen is not None:
        rows = await conn.fetch(_CHANGED, user_id, seen.text, int(after.kind), after.key, n)
        return [(Kind(kind), key) for kind, key in rows]
    keys: list[tuple[Kind, str]] = []
    for kind in Kind:
        if kind < after.kind or len(keys) >= n:
            continue
        start = after.key if kind == after.kind else ""
        if kind is Kind.TAG:
            rows = await conn.fetch(_ALL_TAGS, user_id, start, n - len(keys))
        else:
            rows = await conn.fetch(_ALL_IDS[kind], user_id, start or _FIRST_ID, n - len(keys))
        keys += [(kind, row[0]) for row in rows]
    return keys


async def _fill(conn: Connection, user_id: uuid.UUID, keys: list[tuple[Kind, str]]) -> SyncPage:
    """The objects of these keys in their current state, as their own domains answer
    them; the others are deleted."""
    page = SyncPage()
    wanted: dict[Kind, list[str]] = {kind: [] for kind in Kind}
    for kind, key in keys:
        wanted[kind].append(key)
    if ids := wanted[Kind.TASK]:
        tasks = await tasks_service.tasks_json(conn, user_id, [uuid.UUID(i) for i in ids])
        page.tasks, page.deleted["tasks"] = _split(ids, {str(k): v for k, v in tasks.items()})
    if ids := wanted[Kind.PROJECT]:
        found = await projects_service.projects_by_ids(conn, user_id, [uuid.UUID(i) for i in ids])
        projects = {str(k): v.model_dump_json().encode() for k, v in found.items()}
        page.projects, page.deleted["projects"] = _split(ids, projects)
    if names := wanted[Kind.TAG]:
        usage = await tags_service.tags_usage(conn, user_id, names)
        tags = {n: orjson.dumps({"name": n, "usage_count": c}) for n, c in usage.items()}
        page.tags, page.deleted["tags"] = _split(names, tags)
    return page


def _split(keys: list[str], found: dict[str, bytes]) -> tuple[list[bytes], list[str]]:
    """In the keys' order: the JSON of those found, and the keys of those gone."""
    return [found[k] for k in keys if k in found], [k for k in keys if k not in found]


async def sync(
    db: Database, user_id: uuid.UUID, cursor: Cursor | None, limit: int, retention_days: int
) -> SyncPage:
    """One page of the user's changes since `cursor` (everything without one)."""
    if cursor is not None:
        check_age(cursor, retention_days, utcnow())
    async with (
        db.connection() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        text, now = await conn.fetchrow(_SNAPSHOT)
        if cursor is not None and cursor.paging is not None:
            began, after = cursor.paging
        else:
            began, after = Snapshot(text, now), Position(Kind.PROJECT, "")
        seen = cursor.seen if cursor is not None else None
        keys = await _keys(conn, user_id, seen, after, limit + 1)
        has_more = len(keys) > limit
        keys = keys[:limit]
        page = await _fill(conn, user_id, keys)
    page.has_more = has_more
    if has_more:
        kind, key = keys[-1]
        page.cursor = Cursor(seen, (began, Position(kind, key)))
    else:
        page.cursor = Cursor(began)
    return page


_PURGE = (
    "DELETE FROM sync_change WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM sync_change WHERE created_at < $1 LIMIT $2))"
)


async def purge(conn: Connection, retention_days: int) -> int:
    """Delete change log rows past the retention (+ PURGE_MARGIN), in batches so no
    statement holds many locks or runs long. How many went."""
    cutoff = utcnow() - timedelta(days=retention_days) - PURGE_MARGIN
    return await delete_in_batches(conn, _PURGE, cutoff, batch=PURGE_BATCH)
