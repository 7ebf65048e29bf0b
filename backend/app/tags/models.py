"""Tag tables: a user's tags and the links between tasks and tags."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.schemas import utcnow


class Tag(SQLModel, table=True):
    """A user's tag. `name` keeps the first spelling seen; `name_key` (the name
    casefolded by Python: full Unicode case folding) makes tags unique per user
    ignoring case."""

    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("user_id", "name_key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", ondelete="CASCADE")
    name: str = Field(max_length=50)
    name_key: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class TaskTag(SQLModel, table=True):
    """A task carries a tag. Kept here, not in tasks: the tags domain counts and moves
    links, and tasks depend on tags, never the other way round."""

    __tablename__ = "task_tag"
    # The primary key serves "tags of these tasks"; this index serves "tasks with a tag".
    __table_args__ = (Index("ix_task_tag_tag_id_task_id", "tag_id", "task_id"),)

    task_id: uuid.UUID = Field(foreign_key="task_row.id", ondelete="CASCADE", primary_key=True)
    tag_id: uuid.UUID = Field(foreign_key="tag.id", ondelete="CASCADE", primary_key=True)
