"""The checks checked: damage a user's data by hand, the way a lost or partial write
would, and require the integrity checks to report each kind. A checker that passes
everything would otherwise make every other row of the table worthless."""

import time
import uuid

from faults.checks import check
from faults.context import Context
from faults.load import Attempt, sign_up

_COPIED = (
    "user_id, project_id, title, title_key, description, search_text, completed, "
    "completed_at, priority, due_date, created_at, updated_at, version, position"
)


async def checks_catch_damage(ctx: Context) -> None:
    async with ctx.client() as client:
        user = await sign_up(client, "canary")
        attempts = []
        for n in range(4):
            body = {"title": f"canary {n} {uuid.uuid4().hex[:8]}", "tags": ["alpha", "beta"]}
            response = await client.post("/api/v1/tasks", json=body, headers=user.headers)
            response.raise_for_status()
            attempt = Attempt(user, uuid.uuid4().hex, body, time.monotonic())
            attempt.acked_id = response.json()["id"]
            attempts.append(attempt)
        ids = [uuid.UUID(a.acked_id or "") for a in attempts]
        conn = await ctx.db()
        try:
            await conn.execute("DELETE FROM task WHERE id = $1", ids[0])  # a lost write
            await conn.execute(  # a duplicate: the same title stored twice
                f"INSERT INTO task (id, {_COPIED}) SELECT $2, {_COPIED} FROM task WHERE id = $1",
                ids[1],
                uuid.uuid4(),
            )
            await conn.execute(  # a partial row: a tag link missing
                "DELETE FROM task_tag WHERE task_id = $1 AND tag_id = "
                "(SELECT min(tag_id::text)::uuid FROM task_tag WHERE task_id = $1)",
                ids[2],
            )
            await conn.execute(  # a counter that drifted
                "UPDATE task_count SET n = n + 1 WHERE user_id = $1 AND shard = "
                "(SELECT min(shard) FROM task_count WHERE user_id = $1)",
                uuid.UUID(user.id),
            )
        finally:
            await conn.close()
        found = await check(ctx.cluster.dsn, client, [user], attempts)
    caught = {
        "lost": bool(found.lost),
        "duplicate": bool(found.duplicated),
        "partial": bool(found.partial),
        "counter": bool(found.counters),
    }
    ctx.report.add(
        "Checker canary",
        "4 tasks created, then by hand: one deleted, one duplicated, a tag link removed, "
        "task_count bumped",
        "each of the 4 reported",
        ", ".join(f"{k} {'caught' if v else 'MISSED'}" for k, v in caught.items()),
        all(caught.values()),
    )
