"""GET /api/v1/tasks/stats"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.tasks import stats
from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import TASKS

STATS = f"{TASKS}/stats"
EMPTY = {
    "total": 0, "pending": 0, "completed": 0, "overdue": 0, "due_today": 0,
    "by_priority": {"low": 0, "medium": 0, "high": 0}, "by_project": [],
}  # fmt: skip


def today_in(zone: str) -> datetime:
    return datetime.now(ZoneInfo(zone))


class TestStats:
    async def test_no_tasks(self, client, user: UserHandle) -> None:
        response = await client.get(STATS, headers=user.headers)
        assert response.status_code == 200
        assert response.json() == EMPTY

    async def test_counts(
        self,
        client,
        user: UserHandle,
        task_factory: TaskFactory,
        project_factory: TaskFactory,
    ) -> None:
        project = await project_factory()
        today = today_in("UTC").date()
        await task_factory(priority="high", due_date=(today - timedelta(days=1)).isoformat())
        await task_factory(priority="low", due_date=today.isoformat(), project_id=project["id"])
        await task_factory(project_id=project["id"])
        await task_factory(due_date=(today + timedelta(days=1)).isoformat())
        done = await task_factory(priority="high", due_date=(today - timedelta(days=3)).isoformat())
        await client.patch(f"{TASKS}/{done['id']}/complete", headers=user.headers)
        response = await client.get(STATS, headers=user.headers)
        assert response.json() == {
            "total": 5, "pending": 4, "completed": 1, "overdue": 1, "due_today": 1,
            "by_priority": {"low": 1, "medium": 2, "high": 1},
            "by_project": [
                {"project_id": project["id"], "pending": 2}, {"project_id": None, "pending": 2},
            ],
        }  # fmt: skip

    async def test_the_zone_decides_today(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        # Kiritimati (+14) and Niue (-11) are never on the same date: a task due on
        # Kiritimati's today is due today there and not yet due in Niue.
        kiritimati = today_in("Pacific/Kiritimati").date()
        await task_factory(due_date=kiritimati.isoformat())
        there = await client.get(
            STATS, params={"time_zone": "Pacific/Kiritimati"}, headers=user.headers
        )
        assert (there.json()["due_today"], there.json()["overdue"]) == (1, 0)
        niue = await client.get(STATS, params={"time_zone": "Pacific/Niue"}, headers=user.headers)
        assert (niue.json()["due_today"], niue.json()["overdue"]) == (0, 0)

    async def test_a_timed_task_counts_by_its_day_in_the_zone(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        now = datetime.now(UTC)
        # earlier today in the zone: due today (not overdue: the contract counts days)
        start = stats.recurrence.today_bounds(ZoneInfo("Europe/Paris"), now)[1]
        await task_factory(due_at=max(start, now - timedelta(seconds=1)).isoformat())
        await task_factory(due_at=(start - timedelta(seconds=1)).isoformat())  # yesterday
        response = await client.get(
            STATS, params={"time_zone": "Europe/Paris"}, headers=user.headers
        )
        assert (response.json()["due_today"], response.json()["overdue"]) == (1, 1)

    @pytest.mark.parametrize("zone", ["Mars/Olympus", "", "localtime"])
    async def test_an_unknown_zone_is_422_invalid_time_zone(
        self, client, user: UserHandle, zone: str
    ) -> None:
        response = await client.get(STATS, params={"time_zone": zone}, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_time_zone"

    async def test_trashed_tasks_are_not_counted(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        trashed = await task_factory(due_date="2000-01-01", priority="high")
        await task_factory()
        await client.delete(f"{TASKS}/{trashed['id']}", headers=user.headers)
        response = await client.get(STATS, headers=user.headers)
        body = response.json()
        assert (body["total"], body["pending"], body["overdue"]) == (1, 1, 0)
        assert body["by_priority"] == {"low": 0, "medium": 1, "high": 0}

    async def test_another_users_tasks_are_not_counted(
        self, client, user: UserHandle, other_user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory(owner=other_user)
        response = await client.get(STATS, headers=user.headers)
        assert response.json() == EMPTY

    async def test_under_the_compatibility_routes(
        self, client, user: UserHandle, other_user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory()
        own = await client.get(f"/api/{user.id}/tasks/stats", headers=user.headers)
        assert own.status_code == 200
        assert own.json()["total"] == 1
        other = await client.get(f"/api/{other_user.id}/tasks/stats", headers=user.headers)
        assert other.status_code == 403

    async def test_one_statement_read_from_the_stats_index(self, db, user: UserHandle) -> None:
        today, start, end = stats.recurrence.today_bounds(ZoneInfo("UTC"), datetime.now(UTC))
        # 3,000 tasks, a third of them completed, so the planner sees a real user.
        await db.execute(
            "INSERT INTO task (id, user_id, title, title_key, search_text, completed, priority,"
            " due_date, created_at, updated_at, version, position)"
            " SELECT gen_random_uuid(), $1, 't', 't', 't', i % 3 = 0, i % 3,"
            " current_date + i % 50, now(), now(), 1, lpad(i::text, 6, '0')"
            " FROM generate_series(1, 3000) AS i",
            user.id,
        )
        await db.execute("VACUUM ANALYZE task")
        # The user owns the whole table here, so reading it all would be the right plan;
        # among the indexes, this is the one the bench's 10,000-of-1,000,000 user gets.
        await db.execute("SET enable_seqscan = off")
        plan = await db.fetch(f"EXPLAIN {stats.STATEMENT}", user.id, today, start, end)
        text = "\n".join(row[0] for row in plan)
        assert "Index Only Scan using ix_task_user_id_project_id_priority_pending" in text, text
        assert "pk_task_count" in text, text  # total: the counter; completed never read
        assert "Seq Scan" not in text, text
        assert "Bitmap Heap Scan on task " not in text, text  # task_count's is the list's


class TestStatsRoute:
    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    async def test_other_methods_are_405_not_a_task_id(
        self, client, user: UserHandle, method: str
    ) -> None:
        # OPTIONS too: its Allow must not name /{task_id}'s methods (schemathesis ST205)
        response = await client.request(method, STATS, headers=user.headers)
        assert response.status_code == 405
        assert response.headers["allow"] == "GET"
