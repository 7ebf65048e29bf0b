"""Seed a PostgreSQL database with benchmark data: users who can log in, each with
projects, tags and tasks.

    cd backend && python -m bench.seed \\
        --dsn postgresql://postgres@127.0.0.1:5432/todo_bench \\
        --users 100 --tasks-per-user 10000

- Runs `alembic upgrade head` on the target first (the database must exist:
  `createdb -h 127.0.0.1 -U postgres todo_bench`).
- Users are `bench-user-0001@example.com`, `bench-user-0002@example.com`, … with the
  password given by `--password` (default `bench-password-123`). It is hashed once,
  with the application's own hasher (bcrypt_sha256, `BCRYPT_ROUNDS`), and the hash is
  shared by every user: they log in through the API like anyone else.
- Each user gets 10 projects, 20 tags, and tasks with varied titles, descriptions,
  priorities, due dates and states; 70 % of tasks are filed in a project and each
  carries 0-3 tags. The data is random but reproducible (`--seed`).
- Idempotent-ish: when bench users already exist it does nothing (exit 0) if there
  are as many as requested with at least the requested tasks (benchmarks add some),
  else refuses (exit 1); `--reset` deletes them (and all their data) first. Other
  users are left alone.
- Fast: one transaction that drops the task indexes, streams every row with COPY
  (asyncpg `copy_records_to_table`), rebuilds the indexes and commits, then VACUUM
  ANALYZE. An error rolls everything back, indexes included.
- The per-user task counters (`task_count`) stay on: their statement-level trigger
  adds one upsert per user and COPY (~1-2 % of the load, measured), and the counts are
  checked against the tasks before the commit.
"""

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from app.core.config import get_settings
from app.core.security import PasswordHasher
from app.tags.schemas import tag_key
from app.tasks import positions
from app.tasks.models import search_text

BACKEND = Path(__file__).resolve().parents[1]
DEFAULT_PASSWORD = "bench-password-123"  # what bench/run.py logs in with by default
EMAIL_PATTERN = "bench-user-{:04d}@example.com"
EMAIL_LIKE = "bench-user-%@example.com"
PROJECTS_PER_USER = 10
TAGS_PER_USER = 20
USERS_PER_COPY = 5  # rows are generated and streamed a few users at a time

VERBS = (
    "Buy", "Call", "Email", "Fix", "Review", "Write", "Plan", "Book", "Clean", "Prepare",
    "Send", "Schedule", "Update", "Check", "Order", "Pay", "Return", "Organize", "Draft",
    "Renew", "Cancel", "Pick up", "Paint", "Test", "Deploy", "Read", "Sort", "File",
)  # fmt: skip
OBJECTS = (
    "groceries", "the plumber", "quarterly report", "kitchen sink", "budget", "invoice",
    "dentist appointment", "flight tickets", "garage", "presentation", "birthday gift",
    "car insurance", "passport", "library books", "tax return", "team meeting", "blog post",
    "garden fence", "newsletter", "backup drive", "conference talk", "rent", "bike tyres",
    "release notes", "server logs", "photo album", "wedding invitations", "recipe book",
    "spare keys", "cat food", "holiday plans", "gym membership", "electric bill",
)  # fmt: skip
QUALIFIERS = (
    "", "", "", "before Friday", "for Monday", "tomorrow", "this week", "asap", "again",
    "with Anna", "for the office", "at home", "(urgent)", "next month", "if time allows",
)  # fmt: skip
WORDS = (
    "remember", "to", "ask", "about", "the", "new", "price", "and", "compare", "with",
    "last", "year", "notes", "from", "call", "on", "check", "receipt", "details", "online",
    "bring", "documents", "confirm", "time", "address", "budget", "draft", "follow", "up",
    "100%", "done_by", "v2", "café", "naïve", "Straße",
)  # fmt: skip
PROJECT_NAMES = (
    "Home", "Work", "Errands", "Garden", "Finance", "Health", "Travel", "Side project",
    "Family", "Learning", "Car", "Friends",
)  # fmt: skip
TAG_NAMES = (
    "urgent", "waiting", "phone", "email", "errand", "someday", "quick", "deep work",
    "money", "family", "office", "online", "shopping", "reading", "health", "weekend",
    "blocked", "review", "idea", "travel", "admin", "home",
)  # fmt: skip
COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", None)

