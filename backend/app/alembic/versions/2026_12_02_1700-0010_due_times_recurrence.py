"""due times, recurrence, statistics

Tasks gain a due instant (`due_at`) with its IANA `time_zone`, an RRULE `recurrence`,
`last_completed_at`, and the series' start `recurrence_anchor` (the DTSTART of the
rule as a local wall-clock time in the task's zone; never in the API): COUNT counts
from it. A timed task's `due_date` is its local date in its zone, so the due-date
filters and sort read one column.

Indexes:
- due-date sort: owner, due date, then the instant with all-day tasks first
  (`coalesce(due_at, '-infinity')`, so the cursor's row comparison never meets a
  NULL), then id; both directions, undated last in each (replacing 0002's two).
- statistics (GET /tasks/stats): the pending tasks by owner, project and priority,
  carrying their due day and instant: one index-only scan in (project, priority)
  order serves the per-group counts without a sort; the completed ones are counted
  on 0002's (owner, completed, ...) index.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE_AT_KEY = "coalesce(due_at, '-infinity'::timestamptz)"


def upgrade() -> None:
    op.add_column("task", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("task", sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.add_column("task", sa.Column("recurrence", sa.String(length=500), nullable=True))
    op.add_column("task", sa.Column("recurrence_anchor", sa.DateTime(), nullable=True))
    op.add_column("task", sa.Column("last_completed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        "ck_task_due_at_has_date", "task", "due_at IS NULL OR due_date IS NOT NULL"
    )
    op.create_check_constraint(
        "ck_task_recurrence_needs_due", "task", "recurrence IS NULL OR due_date IS NOT NULL"
    )
    op.drop_index("ix_task_user_id_due_date_id", table_name="task")
    op.drop_index("ix_task_user_id_due_date_desc", table_name="task")
    op.execute(
        f"CREATE INDEX ix_task_user_id_due_date_due_at_id ON task "
        f"(user_id, due_date, ({_DUE_AT_KEY}), id)"
    )
    op.execute(
        f"CREATE INDEX ix_task_user_id_due_date_due_at_desc ON task "
        f"(user_id, due_date DESC NULLS LAST, ({_DUE_AT_KEY}) DESC, id DESC)"
    )
    op.execute(
        "CREATE INDEX ix_task_user_id_project_id_priority_pending ON task "
        "(user_id, project_id, priority) INCLUDE (due_date, due_at) WHERE NOT completed"
    )


def downgrade() -> None:
    op.drop_index("ix_task_user_id_project_id_priority_pending", table_name="task")
    op.drop_index("ix_task_user_id_due_date_due_at_desc", table_name="task")
    op.drop_index("ix_task_user_id_due_date_due_at_id", table_name="task")
    op.create_index("ix_task_user_id_due_date_id", "task", ["user_id", "due_date", "id"])
    op.execute(
        "CREATE INDEX ix_task_user_id_due_date_desc ON task "
        "(user_id, due_date DESC NULLS LAST, id DESC)"
    )
    op.drop_constraint("ck_task_recurrence_needs_due", "task", type_="check")
    op.drop_constraint("ck_task_due_at_has_date", "task", type_="check")
    for column in ("last_completed_at", "recurrence_anchor", "recurrence", "time_zone", "due_at"):
        op.drop_column("task", column)
