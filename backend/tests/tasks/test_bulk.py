"""POST /api/v1/tasks/bulk"""

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import UserHandle, client_for, wait_for_a_lock_wait
from tests.tasks.helpers import MISSING_ID, TASKS, count_rows, get_task, list_tasks, tag_usage

BULK = f"{TASKS}/bulk"


async def bulk(
    client: httpx.AsyncClient,
    user: UserHandle,
    operations: list[dict[str, Any]],
    expect: int = 200,
    **extra: Any,
) -> dict[str, Any]:
    headers = {**user.headers, **extra.pop("headers", {})}
    response = await client.post(BULK, json={"operations": operations, **extra}, headers=headers)
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


def create(title: str = "A task", ref: str | None = None, **data: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"op": "create", "data": {"title": title, **data}}
    if ref is not None:
        op["ref"] = ref
    return op


def statuses(body: dict[str, Any]) -> list[int]:
    return [result["status"] for result in body["results"]]


class TestOperations:
    async def test_create_answers_the_task_as_post_does(self, client, user: UserHandle) -> None:
        body = await bulk(client, user, [create("Pay rent", ref="r", tags=["Money"])])
        [result] = body["results"]
        assert result["status"] == 201
        assert result["ref"] == "r"
        task = result["task"]
        assert task["id"] == result["id"]
        assert task["title"] == "Pay rent"
        assert task["tags"] == ["Money"]
        stored = await get_task(client, user, result["id"])
        assert stored.json() == task

    async def test_update_complete_delete(self, client, user: UserHandle, task_factory) -> None:
        a = await task_factory(title="a")
        b = await task_factory(title="b")
        body = await bulk(client, user, [
            {"op": "update", "id": a["id"], "data": {"priority": "high", "tags": ["x"]}},
            {"op": "complete", "id": a["id"]},
            {"op": "complete", "id": a["id"], "completed": True},
            {"op": "delete", "id": b["id"]},
        ])  # fmt: skip
        assert statuses(body) == [200, 200, 200, 204]
        update, toggle, again, delete = body["results"]
        assert update["task"]["priority"] == "high"
        assert update["task"]["tags"] == ["x"]
        assert toggle["task"]["completed"] is True
        assert again["task"]["completed_at"] == toggle["task"]["completed_at"]
        assert delete == {"id": b["id"], "status": 204}
        assert (await get_task(client, user, b["id"])).status_code == 404
        assert (await get_task(client, user, a["id"])).json() == again["task"]

    async def test_patch_null_clears_and_omitted_stays(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory(description="d", due_date="2030-01-01")
        body = await bulk(client, user, [
            {"op": "update", "id": task["id"], "data": {"description": None}}
        ])  # fmt: skip
        changed = body["results"][0]["task"]
        assert changed["description"] is None
        assert changed["due_date"] == "2030-01-01"

    async def test_missing_task_is_404_and_the_others_run(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory()
        body = await bulk(client, user, [
            {"op": "delete", "id": MISSING_ID},
            {"op": "update", "id": MISSING_ID, "data": {"title": "x"}},
            {"op": "complete", "id": MISSING_ID},
            {"op": "complete", "id": task["id"]},
        ])  # fmt: skip
        assert statuses(body) == [404, 404, 404, 200]
        error = body["results"][0]["error"]
        assert error["code"] == "task_not_found"
        assert set(error) >= {"type", "title", "status", "detail", "code", "request_id"}
        assert error["status"] == 404
        assert error["title"] == "Not Found"
        assert body["results"][0]["id"] == MISSING_ID

    async def test_project_not_found_is_422_located_in_the_operation(
        self, client, user: UserHandle, other_user: UserHandle, project_factory, task_factory
    ) -> None:
        theirs = await project_factory(owner=other_user)
        task = await task_factory()
        body = await bulk(client, user, [
            create(project_id=theirs["id"]),
            {"op": "update", "id": task["id"], "data": {"project_id": MISSING_ID}},
        ])  # fmt: skip
        assert statuses(body) == [422, 422]
        for index, result in enumerate(body["results"]):
            assert result["error"]["code"] == "project_not_found"
            assert result["error"]["errors"][0]["field"] == (
                f"body.operations.{index}.data.project_id"
            )
        assert (await list_tasks(client, user))["total"] == 1
        assert await tag_usage(client, user) == {}

    async def test_own_project_is_accepted(self, client, user: UserHandle, project_factory) -> None:
        project = await project_factory()
        body = await bulk(client, user, [create(project_id=project["id"]), create()])
        assert statuses(body) == [201, 201]
        assert body["results"][0]["task"]["project_id"] == project["id"]


class TestIfMatch:
    async def test_stale_version_is_412_and_changes_nothing(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory()
        body = await bulk(client, user, [
            {"op": "update", "id": task["id"], "if_match": '"7"', "data": {"title": "x"}},
            {"op": "complete", "id": task["id"], "if_match": 7},
            {"op": "delete", "id": task["id"], "if_match": '"7"'},
        ])  # fmt: skip
        assert statuses(body) == [412, 412, 412]
        assert body["results"][0]["error"]["code"] == "precondition_failed"
        assert (await get_task(client, user, task["id"])).json() == task

    async def test_current_version_passes_and_the_next_op_sees_the_new_one(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory()
        body = await bulk(client, user, [
            {"op": "update", "id": task["id"], "if_match": f'"{task["version"]}"',
             "data": {"title": "x"}},
            {"op": "complete", "id": task["id"], "if_match": task["version"]},
            {"op": "delete", "id": task["id"], "if_match": task["version"] + 1},
        ])  # fmt: skip
        assert statuses(body) == [200, 412, 204]

    async def test_star_matches_any(self, client, user: UserHandle, task_factory) -> None:
        task = await task_factory()
        body = await bulk(client, user, [{"op": "delete", "id": task["id"], "if_match": "*"}])
        assert statuses(body) == [204]


class TestRefs:
    async def test_later_operations_use_a_ref_as_id(self, client, user: UserHandle) -> None:
        body = await bulk(client, user, [
            create("a", ref="tmp-1"),
            {"op": "update", "id": "tmp-1", "data": {"title": "renamed"}},
            {"op": "complete", "id": "tmp-1"},
            create("b", ref="tmp-2"),
            {"op": "delete", "id": "tmp-2"},
        ])  # fmt: skip
        assert statuses(body) == [201, 200, 200, 201, 204]
        new_id = body["results"][0]["id"]
        assert body["results"][1]["id"] == new_id
        assert body["results"][2]["task"]["title"] == "renamed"
        assert body["results"][4]["id"] == body["results"][3]["id"]
        assert (await list_tasks(client, user))["total"] == 1

    async def test_a_ref_of_a_failed_create_fails_with_404(self, client, user: UserHandle) -> None:
        body = await bulk(client, user, [
            create("a", ref="bad", project_id=MISSING_ID),
            {"op": "update", "id": "bad", "data": {"title": "x"}},
            {"op": "delete", "id": "bad"},
        ])  # fmt: skip
        assert statuses(body) == [422, 404, 404]
        assert body["results"][0]["ref"] == "bad"
        assert "id" not in body["results"][0]
        assert body["results"][1]["error"]["code"] == "ref_not_created"
        assert body["results"][1]["error"]["status"] == 404

    @pytest.mark.parametrize(
        ("operations", "field"),
        [
            ([create(ref="a"), create(ref="a")], "body.operations.1.ref"),
            ([{"op": "delete", "id": "later"}, create(ref="later")], "body.operations.0.id"),
            ([{"op": "delete", "id": "nope"}], "body.operations.0.id"),
            ([create(ref="")], "body.operations.0.ref"),
            ([create(ref="x" * 65)], "body.operations.0.ref"),
        ],
    )
    async def test_bad_refs_are_422_before_anything_runs(
        self, app, client, user: UserHandle, operations, field
    ) -> None:
        body = await bulk(client, user, [*operations, create("valid")], expect=422)
        assert [error["field"] for error in body["errors"]] == [field]
        assert await count_rows(app, "task") == 0

    async def test_longest_ref(self, client, user: UserHandle) -> None:
        body = await bulk(client, user, [create(ref="r" * 64)])
        assert body["results"][0]["ref"] == "r" * 64


class TestValidation:
    @pytest.mark.parametrize("count", [0, 101])
    async def test_0_or_101_operations_are_422(self, app, client, user: UserHandle, count) -> None:
        body = await bulk(client, user, [create() for _ in range(count)], expect=422)
        assert body["code"] == "validation_error"
        assert body["errors"][0]["field"] == "body.operations"
        assert await count_rows(app, "task") == 0

    async def test_100_operations(self, client, user: UserHandle) -> None:
        body = await bulk(client, user, [create(f"t{i}") for i in range(100)])
        assert statuses(body) == [201] * 100
        assert (await list_tasks(client, user))["total"] == 100

    async def test_oversized_title_fails_only_its_operation(self, client, user: UserHandle) -> None:
        operations = [create(f"t{i}") for i in range(100)]
        operations[57] = create("x" * 201)
        body = await bulk(client, user, operations)
        assert statuses(body) == [201] * 57 + [422] + [201] * 42
        error = body["results"][57]["error"]
        assert error["code"] == "validation_error"
        assert error["errors"] == [{
            "field": "body.operations.57.data.title", "message":
            "String should have at most 200 characters", "type": "string_too_long",
            "max_length": 200,
        }]  # fmt: skip
        assert "x" * 201 not in str(body)  # never echoed
        assert (await list_tasks(client, user))["total"] == 99

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"title": "   "}, "title"),
            ({"title": "x", "owner": "me"}, "owner"),
            ({"title": "x", "tags": ["t"] * 21}, "tags"),
            ({"title": "x", "priority": "urgent"}, "priority"),
            ({}, "title"),
        ],
    )
    async def test_invalid_create_data_is_that_operations_422(
        self, client, user: UserHandle, data, field
    ) -> None:
        body = await bulk(client, user, [{"op": "create", "data": data}, create()])
        assert statuses(body) == [422, 201]
        fields = [error["field"] for error in body["results"][0]["error"]["errors"]]
        assert fields == [f"body.operations.0.data.{field}"]

    async def test_invalid_patch_data(self, client, user: UserHandle, task_factory) -> None:
        task = await task_factory()
        body = await bulk(client, user, [
            {"op": "update", "id": task["id"], "data": {"title": None}},
            {"op": "update", "id": task["id"], "data": {"id": MISSING_ID}},
        ])  # fmt: skip
        assert statuses(body) == [422, 422]
        assert body["results"][0]["id"] == task["id"]
        assert (await get_task(client, user, task["id"])).json() == task

    @pytest.mark.parametrize(
        ("operation", "field"),
        [
            ({"op": "rename", "id": MISSING_ID}, "body.operations.0.op"),
            ({"id": MISSING_ID}, "body.operations.0.op"),
            ({"op": "delete"}, "body.operations.0.id"),
            ({"op": "delete", "id": MISSING_ID, "extra": 1}, "body.operations.0.extra"),
            ({"op": "complete", "id": MISSING_ID, "completed": "yes"},
             "body.operations.0.completed"),
            ({"op": "create", "data": "title"}, None),
            ({"op": "update", "id": MISSING_ID}, "body.operations.0.data"),
        ],
    )  # fmt: skip
    async def test_a_bad_envelope_is_422_before_anything_runs(
        self, app, client, user: UserHandle, operation, field
    ) -> None:
        response = await client.post(
            BULK, json={"operations": [operation, create()]}, headers=user.headers
        )
        if field is None:  # data that is not an object: that operation's own 422
            assert statuses(response.json()) == [422, 201]
            return
        assert response.status_code == 422, response.text
        body = response.json()
        assert [error["field"] for error in body["errors"]] == [field]
        assert "rename" not in response.text  # the submitted op is not echoed
        assert await count_rows(app, "task") == 0

    @pytest.mark.parametrize("body", [{}, {"operations": {}}, [], {"operations": [], "x": 1}])
    async def test_not_a_list_of_operations(self, client, user: UserHandle, body) -> None:
        response = await client.post(BULK, json=body, headers=user.headers)
        assert response.status_code == 422

    async def test_unauthenticated_is_401(self, client) -> None:
        response = await client.post(BULK, json={"operations": [create()]})
        assert response.status_code == 401


