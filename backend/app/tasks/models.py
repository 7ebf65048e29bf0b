"""Task tables: tasks, the idempotency keys of task creation, and the per-user task
counters."""

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    literal_column,
    text,
)
from sqlmodel import Field, SQLModel

from app.core.schemas import utcnow


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# Stored as a rank, so sorting by priority is sorting by a small integer (high > low).
PRIORITY_RANK = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2}
PRIORITY_BY_RANK = {rank: priority for priority, rank in PRIORITY_RANK.items()}

# Joins title and description in `search_text`. Requests can never contain it (C0
# controls are refused), so a search can never match across the two fields.
SEARCH_SEPARATOR = "\x1f"


# The sort key of a due time within its day: all-day tasks first (their `due_at` is NULL),
# then timed ones by instant. Never NULL, so a cursor's row comparison works on it.
DUE_AT_KEY: Any = func.coalesce(
    literal_column("due_at"), literal_column("'-infinity'::timestamptz")
)


def search_text(title: str, description: str | None) -> str:
    return f"{title}{SEARCH_SEPARATOR}{description or ''}".casefold()


_LIVE: dict[str, Any] = {"postgresql_where": text("deleted_at IS NULL")}


class TaskRow(SQLModel, table=True):
    """A user's task, trashed or not (`deleted_at`). The app reads and writes tasks
    through the view `task` (TASK below: the rows with `deleted_at IS NULL`, migration
    0009), so one place decides what is visible; only the trash (app/tasks/trash.py)
    names this table.

    Two derived columns are written with every change of title or description, by the
    service, from Python's Unicode `casefold()` (full Unicode case folding: `Straße`
    matches `STRASSE`, which PostgreSQL's lower() does not do):
    `title_key` sorts titles ignoring case; `search_text` is what `search` matches, a
    substring match (LIKE) served by a pg_trgm GIN index.
    """

    __tablename__ = "task_row"
    __table_args__ = (
        # The indexes of the routes' queries cover the visible tasks only (partial, on
        # `deleted_at IS NULL`, which the view's condition implies): the trash does not
        # weigh on them, and counting a filtered list stays an index-only scan (with
        # full indexes every row's deleted_at is a heap read: 2.3 -> 5.4 ms for one
        # status count of a 10,000-task user, measured).
        # Owner + each sort column (+ id, the tie-breaker): a page is an index range.
        Index("ix_task_user_id_created_at_id", "user_id", "created_at", "id", **_LIVE),
        Index("ix_task_user_id_updated_at_id", "user_id", "updated_at", "id", **_LIVE),
        Index("ix_task_user_id_title_key_id", "user_id", "title_key", "id", **_LIVE),
        # Due-date sort: the day, then all-day before timed (by instant), then id.
        Index(
            "ix_task_user_id_due_date_due_at_id", "user_id", "due_date", DUE_AT_KEY, "id", **_LIVE
        ),
        Index("ix_task_user_id_priority_id", "user_id", "priority", "id", **_LIVE),
        # A user's tasks by id: a first sync pages through them in this order.
        Index("ix_task_user_id_id", "user_id", "id", **_LIVE),
        # Owner + status, in the default order.
        Index(
            "ix_task_user_id_completed_created_at_id",
            "user_id",
            "completed",
            "created_at",
            "id",
            **_LIVE,
        ),
        # A project's tasks (filters, counts, ON DELETE SET NULL: trashed ones too, so
        # not partial) and, as `IS NULL` is an index condition, a user's tasks without
        # a project.
        Index("ix_task_project_id_user_id", "project_id", "user_id"),
        # Due dates sort nulls last in both directions; the backward scan of the
        # ascending index would put them first, so descending has its own index.
        Index(
            "ix_task_user_id_due_date_due_at_desc",
            "user_id",
            text("due_date DESC NULLS LAST"),
            DUE_AT_KEY.desc(),
            text("id DESC"),
            **_LIVE,
        ),
        # GET /tasks/stats: the pending tasks, grouped as one index-only scan reads them.
        Index(
            "ix_task_user_id_project_id_priority_pending",
            "user_id",
            "project_id",
            "priority",
            postgresql_include=["due_date", "due_at"],
            postgresql_where=text("deleted_at IS NULL AND NOT completed"),
        ),
        # A timed task's due_date is its local date; a rule needs a due day or instant.
        CheckConstraint("due_at IS NULL OR due_date IS NOT NULL", name="due_at_has_date"),
        CheckConstraint("recurrence IS NULL OR due_date IS NOT NULL", name="recurrence_needs_due"),
        # Substring search: pg_trgm trigrams of `search_text`, with the owner in the
        # same GIN index (btree_gin), so a search reads one user's matches rather
        # than every user's and then filters.
        Index(
            "ix_task_user_id_search_text_trgm",
            "user_id",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
            **_LIVE,
        ),
        # A task's subtasks (the subtree walks; ON DELETE CASCADE: not partial).
        Index("ix_task_parent_id", "parent_id"),
        # Manual order: a user's tasks by position (sort_by=position and its cursors).
        Index("ix_task_user_id_position_id", "user_id", "position", "id", **_LIVE),
        # The trash: a user's trashed tasks, newest first; the purge's range.
        Index(
            "ix_task_user_id_deleted_at",
            "user_id",
            "deleted_at",
            postgresql_where=text("deleted_at IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", ondelete="CASCADE")
    project_id: uuid.UUID | None = Field(
        default=None, foreign_key="project.id", ondelete="SET NULL"
    )
    title: str = Field(max_length=200)
    title_key: str = Field(sa_type=Text)
    description: str | None = Field(default=None, max_length=1000)
    search_text: str = Field(sa_type=Text)
    completed: bool = False
    completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    priority: int = Field(default=PRIORITY_RANK[Priority.MEDIUM], sa_type=SmallInteger)
    due_date: date | None = None
    # The due instant (a timed task); `due_date` is then its local date in `time_zone`.
    due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    time_zone: str | None = Field(default=None, sa_type=String(64))  # IANA; NULL: UTC
    recurrence: str | None = Field(default=None, sa_type=String(500))  # an RRULE
    # The rule's DTSTART, as a wall-clock time in `time_zone` (all-day: the date at
    # 00:00): reset whenever the client sets the due or the rule, kept when completing
    # moves the due, so COUNT counts from the series' first occurrence. Not in the API.
    recurrence_anchor: datetime | None = Field(default=None, sa_type=DateTime())
    last_completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    version: int = 1
    # A subtask's parent (a task of the same user); deleting the parent deletes it.
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="task_row.id", ondelete="CASCADE")
    # Manual order among siblings: opaque keys compared byte by byte (positions.py).
    position: str = Field(sa_column=Column(Text(collation="C"), nullable=False))
    # When the task went to the trash; the tasks trashed with it share the instant.
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


# The visible tasks: the view `task` (`SELECT * FROM task_row WHERE deleted_at IS
# NULL`, auto-updatable, so INSERT, UPDATE, DELETE and RETURNING work through it).
# Described in a metadata of its own: it is not a table for Alembic to create.
VIEWS = MetaData()
TASK = Table(
    "task",
    VIEWS,
    *(
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in TaskRow.__table__.c  # type: ignore[attr-defined]
    ),
)


class IdempotencyKey(SQLModel, table=True):
    """The first response to a POST /tasks with an `Idempotency-Key`, replayed to the
    same user's retries for 24 hours. The row is inserted before the task, in the same
    transaction, so a concurrent retry waits for it (PostgreSQL) and then replays."""

    __tablename__ = "idempotency_key"

    user_id: uuid.UUID = Field(foreign_key="user_account.id", ondelete="CASCADE", primary_key=True)
    key: str = Field(max_length=255, primary_key=True)
    request_hash: str = Field(max_length=64)
    status_code: int | None = None
    response_body: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class TaskCount(SQLModel, table=True):
    """The exact number of each user's tasks, kept by the database itself: `sum(n)` of
    the user's rows. The unfiltered task list reads it instead of counting ~10,000
    index entries per request.

    Maintained by triggers on `task` only (migration 0004), never written by the app.
    Each statement that inserts or deletes tasks adds its count to the row
    `(user_id, pg_backend_pid() % 16)`: the shards spread one user's concurrent
    writers over several rows, so they don't queue on one row lock. A shard's `n` may
    therefore be negative; only the sum per user means anything.
    """

    __tablename__ = "task_count"

    user_id: uuid.UUID = Field(foreign_key="user_account.id", ondelete="CASCADE", primary_key=True)
    shard: int = Field(sa_type=SmallInteger, primary_key=True)
    n: int = Field(sa_type=BigInteger)
