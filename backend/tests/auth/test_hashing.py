"""bcrypt runs in the hasher's worker threads, never on the event loop.

No timing thresholds: a profile hook records which thread calls into bcrypt and when
each call starts and returns, so the tests can check *where* hashing runs and an
*ordering* (a request is answered between a hash's start and its end, which cannot
happen if the hash blocks the event loop)."""

import asyncio
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pytest
from fastapi import FastAPI

from tests.auth.helpers import AUTH, login, signup
from tests.conftest import AppFactory, client_for

BCRYPT_FUNCTIONS = {"hashpw", "checkpw"}


@dataclass
class BcryptWatch:
    threads: list[str] = field(default_factory=list)  # caller of each bcrypt call
    started: threading.Event = field(default_factory=threading.Event)
    finished: int = 0


def _is_bcrypt(fn: Any) -> bool:
    return getattr(fn, "__name__", None) in BCRYPT_FUNCTIONS and str(
        getattr(fn, "__module__", "")
    ).startswith("bcrypt")


@contextmanager
def watch_bcrypt() -> Iterator[BcryptWatch]:
    """Profile this thread and every thread started inside the block (build the app's
    hasher before, but make its first request inside: its workers start then)."""
    watch = BcryptWatch()

    def hook(_: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and _is_bcrypt(arg):
            watch.threads.append(threading.current_thread().name)
            watch.started.set()
        elif event == "c_return" and _is_bcrypt(arg):
            watch.finished += 1

    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        yield watch
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


class TestHashingOffTheEventLoop:
    async def test_bcrypt_is_only_called_from_worker_threads(self, make_app: AppFactory) -> None:
        app = make_app()
        with watch_bcrypt() as watch:
            async with client_for(app) as client:
                user = await signup(client)
                assert (await login(client, user.email, user.password)).status_code == 200
                assert (await login(client, user.email, "wrong password")).status_code == 401
                assert (await login(client, "nobody@example.com", "x" * 10)).status_code == 401
        assert len(watch.threads) >= 4, watch.threads  # one hash, three verifications
        assert all(name.startswith("bcrypt") for name in watch.threads), watch.threads
        assert threading.current_thread().name not in watch.threads

    async def test_requests_are_answered_while_logins_hash(self, make_app: AppFactory) -> None:
        rounds = {"BCRYPT_ROUNDS": 11}
        async with client_for(make_app(**rounds)) as other_process:
            user = await signup(other_process)
        app: FastAPI = make_app(**rounds)
        with watch_bcrypt() as watch:
            async with client_for(app) as client:
                logins = [
                    asyncio.create_task(login(client, user.email, user.password)) for _ in range(4)
                ]
                # Until a hash is under way (or every login ended without one: a failure).
                while not watch.started.is_set() and not all(t.done() for t in logins):
                    await asyncio.sleep(0.001)
                assert watch.started.is_set(), [t.result().text for t in logins]
                health = await client.get("/health")
                hashes_done_at_health = watch.finished
                logins_done_at_health = sum(task.done() for task in logins)
                results = await asyncio.gather(*logins)
        assert health.status_code == 200
        # Inline hashing would have run the whole hash before this code ran again.
        assert hashes_done_at_health == 0
        assert logins_done_at_health == 0
        assert [r.status_code for r in results] == [200] * 4

    @pytest.mark.parametrize("route", ["login", "password"])
    async def test_no_connection_is_held_while_bcrypt_runs(
        self, make_app: AppFactory, route: str
    ) -> None:
        """With a one-connection pool, a request that needs the database is answered
        while a login (or password check) is hashing: the hash holds no connection."""
        rounds = {"BCRYPT_ROUNDS": 11}
        async with client_for(make_app(**rounds)) as other_process:
            user = await signup(other_process)
        app: FastAPI = make_app(DB_POOL_SIZE=1, **rounds)
        with watch_bcrypt() as watch:
            async with client_for(app) as client:
                if route == "login":
                    request = login(client, user.email, user.password)
                else:
                    body = {"current_password": user.password, "new_password": "a new password 7"}
                    request = client.post(f"{AUTH}/password", json=body, headers=user.headers)
                hashing = asyncio.create_task(request)
                while not watch.started.is_set() and not hashing.done():
                    await asyncio.sleep(0.001)
                assert watch.started.is_set(), hashing.result().text
                ready = await client.get("/health/ready")
                hashes_done_at_ready = watch.finished
                result = await hashing
        assert ready.status_code == 200
        assert hashes_done_at_ready == 0
        assert result.status_code in (200, 204), result.text
