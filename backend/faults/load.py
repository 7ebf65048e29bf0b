"""A bounded write load: N writers creating tasks with Idempotency-Keys, retrying the
same key (and body) on 503 and on connection errors until a 2xx or a deadline.

Every response and error is recorded with its time, so a scenario can tell what
clients saw before, during and after its fault.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"
TAG_POOL = ("alpha", "beta", "gamma", "delta", "epsilon")
RETRY_DELAY = 0.1  # seconds between retries (the server's Retry-After is 1-5 s: ignored,
# so that the load keeps pressing on the recovery)


@dataclass
class User:
    id: str
    token: str
    project_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client: httpx.AsyncClient, label: str) -> User:
    """A new user with one project."""
    email = f"faults-{label}-{uuid.uuid4().hex[:10]}@example.com"
    response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    body = response.json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    project = await client.post(
        "/api/v1/projects", json={"name": f"project {label}"}, headers=headers
    )
    project.raise_for_status()
    return User(body["user"]["id"], body["access_token"], project.json()["id"])


@dataclass
class Attempt:
    """One logical write: the same key and body on every try."""

    user: User
    key: str
    body: dict[str, Any]
    started: float
    tries: int = 0
    acked_id: str | None = None
    acked_at: float | None = None
    gave_up: str | None = None  # why, when it ended without a 2xx

    @property
    def title(self) -> str:
        return str(self.body["title"])


@dataclass
class Event:
    at: float  # monotonic
    outcome: str  # "201", "503 database_unavailable", "ConnectError", "timeout"...
    latency: float


@dataclass
class WriteLoad:
    base_url: str
    users: list[User]
    label: str
    writers: int = 8
    request_timeout: float = 12.0  # a request past this is a hang
    write_deadline: float = 25.0  # a write not acknowledged by then is a loss of service
    attempts: list[Attempt] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    in_flight: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list["asyncio.Task[None]"] = field(default_factory=list)

    def start(self) -> None:
        for n in range(self.writers):
            self._tasks.append(asyncio.create_task(self._writer(n)))

    async def finish(self) -> None:
        """No new writes; wait for those in flight (each bounded by its deadline)."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(event.outcome for event in self.events)

    @property
    def acked(self) -> list[Attempt]:
        return [a for a in self.attempts if a.acked_id is not None]

    def max_latency(self) -> float:
        return max((e.latency for e in self.events), default=0.0)

    async def _writer(self, n: int) -> None:
        rng = random.Random(f"{self.label}-{n}")
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits) as client:
            serial = 0
            while not self._stop.is_set():
                serial += 1
                await self._write(client, self._attempt(rng, n, serial))

    def _attempt(self, rng: random.Random, n: int, serial: int) -> Attempt:
        user = self.users[n % len(self.users)]
        body: dict[str, Any] = {
            "title": f"{self.label} w{n} #{serial} {uuid.uuid4().hex[:8]}",
            "priority": rng.choice(["low", "medium", "high"]),
            "tags": rng.sample(TAG_POOL, rng.randint(0, 3)),
        }
        if rng.random() < 0.5:
            body["project_id"] = user.project_id
        attempt = Attempt(user, uuid.uuid4().hex, body, time.monotonic())
        self.attempts.append(attempt)
        return attempt

    async def _write(self, client: httpx.AsyncClient, attempt: Attempt) -> None:
        headers = {**attempt.user.headers, "Idempotency-Key": attempt.key}
        while True:
            if time.monotonic() - attempt.started > self.write_deadline:
                attempt.gave_up = f"no 2xx within {self.write_deadline:g} s"
                return
            attempt.tries += 1
            sent = time.monotonic()
            self.in_flight += 1
            try:
                response = await client.post(
                    "/api/v1/tasks",
                    json=attempt.body,
                    headers=headers,
                    timeout=self.request_timeout,
                )
            except httpx.TimeoutException:
                self._record(sent, "timeout")
                continue  # a hang: recorded; the same key is safe to send again
            except httpx.TransportError as exc:
                self._record(sent, type(exc).__name__)
                await asyncio.sleep(RETRY_DELAY)
                continue
            finally:
                self.in_flight -= 1
            status = response.status_code
            if status < 300:
                self._record(sent, str(status))
                attempt.acked_id = response.json()["id"]
                attempt.acked_at = time.monotonic()
                return
            code = _problem_code(response)
            self._record(sent, f"{status} {code}".strip())
            if status != 503:
                attempt.gave_up = f"{status} {code}"
                return
            await asyncio.sleep(RETRY_DELAY)

    def _record(self, sent: float, outcome: str) -> None:
        now = time.monotonic()
        self.events.append(Event(now, outcome, now - sent))


def _problem_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


def summarize(outcomes: Counter[str]) -> str:
    return ", ".join(f"{k}×{v}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1]))
