"""What the database holds after a fault, read directly (asyncpg, not through the API):
acknowledged writes present exactly once, no partial rows, counters equal to counts."""

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import httpx

from faults.load import Attempt, User


@dataclass
class Integrity:
    acked: int = 0
    attempted: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged, not in the database
    duplicated: list[str] = field(default_factory=list)  # a title stored twice or more
    wrong_id: list[str] = field(default_factory=list)  # stored under another id than acked
    phantoms: int = 0  # rows no attempt of ours asked for
    partial: list[str] = field(default_factory=list)
    counters: list[str] = field(default_factory=list)
    unacked_stored: int = 0  # given up, yet stored (allowed: at most once)

    @property
    def exactly_once(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong_id or self.phantoms)

    def describe_writes(self) -> str:
        parts = [f"{self.acked}/{self.attempted} writes acknowledged"]
        parts.append(
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, "
            f"wrong id {len(self.wrong_id)}, phantom rows {self.phantoms}"
        )
        if self.unacked_stored:
            parts.append(f"{self.unacked_stored} unacknowledged stored once")
        examples = (self.lost + self.duplicated + self.wrong_id)[:2]
        if examples:
            parts.append("e.g. " + "; ".join(examples))
        return "; ".join(parts)

    def describe_rows(self) -> str:
        if not self.partial:
            return "no partial rows (tags, project, links, idempotency keys all match)"
        return f"{len(self.partial)} partial: " + "; ".join(self.partial[:3])

    def describe_counters(self) -> str:
        if not self.counters:
            return "task_count = COUNT(*), API total / project task_count / tag usage_count = DB"
        return f"{len(self.counters)} mismatches: " + "; ".join(self.counters[:3])


async def check(
    dsn: str, client: httpx.AsyncClient, users: list[User], attempts: list[Attempt]
) -> Integrity:
    result = Integrity(acked=sum(a.acked_id is not None for a in attempts), attempted=len(attempts))
    user_ids = [uuid.UUID(u.id) for u in users]
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        await _writes(conn, user_ids, attempts, result)
        await _partial_rows(conn, user_ids, attempts, result)
        await _counters(conn, client, users, result)
    finally:
        await conn.close()
    return result


async def _writes(
    conn: asyncpg.Connection, user_ids: list[uuid.UUID], attempts: list[Attempt], out: Integrity
) -> None:
    rows = await conn.fetch("SELECT id, title FROM task WHERE user_id = ANY($1)", user_ids)
    by_title: dict[str, list[str]] = {}
    for row in rows:
        by_title.setdefault(row["title"], []).append(str(row["id"]))
    titles = {a.title for a in attempts}
    out.phantoms = sum(len(ids) for title, ids in by_title.items() if title not in titles)
    for attempt in attempts:
        ids = by_title.get(attempt.title, [])
        if len(ids) > 1:
            out.duplicated.append(f"{attempt.title!r} ×{len(ids)}")
        if attempt.acked_id is None:
            out.unacked_stored += len(ids) == 1
        elif not ids:
            out.lost.append(f"{attempt.title!r} (acked as {attempt.acked_id})")
        elif attempt.acked_id not in ids:
            out.wrong_id.append(f"{attempt.title!r}: acked {attempt.acked_id}, stored {ids}")


_TASK_SHAPE = """
SELECT t.title, t.project_id, t.version,
       coalesce(array_agg(g.name_key ORDER BY g.name_key) FILTER (WHERE g.id IS NOT NULL),
                '{}') AS tags
FROM task AS t
LEFT JOIN task_tag AS tt ON tt.task_id = t.id
LEFT JOIN tag AS g ON g.id = tt.tag_id
WHERE t.user_id = ANY($1)
GROUP BY t.id, t.title, t.project_id, t.version  -- a view: no functional dependency
"""
_DANGLING_LINKS = """
SELECT count(*) FROM task_tag AS tt
WHERE NOT EXISTS (SELECT FROM task WHERE id = tt.task_id)
   OR NOT EXISTS (SELECT FROM tag WHERE id = tt.tag_id)
"""
_UNUSED_TAGS = """
SELECT count(*) FROM tag AS g
WHERE g.user_id = ANY($1) AND NOT EXISTS (SELECT FROM task_tag WHERE tag_id = g.id)
"""
_KEYS = "SELECT key, status_code, response_body FROM idempotency_key WHERE user_id = ANY($1)"


