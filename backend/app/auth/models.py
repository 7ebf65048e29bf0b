"""Auth tables: users, their sessions (one per login) and the sessions' refresh tokens."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from app.core.schemas import utcnow


def _timestamp() -> Any:
    """A timestamptz column defaulting to now (UTC). Typed Any like sqlmodel.Field itself,
    so it can be assigned to a `datetime` annotation."""
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class User(SQLModel, table=True):
    # Named user_account, not user: "user" is a reserved word in PostgreSQL.
    __tablename__ = "user_account"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # stored trimmed and lower-cased
    name: str | None = Field(default=None, max_length=100)
    hashed_password: str = Field(max_length=255)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class UserSession(SQLModel, table=True):
    """One login: its refresh tokens rotate, and deleting it ends the session at once
    (access tokens carry the session id and are checked against this table)."""

    __tablename__ = "user_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", ondelete="CASCADE", index=True)
    created_at: datetime = _timestamp()
    last_used_at: datetime = _timestamp()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    user_agent: str | None = Field(default=None, max_length=255)


class RefreshToken(SQLModel, table=True):
    """Only a hash of each refresh token is stored. Spent tokens stay until their
    session ends, so presenting one again is recognised as reuse."""

    __tablename__ = "refresh_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    session_id: uuid.UUID = Field(foreign_key="user_session.id", ondelete="CASCADE", index=True)
    created_at: datetime = _timestamp()
    spent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
