"""POST /api/v1/tasks with an Idempotency-Key"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import PASSWORD, UserHandle, client_for
from tests.tasks.helpers import TASKS, count_rows, list_tasks


def keyed(user: UserHandle, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


class TestIdempotencyKey:
    async def test_retry_replays_the_first_response(self, client, user: UserHandle) -> None:
        body = {"title": "Pay rent", "tags": ["money"]}
        first = await client.post(TASKS, json=body, headers=keyed(user, "k-1"))
        retry = await client.post(TASKS, json=body, headers=keyed(user, "k-1"))
        assert first.status_code == retry.status_code == 201
        assert retry.json() == first.json()
        assert retry.headers["location"] == first.headers["location"]
        assert retry.headers["etag"] == first.headers["etag"]
        assert retry.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert (await list_tasks(client, user))["total"] == 1

    async def test_same_body_differently_spelled_is_the_same_request(
        self, client, user: UserHandle
    ) -> None:
        first = await client.post(
            TASKS, json={"title": "x", "priority": "medium"}, headers=keyed(user, "k")
        )
        retry = await client.post(
            TASKS, content=b'{ "priority":"medium",  "title": " x " }',
            headers={**keyed(user, "k"), "Content-Type": "application/json"},
        )  # fmt: skip
        assert retry.json()["id"] == first.json()["id"]

    async def test_replay_is_the_first_response_even_after_changes(
        self, client, user: UserHandle
    ) -> None:
        first = await client.post(TASKS, json={"title": "x"}, headers=keyed(user, "k"))
        task_id = first.json()["id"]
        await client.patch(f"{TASKS}/{task_id}", json={"title": "changed"}, headers=user.headers)
        retry = await client.post(TASKS, json={"title": "x"}, headers=keyed(user, "k"))
        assert retry.json() == first.json()

    async def test_same_key_other_body_is_409(self, client, user: UserHandle) -> None:
        await client.post(TASKS, json={"title": "one"}, headers=keyed(user, "k"))
        response = await client.post(TASKS, json={"title": "two"}, headers=keyed(user, "k"))
        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_key_reused"
        assert (await list_tasks(client, user))["total"] == 1

    async def test_keys_are_per_user(
        self, client, user: UserHandle, other_user: UserHandle
    ) -> None:
        mine = await client.post(TASKS, json={"title": "x"}, headers=keyed(user, "shared"))
        theirs = await client.post(TASKS, json={"title": "x"}, headers=keyed(other_user, "shared"))
        assert theirs.status_code == 201
        assert theirs.json()["id"] != mine.json()["id"]
        other = await client.post(TASKS, json={"title": "y"}, headers=keyed(other_user, "mine"))
        assert other.status_code == 201  # no 409 across users either

    async def test_without_key_every_post_creates(self, client, user: UserHandle) -> None:
        for _ in range(2):
            await client.post(TASKS, json={"title": "x"}, headers=user.headers)
        assert (await list_tasks(client, user))["total"] == 2

    async def test_key_younger_than_a_day_still_replays(
        self, app, client, user: UserHandle
    ) -> None:
        first = await client.post(TASKS, json={"title": "one"}, headers=keyed(user, "k"))
        async with app.state.database.connection() as conn:
            recent = datetime.now(UTC) - timedelta(hours=23, minutes=59)
            await conn.execute("UPDATE idempotency_key SET created_at = $1", recent)
        retry = await client.post(TASKS, json={"title": "one"}, headers=keyed(user, "k"))
        assert retry.json()["id"] == first.json()["id"]

    async def test_expired_key_is_treated_as_new(self, app, client, user: UserHandle) -> None:
        first = await client.post(TASKS, json={"title": "one"}, headers=keyed(user, "old"))
        async with app.state.database.connection() as conn:
            old = datetime.now(UTC) - timedelta(hours=24, seconds=1)
            await conn.execute("UPDATE idempotency_key SET created_at = $1", old)
        retry = await client.post(TASKS, json={"title": "two"}, headers=keyed(user, "old"))
        assert retry.status_code == 201
        assert retry.json()["id"] != first.json()["id"]
        again = await client.post(TASKS, json={"title": "two"}, headers=keyed(user, "old"))
        assert again.json()["id"] == retry.json()["id"]

    async def test_failed_request_does_not_burn_the_key(self, client, user: UserHandle) -> None:
        missing = str(uuid.uuid4())
        failed = await client.post(
            TASKS, json={"title": "x", "project_id": missing}, headers=keyed(user, "k")
        )
        assert failed.status_code == 422
        response = await client.post(TASKS, json={"title": "x"}, headers=keyed(user, "k"))
        assert response.status_code == 201

    @pytest.mark.parametrize("key", ["", " leading-space", "x" * 256, "naïve", "tab\tkey"])
    async def test_malformed_key_is_422(self, client, user: UserHandle, key: str) -> None:
        response = await client.post(
            TASKS, json={"title": "x"}, headers={**user.headers, "Idempotency-Key": key.encode()}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"

    async def test_longest_key_accepted(self, client, user: UserHandle) -> None:
        response = await client.post(TASKS, json={"title": "x"}, headers=keyed(user, "k" * 255))
        assert response.status_code == 201

    async def test_racing_retries_create_exactly_one_task(
        self, app, client, user: UserHandle
    ) -> None:
        body = {"title": "Book flights", "tags": ["travel"]}
        responses = await asyncio.gather(
            *(client.post(TASKS, json=body, headers=keyed(user, "race")) for _ in range(8))
        )
        assert [r.status_code for r in responses] == [201] * 8
        assert len({r.json()["id"] for r in responses}) == 1
        assert await count_rows(app, "task") == 1
        assert (await list_tasks(client, user))["total"] == 1


async def test_a_browser_on_another_origin_can_read_the_replay_header(make_app: Any) -> None:
    """CORS exposes Idempotent-Replayed with the other headers a client reads: without
    it in Access-Control-Expose-Headers, fetch() on another origin never sees it."""
    origin = "https://app.example"
    app = make_app(CORS_ORIGINS=[origin])
    async with client_for(app) as client:
        signup = await client.post(
            "/api/v1/auth/signup", json={"email": "cors@example.com", "password": PASSWORD}
        )
        headers = {
            "Authorization": f"Bearer {signup.json()['access_token']}",
            "Idempotency-Key": "cors-1",
            "Origin": origin,
        }
        await client.post(TASKS, json={"title": "Pay rent"}, headers=headers)
        retry = await client.post(TASKS, json={"title": "Pay rent"}, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["access-control-allow-origin"] == origin
    exposed = {h.strip().lower() for h in retry.headers["access-control-expose-headers"].split(",")}
    assert exposed >= {"idempotent-replayed", "x-request-id", "etag", "location", "retry-after"}