async def _partial_rows(
    conn: asyncpg.Connection, user_ids: list[uuid.UUID], attempts: list[Attempt], out: Integrity
) -> None:
    sent = {a.title: a for a in attempts}
    for row in await conn.fetch(_TASK_SHAPE, user_ids):
        attempt = sent.get(row["title"])
        if attempt is None:
            continue
        tags = sorted(t.lower() for t in attempt.body["tags"])
        if list(row["tags"]) != tags:
            out.partial.append(f"{row['title']!r} tags {list(row['tags'])} != sent {tags}")
        project = attempt.body.get("project_id")
        if (str(row["project_id"]) if row["project_id"] else None) != project:
            out.partial.append(f"{row['title']!r} project {row['project_id']} != sent {project}")
        if row["version"] != 1:
            out.partial.append(f"{row['title']!r} version {row['version']} (created once: 1)")
    if dangling := await conn.fetchval(_DANGLING_LINKS):
        out.partial.append(f"{dangling} tag links to a missing task or tag")
    if unused := await conn.fetchval(_UNUSED_TAGS, user_ids):
        out.partial.append(f"{unused} tags on no task (left by a rolled-back create?)")
    stored_ids = {
        str(r["id"])
        for r in await conn.fetch("SELECT id FROM task WHERE user_id = ANY($1)", user_ids)
    }
    keys = {r["key"]: r for r in await conn.fetch(_KEYS, user_ids)}
    for attempt in attempts:
        key = keys.get(attempt.key)
        if attempt.acked_id is not None and key is None:
            out.partial.append(f"key {attempt.key[:8]} acknowledged but not stored")
            continue
        if key is None:
            continue
        if key["status_code"] is None or key["response_body"] is None:
            out.partial.append(f"key {attempt.key[:8]} claimed without a response")
            continue
        replay_id = json.loads(key["response_body"])["id"]
        if replay_id not in stored_ids:
            out.partial.append(f"key {attempt.key[:8]} replays task {replay_id}, not stored")
        elif attempt.acked_id is not None and replay_id != attempt.acked_id:
            out.partial.append(f"key {attempt.key[:8]} replays {replay_id} != acked")


async def _counters(
    conn: asyncpg.Connection, client: httpx.AsyncClient, users: list[User], out: Integrity
) -> None:
    for user in users:
        uid = uuid.UUID(user.id)
        count = await conn.fetchval("SELECT count(*) FROM task WHERE user_id = $1", uid)
        counter = await conn.fetchval(
            "SELECT coalesce(sum(n), 0) FROM task_count WHERE user_id = $1", uid
        )
        if counter != count:
            out.counters.append(f"user {user.id[:8]}: task_count {counter} != COUNT(*) {count}")
        listed = (await client.get("/api/v1/tasks?limit=1", headers=user.headers)).json()
        if listed.get("total") != count:
            out.counters.append(f"user {user.id[:8]}: API total {listed.get('total')} != {count}")
        await _project_and_tag_counts(conn, client, user, uid, out)


async def _project_and_tag_counts(
    conn: asyncpg.Connection,
    client: httpx.AsyncClient,
    user: User,
    uid: uuid.UUID,
    out: Integrity,
) -> None:
    projects = (await client.get("/api/v1/projects", headers=user.headers)).json()["items"]
    for project in projects:
        count = await conn.fetchval(
            "SELECT count(*) FROM task WHERE project_id = $1", uuid.UUID(project["id"])
        )
        if project["task_count"] != count:
            out.counters.append(f"project task_count {project['task_count']} != {count}")
    db_tags = Counter(
        {
            r["name_key"]: r["n"]
            for r in await conn.fetch(
                "SELECT g.name_key, count(tt.task_id) AS n FROM tag AS g "
                "LEFT JOIN task_tag AS tt ON tt.tag_id = g.id WHERE g.user_id = $1 "
                "GROUP BY g.name_key",
                uid,
            )
        }
    )
    api_tags = Counter(
        {
            t["name"].lower(): t["usage_count"]
            for t in (await client.get("/api/v1/tags", headers=user.headers)).json()
        }
    )
    if dict(db_tags) != dict(api_tags):
        out.counters.append(f"tag usage_count {dict(api_tags)} != DB {dict(db_tags)}")
