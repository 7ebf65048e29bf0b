"""POST /tasks/bulk with subtasks, manual order and the trash: `data.parent_id` (a
task id or an earlier create's ref), the `move` operation, `delete` trashing."""

from typing import Any

from tests.conftest import UserHandle
from tests.tasks.helpers import create_project, create_task, get_task, list_tasks
from tests.tasks.test_bulk import bulk, create, statuses


def move(task_id: str, **where: Any) -> dict[str, Any]:
    return {"op": "move", "id": task_id, **where}


class TestParentRefs:
    async def test_a_tree_in_one_request(self, client, user: UserHandle) -> None:
        project = await create_project(client, user)
        body = await bulk(
            client,
            user,
            [
                create("root", ref="r", project_id=project["id"]),
                create("child", ref="c", parent_id="r"),
                create("grandchild", parent_id="c"),
                create("alone"),
                create("alone too"),
            ],
        )
        assert statuses(body) == [201] * 5
        root, child, grandchild = (r["task"] for r in body["results"][:3])
        assert child["parent_id"] == root["id"]
        assert grandchild["parent_id"] == child["id"]
        assert {t["project_id"] for t in (root, child, grandchild)} == {project["id"]}
        listed = await list_tasks(client, user, parent_id=root["id"])
        assert [t["id"] for t in listed["items"]] == [child["id"]]

    async def test_an_update_names_a_ref(self, client, user: UserHandle) -> None:
        task = await create_task(client, user)
        body = await bulk(
            client,
            user,
            [
                create("parent", ref="p"),
                {"op": "update", "id": task["id"], "data": {"parent_id": "p"}},
            ],
        )
        assert statuses(body) == [201, 200]
        assert body["results"][1]["task"]["parent_id"] == body["results"][0]["id"]

    async def test_the_rules_of_the_single_routes(
        self, client, user: UserHandle, other_user: UserHandle
    ) -> None:
        foreign = await create_task(client, other_user)
        a = await create_task(client, user)
        b = await create_task(client, user, parent_id=a["id"])
        body = await bulk(
            client,
            user,
            [
                create("x", parent_id=foreign["id"]),
                {"op": "update", "id": a["id"], "data": {"parent_id": b["id"]}},
                create("y", ref="bad", parent_id=foreign["id"]),
                create("z", parent_id="bad"),
            ],
        )
        assert statuses(body) == [422, 422, 422, 404]
        codes = [r["error"]["code"] for r in body["results"]]
        assert codes == [
            "parent_not_found",
            "invalid_parent",
            "parent_not_found",
            "ref_not_created",
        ]
        assert (
            body["results"][0]["error"]["errors"][0]["field"] == "body.operations.0.data.parent_id"
        )

    async def test_an_unknown_ref_is_422_before_anything_runs(
        self, client, user: UserHandle
    ) -> None:
        body = await bulk(
            client, user, [create("x", parent_id="later"), create("y", ref="later")], expect=422
        )
        assert [e["field"] for e in body["errors"]] == ["body.operations.0.data.parent_id"]
        assert (await list_tasks(client, user))["total"] == 0

    async def test_atomic(self, client, user: UserHandle) -> None:
        body = await bulk(
            client,
            user,
            [
                create("root", ref="r"),
                create("child", parent_id="r"),
                create("bad", parent_id="00000000-0000-4000-8000-000000000000"),
            ],
            expect=409,
            atomic=True,
        )
        assert [r["status"] for r in body["results"]] == [424, 424, 422]
        assert (await list_tasks(client, user))["total"] == 0


