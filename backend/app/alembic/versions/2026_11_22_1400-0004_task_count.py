"""task count

A per-user task counter kept by the database: `task_count` holds rows (user_id, shard,
n) whose sum per user is the exact number of the user's tasks, maintained by triggers
on `task` (the app never writes it). The unfiltered task list reads this sum instead of
counting ~10,000 index entries per request.

The triggers are statement-level AFTER INSERT / AFTER DELETE triggers with transition
tables, so a statement (one task, or a COPY of 50,000) costs one upsert per user, into
the shard `pg_backend_pid() % 16`: concurrent writers for one user mostly land on
different rows instead of queueing on one row lock.

`task.user_id` never changes (no route moves a task to another user), so there is no
UPDATE trigger; `ON DELETE SET NULL` of a project only updates project_id.

Deleting an account cascades to its tasks and, separately, to its task_count rows. The
cascade's DELETE on task queues its statement trigger behind both cascades (RI queries
run without firing their own AFTER triggers), so the trigger runs when the user row and
its counters are already gone. The delete trigger must therefore skip users whose
user_account row no longer exists: re-inserting their counter would violate the
foreign key and fail the account deletion.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARDS = 16  # rows per user at most

# Rows are upserted in user_id order, so two statements touching several users lock
# the counter rows in the same order and cannot deadlock each other.
_TRIGGERS = [
    f"""
    CREATE FUNCTION task_count_after_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO task_count (user_id, shard, n)
        SELECT user_id, pg_backend_pid() % {SHARDS}, count(*)
        FROM inserted_task
        GROUP BY user_id
        ORDER BY user_id
        ON CONFLICT (user_id, shard) DO UPDATE SET n = task_count.n + EXCLUDED.n;
        RETURN NULL;
    END
    $$
    """,
    f"""
    CREATE FUNCTION task_count_after_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO task_count (user_id, shard, n)
        SELECT d.user_id, pg_backend_pid() % {SHARDS}, -count(*)
        FROM deleted_task AS d
        -- Skip deleted accounts: their counters went by their own cascade.
        WHERE EXISTS (SELECT FROM user_account AS u WHERE u.id = d.user_id)
        GROUP BY d.user_id
        ORDER BY d.user_id
        ON CONFLICT (user_id, shard) DO UPDATE SET n = task_count.n + EXCLUDED.n;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER task_count_insert AFTER INSERT ON task
    REFERENCING NEW TABLE AS inserted_task
    FOR EACH STATEMENT EXECUTE FUNCTION task_count_after_insert()
    """,
    """
    CREATE TRIGGER task_count_delete AFTER DELETE ON task
    REFERENCING OLD TABLE AS deleted_task
    FOR EACH STATEMENT EXECUTE FUNCTION task_count_after_delete()
    """,
]


def upgrade() -> None:
    op.create_table(
        "task_count",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_task_count_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "shard", name=op.f("pk_task_count")),
    )
    # Triggers first, then the backfill: CREATE TRIGGER locks task against writes until
    # this transaction commits, so no task is counted twice or missed.
    for statement in _TRIGGERS:
        op.execute(statement)
    op.execute(
        "INSERT INTO task_count (user_id, shard, n) "
        "SELECT user_id, 0, count(*) FROM task GROUP BY user_id"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS task_count_delete ON task")
    op.execute("DROP TRIGGER IF EXISTS task_count_insert ON task")
    op.execute("DROP FUNCTION IF EXISTS task_count_after_delete()")
    op.execute("DROP FUNCTION IF EXISTS task_count_after_insert()")
    op.drop_table("task_count")