class TestSanitizing:
    async def test_nested_strings_are_sanitized(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory()
        body = await bulk(client, user, [
            create("<b>Bold</b> a < b", description="<script>x</script>Tom & Jerry",
                   tags=["<i>home</i>"]),
            {"op": "update", "id": task["id"], "data": {"title": "  <em>new</em>  "}},
        ])  # fmt: skip
        created = body["results"][0]["task"]
        assert created["title"] == "Bold a < b"
        assert created["description"] == "xTom & Jerry"
        assert created["tags"] == ["home"]
        assert body["results"][1]["task"]["title"] == "new"

    async def test_markup_only_title_is_that_operations_422(self, client, user: UserHandle) -> None:
        body = await bulk(client, user, [create("<b></b>"), create()])
        assert statuses(body) == [422, 201]

    async def test_control_character_is_422_for_the_request(
        self, app, client, user: UserHandle
    ) -> None:
        body = await bulk(client, user, [create(), create("a\u0000b")], expect=422)
        assert body["errors"][0]["field"] == "body.operations.1.data.title"
        assert await count_rows(app, "task") == 0


class TestIsolation:
    async def test_another_users_task_is_404_and_untouched(
        self, client, user: UserHandle, other_user: UserHandle, task_factory
    ) -> None:
        theirs = await task_factory(owner=other_user)
        body = await bulk(client, user, [
            {"op": "update", "id": theirs["id"], "data": {"title": "mine"}},
            {"op": "complete", "id": theirs["id"]},
            {"op": "delete", "id": theirs["id"]},
            {"op": "update", "id": MISSING_ID, "data": {"title": "mine"}},
        ])  # fmt: skip
        assert statuses(body) == [404, 404, 404, 404]
        errors = [result["error"] for result in body["results"]]
        first, *rest = [{k: v for k, v in e.items() if k != "request_id"} for e in errors]
        assert all(error == first for error in rest)  # a foreign id looks like a missing one
        assert (await get_task(client, other_user, theirs["id"])).json() == theirs

    async def test_refs_and_tags_are_per_user(
        self, client, user: UserHandle, other_user: UserHandle
    ) -> None:
        await bulk(client, user, [create(tags=["shared"], ref="x")])
        body = await bulk(client, other_user, [create(tags=["shared"], ref="x")])
        assert statuses(body) == [201]
        assert await tag_usage(client, user) == {"shared": 1}
        assert await tag_usage(client, other_user) == {"shared": 1}


class TestAtomic:
    async def test_all_succeed(self, client, user: UserHandle) -> None:
        body = await bulk(client, user, [create(ref="a"), {"op": "complete", "id": "a"}],
                          atomic=True)  # fmt: skip
        assert statuses(body) == [201, 200]

    async def test_any_failure_writes_nothing(
        self, app, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory(title="keep", tags=["old"])
        before = await list_tasks(client, user)
        body = await bulk(client, user, [
            create("new", ref="n", tags=["fresh"]),
            create("newer", tags=["fresher"]),
            {"op": "update", "id": task["id"], "data": {"title": "changed", "tags": ["t"]}},
            {"op": "delete", "id": MISSING_ID},
            {"op": "update", "id": "n", "if_match": 9, "data": {"title": "x"}},
            {"op": "delete", "id": task["id"]},
        ], expect=409, atomic=True)  # fmt: skip
        assert body["code"] == "bulk_aborted"
        assert body["status"] == 409
        assert statuses(body) == [424, 424, 424, 404, 412, 424]
        assert body["results"][0] == {
            "ref": "n",
            "status": 424,
            "error": body["results"][0]["error"],
        }
        assert body["results"][0]["error"]["code"] == "rolled_back"
        assert body["results"][2]["id"] == task["id"]
        assert body["results"][3]["error"]["code"] == "task_not_found"
        assert await list_tasks(client, user) == before
        assert await tag_usage(client, user) == {"old": 1}
        assert await count_rows(app, "task") == 1
        assert await count_rows(app, "tag") == 1

    async def test_invalid_data_aborts(self, app, client, user: UserHandle) -> None:
        body = await bulk(client, user, [create(), create("")], expect=409, atomic=True)
        assert statuses(body) == [424, 422]
        assert body["results"][1]["error"]["errors"][0]["field"] == "body.operations.1.data.title"
        assert await count_rows(app, "task") == 0

    async def test_atomic_must_be_a_boolean(self, client, user: UserHandle) -> None:
        await bulk(client, user, [create()], expect=422, atomic="yes")


def keyed(key: str) -> dict[str, dict[str, str]]:
    return {"headers": {"Idempotency-Key": key}}


class TestIdempotencyKey:
    async def test_retry_replays_the_first_answer(self, client, user: UserHandle) -> None:
        operations = [create("a", tags=["t"]), create("b"), {"op": "delete", "id": MISSING_ID}]
        response = await client.post(
            BULK, json={"operations": operations}, headers={**user.headers, "Idempotency-Key": "k"}
        )
        retry = await client.post(
            BULK, json={"operations": operations}, headers={**user.headers, "Idempotency-Key": "k"}
        )
        assert response.status_code == retry.status_code == 200
        assert retry.content == response.content
        assert retry.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in response.headers
        assert (await list_tasks(client, user))["total"] == 2

    async def test_same_key_other_body_is_409(self, client, user: UserHandle) -> None:
        await bulk(client, user, [create("a")], **keyed("k"))
        body = await bulk(client, user, [create("b")], expect=409, **keyed("k"))
        assert body["code"] == "idempotency_key_reused"
        assert (await list_tasks(client, user))["total"] == 1

    async def test_a_key_of_post_tasks_is_not_replayed_here(self, client, user: UserHandle) -> None:
        await client.post(
            TASKS, json={"title": "a"}, headers={**user.headers, "Idempotency-Key": "k"}
        )
        body = await bulk(client, user, [create("a")], expect=409, **keyed("k"))
        assert body["code"] == "idempotency_key_reused"

    async def test_patch_omitted_and_null_are_different_requests(
        self, client, user: UserHandle, task_factory
    ) -> None:
        task = await task_factory()
        await bulk(client, user, [{"op": "update", "id": task["id"], "data": {"title": "x"}}],
                   **keyed("k"))  # fmt: skip
        body = await bulk(client, user, [
            {"op": "update", "id": task["id"], "data": {"title": "x", "description": None}}
        ], expect=409, **keyed("k"))  # fmt: skip
        assert body["code"] == "idempotency_key_reused"

    async def test_aborted_atomic_request_does_not_burn_the_key(
        self, client, user: UserHandle
    ) -> None:
        bad = [create(), {"op": "delete", "id": MISSING_ID}]
        await bulk(client, user, bad, expect=409, atomic=True, **keyed("k"))
        body = await bulk(client, user, [create()], atomic=True, **keyed("k"))
        assert statuses(body) == [201]

    async def test_racing_retries_run_once(self, app, user: UserHandle) -> None:
        payload = {"operations": [create(f"t{i}", tags=["race"]) for i in range(20)]}
        headers = {**user.headers, "Idempotency-Key": "race"}
        clients = [client_for(app) for _ in range(5)]
        try:
            responses = await asyncio.gather(
                *(c.post(BULK, json=payload, headers=headers) for c in clients)
            )
        finally:
            for c in clients:
                await c.aclose()
        assert [r.status_code for r in responses] == [200] * 5
        assert len({r.content for r in responses}) == 1
        assert await count_rows(app, "task") == 20


class TestCreateRuns:
    async def test_tags_shared_by_a_run_are_created_once(self, client, user: UserHandle) -> None:
        body = await bulk(client, user, [
            create("a", tags=["Home", "x"]), create("b", tags=["home"]),
            create("c", tags=["HOME", "X", "x"]), create("d"),
        ])  # fmt: skip
        assert [r["task"]["tags"] for r in body["results"]] == [
            ["Home", "x"],
            ["Home"],
            ["Home", "x"],
            [],
        ]
        assert await tag_usage(client, user) == {"Home": 3, "x": 2}

    async def test_existing_tags_are_reused(self, client, user: UserHandle, task_factory) -> None:
        await task_factory(tags=["Old"])
        body = await bulk(client, user, [create(tags=["old"]), create(tags=["old", "new"])])
        assert [r["task"]["tags"] for r in body["results"]] == [["Old"], ["new", "Old"]]

    async def test_a_bad_project_in_a_run_writes_nothing_for_that_row(
        self, client, user: UserHandle, project_factory
    ) -> None:
        project = await project_factory()
        body = await bulk(client, user, [
            create("a", tags=["only-bad"], project_id=MISSING_ID),
            create("b", tags=["good"], project_id=project["id"]),
            create("c", ref="c", tags=["good"]),
        ])  # fmt: skip
        assert statuses(body) == [422, 201, 201]
        assert await tag_usage(client, user) == {"good": 2}
        listed = {t["id"]: t for t in (await list_tasks(client, user))["items"]}
        assert listed[body["results"][1]["id"]] == body["results"][1]["task"]

    async def test_created_tasks_are_listed_as_answered(self, client, user: UserHandle) -> None:
        body = await bulk(client, user, [
            create(f"t{i}", description="d", priority="high", due_date="2030-01-02", tags=["a"])
            for i in range(3)
        ])  # fmt: skip
        listed = {t["id"]: t for t in (await list_tasks(client, user))["items"]}
        for result in body["results"]:
            assert listed[result["id"]] == result["task"]
        search = await list_tasks(client, user, search="T1")
        assert [t["title"] for t in search["items"]] == ["t1"]
        assert (await list_tasks(client, user, sort_by="title", sort_direction="asc"))["items"][0][
            "title"
        ] == "t0"

    @pytest.mark.parametrize(
        "data",
        [
            {"title": " Pay <b>rent</b> ", "description": "Tom & Jerry", "priority": "low",
             "due_date": "2031-02-03", "tags": ["Money", "money", "Home"]},
            {"title": "x", "description": None, "tags": []},
        ],
    )  # fmt: skip
    async def test_a_run_creates_what_post_tasks_creates(
        self, client, user: UserHandle, project_factory, data
    ) -> None:
        project = await project_factory()
        data = {**data, "project_id": project["id"]}
        response = await client.post(TASKS, json=data, headers=user.headers)
        single = response.json()
        body = await bulk(client, user, [{"op": "create", "data": data}] * 2)
        server_owned = ("id", "created_at", "updated_at", "position")
        for result in body["results"]:
            task = result["task"]
            assert {k: v for k, v in task.items() if k not in server_owned} == {
                k: v for k, v in single.items() if k not in server_owned
            }
            assert (await get_task(client, user, task["id"])).json() == task

    async def test_a_run_is_one_statement(self, app, client, user: UserHandle) -> None:
        from tests.conftest import recorded_statements

        with recorded_statements(app) as statements:
            await bulk(client, user, [create(f"t{i}", tags=["a", "b"]) for i in range(50)])
        inserts = [s for s in statements if "INSERT INTO task " in s]
        assert len(inserts) == 1


@pytest.mark.parametrize("atomic", [False, True])
async def test_results_keep_the_request_order(client, user: UserHandle, atomic: bool) -> None:
    ops = [create("a", ref="a"), {"op": "complete", "id": "a"}, create("b"), create("c")]
    body = await bulk(client, user, ops, atomic=atomic)
    assert statuses(body) == [201, 200, 201, 201]
    assert [r.get("task", {}).get("title") for r in body["results"]] == ["a", "a", "b", "c"]
    assert uuid.UUID(body["results"][0]["id"])


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
async def test_other_methods_are_405(client, user: UserHandle, method: str) -> None:
    response = await client.request(method, BULK, headers=user.headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    if method != "HEAD":
        assert response.json()["code"] == "method_not_allowed"


async def test_the_compatibility_path_answers_too(client, user: UserHandle) -> None:
    response = await client.post(
        f"/api/{user.id}/tasks/bulk", json={"operations": [create()]}, headers=user.headers
    )
    assert response.status_code == 200
    assert statuses(response.json()) == [201]


async def test_a_body_over_1_mib_is_413(app, client, user: UserHandle) -> None:
    operations = [create(description="d" * 12_000) for _ in range(100)]
    response = await client.post(BULK, json={"operations": operations}, headers=user.headers)
    assert response.status_code == 413
    assert await count_rows(app, "task") == 0


@pytest.mark.parametrize("key", [None, "k"])
async def test_project_deleted_during_a_run_falls_back_to_one_by_one(
    app, client, db, user: UserHandle, project_factory, key: str | None
) -> None:
    """The run's project check passes in its snapshot, the project's deletion (held open
    here) commits while the insert waits on the project row: a foreign key violation, and
    every create of the run is then tried alone, each answering 422 project_not_found."""
    project = await project_factory()
    ops = [create("a", project_id=project["id"]), create("b", project_id=project["id"])]
    headers = {"Idempotency-Key": key} if key else {}
    deleter = db.transaction()
    await deleter.start()
    await db.execute("DELETE FROM project WHERE id = $1", uuid.UUID(project["id"]))
    request = asyncio.ensure_future(bulk(client, user, ops, headers=headers))
    try:
        await wait_for_a_lock_wait(app, seconds=4.0)
    finally:
        await deleter.commit()
    body = await request
    assert statuses(body) == [422, 422]
    assert body["results"][1]["error"]["code"] == "project_not_found"
    assert await count_rows(app, "task") == 0
