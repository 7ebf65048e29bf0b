"""tasks projects tags

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:00:00.000000

Projects, tags, tasks, the task-tag links and the idempotency keys of task creation,
with the indexes the task list needs for a user with 10,000 tasks among 1,000,000:
owner + each sort column (+ id, the tie-breaker), owner + status, project + owner, the
link table both ways, owner + due date descending (nulls last) and a GIN index of owner
(btree_gin) + trigrams of search_text (pg_trgm) for substring search.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TASK_INDEXES = {
    "ix_task_user_id_created_at_id": ["user_id", "created_at", "id"],
    "ix_task_user_id_updated_at_id": ["user_id", "updated_at", "id"],
    "ix_task_user_id_title_key_id": ["user_id", "title_key", "id"],
    "ix_task_user_id_due_date_id": ["user_id", "due_date", "id"],
    "ix_task_user_id_priority_id": ["user_id", "priority", "id"],
    "ix_task_user_id_completed_created_at_id": ["user_id", "completed", "created_at", "id"],
    "ix_task_project_id_user_id": ["project_id", "user_id"],
}


def _owner() -> sa.Column[sa.Uuid[object]]:
    return sa.Column("user_id", sa.Uuid(), nullable=False)


def _owner_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"],
        ["user_account.id"],
        name=op.f(f"fk_{table}_user_id_user_account"),
        ondelete="CASCADE",
    )


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "project",
        sa.Column("id", sa.Uuid(), nullable=False),
        _owner(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_key", sa.String(), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("color", sa.String(length=7), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _owner_fk("project"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
        sa.UniqueConstraint("user_id", "name_key", name=op.f("uq_project_user_id_name_key")),
    )
    op.create_table(
        "tag",
        sa.Column("id", sa.Uuid(), nullable=False),
        _owner(),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("name_key", sa.String(), nullable=False),
        _timestamp("created_at"),
        _owner_fk("tag"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag")),
        sa.UniqueConstraint("user_id", "name_key", name=op.f("uq_tag_user_id_name_key")),
    )
    op.create_table(
        "task",
        sa.Column("id", sa.Uuid(), nullable=False),
        _owner(),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_key", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        _timestamp("completed_at", nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        _owner_fk("task"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_task_project_id_project"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    for name, columns in _TASK_INDEXES.items():
        op.create_index(name, "task", columns, unique=False)
    # Due dates sort nulls last both ways: descending needs its own index.
    op.create_index(
        "ix_task_user_id_due_date_desc",
        "task",
        ["user_id", sa.text("due_date DESC NULLS LAST"), sa.text("id DESC")],
        unique=False,
    )
    # Substring search: trigrams of search_text, with the owner in the same GIN index
    # (btree_gin), so a search reads one user's matches, not every user's.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.create_index(
        "ix_task_user_id_search_text_trgm",
        "task",
        ["user_id", "search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_table(
        "task_tag",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("tag_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_task_tag_task_id_task"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name=op.f("fk_task_tag_tag_id_tag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", "tag_id", name=op.f("pk_task_tag")),
    )
    op.create_index("ix_task_tag_tag_id_task_id", "task_tag", ["tag_id", "task_id"], unique=False)
    op.create_table(
        "idempotency_key",
        _owner(),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _owner_fk("idempotency_key"),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_key")),
    )


def downgrade() -> None:
    # The pg_trgm and btree_gin extensions stay: they may have existed before, and
    # other objects may use them (CREATE EXTENSION IF NOT EXISTS cannot tell).
    op.drop_table("idempotency_key")
    op.drop_index("ix_task_tag_tag_id_task_id", table_name="task_tag")
    op.drop_table("task_tag")
    op.drop_index("ix_task_user_id_search_text_trgm", table_name="task")
    op.drop_index("ix_task_user_id_due_date_desc", table_name="task")
    for name in reversed(_TASK_INDEXES):
        op.drop_index(name, table_name="task")
    op.drop_table("task")
    op.drop_table("tag")
    op.drop_table("project")
