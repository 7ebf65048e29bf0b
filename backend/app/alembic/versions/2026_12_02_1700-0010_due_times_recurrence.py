"""due times, recurrence, statistics

Tasks gain a due instant (`due_at`) with its IANA `time_zone`, an RRULE `recurrence`,
`last_completed_at`, and the series' start `recurrence_anchor` (the DTSTART of the
rule as a local wall-clock time in the task's zone; never in the API): COUNT counts
from it. A timed task's `due_date` is its local date in its zone, so the due-date
filters and sort read one column. The columns go on `task_row`, and the view `task`
is re-created to show them (migration 0009: a view's `*` is expanded when it is made).

Indexes (visible tasks only, as 0009's):
- due-date sort: owner, due date, then the instant with all-day tasks first
  (`coalesce(due_at, '-infinity')`, so the cursor's row comparison never meets a
  NULL), then id; both directions, undated last in each (replacing 0009's two).
- statistics (GET /tasks/stats): the pending tasks by owner, project and priority,
  carrying their due day and instant: one index-only scan in (project, priority)
  order serves the per-group counts without a sort; `total` is the task counter.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE_AT_KEY = "coalesce(due_at, '-infinity'::timestamptz)"
_LIVE = " WHERE deleted_at IS NULL"
_COLUMNS = ("due_at", "time_zone", "recurrence", "recurrence_anchor", "last_completed_at")
VIEW = "CREATE OR REPLACE VIEW task AS SELECT * FROM task_row WHERE deleted_at IS NULL"


def upgrade() -> None:
    op.add_column("task_row", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("task_row", sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.add_column("task_row", sa.Column("recurrence", sa.String(length=500), nullable=True))
    op.add_column("task_row", sa.Column("recurrence_anchor", sa.DateTime(), nullable=True))
    op.add_column(
        "task_row", sa.Column("last_completed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(VIEW)
    op.create_check_constraint(
        "ck_task_row_due_at_has_date", "task_row", "due_at IS NULL OR due_date IS NOT NULL"
    )
    op.create_check_constraint(
        "ck_task_row_recurrence_needs_due",
        "task_row",
        "recurrence IS NULL OR due_date IS NOT NULL",
    )
    op.drop_index("ix_task_user_id_due_date_id", table_name="task_row")
    op.drop_index("ix_task_user_id_due_date_desc", table_name="task_row")
    op.execute(
        f"CREATE INDEX ix_task_user_id_due_date_due_at_id ON task_row "
        f"(user_id, due_date, ({_DUE_AT_KEY}), id){_LIVE}"
    )
    op.execute(
        f"CREATE INDEX ix_task_user_id_due_date_due_at_desc ON task_row "
        f"(user_id, due_date DESC NULLS LAST, ({_DUE_AT_KEY}) DESC, id DESC){_LIVE}"
    )
    op.execute(
        "CREATE INDEX ix_task_user_id_project_id_priority_pending ON task_row "
        f"(user_id, project_id, priority) INCLUDE (due_date, due_at){_LIVE} AND NOT completed"
    )


def downgrade() -> None:
    op.drop_index("ix_task_user_id_project_id_priority_pending", table_name="task_row")
    op.drop_index("ix_task_user_id_due_date_due_at_desc", table_name="task_row")
    op.drop_index("ix_task_user_id_due_date_due_at_id", table_name="task_row")
    op.execute(
        f"CREATE INDEX ix_task_user_id_due_date_id ON task_row (user_id, due_date, id){_LIVE}"
    )
    op.execute(
        "CREATE INDEX ix_task_user_id_due_date_desc ON task_row "
        f"(user_id, due_date DESC NULLS LAST, id DESC){_LIVE}"
    )
    op.drop_constraint("ck_task_row_recurrence_needs_due", "task_row", type_="check")
    op.drop_constraint("ck_task_row_due_at_has_date", "task_row", type_="check")
    # A view cannot lose columns in place: made again without them.
    op.execute("DROP VIEW task")
    for column in reversed(_COLUMNS):
        op.drop_column("task_row", column)
    op.execute(VIEW.replace("CREATE OR REPLACE", "CREATE"))
