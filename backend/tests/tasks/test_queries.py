"""A page of tasks costs a fixed number of statements, whatever its size."""

from tests.conftest import UserHandle
from tests.conftest import recorded_statements as statements
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import TASKS


class TestListQueryCount:
    async def test_page_size_does_not_change_the_statement_count(
        self, app, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for i in range(50):
            await task_factory(title=f"t{i}", tags=[f"tag{i % 7}", "all"])
        counts = {}
        # Through a pooler the first run of a list shape creates its function once
        # (Database.fetch_text): not counted.
        warm = {"limit": 1, "tags": "all", "search": "t"}
        assert (await client.get(TASKS, params=warm, headers=user.headers)).status_code == 200
        for limit in (1, 50):
            with statements(app) as seen:
                response = await client.get(
                    TASKS,
                    params={"limit": limit, "tags": "all", "search": "t"},
                    headers=user.headers,
                )
            assert response.status_code == 200
            assert len(response.json()["items"]) == limit
            counts[limit] = len(seen)
        assert counts[1] == counts[50]
        # the caller's session check, then the page with its tags and total
        assert counts[50] == 2

    async def test_offset_past_the_end_costs_one_more(
        self, app, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory()
        await client.get(TASKS, params={"offset": 5}, headers=user.headers)  # as above
        with statements(app) as seen:
            response = await client.get(TASKS, params={"offset": 5}, headers=user.headers)
        assert response.json()["total"] == 1
        # PostgreSQL renders page and total in one statement even past the end.
        assert len(seen) == 2
