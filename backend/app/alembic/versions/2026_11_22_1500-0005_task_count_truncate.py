"""task count after TRUNCATE

`TRUNCATE task` fires no DELETE trigger, so the counters of migration 0004 would keep
counting tasks that are gone; a TRUNCATE trigger empties them too.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION task_count_after_truncate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM task_count;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER task_count_truncate AFTER TRUNCATE ON task "
        "FOR EACH STATEMENT EXECUTE FUNCTION task_count_after_truncate()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS task_count_truncate ON task")
    op.execute("DROP FUNCTION IF EXISTS task_count_after_truncate()")
