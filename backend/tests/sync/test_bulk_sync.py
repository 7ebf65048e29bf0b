"""GET /sync sees bulk writes: they go through the same tables (and triggers) as the
single routes."""

import httpx

from tests.conftest import UserHandle
from tests.sync.replica import Replica, assert_replica_matches, sync
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import TASKS

BULK = f"{TASKS}/bulk"


async def test_bulk_create_and_delete_are_reported(
    client: httpx.AsyncClient, user: UserHandle, task_factory: TaskFactory
) -> None:
    doomed = await task_factory(title="doomed", tags=["old"])
    kept = await task_factory(title="kept")
    replica = Replica()
    await replica.sync(client, user)
    operations = [
        {"op": "create", "ref": "a", "data": {"title": "a", "tags": ["new"]}},
        {"op": "create", "ref": "b", "data": {"title": "b", "tags": ["new"]}},
        {"op": "create", "ref": "gone", "data": {"title": "short-lived"}},
        {"op": "delete", "id": "gone"},
        {"op": "delete", "id": doomed["id"]},
        {"op": "complete", "id": kept["id"]},
    ]
    response = await client.post(BULK, json={"operations": operations}, headers=user.headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 201, 204, 204, 200]

    body = await sync(client, user, replica.cursor)
    changed = {task["id"]: task for task in body["tasks"]}
    assert set(changed) == {results[0]["id"], results[1]["id"], kept["id"]}
    assert changed[results[0]["id"]] == results[0]["task"]
    assert changed[kept["id"]] == results[5]["task"]
    # The task created and deleted in the same request is reported deleted (or not at
    # all), never as a live task; the deleted one is reported deleted.
    assert doomed["id"] in body["deleted"]["tasks"]
    assert results[2]["id"] not in changed
    assert {"name": "new", "usage_count": 2} in body["tags"]
    assert "old" in body["deleted"]["tags"] or {"name": "old", "usage_count": 0} in body["tags"]
    replica.apply(body)
    await assert_replica_matches(replica, client, user)


async def test_atomic_abort_reports_nothing(client: httpx.AsyncClient, user: UserHandle) -> None:
    first = await sync(client, user)
    operations = [
        {"op": "create", "data": {"title": "never"}},
        {"op": "delete", "id": "00000000-0000-4000-8000-000000000000"},
    ]
    response = await client.post(
        BULK, json={"operations": operations, "atomic": True}, headers=user.headers
    )
    assert response.status_code == 409
    body = await sync(client, user, first["cursor"])
    assert body["tasks"] == []
    assert body["deleted"]["tasks"] == []
