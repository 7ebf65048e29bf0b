"""Project table: a user's named groups of tasks."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.schemas import utcnow


class Project(SQLModel, table=True):
    """`name_key` (the name casefolded by Python: full Unicode case folding) makes
    names unique per user ignoring case; the constraint, not a prior read, decides
    between concurrent requests."""

    __tablename__ = "project"
    __table_args__ = (UniqueConstraint("user_id", "name_key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", ondelete="CASCADE")
    name: str = Field(max_length=100)
    name_key: str
    description: str | None = Field(default=None, max_length=1000)
    color: str | None = Field(default=None, max_length=7)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    # Grows on every change of the fields above (not of task_count): the ETag.
    version: int = 1
