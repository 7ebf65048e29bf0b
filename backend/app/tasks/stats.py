"""GET /tasks/stats: a user's counts in one statement.

One index-only scan of `ix_task_user_id_project_id_stats` (owner, project; it carries
completed, priority, due_date and due_at) in project order: the per-project counts are
a GroupAggregate as the scan yields the rows, and one more aggregate over those groups
gives the totals and the `by_project` list, so the user's tasks are read once. "Today"
is the request's zone's: the day and the instants it starts and ends are computed
here (zoneinfo) and bound, so no row converts a time zone.

`overdue` and `due_today` count pending tasks by their due day: an all-day task's
`due_date`, a timed task's instant in the request's zone (a task due at 09:00 today is
due today, not overdue, at 15:00: the contract counts days).
"""

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.core.db import Database
from app.tasks import recurrence
from app.tasks.models import PRIORITY_RANK, Priority

_PENDING = "NOT completed"
_LOW, _MEDIUM, _HIGH = (PRIORITY_RANK[p] for p in (Priority.LOW, Priority.MEDIUM, Priority.HIGH))

STATEMENT = f"""
SELECT json_build_object(
    'total', coalesce(sum(total), 0)::bigint,
    'pending', coalesce(sum(pending), 0)::bigint,
    'completed', coalesce(sum(total - pending), 0)::bigint,
    'overdue', coalesce(sum(overdue), 0)::bigint,
    'due_today', coalesce(sum(due_today), 0)::bigint,
    'by_priority', json_build_object(
        'low', coalesce(sum(low), 0)::bigint,
        'medium', coalesce(sum(medium), 0)::bigint,
        'high', coalesce(sum(high), 0)::bigint),
    'by_project', coalesce(
        json_agg(json_build_object('project_id', project_id, 'pending', pending)
                 ORDER BY pending DESC, project_id NULLS LAST) FILTER (WHERE pending > 0),
        '[]'::json)
)::text
FROM (
    SELECT project_id,
           count(*) AS total,
           count(*) FILTER (WHERE {_PENDING}) AS pending,
           count(*) FILTER (WHERE {_PENDING} AND CASE WHEN due_at IS NULL
               THEN due_date < $2 ELSE due_at < $3 END) AS overdue,
           count(*) FILTER (WHERE {_PENDING} AND CASE WHEN due_at IS NULL
               THEN due_date = $2 ELSE due_at >= $3 AND due_at < $4 END) AS due_today,
           count(*) FILTER (WHERE {_PENDING} AND priority = {_LOW}) AS low,
           count(*) FILTER (WHERE {_PENDING} AND priority = {_MEDIUM}) AS medium,
           count(*) FILTER (WHERE {_PENDING} AND priority = {_HIGH}) AS high
    FROM task
    WHERE user_id = $1
    GROUP BY project_id
) AS per_project
"""


class ProjectPending(BaseModel):
    project_id: uuid.UUID | None = Field(description="`null`: the tasks without a project")
    pending: int


class PriorityCounts(BaseModel):
    low: int
    medium: int
    high: int


class TaskStats(BaseModel):
    """Counts of the user's tasks; `overdue`, `due_today`, `by_priority` and
    `by_project` count pending ones only."""

    total: int
    pending: int
    completed: int
    overdue: int = Field(description="Pending, due before today (an instant: its day in time_zone)")
    due_today: int = Field(description="Pending, due today in time_zone")
    by_priority: PriorityCounts
    by_project: list[ProjectPending] = Field(
        description="Projects with pending tasks, most pending first"
    )


async def task_stats(
    db: Database, user_id: uuid.UUID, time_zone: str | None, now: datetime
) -> bytes:
    """TaskStats as JSON, rendered by the database."""
    today, start, end = recurrence.today_bounds(recurrence.zone(time_zone), now)
    async with db.connection() as conn:
        text = await db.fetch_text(conn, STATEMENT, user_id, today, start, end)
    return text.encode()