USER_COLUMNS = ["id", "email", "name", "hashed_password", "created_at", "updated_at"]
PROJECT_COLUMNS = [
    "id", "user_id", "name", "name_key", "description", "color", "created_at", "updated_at",
]  # fmt: skip
TAG_COLUMNS = ["id", "user_id", "name", "name_key", "created_at"]
TASK_COLUMNS = [
    "id", "user_id", "project_id", "title", "title_key", "description", "search_text",
    "completed", "completed_at", "priority", "due_date", "created_at", "updated_at", "version",
    "position",
]  # fmt: skip
TASK_TAG_COLUMNS = ["task_id", "tag_id"]


def say(message: str) -> None:
    """Progress on stdout (a script's output, not a log)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


@dataclass
class Batch:
    users: list[tuple[Any, ...]] = field(default_factory=list)
    projects: list[tuple[Any, ...]] = field(default_factory=list)
    tags: list[tuple[Any, ...]] = field(default_factory=list)
    tasks: list[tuple[Any, ...]] = field(default_factory=list)
    links: list[tuple[Any, ...]] = field(default_factory=list)


class Generator:
    """Reproducible rows for one user at a time."""

    def __init__(self, seed: int, tasks_per_user: int, password_hash: str) -> None:
        self.rng = random.Random(seed)
        self.tasks_per_user = tasks_per_user
        self.password_hash = password_hash
        self.now = datetime.now(UTC)
        self.today = self.now.date()

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def user(self, number: int, batch: Batch) -> None:
        rng = self.rng
        user_id = self._uuid()
        joined = self.now - timedelta(days=400)
        batch.users.append(
            (user_id, EMAIL_PATTERN.format(number), f"Bench User {number:04d}",
             self.password_hash, joined, joined)
        )  # fmt: skip
        projects = [
            (self._uuid(), user_id, name, name.casefold(), None, rng.choice(COLORS), joined, joined)
            for name in rng.sample(PROJECT_NAMES, PROJECTS_PER_USER)
        ]
        tags = [
            (self._uuid(), user_id, name, tag_key(name), joined)
            for name in rng.sample(TAG_NAMES, TAGS_PER_USER)
        ]
        batch.projects.extend(projects)
        batch.tags.extend(tags)
        project_ids = [p[0] for p in projects]
        tag_ids = [t[0] for t in tags]
        for _ in range(self.tasks_per_user):
            task = self._task_row(user_id, project_ids)
            batch.tasks.append(task)
            for tag_id in rng.sample(tag_ids, rng.choice((0, 1, 1, 2, 2, 3))):
                batch.links.append((task[0], tag_id))

    def _task(self, user_id: uuid.UUID, project_ids: Sequence[uuid.UUID]) -> tuple[Any, ...]:
        rng = self.rng
        title = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(QUALIFIERS)}".strip()
        description = (
            " ".join(rng.choices(WORDS, k=rng.randint(4, 16))).capitalize()
            if rng.random() < 0.5
            else None
        )
        created = self.now - timedelta(seconds=rng.randint(60, 365 * 86400))
        updated = min(self.now, created + timedelta(seconds=rng.randint(0, 30 * 86400)))
        completed = rng.random() < 0.3
        due: date | None = None
        if rng.random() < 0.6:
            due = self.today + timedelta(days=rng.randint(-90, 120))
        return (
            self._uuid(), user_id,
            rng.choice(project_ids) if rng.random() < 0.7 else None,
            title, title.casefold(), description, search_text(title, description),
            completed, updated if completed else None,
            rng.choices((0, 1, 2), weights=(3, 5, 2))[0], due,
            created, updated, rng.randint(1, 3),
        )  # fmt: skip

    def _task_row(self, user_id: uuid.UUID, project_ids: Sequence[uuid.UUID]) -> tuple[Any, ...]:
        task = self._task(user_id, project_ids)
        return (*task, positions.key_at(task[11], task[0]))


def asyncpg_dsn(dsn: str) -> str:
    """A plain libpq-style DSN for asyncpg (accepts postgresql+asyncpg:// too)."""
    return make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)


def migrate(dsn: str) -> None:
    url = make_url(asyncpg_dsn(dsn)).set(drivername="postgresql+asyncpg")
    config = Config(str(BACKEND / "alembic.ini"))
    config.attributes["database_url"] = url.render_as_string(hide_password=False)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


async def existing(conn: asyncpg.Connection) -> tuple[int, int]:
    users = await conn.fetchval("SELECT count(*) FROM user_account WHERE email LIKE $1", EMAIL_LIKE)
    tasks = await conn.fetchval(
        "SELECT count(*) FROM task JOIN user_account u ON u.id = task.user_id "
        "WHERE u.email LIKE $1",
        EMAIL_LIKE,
    )
    return int(users), int(tasks)


