"""Before any load: databases, seed data (ours and the reference's), the reference's venv."""

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.procs import HarnessError, finish, run_bounded, spawn

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


def seed_ours(plan: SeedPlan, log: Logger, reset: bool = False) -> None:
    """Seed our database through bench.seed, unless the task table already holds enough
    (the create points add rows: more than seeded is still seeded)."""
    ensure_database(plan.dsn, log)
    expected = plan.users * plan.tasks_per_user
    rows = asyncio.run(_task_rows(plan.dsn))
    if rows >= expected and not reset:
        log(f"{database_name(plan.dsn)}: {rows} tasks already seeded, skipping bench.seed")
        # As a deployment does before it starts the new code: migrate (bench.seed would).
        code, _, err = run_bounded(
            [sys.executable, "-c", f"from bench.seed import migrate; migrate({plan.dsn!r})"],
            env=dict(os.environ),
            timeout=SEED_TIMEOUT_S,
            cwd=BACKEND,
        )
        if code != 0:
            raise HarnessError(f"migrating {database_name(plan.dsn)} failed: {err[-2000:]}")
        return
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
    log(f"{database_name(plan.dsn)}: {rows} tasks, seeding: {' '.join(cmd[1:])}")
    proc = spawn(cmd, env=dict(os.environ), cwd=BACKEND)  # output straight to the terminal
    code, _, _ = finish(proc, SEED_TIMEOUT_S)
    if code != 0:
        raise HarnessError(f"bench.seed failed (exit {code})")


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
