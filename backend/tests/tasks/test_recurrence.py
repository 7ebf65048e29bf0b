"""Recurring tasks: the rule's checks, and completion moving the due to the next
occurrence (in the task's zone) on every route that completes."""

import asyncio
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.tasks import recurring
from app.tasks.schemas import IfMatch
from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import TASKS, TIMESTAMP, list_tasks

PARIS = ZoneInfo("Europe/Paris")


def paris(text: str) -> datetime:
    """An answered due_at as a wall-clock time in Paris."""
    return datetime.fromisoformat(text).astimezone(PARIS)


async def complete(client, user: UserHandle, task: dict, **headers: str) -> dict:
    response = await client.patch(
        f"{TASKS}/{task['id']}/complete",
        json={"completed": True},
        headers={**user.headers, **headers},
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


class TestRecurrenceRule:
    @pytest.mark.parametrize(
        "rule",
        [
            "FREQ=DAILY",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR",
            "FREQ=MONTHLY;BYMONTHDAY=31",
            "FREQ=MONTHLY;BYDAY=-1FR",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
            "FREQ=DAILY;COUNT=3",
            "FREQ=DAILY;UNTIL=20270101T000000Z",
            "FREQ=YEARLY;BYDAY=20MO",
            "RRULE:freq=weekly;byday=sa",
        ],
    )
    async def test_supported_rules_are_stored_as_sent(
        self, client, user: UserHandle, rule: str
    ) -> None:
        body = {"title": "t", "due_date": "2026-12-01", "recurrence": rule}
        response = await client.post(TASKS, json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        assert response.json()["recurrence"] == rule

    @pytest.mark.parametrize(
        "rule",
        [
            "FREQ=SECONDLY",
            "FREQ=HOURLY",
            "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO",
            "FREQ=DAILY;BYHOUR=9",
            "FREQ=DAILY;WKST=MO",
            "garbage",
            "",
            "FREQ=DAILY;;",
            "FREQ=DAILY;FREQ=WEEKLY",
            "INTERVAL=2",
            "FREQ=DAILY;INTERVAL=0",
            "FREQ=DAILY;INTERVAL=-1",
            "FREQ=DAILY;COUNT=0",
            "FREQ=DAILY;COUNT=2;UNTIL=20270101",
            "FREQ=DAILY;UNTIL=20270231",
            "FREQ=DAILY;UNTIL=tomorrow",
            "FREQ=WEEKLY;BYDAY=XX",
            "FREQ=WEEKLY;BYDAY=2MO",
            "FREQ=WEEKLY;BYMONTHDAY=1",
            "FREQ=MONTHLY;BYMONTHDAY=32",
            "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=2,4",
            "FREQ=MONTHLY;BYDAY=6MO",
            "FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=1",
            "FREQ=YEARLY;BYMONTH=13",
            "FREQ=YEARLY;BYMONTH=-1",
            "FREQ=YEARLY;BYMONTH=2;BYDAY=6MO",
            "FREQ=DAILY;X-NAME=1",
            "FREQ=DAILY;" + "BYMONTH=1;" * 60,
            "FREQ=DAILY;BYMONTH=" + ",".join(["1"] * 250),  # 518 characters, else valid
        ],
    )
    async def test_other_rules_are_422_invalid_recurrence(
        self, client, user: UserHandle, rule: str
    ) -> None:
        body = {"title": "t", "due_date": "2026-12-01", "recurrence": rule}
        response = await client.post(TASKS, json=body, headers=user.headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_recurrence"
        assert (await list_tasks(client, user))["total"] == 0

    async def test_a_rule_needs_a_due(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        response = await client.post(
            TASKS, json={"title": "t", "recurrence": "FREQ=DAILY"}, headers=user.headers
        )
        assert response.status_code == 422
        assert response.json()["code"] == "recurrence_needs_due"
        task = await task_factory()
        patched = await client.patch(
            f"{TASKS}/{task['id']}", json={"recurrence": "FREQ=DAILY"}, headers=user.headers
        )
        assert patched.status_code == 422
        assert patched.json()["code"] == "recurrence_needs_due"
        recurring = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY")
        cleared = await client.patch(
            f"{TASKS}/{recurring['id']}", json={"due_date": None}, headers=user.headers
        )
        assert cleared.json()["code"] == "recurrence_needs_due"
        got = await client.get(f"{TASKS}/{recurring['id']}", headers=user.headers)
        assert got.json() == recurring


class TestCompletingARecurringTask:
    async def test_daily_at_nine_in_paris_stays_at_nine_across_both_dst_changes(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        # 2027: summer time starts on March 28th, ends on October 31st.
        for start, days in (("2027-03-26T09:00:00+01:00", 4), ("2027-10-29T09:00:00+02:00", 4)):
            task = await task_factory(
                due_at=start, time_zone="Europe/Paris", recurrence="FREQ=DAILY"
            )
            seen = []
            for _ in range(days):
                task = await complete(client, user, task)
                seen.append(paris(task["due_at"]))
            assert [(d.hour, d.minute) for d in seen] == [(9, 0)] * days
            first = datetime.fromisoformat(start).date()
            assert [d.date() for d in seen] == [first + timedelta(days=n + 1) for n in range(days)]
            offsets = {d.utcoffset() for d in seen}
            assert len(offsets) == 2  # the instant moved by 23 or 25 hours once

    async def test_completion_moves_the_due_and_keeps_the_task_open(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY")
        moved = await complete(client, user, task)
        assert moved["due_date"] == "2026-12-02"
        assert moved["due_at"] is None
        assert moved["completed"] is False
        assert moved["completed_at"] is None
        assert TIMESTAMP.match(moved["last_completed_at"])
        assert moved["version"] == task["version"] + 1

    async def test_byday_mon_wed_fri(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        # 2026-12-02 is a Wednesday
        task = await task_factory(due_date="2026-12-02", recurrence="FREQ=WEEKLY;BYDAY=MO,WE,FR")
        days = []
        for _ in range(5):
            task = await complete(client, user, task)
            days.append(task["due_date"])
        assert days == ["2026-12-04", "2026-12-07", "2026-12-09", "2026-12-11", "2026-12-14"]

    async def test_bymonthday_31_skips_shorter_months(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(
            due_at="2027-01-31T08:00:00Z", time_zone="UTC", recurrence="FREQ=MONTHLY;BYMONTHDAY=31"
        )
        days = []
        for _ in range(4):
            task = await complete(client, user, task)
            days.append(task["due_at"][:10])
        assert days == ["2027-03-31", "2027-05-31", "2027-07-31", "2027-08-31"]

    async def test_count_exhausts_from_the_first_occurrence(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY;COUNT=3")
        task = await complete(client, user, task)
        task = await complete(client, user, task)
        assert (task["due_date"], task["completed"]) == ("2026-12-03", False)
        last = await complete(client, user, task)
        assert last["completed"] is True
        assert last["due_date"] == "2026-12-03"
        assert TIMESTAMP.match(last["completed_at"])
        assert last["last_completed_at"] == last["completed_at"]

    async def test_no_occurrence_before_the_last_storable_day_completes_it(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        # 9999-12-31 is date.max, which asyncpg stores as PostgreSQL's `infinity`
        task = await task_factory(due_date="9999-12-30", recurrence="FREQ=DAILY")
        done = await complete(client, user, task)
        assert (done["completed"], done["due_date"]) == (True, "9999-12-30")

    async def test_until_exhausts(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(
            due_at="2026-12-01T09:00:00+01:00",
            time_zone="Europe/Paris",
            recurrence="FREQ=WEEKLY;UNTIL=20261215",  # a date: that whole day included
        )
        task = await complete(client, user, task)
        task = await complete(client, user, task)
        assert paris(task["due_at"]).date().isoformat() == "2026-12-15"
        assert (await complete(client, user, task))["completed"] is True

    async def test_until_in_utc_exhausts(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(
            due_at="2026-12-01T09:00:00Z", recurrence="FREQ=DAILY;UNTIL=20261202T090000Z"
        )
        task = await complete(client, user, task)
        assert task["due_at"] == "2026-12-02T09:00:00.000000Z"
        assert (await complete(client, user, task))["completed"] is True

    async def test_every_route_that_completes_moves_it(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY")
        url = f"{TASKS}/{task['id']}"
        toggled = await client.patch(f"{url}/complete", headers=user.headers)
        assert (toggled.json()["due_date"], toggled.json()["completed"]) == ("2026-12-02", False)
        patched = await client.patch(url, json={"completed": True}, headers=user.headers)
        assert patched.json()["due_date"] == "2026-12-03"
        body = {
            "title": "t",
            "due_date": "2026-12-03",
            "recurrence": "FREQ=DAILY",
            "completed": True,
        }
        replaced = await client.put(url, json=body, headers=user.headers)
        assert replaced.status_code == 200, replaced.text
        assert (replaced.json()["due_date"], replaced.json()["completed"]) == ("2026-12-04", False)
        assert replaced.json()["version"] == task["version"] + 3

    async def test_a_patch_that_sets_the_rule_and_completes_uses_the_new_rule(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01")
        body = {"recurrence": "FREQ=WEEKLY", "completed": True, "tags": ["home"]}
        patched = await client.patch(f"{TASKS}/{task['id']}", json=body, headers=user.headers)
        assert patched.status_code == 200, patched.text
        assert patched.json()["due_date"] == "2026-12-08"
        assert patched.json()["tags"] == ["home"]
        assert patched.json()["completed"] is False

    async def test_reopening_and_non_recurring_tasks_work_as_before(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01")
        done = await complete(client, user, task)
        assert done["completed"] is True
        assert done["last_completed_at"] == done["completed_at"]
        reopened = await client.patch(
            f"{TASKS}/{task['id']}/complete", json={"completed": False}, headers=user.headers
        )
        assert reopened.json()["completed"] is False
        assert reopened.json()["last_completed_at"] == done["last_completed_at"]

    async def test_a_stale_if_match_is_412_and_moves_nothing(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY")
        await complete(client, user, task)
        stale = await client.patch(
            f"{TASKS}/{task['id']}/complete",
            json={"completed": True},
            headers={**user.headers, "If-Match": '"1"'},
        )
        assert stale.status_code == 412
        got = await client.get(f"{TASKS}/{task['id']}", headers=user.headers)
        assert got.json()["due_date"] == "2026-12-02"

    async def test_another_users_recurring_task_is_404(
        self, client, user: UserHandle, other_user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY")
        response = await client.patch(
            f"{TASKS}/{task['id']}/complete", json={"completed": True}, headers=other_user.headers
        )
        assert response.status_code == 404
        got = await client.get(f"{TASKS}/{task['id']}", headers=user.headers)
        assert got.json() == task


class TestConcurrentCompletion:
    """Two completions at once of one recurring task (the row lock of recurring.py)."""

    async def test_with_one_if_match_one_wins_and_the_other_is_412(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY")
        headers = {**user.headers, "If-Match": f'"{task["version"]}"'}
        url = f"{TASKS}/{task['id']}/complete"
        responses = await asyncio.gather(
            *[client.patch(url, json={"completed": True}, headers=headers) for _ in range(2)]
        )
        assert sorted(r.status_code for r in responses) == [200, 412]
        got = await client.get(f"{TASKS}/{task['id']}", headers=user.headers)
        assert (got.json()["due_date"], got.json()["version"]) == ("2026-12-02", 2)

    async def test_without_if_match_both_move_it_once_each(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY")
        url = f"{TASKS}/{task['id']}/complete"
        responses = await asyncio.gather(
            *[client.patch(url, json={"completed": True}, headers=user.headers) for _ in range(4)]
        )
        assert [r.status_code for r in responses] == [200] * 4
        dues = sorted(r.json()["due_date"] for r in responses)
        assert dues == ["2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05"]
        got = await client.get(f"{TASKS}/{task['id']}", headers=user.headers)
        assert (got.json()["due_date"], got.json()["version"]) == ("2026-12-05", 5)


class TestCompletionUnderTheRowLock:
    """recurring.complete with the row locked by another transaction: both calls wait on
    FOR UPDATE with the same If-Match, so only the check made under the lock can tell
    the second one that the first moved the task."""

    async def test_the_second_waiter_gets_412(
        self, app, db, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY")
        task_id, user_id = uuid.UUID(task["id"]), uuid.UUID(user.id)
        precondition = IfMatch.parse(f'"{task["version"]}"')
        changes = {"completed": True}
        lock = db.transaction()
        await lock.start()
        await db.execute("SELECT 1 FROM task WHERE id = $1 FOR UPDATE", task_id)

        async def call() -> object:
            async with app.state.database.connection() as conn:
                return await recurring.complete(conn, user_id, task_id, changes, None, precondition)

        calls = [asyncio.create_task(call()) for _ in range(2)]
        await asyncio.sleep(0.3)  # both wait for the lock
        assert not any(call.done() for call in calls)
        await lock.rollback()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["PreconditionFailed", "TaskJson"]


class TestBulk:
    """POST /tasks/bulk: its creates (one statement for a run of them), updates and
    completes honour due times and recurrence as the single routes do."""

    async def test_a_run_of_creates_stores_what_post_stores(self, client, user: UserHandle) -> None:
        timed = {"due_at": "2026-12-05T23:30:00Z", "time_zone": "Asia/Tokyo"}
        operations = [
            {"op": "create", "data": {"title": "a", **timed, "recurrence": "FREQ=DAILY"}},
            {"op": "create", "data": {"title": "b", "due_date": "2026-12-05"}},
            {"op": "create", "data": {"title": "c"}},
        ]
        response = await client.post(
            f"{TASKS}/bulk", json={"operations": operations}, headers=user.headers
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["status"] for r in results] == [201, 201, 201]
        assert [r["task"]["due_date"] for r in results] == ["2026-12-06", "2026-12-05", None]
        for result in results:
            got = await client.get(f"{TASKS}/{result['id']}", headers=user.headers)
            assert got.json() == result["task"]
        # the series starts at the due: completing moves it one day on, in Tokyo
        moved = await complete(client, user, results[0]["task"])
        assert moved["due_at"] == "2026-12-06T23:30:00.000000Z"
        assert moved["due_date"] == "2026-12-07"

    async def test_complete_and_update_move_a_recurring_task(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-01", recurrence="FREQ=DAILY")
        operations = [
            {"op": "complete", "id": task["id"]},
            {"op": "complete", "id": task["id"], "completed": True},
            {"op": "update", "id": task["id"], "data": {"completed": True}},
            {"op": "complete", "id": task["id"], "if_match": '"1"'},
        ]
        for atomic in (False, True):
            response = await client.post(
                f"{TASKS}/bulk",
                json={"operations": operations[:3], "atomic": atomic},
                headers=user.headers,
            )
            assert response.status_code == 200, response.text
            results = response.json()["results"]
            assert [r["task"]["completed"] for r in results] == [False] * 3
        days = [r["task"]["due_date"] for r in results]
        assert days == ["2026-12-05", "2026-12-06", "2026-12-07"]
        stale = await client.post(
            f"{TASKS}/bulk", json={"operations": operations[3:]}, headers=user.headers
        )
        assert stale.json()["results"][0]["status"] == 412

    async def test_invalid_due_data_fails_its_operation_with_the_routes_code(
        self, client, user: UserHandle
    ) -> None:
        operations = [
            {"op": "create", "data": {"title": "a", "due_at": "2026-12-05T10:00:00Z",
                                      "time_zone": "Mars/Olympus"}},
            {"op": "create", "data": {"title": "b", "due_date": "2026-12-05",
                                      "recurrence": "FREQ=SECONDLY"}},
            {"op": "create", "data": {"title": "c", "recurrence": "FREQ=DAILY"}},
        ]  # fmt: skip
        response = await client.post(
            f"{TASKS}/bulk", json={"operations": operations}, headers=user.headers
        )
        codes = [r["error"]["code"] for r in response.json()["results"]]
        assert codes == ["invalid_time_zone", "invalid_recurrence", "recurrence_needs_due"]
