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
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.schemas import utcnow
from app.tasks.exceptions import IdempotencyKeyInProgress, IdempotencyKeyReused
from app.tasks.models import IdempotencyKey

KEY_TTL = timedelta(hours=24)


def request_hash(body: BaseModel) -> str:
    """Of the validated body, so the same request sent with other spacing or key order
    is the same request."""
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _upsert(db: AsyncSession) -> postgresql.Insert | sqlite.Insert:
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(IdempotencyKey)
    return sqlite.insert(IdempotencyKey)


async def claim(db: AsyncSession, user_id: uuid.UUID, key: str, body_hash: str) -> str | None:
    """Claim the key for this request (None), or return the first response's body.

    Raises IdempotencyKeyReused when the key was used with another body.
    """
    now = utcnow()
    insert = _upsert(db).values(user_id=user_id, key=key, request_hash=body_hash, created_at=now)
    claimed = await db.execute(
        insert.on_conflict_do_update(
            index_elements=["user_id", "key"],
            set_={
                "request_hash": body_hash,
                "created_at": now,
                "status_code": None,
                "response_body": None,
            },
            where=col(IdempotencyKey.created_at) < now - KEY_TTL,
        ).returning(col(IdempotencyKey.key))
    )
    if claimed.first() is not None:
        return None
    result = await db.execute(
        select(col(IdempotencyKey.request_hash), col(IdempotencyKey.response_body)).where(
            col(IdempotencyKey.user_id) == user_id, col(IdempotencyKey.key) == key
        )
    )
    stored_hash, stored_body = result.one()
    if stored_hash != body_hash:
        raise IdempotencyKeyReused()
    if stored_body is None:  # pragma: no cover - the claim and the response commit together
        raise IdempotencyKeyInProgress()
    return str(stored_body)


async def store(db: AsyncSession, user_id: uuid.UUID, key: str, status: int, body: str) -> None:
    """Record the response of a claimed key (committed with the task by the caller)."""
    await db.execute(
        update(IdempotencyKey)
        .where(col(IdempotencyKey.user_id) == user_id, col(IdempotencyKey.key) == key)
        .values(status_code=status, response_body=body)
    )
