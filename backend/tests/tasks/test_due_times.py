"""Due times and time zones on the task routes: `due_at`, `time_zone`, the local
`due_date` of a timed task, and their filters and sort."""

import pytest

from app.tasks import recurrence
from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import TASKS, list_tasks


class TestDueTimes:
    async def test_due_at_with_an_offset_is_answered_in_utc(self, client, user: UserHandle) -> None:
        body = {"title": "Call", "due_at": "2026-12-05T09:30:00+01:00", "time_zone": "Europe/Paris"}
        created = await client.post(TASKS, json=body, headers=user.headers)
        assert created.status_code == 201, created.text
        task = created.json()
        assert task["due_at"] == "2026-12-05T08:30:00.000000Z"
        assert task["time_zone"] == "Europe/Paris"
        assert task["due_date"] == "2026-12-05"
        assert task["recurrence"] is None
        assert task["last_completed_at"] is None
        got = await client.get(f"{TASKS}/{task['id']}", headers=user.headers)
        assert got.json() == task

    async def test_due_date_is_the_local_date_in_the_zone(self, task_factory: TaskFactory) -> None:
        # 23:30 UTC on the 5th is already the 6th in Tokyo, still the 5th in UTC.
        tokyo = await task_factory(due_at="2026-12-05T23:30:00Z", time_zone="Asia/Tokyo")
        utc = await task_factory(due_at="2026-12-05T23:30:00Z")
        assert tokyo["due_date"] == "2026-12-06"
        assert (utc["due_date"], utc["time_zone"]) == ("2026-12-05", None)

    async def test_changing_the_zone_alone_recomputes_the_local_date(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_at="2026-12-05T23:30:00Z")
        moved = await client.patch(
            f"{TASKS}/{task['id']}", json={"time_zone": "Asia/Tokyo"}, headers=user.headers
        )
        assert moved.json()["due_date"] == "2026-12-06"
        assert moved.json()["due_at"] == task["due_at"]
        back = await client.patch(
            f"{TASKS}/{task['id']}", json={"time_zone": None}, headers=user.headers
        )
        assert back.json()["due_date"] == "2026-12-05"

    async def test_changing_the_zone_of_an_all_day_task_keeps_its_day(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_date="2026-12-05")
        moved = await client.patch(
            f"{TASKS}/{task['id']}", json={"time_zone": "Asia/Tokyo"}, headers=user.headers
        )
        assert (moved.json()["due_date"], moved.json()["due_at"]) == ("2026-12-05", None)

    async def test_a_due_day_replaces_the_instant_and_back(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(due_at="2026-12-05T10:00:00Z")
        day = await client.patch(
            f"{TASKS}/{task['id']}", json={"due_date": "2026-12-24"}, headers=user.headers
        )
        assert (day.json()["due_date"], day.json()["due_at"]) == ("2026-12-24", None)
        timed = await client.patch(
            f"{TASKS}/{task['id']}", json={"due_at": "2026-12-25T10:00:00Z"}, headers=user.headers
        )
        assert timed.json()["due_date"] == "2026-12-25"
        cleared = await client.patch(
            f"{TASKS}/{task['id']}", json={"due_at": None}, headers=user.headers
        )
        assert (cleared.json()["due_date"], cleared.json()["due_at"]) == (None, None)

    async def test_put_resets_omitted_due_fields(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(
            due_at="2026-12-05T10:00:00Z", time_zone="Asia/Tokyo", recurrence="FREQ=DAILY"
        )
        replaced = await client.put(
            f"{TASKS}/{task['id']}", json={"title": "t"}, headers=user.headers
        )
        body = replaced.json()
        assert [body[k] for k in ("due_date", "due_at", "time_zone", "recurrence")] == [None] * 4

    @pytest.mark.parametrize("method", ["post", "patch", "put"])
    async def test_both_due_date_and_due_at_is_422(
        self, client, user: UserHandle, task_factory: TaskFactory, method: str
    ) -> None:
        task = await task_factory()
        body = {"title": "t", "due_date": "2026-12-05", "due_at": "2026-12-05T10:00:00Z"}
        url = TASKS if method == "post" else f"{TASKS}/{task['id']}"
        response = await getattr(client, method)(url, json=body, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert (await client.get(f"{TASKS}/{task['id']}", headers=user.headers)).json() == task

    @pytest.mark.parametrize(
        "zone", ["Mars/Olympus", "europe/paris ", "", "UTC+2", "../../etc/passwd", "x" * 300]
    )
    async def test_an_unknown_zone_is_422_invalid_time_zone(
        self, client, user: UserHandle, zone: str
    ) -> None:
        body = {"title": "t", "due_at": "2026-12-05T10:00:00Z", "time_zone": zone}
        response = await client.post(TASKS, json=body, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_time_zone"
        assert (await list_tasks(client, user))["total"] == 0

    @pytest.mark.parametrize("due_at", ["0001-01-01T00:00:00Z", "9999-12-31T20:00:00-05:00"])
    async def test_an_instant_whose_local_date_cannot_exist_is_422(
        self, client, user: UserHandle, due_at: str
    ) -> None:
        body = {"title": "t", "due_at": due_at, "time_zone": "Pacific/Kiritimati"}
        response = await client.post(TASKS, json=body, headers=user.headers)
        assert response.status_code == 422

    async def test_postgresql_knows_every_zone_we_accept(self, db) -> None:
        names = sorted(recurrence.time_zones())
        known = await db.fetchval(
            "SELECT count(*) FROM unnest($1::text[]) AS z(name) "
            "WHERE EXISTS (SELECT FROM pg_timezone_names WHERE name = z.name)",
            names,
        )
        converted = await db.fetchval(
            "SELECT count(timezone(name, now())) FROM unnest($1::text[]) AS z(name)", names
        )
        assert converted == len(names), (known, len(names))


class TestDueFiltersAndSort:
    async def test_due_filters_read_the_local_date(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        tokyo = await task_factory(due_at="2026-12-05T23:30:00Z", time_zone="Asia/Tokyo")
        await task_factory(due_date="2026-12-05")
        page = await list_tasks(client, user, due_after="2026-12-06", due_before="2026-12-06")
        assert [t["id"] for t in page["items"]] == [tokyo["id"]]

    async def test_all_day_tasks_come_before_the_timed_ones_of_their_day(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        late = await task_factory(title="late", due_at="2026-12-05T18:00:00Z")
        early = await task_factory(title="early", due_at="2026-12-05T07:00:00Z")
        day = await task_factory(title="day", due_date="2026-12-05")
        before = await task_factory(title="before", due_at="2026-12-04T23:00:00Z")
        after = await task_factory(title="after", due_date="2026-12-06")
        undated = await task_factory(title="undated")
        ascending = [before, day, early, late, after, undated]
        page = await list_tasks(client, user, sort_by="due_date", sort_direction="asc")
        assert [t["title"] for t in page["items"]] == [t["title"] for t in ascending]
        page = await list_tasks(client, user, sort_by="due_date", sort_direction="desc")
        descending = [*reversed(ascending[:-1]), undated]
        assert [t["title"] for t in page["items"]] == [t["title"] for t in descending]

    @pytest.mark.parametrize("direction", ["asc", "desc"])
    async def test_cursors_follow_the_due_order(
        self, client, user: UserHandle, task_factory: TaskFactory, direction: str
    ) -> None:
        specs = [
            {"due_date": "2026-12-05"}, {"due_date": "2026-12-05"},
            {"due_at": "2026-12-05T07:00:00Z"}, {"due_at": "2026-12-05T07:00:00Z"},
            {"due_at": "2026-12-05T18:00:00Z"}, {"due_date": "2026-12-06"},
            {"due_at": "2026-12-06T01:00:00Z"}, {}, {},
        ]  # fmt: skip
        for number, spec in enumerate(specs):
            await task_factory(title=f"t{number}", **spec)
        params = {"sort_by": "due_date", "sort_direction": direction}
        whole = await list_tasks(client, user, **params)
        seen, cursor = [], None
        while True:
            extra = {"cursor": cursor} if cursor else {}
            page = await list_tasks(client, user, limit=2, **params, **extra)
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [t["id"] for t in whole["items"]]
        assert len(seen) == len(specs)

    async def test_a_task_moved_within_its_day_is_never_repeated(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        first = await task_factory(title="a", due_date="2026-12-05")
        second = await task_factory(title="b", due_at="2026-12-05T10:00:00Z")
        third = await task_factory(title="c", due_at="2026-12-05T12:00:00Z")
        params = {"sort_by": "due_date", "sort_direction": "asc"}
        page = await list_tasks(client, user, limit=2, **params)
        assert [t["id"] for t in page["items"]] == [first["id"], second["id"]]
        # the page's last task moves later than the next one: it comes again (its key
        # changed), the one after the cursor is not skipped
        await client.patch(
            f"{TASKS}/{first['id']}", json={"due_at": "2026-12-05T13:00:00Z"}, headers=user.headers
        )
        rest = await list_tasks(client, user, limit=2, cursor=page["next_cursor"], **params)
        assert [t["id"] for t in rest["items"]] == [third["id"], first["id"]]
