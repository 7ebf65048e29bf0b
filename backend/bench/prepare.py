"""Before any load: databases, seed data (ours, the embedded server's and the
reference's), the reference's venv."""

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.core import embedded
from app.core.db import APPLICATION_NAME
from bench.procs import HarnessError, deferred_signals, finish, run_bounded, spawn

BACKEND = Path(__file__).resolve().parents[1]
REPO = BACKEND.parent
REF_VENV = REPO / ".venv-ref"
# What perf-ref/README.md installs; the reference app imports all of it at start-up.
REF_PACKAGES = [
    "fastapi",
    "uvicorn[standard]",
    "asyncpg",
    "sqlalchemy[asyncio]",
    "sqlmodel",
    "orjson",
    "python-jose",
    "pyjwt",
]
REF_IMPORTS = "import fastapi, uvicorn, uvloop, httptools, asyncpg, sqlmodel, orjson, jose, jwt"
SEED_TIMEOUT_S = 3600.0


class Logger:
    """Progress lines on stderr (stdout carries the results table)."""

    def __call__(self, message: str) -> None:
        sys.stderr.write(f"[bench] {message}\n")
        sys.stderr.flush()


@dataclass(frozen=True)
class SeedPlan:
    dsn: str
    users: int
    tasks_per_user: int
    password: str

    def email(self, n: int) -> str:
        return f"bench-user-{n:04d}@example.com"


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


async def _ensure_database(dsn: str) -> bool:
    name = database_name(dsn)
    conn = await asyncpg.connect(_with_database(dsn, "postgres"))
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await conn.close()


async def _task_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass('public.task') IS NOT NULL"):
            return 0
        return int(await conn.fetchval("SELECT count(*) FROM task"))
    finally:
        await conn.close()


def ensure_database(dsn: str, log: Logger) -> None:
    if asyncio.run(_ensure_database(dsn)):
        log(f"created database {database_name(dsn)}")


def seed_ours(plan: SeedPlan, log: Logger, reset: bool = False) -> float | None:
    """Seed our database (todo_bench or the embedded server's) through bench.seed, unless
    the task table already holds enough (the create points add rows: more than seeded is
    still seeded). Returns the seconds seeding took, None when it was already seeded."""
    ensure_database(plan.dsn, log)
    where = f"{database_name(plan.dsn)} on {_host_port(plan.dsn)}"
    expected = plan.users * plan.tasks_per_user
    rows = asyncio.run(_task_rows(plan.dsn))
    if rows >= expected and not reset:
        log(f"{where}: {rows} tasks already seeded, skipping bench.seed")
        # As a deployment does before it starts the new code: migrate (bench.seed would).
        code, _, err = run_bounded(
            [sys.executable, "-c", f"from bench.seed import migrate; migrate({plan.dsn!r})"],
            env=dict(os.environ),
            timeout=SEED_TIMEOUT_S,
            cwd=BACKEND,
        )
        if code != 0:
            raise HarnessError(f"migrating {where} failed: {err[-2000:]}")
        return None
    cmd = [
        sys.executable,
        "-m",
        "bench.seed",
        "--dsn",
        plan.dsn,
        "--users",
        str(plan.users),
        "--tasks-per-user",
        str(plan.tasks_per_user),
        "--password",
        plan.password,
        *(["--reset"] if reset else []),
    ]
    log(f"{where}: {rows} tasks, seeding: {' '.join(cmd[1:])}")
    started = time.monotonic()
    proc = spawn(cmd, env=dict(os.environ), cwd=BACKEND)  # output straight to the terminal
    code, _, _ = finish(proc, SEED_TIMEOUT_S)
    if code != 0:
        raise HarnessError(f"bench.seed failed (exit {code})")
    # The seed leaves ~1 GB of dirty pages: written back now, not during the first runs.
    asyncio.run(_checkpoint(plan.dsn))
    seconds = round(time.monotonic() - started, 1)
    log(f"{where}: seeded in {seconds} s")
    return seconds


