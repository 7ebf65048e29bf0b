"""GET /api/v1/tasks"""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import TASKS, list_tasks


def titles(body: dict) -> list[str]:
    return [task["title"] for task in body["items"]]


async def set_column(app, task_id: str, column: str, value: object) -> None:
    """Give tasks equal (or chosen) sort keys that the API would not produce in a test."""
    assert column in {"created_at", "updated_at", "title_key", "due_date", "priority"}
    async with app.state.database.connection() as conn:
        await conn.execute(
            f"UPDATE task SET {column} = $1 WHERE id = $2", value, uuid.UUID(task_id)
        )


class TestListTasks:
    async def test_empty(self, client, user: UserHandle) -> None:
        body = await list_tasks(client, user)
        assert body == {"items": [], "total": 0, "limit": 50, "offset": 0, "next_cursor": None}

    async def test_newest_first_by_default(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for title in ("one", "two", "three"):
            await task_factory(title=title)
        body = await list_tasks(client, user)
        assert titles(body) == ["three", "two", "one"]
        assert body["total"] == 3
        assert body["items"][0]["tags"] == []

    async def test_items_carry_their_tags(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory(title="a", tags=["x", "y"])
        await task_factory(title="b")
        await task_factory(title="c", tags=["y"])
        body = await list_tasks(client, user, sort_by="title", sort_direction="asc")
        assert [t["tags"] for t in body["items"]] == [["x", "y"], [], ["y"]]

    async def test_limit_offset_and_total(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for i in range(7):
            await task_factory(title=f"t{i}")
        body = await list_tasks(
            client, user, limit=3, offset=5, sort_by="title", sort_direction="asc"
        )
        assert titles(body) == ["t5", "t6"]
        assert (body["total"], body["limit"], body["offset"]) == (7, 3, 5)

    async def test_offset_past_the_end_still_counts(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for _ in range(3):
            await task_factory()
        body = await list_tasks(client, user, offset=10)
        assert body["items"] == []
        assert body["total"] == 3

    @pytest.mark.parametrize("offset", [0, 1, 2, 3, 10])
    @pytest.mark.parametrize("params", [{"tags": "kept"}, {"search": "needle"}])
    async def test_tag_and_search_totals_on_every_page(
        self, client, user: UserHandle, task_factory: TaskFactory, params: dict, offset: int
    ) -> None:
        """On PostgreSQL these pages count their matches in the same pass (count_in_page),
        and a page past the end counts them on its own."""
        for i in range(3):
            await task_factory(title=f"needle {i}", tags=["kept"])
        await task_factory(title="other", tags=["other"])
        body = await list_tasks(client, user, limit=2, offset=offset, **params)
        assert body["total"] == 3
        assert len(body["items"]) == max(0, min(2, 3 - offset))

    @pytest.mark.parametrize(
        ("sort_by", "direction"),
        [
            (s, d)
            for s in ("created_at", "updated_at", "title", "due_date", "priority")
            for d in ("asc", "desc")
        ],
    )
    async def test_stable_pages_with_equal_sort_keys(
        self, app, client, user: UserHandle, task_factory: TaskFactory, sort_by: str, direction: str
    ) -> None:
        created = [await task_factory(title="Same", due_date="2026-03-01") for _ in range(23)]
        same = datetime(2026, 1, 1, tzinfo=UTC)
        for task in created:  # every task the same created_at / updated_at as well
            await set_column(app, task["id"], "created_at", same)
            await set_column(app, task["id"], "updated_at", same)
        seen: list[str] = []
        for offset in range(0, 25, 5):
            body = await list_tasks(
                client, user, sort_by=sort_by, sort_direction=direction, limit=5, offset=offset
            )
            assert body["total"] == 23
            seen += [task["id"] for task in body["items"]]
        assert len(seen) == 23
        assert set(seen) == {task["id"] for task in created}  # no repeats, no gaps
        assert seen == sorted(seen, reverse=direction == "desc")  # ties break on id

    async def test_titles_sort_ignoring_case(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for title in ("banana", "Apple", "cherry", "Émile", "apricot"):
            await task_factory(title=title)
        body = await list_tasks(client, user, sort_by="title", sort_direction="asc")
        assert titles(body)[:4] == ["Apple", "apricot", "banana", "cherry"]

    async def test_priority_sorts_high_over_low(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for priority in ("medium", "high", "low"):
            await task_factory(title=priority, priority=priority)
        body = await list_tasks(client, user, sort_by="priority")
        assert titles(body) == ["high", "medium", "low"]
        body = await list_tasks(client, user, sort_by="priority", sort_direction="asc")
        assert titles(body) == ["low", "medium", "high"]

    @pytest.mark.parametrize(
        ("direction", "expected"),
        [("asc", ["jan", "feb", "none"]), ("desc", ["feb", "jan", "none"])],
    )
    async def test_tasks_without_due_date_come_last(
        self, client, user: UserHandle, task_factory: TaskFactory, direction: str, expected: list
    ) -> None:
        await task_factory(title="none")
        await task_factory(title="feb", due_date="2026-02-01")
        await task_factory(title="jan", due_date="2026-01-01")
        body = await list_tasks(client, user, sort_by="due_date", sort_direction=direction)
        assert titles(body) == expected

    async def test_updated_at_sort(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        first = await task_factory(title="first")
        await task_factory(title="second")
        await client.patch(f"{TASKS}/{first['id']}", json={"priority": "low"}, headers=user.headers)
        body = await list_tasks(client, user, sort_by="updated_at")
        assert titles(body) == ["first", "second"]

    @pytest.mark.parametrize(("status", "expected"), [("all", 3), ("pending", 2), ("completed", 1)])
    async def test_status_filter(
        self, client, user: UserHandle, task_factory: TaskFactory, status: str, expected: int
    ) -> None:
        tasks = [await task_factory(title=f"t{i}") for i in range(3)]
        await client.patch(f"{TASKS}/{tasks[0]['id']}/complete", headers=user.headers)
        body = await list_tasks(client, user, status=status)
        assert body["total"] == expected
        if status == "completed":
            assert titles(body) == ["t0"]

    async def test_priority_filter_is_repeatable(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for priority in ("low", "medium", "high"):
            await task_factory(title=priority, priority=priority)
        assert titles(await list_tasks(client, user, priority="low")) == ["low"]
        body = await list_tasks(client, user, priority=["low", "high"])
        assert sorted(titles(body)) == ["high", "low"]

    async def test_tags_filter_requires_all(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory(title="both", tags=["home", "urgent"])
        await task_factory(title="home", tags=["home"])
        await task_factory(title="none")
        assert sorted(titles(await list_tasks(client, user, tags="home"))) == ["both", "home"]
        assert titles(await list_tasks(client, user, tags=["home", "urgent"])) == ["both"]
        assert titles(await list_tasks(client, user, tags=["HOME", " Urgent "])) == ["both"]
        assert titles(await list_tasks(client, user, tags=["home", "nope"])) == []

    async def test_tags_bracket_form(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory(title="both", tags=["home", "urgent"])
        await task_factory(title="home", tags=["home"])
        body = await list_tasks(client, user, **{"tags[]": ["home", "urgent"]})
        assert titles(body) == ["both"]
        mixed = await list_tasks(client, user, **{"tags[]": "urgent", "tags": "home"})
        assert titles(mixed) == ["both"]

    async def test_project_filter(
        self, client, user: UserHandle, task_factory: TaskFactory, project_factory
    ) -> None:
        home = await project_factory(name="Home")
        work = await project_factory(name="Work")
        await task_factory(title="home", project_id=home["id"])
        await task_factory(title="work", project_id=work["id"])
        await task_factory(title="loose")
        assert titles(await list_tasks(client, user, project_id=home["id"])) == ["home"]
        assert titles(await list_tasks(client, user, project_id="none")) == ["loose"]

    async def test_search_title_and_description_ignoring_case(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory(title="Buy MILK")
        await task_factory(title="Other", description="oat milk please")
        await task_factory(title="Milkshake")
        await task_factory(title="Bread")
        body = await list_tasks(client, user, search="Milk", sort_by="title", sort_direction="asc")
        assert titles(body) == ["Buy MILK", "Milkshake", "Other"]

    async def test_search_folds_unicode_case(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory(title="ÉTÉ À PARIS")
        await task_factory(title="Straße")
        assert titles(await list_tasks(client, user, search="été à")) == ["ÉTÉ À PARIS"]
        assert titles(await list_tasks(client, user, search="STRASSE")) == ["Straße"]

    @pytest.mark.parametrize(
        ("term", "expected"),
        [("100%", ["100% done"]), ("%", ["100% done"]), ("a_b", ["a_b"]), ("_", ["a_b"]),
         ("\\", ["back\\slash"]), ("/", ["x/y"])],
    )  # fmt: skip
    async def test_search_wildcards_are_literal(
        self, client, user: UserHandle, task_factory: TaskFactory, term: str, expected: list
    ) -> None:
        for title in ("100% done", "1000 done", "a_b", "axb", "back\\slash", "x/y"):
            await task_factory(title=title)
        assert titles(await list_tasks(client, user, search=term)) == expected

    async def test_search_does_not_span_title_and_description(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory(title="end", description="start")
        assert (await list_tasks(client, user, search="end start"))["total"] == 0
        assert (await list_tasks(client, user, search="endstart"))["total"] == 0

    async def test_empty_search_matches_everything(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory()
        assert (await list_tasks(client, user, search=""))["total"] == 1

    async def test_due_range_is_inclusive(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
            await task_factory(title=day, due_date=day)
        await task_factory(title="none")
        body = await list_tasks(
            client, user, due_after="2026-01-02", due_before="2026-01-03", sort_by="due_date",
            sort_direction="asc",
        )  # fmt: skip
        assert titles(body) == ["2026-01-02", "2026-01-03"]
        assert titles(await list_tasks(client, user, due_before="2026-01-01")) == ["2026-01-01"]

    async def test_updated_since(self, client, user: UserHandle, task_factory: TaskFactory) -> None:
        old = await task_factory(title="old")
        new = await task_factory(title="new")
        assert titles(await list_tasks(client, user, updated_since=new["updated_at"])) == ["new"]
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (await list_tasks(client, user, updated_since=later))["total"] == 0
        offset = old["updated_at"].replace("Z", "+00:00")
        local = (
            datetime.fromisoformat(offset).astimezone(UTC).astimezone(timezone(timedelta(hours=5)))
        )  # the same instant written with another offset
        assert (await list_tasks(client, user, updated_since=local.isoformat()))["total"] == 2
        naive = new["updated_at"].removesuffix("Z")  # no offset: which instant is it?
        response = await client.get(TASKS, params={"updated_since": naive}, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "query.updated_since"

    async def test_filters_combine(
        self, client, user: UserHandle, task_factory: TaskFactory, project_factory
    ) -> None:
        project = await project_factory()
        match = {
            "priority": "high",
            "tags": ["a", "b"],
            "project_id": project["id"],
            "due_date": "2026-06-01",
        }
        await task_factory(title="Match me", **match)
        await task_factory(title="Match me", **{**match, "priority": "low"})
        await task_factory(title="Match me", **{**match, "tags": ["a"]})
        await task_factory(title="Match me", **{**match, "project_id": None})
        await task_factory(title="Match me", **{**match, "due_date": "2027-01-01"})
        await task_factory(title="Other", **match)
        body = await list_tasks(
            client, user, status="pending", priority="high", tags=["a", "b"],
            project_id=project["id"], search="match", due_before="2026-12-31",
            due_after="2026-01-01", updated_since="2000-01-01T00:00:00Z",
        )  # fmt: skip
        assert body["total"] == 1
        assert body["items"][0]["priority"] == "high"

    async def test_unknown_parameters_are_ignored(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory()
        assert (await list_tasks(client, user, colour="blue", page=3))["total"] == 1

    async def test_a_repeated_single_parameter_takes_the_last_value(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for _ in range(3):
            await task_factory()
        body = await list_tasks(client, user, limit=[5, 2])
        assert (body["limit"], len(body["items"])) == (2, 2)

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"status": "done"}, "query.status"),
            ({"priority": "urgent"}, "query.priority.0"),
            ({"project_id": "inbox"}, "query.project_id"),
            ({"due_before": "2026-13-01"}, "query.due_before"),
            ({"due_after": "yesterday"}, "query.due_after"),
            ({"updated_since": "not a time"}, "query.updated_since"),
            ({"updated_since": "9999-12-31T23:59:59-05:00"}, "query.updated_since"),
            ({"updated_since": "0.5"}, "query.updated_since"),  # seconds since 1970, once
            ({"updated_since": "1700000000"}, "query.updated_since"),
            ({"updated_since": "2026-01-01"}, "query.updated_since"),  # a date is no instant
            ({"due_before": "0"}, "query.due_before"),  # once 1970-01-01
            ({"due_after": "2026-01-01T00:00:00"}, "query.due_after"),
            ({"sort_by": "user_id"}, "query.sort_by"),
            ({"sort_by": "title; DROP TABLE task"}, "query.sort_by"),
            ({"sort_direction": "up"}, "query.sort_direction"),
            ({"limit": 0}, "query.limit"),
            ({"limit": 101}, "query.limit"),
            ({"limit": "ten"}, "query.limit"),
            ({"offset": -1}, "query.offset"),
            ({"offset": 10**20}, "query.offset"),
            ({"search": "x" * 201}, "query.search"),
            ({"search": "a\x01b"}, "query.search"),
            ({"tags": "x" * 51}, "query.tags.0"),
            ({"tags": ""}, "query.tags.0"),
            ({"tags[]": "x" * 51}, "query.tags[].0"),
        ],
    )
    async def test_out_of_range_is_422_naming_the_parameter(
        self, client, user: UserHandle, params: dict, field: str
    ) -> None:
        response = await client.get(TASKS, params=params, headers=user.headers)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert [error["field"] for error in problem["errors"]] == [field]

    async def test_needs_authentication(self, client) -> None:
        assert (await client.get(TASKS)).status_code == 401


class TestListItemsMatchSingleTasks:
    """On PostgreSQL the list body is rendered by the database (app/tasks/json_page.py),
    elsewhere by the TaskList model: either way each item must be byte-for-byte the
    same JSON value as GET /tasks/{id} returns."""

    async def test_every_field_renders_like_get_one(
        self, client, user: UserHandle, task_factory: TaskFactory, project_factory: TaskFactory
    ) -> None:
        project = await project_factory(name="Home")
        full = await task_factory(
            title='Ünïcode "quoted" \\ back\tslash',
            description="line one\nline two & <three>",
            priority="high",
            due_date="2026-02-28",
            project_id=project["id"],
            tags=["zeta", "Alpha", "ßtraße", "mIxEd"],
        )
        await client.patch(
            f"{TASKS}/{full['id']}/complete", json={"completed": True}, headers=user.headers
        )
        await task_factory(title="bare")
        listed = await client.get(TASKS, headers=user.headers)
        assert listed.status_code == 200
        body = listed.json()
        assert set(body) == {"items", "total", "limit", "offset", "next_cursor"}
        assert (body["total"], body["limit"], body["offset"]) == (2, 50, 0)
        for item in body["items"]:
            one = await client.get(f"{TASKS}/{item['id']}", headers=user.headers)
            assert item == one.json()
        first = next(i for i in body["items"] if i["id"] == full["id"])
        assert first["completed_at"].endswith("Z")
        assert len(first["completed_at"]) == 27
        assert first["tags"] == sorted(first["tags"], key=str.casefold)

    async def test_an_empty_page_still_carries_the_total(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory()
        response = await client.get(TASKS, params={"offset": 10}, headers=user.headers)
        assert response.json() == {
            "items": [], "total": 1, "limit": 50, "offset": 10, "next_cursor": None,
        }  # fmt: skip