async def reset(conn: asyncpg.Connection) -> None:
    others = await conn.fetchval(
        "SELECT count(*) FROM user_account WHERE email NOT LIKE $1", EMAIL_LIKE
    )
    if others == 0:  # only bench data here: truncating is far faster than cascading
        await conn.execute("TRUNCATE user_account CASCADE")
    else:
        await conn.execute("DELETE FROM user_account WHERE email LIKE $1", EMAIL_LIKE)


async def _secondary_indexes(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "JOIN pg_class c ON c.relname = i.indexname "
        "LEFT JOIN pg_constraint k ON k.conindid = c.oid "
        "WHERE i.schemaname = current_schema() AND i.tablename IN ('task_row', 'task_tag') "
        "AND k.oid IS NULL"
    )
    return [(row["indexname"], row["indexdef"]) for row in rows]


def _batches(gen: Generator, users: int) -> Iterator[Batch]:
    for first in range(1, users + 1, USERS_PER_COPY):
        batch = Batch()
        for number in range(first, min(first + USERS_PER_COPY, users + 1)):
            gen.user(number, batch)
        yield batch


async def load(conn: asyncpg.Connection, gen: Generator, users: int) -> None:
    """Everything in one transaction: indexes dropped, rows copied, indexes rebuilt."""
    async with conn.transaction():
        await conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        indexes = await _secondary_indexes(conn)
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        started = time.perf_counter()
        for number, batch in enumerate(_batches(gen, users)):
            for table, columns, rows in (
                ("user_account", USER_COLUMNS, batch.users),
                ("project", PROJECT_COLUMNS, batch.projects),
                ("tag", TAG_COLUMNS, batch.tags),
                ("task_row", TASK_COLUMNS, batch.tasks),  # the table under the view `task`
                ("task_tag", TASK_TAG_COLUMNS, batch.links),
            ):
                await conn.copy_records_to_table(table, records=rows, columns=columns)
            done = min((number + 1) * USERS_PER_COPY, users)
            say(f"  copied {done}/{users} users ({time.perf_counter() - started:.1f} s)")
        started = time.perf_counter()
        for _, definition in indexes:
            await conn.execute(definition)
        say(f"  rebuilt {len(indexes)} indexes ({time.perf_counter() - started:.1f} s)")
        await check_task_counts(conn)


async def check_task_counts(conn: asyncpg.Connection) -> None:
    """Every user's counter (`sum(n)`, kept by triggers) equals their tasks: the list's
    `total` depends on it. Raising rolls the load back."""
    wrong = await conn.fetchval(
        "SELECT count(*) FROM (SELECT user_id, count(*) AS tasks FROM task GROUP BY user_id) t "
        "FULL JOIN (SELECT user_id, sum(n) AS tasks FROM task_count GROUP BY user_id) c "
        "USING (user_id) WHERE t.tasks IS DISTINCT FROM c.tasks"
    )
    if wrong:
        raise RuntimeError(f"task_count is wrong for {wrong} users (are its triggers enabled?)")
    say("  checked the task counters")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dsn", required=True, help="postgresql://user@host:port/database")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--tasks-per-user", type=int, default=10_000)
    parser.add_argument(
        "--password", default=DEFAULT_PASSWORD, help=f"every user's (default {DEFAULT_PASSWORD})"
    )
    parser.add_argument("--reset", action="store_true", help="delete existing bench users first")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 9999 or args.tasks_per_user < 0:
        parser.error("--users must be 1-9999 and --tasks-per-user >= 0")
    return args


async def seed(args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(args.dsn))
    try:
        users, tasks = await existing(conn)
        if users and not args.reset:
            # Benchmarks that create tasks add to the count: more is still "seeded".
            if users == args.users and tasks >= args.users * args.tasks_per_user:
                say(f"Already seeded ({users} users, {tasks} tasks): nothing to do.")
                return 0
            say(f"Seeded differently ({users} users, {tasks} tasks): run with --reset.")
            return 1
        if users:
            await reset(conn)
            say(f"Deleted {users} bench users and their data.")
        hasher = PasswordHasher(get_settings().BCRYPT_ROUNDS, 1)
        try:
            password_hash = await hasher.hash(args.password)
        finally:
            hasher.close()
        await load(conn, Generator(args.seed, args.tasks_per_user, password_hash), args.users)
        for table in ("user_account", "project", "tag", "task_row", "task_tag"):
            await conn.execute(f"VACUUM ANALYZE {table}")  # statistics + visibility map
    finally:
        await conn.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    migrate(args.dsn)
    status = asyncio.run(seed(args))
    if status == 0:
        say(f"Done in {time.perf_counter() - started:.1f} s.")
    return status


if __name__ == "__main__":
    sys.exit(main())
