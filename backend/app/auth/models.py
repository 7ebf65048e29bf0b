"""Auth tables: users, their sessions (one per login) and the sessions' refresh tokens."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, text
from sqlmodel import Field, SQLModel

from app.core.schemas import utcnow


def _timestamp() -> Any:
    """A timestamptz column defaulting to now (UTC). Typed Any like sqlmodel.Field itself,
    so it can be assigned to a `datetime` annotation."""
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class User(SQLModel, table=True):
    # Named user_account, not user: "user" is a reserved word in PostgreSQL.
    __tablename__ = "user_account"
    # Emails are unique among our own accounts only: an external account's email is
    # the identity provider's claim, never used to sign in or to find an account.
    __table_args__ = (
        Index(
            "uq_user_account_local_email",
            "email",
            unique=True,
            postgresql_where=text("external_subject IS NULL"),
        ),
        CheckConstraint(
            "(external_subject IS NULL AND email IS NOT NULL AND hashed_password IS NOT NULL)"
            " OR (external_subject IS NOT NULL AND hashed_password IS NULL)",
            name="local_or_external",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str | None = Field(default=None, max_length=320)  # trimmed and lower-cased
    name: str | None = Field(default=None, max_length=100)
    # None for an external account (signed in by its identity provider).
    hashed_password: str | None = Field(default=None, max_length=255)
    # The `sub` of an external identity provider's tokens; None for our own accounts.
    external_subject: str | None = Field(default=None, max_length=255, unique=True)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()

    @property
    def auth_provider(self) -> str:
        return "local" if self.external_subject is None else "external"


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