async def _checkpoint(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def _host_port(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{parts.hostname}:{parts.port or 5432}"


class EmbeddedServer:
    """The harness's own attachment to the embedded PostgreSQL under `data_dir` (the
    server `make run` starts, app/core/embedded.py): held from before seeding until the
    end, so the server keeps running (and its cache warm) while our app restarts, and
    the harness, not a CPU-pinned uvicorn, is the process that starts it. `release()`
    (idempotent) stops it when no app is attached any more."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._db: embedded.EmbeddedDatabase | None = None

    @property
    def dsn(self) -> str:
        """libpq URL of its database (bench.seed, asyncpg)."""
        if self._db is None:
            raise HarnessError("the embedded PostgreSQL is not attached")
        return self._db.url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def attach(self, log: Logger) -> str:
        log(f"attaching to the embedded PostgreSQL under {self.data_dir}")
        started = time.monotonic()
        try:
            # A Ctrl-C inside attach() would leave a server started but no one attached.
            with deferred_signals():
                self._db = embedded.attach(self.data_dir)
        except (RuntimeError, OSError) as exc:
            raise HarnessError(f"the embedded PostgreSQL did not start: {exc}") from exc
        log(
            f"embedded PostgreSQL on {_host_port(self.dsn)} "
            f"({time.monotonic() - started:.1f} s; log {self.data_dir / 'postgres.log'})"
        )
        return self.dsn

    def release(self, log: Logger) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        try:
            db.release()
        except (RuntimeError, OSError) as exc:
            log(
                f"releasing the embedded PostgreSQL failed: {exc}; stop it with "
                f"python -m app.core.embedded stop {self.data_dir}"
            )
            return
        log(f"released the embedded PostgreSQL under {self.data_dir}")

    def app_connections(self) -> int:
        """Connections our app holds to the embedded server (proof it runs on it)."""
        return asyncio.run(_app_connections(self.dsn))


async def _app_connections(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        return int(await conn.fetchval(query, APPLICATION_NAME))
    finally:
        await conn.close()


def ensure_ref_venv(log: Logger) -> Path:
    """The reference runs from its own venv at the repo root (git-ignored), as its README does."""
    python = REF_VENV / "bin" / "python"
    if python.exists():
        code, _, _ = run_bounded([str(python), "-c", REF_IMPORTS], env=dict(os.environ), timeout=60)
        if code == 0:
            return python
    log(f"creating {REF_VENV} for the reference app")
    steps = [
        [sys.executable, "-m", "venv", str(REF_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *REF_PACKAGES],
    ]
    for cmd in steps:
        code, out, err = run_bounded(cmd, env=dict(os.environ), timeout=900)
        if code != 0:
            raise HarnessError(f"{' '.join(cmd)} failed:\n{out[-2000:]}{err[-2000:]}")
    return python


def seed_ref(ref_dsn: str, ref_dir: Path, python: Path, rows: int, log: Logger) -> None:
    """The reference's `task` table (seed_tasks.py drops and refills it, so only when short)."""
    ensure_database(ref_dsn, log)
    have = asyncio.run(_task_rows(ref_dsn))
    if have >= rows:
        log(f"{database_name(ref_dsn)}: {have} tasks already seeded, skipping seed_tasks.py")
        return
    cmd = [str(python), str(ref_dir / "seed_tasks.py"), "--dsn", ref_dsn, "--rows", str(rows)]
    log(f"{database_name(ref_dsn)}: seeding the reference table ({rows} rows)")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    code, out, err = run_bounded(cmd, env=env, timeout=SEED_TIMEOUT_S)
    if code != 0:
        raise HarnessError(f"seed_tasks.py failed (exit {code}):\n{out}{err}")
    log(out.strip())


def ref_token(ref_dir: Path, sub: int, secret: str) -> str:
    """A token for the reference app, minted by its own mktoken.py."""
    cmd = [sys.executable, str(ref_dir / "mktoken.py"), "--sub", str(sub), "--secret", secret]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    code, out, err = run_bounded(cmd, env=env, timeout=30)
    if code != 0:
        raise HarnessError(f"mktoken.py failed: {err}")
    return out.strip()