class TestMove:
    async def test_moves_and_refs(self, client, user: UserHandle) -> None:
        a = await create_task(client, user, title="a")
        b = await create_task(client, user, title="b")
        body = await bulk(
            client,
            user,
            [
                create("new", ref="n"),
                move("n", before=a["id"]),
                move(b["id"], after="n"),
                move(a["id"], after=a["id"]),
            ],
        )
        assert statuses(body) == [201, 200, 200, 422]
        assert body["results"][3]["error"]["code"] == "invalid_position"
        listed = await list_tasks(client, user, sort_by="position", sort_direction="asc")
        assert [t["title"] for t in listed["items"]] == ["new", "b", "a"]

    async def test_if_match_and_body(self, client, user: UserHandle) -> None:
        a = await create_task(client, user)
        b = await create_task(client, user)
        body = await bulk(client, user, [move(a["id"], after=b["id"], if_match=9)])
        assert statuses(body) == [412]
        body = await bulk(client, user, [move(a["id"], after=b["id"], if_match=a["version"])])
        assert statuses(body) == [200]
        for bad in (
            move(a["id"]),
            move(a["id"], before=b["id"], after=b["id"]),
            move(a["id"], before=None),
        ):
            await bulk(client, user, [bad], expect=422)


class TestDelete:
    async def test_trashes_the_subtree(self, client, user: UserHandle) -> None:
        body = await bulk(
            client,
            user,
            [
                create("root", ref="r"),
                create("child", ref="c", parent_id="r"),
                {"op": "delete", "id": "r"},
            ],
        )
        assert statuses(body) == [201, 201, 204]
        child_id = body["results"][1]["id"]
        assert (await get_task(client, user, child_id)).status_code == 404
        response = await client.get("/api/v1/tasks/trash", headers=user.headers)
        assert response.json()["total"] == 2


class TestTreeLockFirst:
    async def test_a_transaction_takes_the_tree_lock_before_any_row(
        self, app, client, user: UserHandle
    ) -> None:
        """An atomic bulk that updates a task, then trashes another (which takes the
        tree lock), beside a reshaping write that holds the tree lock and then wants the
        first task: the bulk waits for the lock before touching any row, so both
        finish. (Taken at the trash, it held the first task: a deadlock, one side
        cancelled after 1 s.)"""
        import asyncio
        import uuid

        from app.tasks import tree
        from tests.conftest import wait_for_a_lock_wait

        first, second = await create_task(client, user), await create_task(client, user)
        operations = [
            {"op": "update", "id": first["id"], "data": {"title": "renamed"}},
            {"op": "delete", "id": second["id"]},
        ]
        async with app.state.database.connection() as writer, writer.transaction():
            await writer.execute(tree.LOCK, uuid.UUID(user.id))
            pending = asyncio.create_task(bulk(client, user, operations, atomic=True))
            await wait_for_a_lock_wait(app)
            await writer.execute(
                "UPDATE task SET version = version + 1 WHERE id = $1", uuid.UUID(first["id"])
            )
        body = await pending
        assert statuses(body) == [200, 204]
        after = (await get_task(client, user, first["id"])).json()
        assert (after["title"], after["version"]) == ("renamed", first["version"] + 2)

    async def test_the_tasks_it_names_are_locked_in_id_order(
        self, app, client, user: UserHandle
    ) -> None:
        """An atomic bulk naming two tasks in descending id order, beside a write that
        locks both in id order (a tag rename, a project deletion): the bulk locks them
        in id order up front, so the two queue instead of deadlocking. (In the
        operations' order it held the second waiting for the first: seen in the
        randomized sync test, one side cancelled after 1 s.)"""
        import asyncio
        import uuid

        from tests.conftest import wait_for_a_lock_wait

        low, high = await create_task(client, user), await create_task(client, user)
        assert uuid.UUID(low["id"]) < uuid.UUID(high["id"])  # UUIDv7: creation order
        operations = [
            {"op": "update", "id": high["id"], "data": {"title": "high"}},
            {"op": "complete", "id": low["id"]},
        ]
        lock = "SELECT 1 FROM task WHERE id = $1 FOR NO KEY UPDATE"
        async with app.state.database.connection() as writer, writer.transaction():
            await writer.execute(lock, uuid.UUID(low["id"]))
            pending = asyncio.create_task(bulk(client, user, operations, atomic=True))
            await wait_for_a_lock_wait(app)
            await writer.execute(lock, uuid.UUID(high["id"]))
        body = await pending
        assert statuses(body) == [200, 200]
        assert (await get_task(client, user, low["id"])).json()["completed"] is True
