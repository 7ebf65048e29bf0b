"""Idempotency keys for POST /tasks: a retry with the same key and body replays the
first response instead of creating a second task.

The key row is claimed (inserted) before the task, in the same transaction. A
concurrent retry's insert then waits on PostgreSQL until the first transaction ends,
finds the committed row and replays it; if the first rolled back, the retry claims the
key itself. Keys are per user and expire after 24 hours (an expired row is taken over
by the claiming insert).
"""

import hashlib
import uuid
from datetime import timedelta

import orjson
from pydantic import BaseModel

from app.core.db import Connection
from app.core.schemas import utcnow
from app.tasks.exceptions import IdempotencyKeyInProgress, IdempotencyKeyReused

KEY_TTL = timedelta(hours=24)

_CLAIM = """
INSERT INTO idempotency_key (user_id, key, request_hash, created_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, key) DO UPDATE
    SET request_hash = excluded.request_hash, created_at = excluded.created_at,
        status_code = NULL, response_body = NULL
    WHERE idempotency_key.created_at < $5
RETURNING key
"""
_STORED = "SELECT request_hash, response_body FROM idempotency_key WHERE user_id = $1 AND key = $2"
_STORE = """
UPDATE idempotency_key SET status_code = $3, response_body = $4 WHERE user_id = $1 AND key = $2
"""


def request_hash(body: BaseModel) -> str:
    """Of the validated body, so the same request sent with other spacing or key order
    is the same request."""
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def claim(conn: Connection, user_id: uuid.UUID, key: str, body_hash: str) -> str | None:
    """Claim the key for this request (None), or return the first response's body.
    Inside the transaction that creates the task.

    Raises IdempotencyKeyReused when the key was used with another body.
    """
    now = utcnow()
    if await conn.fetchval(_CLAIM, user_id, key, body_hash, now, now - KEY_TTL) is not None:
        return None
    stored_hash, stored_body = await conn.fetchrow(_STORED, user_id, key)
    if stored_hash != body_hash:
        raise IdempotencyKeyReused()
    if stored_body is None:  # pragma: no cover - the claim and the response commit together
        raise IdempotencyKeyInProgress()
    return str(stored_body)


async def store(conn: Connection, user_id: uuid.UUID, key: str, status: int, body: str) -> None:
    """Record the response of a claimed key (committed with the task by the caller)."""
    await conn.execute(_STORE, user_id, key, status, body)
