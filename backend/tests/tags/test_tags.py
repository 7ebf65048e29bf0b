"""/api/v1/tags, and tags as they are named on tasks."""

import asyncio
import uuid

import pytest

from tests.conftest import UserHandle, recorded_statements, wait_for_a_lock_wait
from tests.tasks.helpers import TAGS, TASKS, get_task, list_tasks, tag_usage


class TestTagNames:
    async def test_created_by_naming_them_on_a_task(
        self, client, user: UserHandle, task_factory
    ) -> None:
        assert await tag_usage(client, user) == {}
        await task_factory(tags=["home"])
        assert await tag_usage(client, user) == {"home": 1}

    async def test_trimmed_and_inner_whitespace_collapsed(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory(tags=["  deep \t  work  "])
        assert task["tags"] == ["deep work"]
        assert await tag_usage(client, user) == {"deep work": 1}

    async def test_unique_ignoring_case_first_spelling_kept(
        self, client, user: UserHandle, task_factory
    ) -> None:
        await task_factory(tags=["Urgent"])
        second = await task_factory(tags=["URGENT"])
        assert second["tags"] == ["Urgent"]
        assert await tag_usage(client, user) == {"Urgent": 2}

    async def test_unicode_case_folding(self, client, user: UserHandle, task_factory) -> None:
        await task_factory(tags=["Straße"])
        task = await task_factory(tags=["STRASSE", "ÉCOLE"])
        await task_factory(tags=["école"])
        assert task["tags"] == ["Straße", "ÉCOLE"]  # by casefolded name: "strasse" < "école"
        assert await tag_usage(client, user) == {"Straße": 2, "ÉCOLE": 2}

    async def test_deduplicated_within_a_task(self, client, user: UserHandle, task_factory) -> None:
        task = await task_factory(tags=["a", "A", " a ", "b"])
        assert task["tags"] == ["a", "b"]
        assert await tag_usage(client, user) == {"a": 1, "b": 1}

    async def test_markup_is_removed_from_names(self, task_factory) -> None:
        task = await task_factory(tags=["<b>bold</b>"])
        assert task["tags"] == ["bold"]

    async def test_racing_creation_of_one_new_tag(self, client, user: UserHandle) -> None:
        responses = await asyncio.gather(
            *(
                client.post(
                    TASKS,
                    json={"title": f"t{i}", "tags": ["brand-new", f"own{i}"]},
                    headers=user.headers,
                )
                for i in range(8)
            )
        )
        assert [r.status_code for r in responses] == [201] * 8
        usage = await tag_usage(client, user)
        assert usage["brand-new"] == 8
        assert len(usage) == 9

    async def test_racing_creation_of_several_new_tags_in_any_order(
        self, client, user: UserHandle
    ) -> None:
        orders = [["x", "y", "z"], ["z", "y", "x"], ["y", "z", "x"], ["Z", "X", "Y"]] * 2
        responses = await asyncio.gather(
            *(
                client.post(TASKS, json={"title": "t", "tags": tags}, headers=user.headers)
                for tags in orders
            )
        )
        assert [r.status_code for r in responses] == [201] * 8
        usage = await tag_usage(client, user)  # whichever spelling came first
        assert {name.casefold(): count for name, count in usage.items()} == {"x": 8, "y": 8, "z": 8}


class TestListTags:
    async def test_most_used_first_then_by_name(
        self, client, user: UserHandle, task_factory
    ) -> None:
        await task_factory(tags=["b", "common", "Alpha"])
        await task_factory(tags=["common", "zeta"])
        await task_factory(tags=["zeta", "common"])
        response = await client.get(TAGS, headers=user.headers)
        assert response.status_code == 200
        assert response.json() == [
            {"name": "common", "usage_count": 3},
            {"name": "zeta", "usage_count": 2},
            {"name": "Alpha", "usage_count": 1},
            {"name": "b", "usage_count": 1},
        ]

    async def test_unused_tags_are_listed_with_zero(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory(tags=["gone"])
        await client.patch(f"{TASKS}/{task['id']}", json={"tags": []}, headers=user.headers)
        assert await tag_usage(client, user) == {"gone": 0}

    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [("wo", ["work", "work stuff", "Workshop"]), ("WORK", ["work", "work stuff", "Workshop"]),
         ("work ", ["work stuff"]), ("work   s", ["work stuff"]), ("x", []), ("", None),
         ("%", []), ("100%", ["100%"]), ("_", ["_private"]), ("_p", ["_private"])],
    )  # fmt: skip
    async def test_prefix(
        self, client, user: UserHandle, task_factory, prefix: str, expected
    ) -> None:
        await task_factory(tags=["work", "Workshop", "work stuff", "home", "100%", "_private"])
        await task_factory(tags=["work"])
        response = await client.get(TAGS, params={"prefix": prefix}, headers=user.headers)
        names = [tag["name"] for tag in response.json()]
        assert names == (expected if expected is not None else names)
        if expected is None:
            assert len(names) == 6

    @pytest.mark.parametrize("prefix", ["x" * 51, "a\x01"])
    async def test_bad_prefix_is_422(self, client, user: UserHandle, prefix: str) -> None:
        response = await client.get(TAGS, params={"prefix": prefix}, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "query.prefix"

    async def test_needs_authentication(self, client) -> None:
        assert (await client.get(TAGS)).status_code == 401


class TestRenameTag:
    async def test_renames_on_every_task(self, client, user: UserHandle, task_factory) -> None:
        first = await task_factory(tags=["todo"])
        second = await task_factory(tags=["todo", "other"])
        response = await client.patch(
            f"{TAGS}/todo", json={"name": "  next   up "}, headers=user.headers
        )
        assert response.status_code == 200
        assert response.json() == {"name": "next up", "usage_count": 2}
        for task in (first, second):
            after = (await get_task(client, user, task["id"])).json()
            assert "next up" in after["tags"]
            assert "todo" not in after["tags"]
            assert after["version"] == task["version"] + 1  # its tag list changed
        assert await tag_usage(client, user) == {"next up": 2, "other": 1}

    async def test_path_name_matches_ignoring_case(
        self, client, user: UserHandle, task_factory
    ) -> None:
        await task_factory(tags=["Home"])
        response = await client.patch(f"{TAGS}/hOmE", json={"name": "house"}, headers=user.headers)
        assert response.json() == {"name": "house", "usage_count": 1}

    async def test_new_spelling_of_the_same_tag(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory(tags=["home"])
        response = await client.patch(f"{TAGS}/home", json={"name": "Home"}, headers=user.headers)
        assert response.json() == {"name": "Home", "usage_count": 1}
        assert (await get_task(client, user, task["id"])).json()["tags"] == ["Home"]

    async def test_same_name_changes_nothing(self, client, user: UserHandle, task_factory) -> None:
        task = await task_factory(tags=["home"])
        response = await client.patch(f"{TAGS}/home", json={"name": "home"}, headers=user.headers)
        assert response.json() == {"name": "home", "usage_count": 1}
        assert (await get_task(client, user, task["id"])).json() == task

    async def test_merges_into_an_existing_tag_without_duplicates(
        self, client, user: UserHandle, task_factory
    ) -> None:
        only_old = await task_factory(tags=["todo"])
        both = await task_factory(tags=["todo", "Next"])
        only_new = await task_factory(tags=["Next"])
        response = await client.patch(f"{TAGS}/todo", json={"name": "next"}, headers=user.headers)
        assert response.status_code == 200
        assert response.json() == {"name": "Next", "usage_count": 3}  # the target's spelling
        for task in (only_old, both, only_new):
            assert (await get_task(client, user, task["id"])).json()["tags"] == ["Next"]
        assert await tag_usage(client, user) == {"Next": 3}
        assert (await list_tasks(client, user, tags="next"))["total"] == 3
        assert (
            await client.get(TAGS, params={"prefix": "todo"}, headers=user.headers)
        ).json() == []

    async def test_names_with_a_slash(self, client, user: UserHandle, task_factory) -> None:
        await task_factory(tags=["home/garden"])
        response = await client.patch(
            f"{TAGS}/home%2Fgarden", json={"name": "a/b"}, headers=user.headers
        )
        assert response.json() == {"name": "a/b", "usage_count": 1}
        assert (await client.delete(f"{TAGS}/a/b", headers=user.headers)).status_code == 204

    @pytest.mark.parametrize(("body", "field"), [({}, "body.name"), ({"name": " "}, "body.name"),
                                                  ({"name": "x" * 51}, "body.name"),
                                                  ({"name": "x", "usage_count": 1}, "body.usage_count")])  # fmt: skip
    async def test_invalid_name_is_422(
        self, client, user: UserHandle, task_factory, body: dict, field: str
    ) -> None:
        await task_factory(tags=["home"])
        response = await client.patch(f"{TAGS}/home", json=body, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field

    @pytest.mark.parametrize("name", ["missing", "x" * 51, "%00", "%20"])
    async def test_unknown_tag_is_404(
        self, client, user: UserHandle, task_factory, name: str
    ) -> None:
        await task_factory(tags=["home"])
        response = await client.patch(f"{TAGS}/{name}", json={"name": "x"}, headers=user.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "tag_not_found"

    async def test_racing_renames_of_one_tag(self, client, user: UserHandle, task_factory) -> None:
        task = await task_factory(tags=["todo"])
        responses = await asyncio.gather(
            *(
                client.patch(f"{TAGS}/todo", json={"name": name}, headers=user.headers)
                for name in ("a", "b", "c")
            )
        )
        assert sorted(r.status_code for r in responses) == [200, 404, 404]
        assert all(r.json()["code"] == "tag_not_found" for r in responses if r.status_code == 404)
        [winner] = [r.json()["name"] for r in responses if r.status_code == 200]
        assert await tag_usage(client, user) == {winner: 1}
        after = (await get_task(client, user, task["id"])).json()
        assert (after["tags"], after["version"]) == ([winner], task["version"] + 1)

    async def test_racing_a_delete(self, client, user: UserHandle, task_factory) -> None:
        await task_factory(tags=["todo"])
        renamed, deleted = await asyncio.gather(
            client.patch(f"{TAGS}/todo", json={"name": "done"}, headers=user.headers),
            client.delete(f"{TAGS}/todo", headers=user.headers),
        )
        # Whichever locks the tag first wins; the other finds it gone.
        assert sorted([renamed.status_code, deleted.status_code]) in ([200, 404], [204, 404])
        expected = {"done": 1} if renamed.status_code == 200 else {}
        assert await tag_usage(client, user) == expected

    async def test_opposite_merges_racing(self, client, user: UserHandle, task_factory) -> None:
        """a -> b and b -> a at once lock both tags in key order: one waits for the
        other, then merges into what it left (they deadlocked, a 500, before)."""
        for round_ in range(4):
            a, b = f"a{round_}", f"b{round_}"
            for name in (a, a, b, b):
                await task_factory(tags=[name])
            responses = await asyncio.gather(
                client.patch(f"{TAGS}/{a}", json={"name": b}, headers=user.headers),
                client.patch(f"{TAGS}/{b}", json={"name": a}, headers=user.headers),
            )
            assert {r.status_code for r in responses} <= {200, 404}
            usage = await tag_usage(client, user)
            assert len([name for name in (a, b) if name in usage]) == 1
            assert usage.get(a, 0) + usage.get(b, 0) == 4


class TestLockOrder:
    """A tag rename or deletion holds the tag's tasks, then waits for the tag; a task
    write holds its task, then the tag. Those can form a cycle (here made on purpose
    with a transaction held open): the rename steps back and starts again instead of
    waiting into a deadlock (PostgreSQL cancelled one side after 1 s: a 500, or the
    writer's transaction lost)."""

    @pytest.mark.parametrize("request_", ["rename", "merge", "delete"])
    async def test_a_writer_holding_the_tag_then_wanting_a_task(
        self, app, client, user: UserHandle, task_factory, request_: str
    ) -> None:
        task = await task_factory(tags=["a"])
        if request_ == "merge":
            await task_factory(tags=["b"])
        async with app.state.database.connection() as writer, writer.transaction():
            await writer.execute(
                "SELECT 1 FROM tag WHERE user_id = $1 AND name_key = 'a' FOR KEY SHARE",
                uuid.UUID(user.id),
            )
            if request_ == "delete":
                sent = client.delete(f"{TAGS}/a", headers=user.headers)
            else:
                new = "A" if request_ == "rename" else "b"
                sent = client.patch(f"{TAGS}/a", json={"name": new}, headers=user.headers)
            pending = asyncio.create_task(sent)
            await wait_for_a_lock_wait(app)  # it holds the task, and waits for the tag
            # The writer's next lock: the task. It must get it (no deadlock).
            await writer.execute(
                "UPDATE task SET version = version + 1 WHERE id = $1", uuid.UUID(task["id"])
            )
        response = await pending
        assert response.status_code in (200, 204), response.text
        after = (await get_task(client, user, task["id"])).json()
        expected = {"rename": ["A"], "merge": ["b"], "delete": []}[request_]
        assert after["tags"] == expected
        assert after["version"] == task["version"] + 2  # the writer's and the request's

    async def test_a_deadlock_that_still_happens_is_503_and_writes_nothing(
        self, app, client, user: UserHandle, task_factory
    ) -> None:
        """A cycle no lock order prevents (a transaction of its own taking the tag, then
        the task): PostgreSQL cancels the request's side, waiting the longer, and the
        client gets 503 database_conflict with Retry-After, never 500."""
        task = await task_factory(tags=["a"])
        async with app.state.database.connection() as writer, writer.transaction():
            await writer.execute(
                "SELECT 1 FROM tag WHERE user_id = $1 AND name_key = 'a' FOR UPDATE",
                uuid.UUID(user.id),
            )
            pending = asyncio.create_task(
                client.patch(
                    f"{TASKS}/{task['id']}",
                    json={"title": "changed", "tags": ["a", "b"]},
                    headers=user.headers,
                )
            )
            await wait_for_a_lock_wait(app)
            await writer.execute(
                "SELECT 1 FROM task WHERE id = $1 FOR UPDATE", uuid.UUID(task["id"])
            )
        response = await pending
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_conflict"
        assert response.headers["retry-after"] == "1"
        after = (await get_task(client, user, task["id"])).json()
        assert (after["title"], after["tags"], after["version"]) == (
            task["title"],
            ["a"],
            task["version"],
        )

    async def test_a_task_tagged_meanwhile_gets_a_new_version(
        self, app, client, user: UserHandle, task_factory
    ) -> None:
        await task_factory(tags=["a"])
        await task_factory(tags=["b"])
        late = await task_factory()
        async with app.state.database.connection() as writer, writer.transaction():
            # A task write in flight: its row changed, linking it to "a" (uncommitted).
            await writer.execute(
                "UPDATE task SET version = version + 1 WHERE id = $1", uuid.UUID(late["id"])
            )
            await writer.execute(
                "INSERT INTO task_tag (task_id, tag_id) SELECT $1, id FROM tag"
                " WHERE user_id = $2 AND name_key = 'a'",
                uuid.UUID(late["id"]),
                uuid.UUID(user.id),
            )
            pending = asyncio.create_task(
                client.patch(f"{TAGS}/a", json={"name": "b"}, headers=user.headers)
            )
            await wait_for_a_lock_wait(app)
        response = await pending
        assert response.status_code == 200, response.text
        after = (await get_task(client, user, late["id"])).json()
        assert after["tags"] == ["b"]
        assert after["version"] == late["version"] + 2  # its tags changed after the write
        assert await tag_usage(client, user) == {"b": 3}


class TestDeleteTag:
    async def test_removes_it_from_every_task(self, client, user: UserHandle, task_factory) -> None:
        first = await task_factory(tags=["old", "keep"])
        second = await task_factory(tags=["OLD"])
        response = await client.delete(f"{TAGS}/Old", headers=user.headers)
        assert response.status_code == 204
        assert (await get_task(client, user, first["id"])).json()["tags"] == ["keep"]
        after = (await get_task(client, user, second["id"])).json()
        assert after["tags"] == []
        assert after["version"] == second["version"] + 1
        assert await tag_usage(client, user) == {"keep": 1}
        assert (await list_tasks(client, user, tags="old"))["total"] == 0

    async def test_name_can_be_created_again(self, client, user: UserHandle, task_factory) -> None:
        await task_factory(tags=["Old"])
        await client.delete(f"{TAGS}/old", headers=user.headers)
        task = await task_factory(tags=["old"])
        assert task["tags"] == ["old"]

    async def test_unknown_tag_is_404(self, client, user: UserHandle) -> None:
        response = await client.delete(f"{TAGS}/missing", headers=user.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "tag_not_found"

    async def test_racing_deletes_one_204_the_others_404(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory(tags=["old", "keep"])
        responses = await asyncio.gather(
            *(client.delete(f"{TAGS}/old", headers=user.headers) for _ in range(4))
        )
        assert sorted(r.status_code for r in responses) == [204, 404, 404, 404]
        assert all(r.json()["code"] == "tag_not_found" for r in responses if r.status_code == 404)
        after = (await get_task(client, user, task["id"])).json()
        assert (after["tags"], after["version"]) == (["keep"], task["version"] + 1)


class TestRoundTrips:
    """What each route costs besides the caller's session check."""

    @staticmethod
    def ours(statements: list[str]) -> list[str]:
        return [s.split(None, 1)[0] for s in statements if "user_session" not in s]

    @pytest.mark.parametrize("prefix", [None, "wo"])
    async def test_list_is_one_statement(
        self, app, client, user: UserHandle, task_factory, prefix
    ) -> None:
        await task_factory(tags=["work", "home"])
        params = {"prefix": prefix} if prefix else {}
        with recorded_statements(app) as seen:
            response = await client.get(TAGS, params=params, headers=user.headers)
        assert response.status_code == 200
        assert self.ours(seen) == ["SELECT"]

    @pytest.mark.parametrize(
        ("new_name", "statements"),
        [
            # touch the tasks, bound the later lock waits (set_config), lock the tag,
            # count its usage
            ("home", ["WITH", "SELECT", "SELECT", "SELECT"]),  # the same name: no task
            # ... touch tasks tagged meanwhile ("late"), respell counting as it saves
            ("Home", ["WITH", "SELECT", "SELECT", "WITH", "UPDATE"]),
            # touch, bound, lock the old tag then find the target (or the reverse: in
            # key order), touch the late, merge, count
            ("work", ["WITH", "SELECT", "SELECT", "WITH", "WITH", "WITH", "SELECT"]),
            ("chores", ["WITH", "SELECT", "WITH", "SELECT", "WITH", "WITH", "SELECT"]),
            ("zoo", ["WITH", "SELECT", "SELECT", "WITH", "WITH", "WITH", "SELECT"]),  # new tag
        ],
    )
    async def test_rename_is_one_transaction(
        self, app, client, user: UserHandle, task_factory, new_name: str, statements: list[str]
    ) -> None:
        await task_factory(tags=["home", "work", "chores"])
        with recorded_statements(app) as seen:
            response = await client.patch(
                f"{TAGS}/home", json={"name": new_name}, headers=user.headers
            )
        assert response.status_code == 200
        assert self.ours(seen) == ["BEGIN;", *statements, "COMMIT;"]

    async def test_delete_is_one_transaction(
        self, app, client, user: UserHandle, task_factory
    ) -> None:
        await task_factory(tags=["home"])
        with recorded_statements(app) as seen:
            response = await client.delete(f"{TAGS}/home", headers=user.headers)
        assert response.status_code == 204
        # touch, bound the later waits, lock the tag, touch the late, delete
        assert self.ours(seen) == [
            "BEGIN;",
            "WITH",
            "SELECT",
            "SELECT",
            "WITH",
            "DELETE",
            "COMMIT;",
        ]
