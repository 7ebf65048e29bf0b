"""The benchmark points: what each one requests, as which bench user, against what budget.

Reads and writes use different bench users, so the rows written by the create points
(and the sessions written by logins) don't change what the read points read.
"""

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bench.idp import IdentityProvider
from bench.prepare import SeedPlan
from bench.procs import HOST, http_exchange, http_json
from bench.results import MAX_STORM_P99_RATIO, Budget

API = "/api/v1"
CREATE_BODY = '{"title":"Buy milk","description":"2 litres","tags":["home","errand"]}'
PATCH_BODY = '{"priority":"high"}'
# bulk_50: 50 creates of CREATE_BODY's task (tags included) in one POST /tasks/bulk.
BULK_CREATES = 50
BULK_BODY = json.dumps(
    {"operations": [{"op": "create", "data": json.loads(CREATE_BODY)}] * BULK_CREATES},
    separators=(",", ":"),
)
REF_CREATE_BODY = '{"title":"Buy milk","description":"2 litres"}'
TOKEN_MAX_AGE_S = 600  # our access tokens live 15 minutes by default
EXTERNAL_COPIES = 100  # tasks the external twin of a bench user gets (the first page is 50)
# list_cursor / list_offset: a page deep in the list user's 10,000 tasks, by either way.
DEEP_POSITION = 9_950

# bench users (numbers), one per role
LIST_USER, FILTER_USER, SEARCH_USER, GET_USER = 1, 2, 3, 4
SYNC_USER = 5
LOGIN_USER, STORM_LOGIN_USER, PATCH_USER, CREATE_USER = 97, 98, 99, 100
REF_LIST_SUB, REF_CREATE_SUB = 7, 1999  # as perf-ref/README.md


class PointError(RuntimeError):
    """This point cannot run (a route answers an error, nothing to pick an id from...)."""


@dataclass(frozen=True)
class Req:
    path: str
    method: str = "GET"
    body: str | None = None
    auth: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    expect: int | None = None  # the status every answer should have; None: any 2xx

    def describe(self) -> str:
        return f"{self.method} {self.path}" + (f" {self.body}" if self.body else "")


class Context:
    """Base URLs, tokens (refreshed before they expire) and values discovered via the API,
    for one of our databases: each has its own sessions, task ids and tags, so the points
    on the embedded server get a Context of their own (`database` says which)."""

    def __init__(
        self,
        plan: SeedPlan,
        port: int,
        ref_port: int,
        search_word: str | None,
        database: str = "external",
    ):
        self.plan = plan
        self.database = database
        self.base = f"http://{HOST}:{port}"
        self.ref_base = f"http://{HOST}:{ref_port}"
        self.search_word_override = search_word
        self._tokens: dict[int, tuple[float, str]] = {}
        self.found: dict[str, Any] = {}
        # The Better Auth stand-in (list_external), set by run.py for the whole run.
        self.idp: IdentityProvider | None = None
        self._external: dict[int, tuple[float, str]] = {}

    def token(self, user: int) -> str:
        cached = self._tokens.get(user)
        if cached and time.monotonic() - cached[0] < TOKEN_MAX_AGE_S:
            return cached[1]
        body = {"email": self.plan.email(user), "password": self.plan.password}
        status, data = http_json("POST", f"{self.base}{API}/auth/login", body, timeout=30)
        if status != 200 or not isinstance(data, dict) or "access_token" not in data:
            raise PointError(
                f"login as {body['email']} ({self.database} database) answered {status}: "
                f"{_short(data)}"
            )
        self._tokens[user] = (time.monotonic(), data["access_token"])
        return str(data["access_token"])

    def external_token(self, user: int) -> str:
        """A Better Auth token (EdDSA) for bench user `user`'s external twin: an account
        of its own (sub `bench-external-<n>`), given copies of the user's newest tasks
        on first use, so that its list is the same work as the user's."""
        if self.idp is None:
            raise PointError("no identity provider in this run")
        cached = self._external.get(user)
        if cached and time.monotonic() - cached[0] < TOKEN_MAX_AGE_S:
            return cached[1]
        token = self.idp.token(f"bench-external-{user}")
        self._copy_tasks(user, token)
        self._external[user] = (time.monotonic(), token)
        return token

    def _copy_tasks(self, user: int, token: str) -> None:
        url = f"{self.base}{API}/tasks"
        status, data = http_json("GET", f"{url}?limit=1", token=token, timeout=30)
        if status != 200:
            raise PointError(
                f"GET {API}/tasks with a Better Auth token answered {status}: {_short(data)}"
            )
        if data["total"] >= EXTERNAL_COPIES:
            return
        items = list(reversed(self._items(user, limit=EXTERNAL_COPIES)))  # oldest first
        projects = self._copy_projects(user, token, {i["project_id"] for i in items} - {None})
        fields = ("title", "description", "priority", "due_date", "tags")
        for item in items:
            body = {k: item[k] for k in fields if item.get(k) is not None}
            if item.get("project_id"):
                body["project_id"] = projects[item["project_id"]]
            status, created = http_json("POST", url, body, token=token, timeout=30)
            if status != 201:
                raise PointError(
                    f"copying a task for the external twin: {status} {_short(created)}"
                )
            if item.get("completed"):
                http_json("PATCH", f"{url}/{created['id']}", {"completed": True}, token=token)

    def _copy_projects(self, user: int, token: str, ids: set[str]) -> dict[str, str]:
        """The twin's project of the same name for each of the user's projects `ids`."""
        copies = {}
        for project_id in ids:
            mine = self.get(f"{API}/projects/{project_id}", user)
            body = {"name": mine["name"], "color": mine.get("color")}
            status, created = http_json(
                "POST", f"{self.base}{API}/projects", body, token=token, timeout=30
            )
            if status != 201:
                raise PointError(f"copying a project for the external twin: {status}")
            copies[project_id] = created["id"]
        return copies

    def get(self, path: str, user: int) -> Any:
        status, data = http_json("GET", f"{self.base}{path}", token=self.token(user), timeout=60)
        if status != 200:
            raise PointError(f"GET {path} answered {status}: {_short(data)}")
        return data

    def _items(self, user: int, limit: int = 100) -> list[dict[str, Any]]:
        data = self.get(f"{API}/tasks?limit={limit}", user)
        items = data.get("items") if isinstance(data, dict) else None
        if not items:
            raise PointError(f"GET {API}/tasks as user {user} listed no task: {_short(data)}")
        return list(items)

    def tasks(self, user: int, limit: int) -> list[dict[str, Any]]:
        return self._items(user, limit=limit)

    def task_id(self, user: int) -> str:
        key = f"task_id:{user}"
        if key not in self.found:
            self.found[key] = str(self._items(user, limit=1)[0]["id"])
        return str(self.found[key])

    def tag(self, user: int) -> str:
        """The user's most used tag (GET /tags), else the commonest on their first tasks."""
        key = f"tag:{user}"
        if key not in self.found:
            status, data = http_json("GET", f"{self.base}{API}/tags", token=self.token(user))
            if status == 200 and isinstance(data, list) and data:
                self.found[key] = data[0]["name"]
            else:
                tags = Counter(t for item in self._items(user) for t in item.get("tags") or [])
                if not tags:
                    raise PointError(f"user {user} has no tagged task among the first 100")
                self.found[key] = tags.most_common(1)[0][0]
        return str(self.found[key])

    def search_word(self, user: int) -> str:
        """A word of the seeded titles: the commonest that is not in every title, so the
        search has to filter (falls back to the commonest word at all)."""
        key = f"search:{user}"
        if self.search_word_override:
            self.found[key] = self.search_word_override
        if key not in self.found:
            titles = [str(item.get("title", "")) for item in self._items(user)]
            words = Counter(w for t in titles for w in {x.lower() for x in _WORD.findall(t)})
            if not words:
                raise PointError(f"no word of 4+ letters in user {user}'s titles: {titles[:3]}")
            partial = [(w, n) for w, n in words.most_common() if n < len(titles)]
            self.found[key] = (partial or words.most_common())[0][0]
        return str(self.found[key])


_WORD = re.compile(r"[^\W\d_]{4,}")


def _short(data: Any) -> str:
    return json.dumps(data)[:300] if data is not None else "(no JSON body)"


@dataclass(frozen=True)
class RefPoint:
    """The reference's counterpart of a point: request, token subject, label."""

    req: Req
    sub: int
    label: str


@dataclass(frozen=True)
class Point:
    key: str
    label: str
    build: Callable[[Context, int], Req]
    user: int
    connections: int = 64
    workers: int = 1
    ref: RefPoint | None = None
    budget: Budget | None = None
    heavy: bool = False  # skipped by --quick
    default: bool = True  # in the default set of points
    storm: bool = False
    # Ours on the embedded PostgreSQL as `make run` serves it (no DATABASE_URL, DATA_DIR
    # = --embedded-data-dir), not on --dsn.
    embedded: bool = False
    # Ours through a PgBouncer of the run's own in transaction mode in front of --dsn
    # (DATABASE_POOLER=transaction, DATABASE_DIRECT_URL=--dsn); `versus` names the
    # direct point of the same request, for the pooled/direct ratio.
    pooler: bool = False
    # With a Better Auth token (EdDSA, verified against the run's JWKS) for the user's
    # external twin instead of our own token.
    external: bool = False
    versus: str | None = None
    wrk_timeout_s: int | None = None  # default: --wrk-timeout
    # A warm-up's abandoned logins stay queued for bcrypt and would eat the measured run.
    warmup: bool = True


def _list(_: Context, __: int) -> Req:
    return Req(f"{API}/tasks")


def _list_offset(_: Context, __: int) -> Req:
    return Req(f"{API}/tasks?offset={DEEP_POSITION}")


def _list_cursor(ctx: Context, user: int) -> Req:
    """The same page as `_list_offset`, reached by the cursor that the page before it
    answers. Asked again at every build, not kept: cursors are signed with the server's
    SECRET_KEY, which each start of the servers draws anew."""
    before = ctx.get(f"{API}/tasks?offset={DEEP_POSITION - 50}&limit=50", user)
    cursor = before.get("next_cursor") if isinstance(before, dict) else None
    if not cursor:
        raise PointError(f"no next_cursor after position {DEEP_POSITION}: {_short(before)}")
    return Req(f"{API}/tasks?{urlencode({'cursor': cursor})}")


def _filtered(ctx: Context, user: int) -> Req:
    query = urlencode(
        [
            ("status", "pending"),
            ("priority", "high"),
            ("priority", "medium"),
            ("tags", ctx.tag(user)),
            ("sort_by", "due_date"),
            ("sort_direction", "asc"),
        ]
    )
    return Req(f"{API}/tasks?{query}")


def _search(ctx: Context, user: int) -> Req:
    return Req(f"{API}/tasks?{urlencode({'search': ctx.search_word(user)})}")


def _list_304(ctx: Context, user: int) -> Req:
    """GET /tasks with the ETag of the list in If-None-Match: 304, no body."""
    key = f"list_etag:{user}"
    if key not in ctx.found:
        status, headers, _ = http_exchange(
            "GET", f"{ctx.base}{API}/tasks", token=ctx.token(user), timeout=30
        )
        if status != 200 or "etag" not in headers:
            raise PointError(f"GET {API}/tasks answered {status} without an ETag")
        ctx.found[key] = headers["etag"]
    return Req(f"{API}/tasks", headers=(("If-None-Match", ctx.found[key]),), expect=304)


def _get_one(ctx: Context, user: int) -> Req:
    return Req(f"{API}/tasks/{ctx.task_id(user)}")


def _create(_: Context, __: int) -> Req:
    return Req(f"{API}/tasks", "POST", CREATE_BODY)


def _bulk_50(_: Context, __: int) -> Req:
    return Req(f"{API}/tasks/bulk", "POST", BULK_BODY, expect=200)


def _patch(ctx: Context, user: int) -> Req:
    return Req(f"{API}/tasks/{ctx.task_id(user)}", "PATCH", PATCH_BODY)


SYNC_CHANGES = 10  # tasks changed since the cursor of sync_incremental


def _sync_incremental(ctx: Context, user: int) -> Req:
    """GET /sync with a cursor after which SYNC_CHANGES of the user's 10,000 tasks
    changed: the cursor is the end of a full first sync (pages of 1,000), then the
    changes are made, once per run and database."""
    key = f"sync_cursor:{user}"
    if key not in ctx.found:
        cursor: str | None = None
        while True:
            query = urlencode({"limit": 1000, **({"cursor": cursor} if cursor else {})})
            data = ctx.get(f"{API}/sync?{query}", user)
            cursor = str(data["cursor"])
            if not data["has_more"]:
                break
        for item in ctx.tasks(user, SYNC_CHANGES):
            priority = "low" if item["priority"] == "high" else "high"
            status, _ = http_json(
                "PATCH", f"{ctx.base}{API}/tasks/{item['id']}", {"priority": priority},
                token=ctx.token(user),
            )  # fmt: skip
            if status != 200:
                raise PointError(f"PATCH of a task for sync_incremental answered {status}")
        ctx.found[key] = cursor
    return Req(f"{API}/sync?{urlencode({'cursor': ctx.found[key]})}")


def login_req(ctx: Context, user: int) -> Req:
    body = json.dumps({"email": ctx.plan.email(user), "password": ctx.plan.password})
    return Req(f"{API}/auth/login", "POST", body, auth=False)


def _stats(_: Context, __: int) -> Req:
    return Req(f"{API}/tasks/stats?time_zone=Europe/Paris")


def _health(_: Context, __: int) -> Req:
    return Req("/health", auth=False)


REF_LIST = RefPoint(Req("/auth/tasks"), REF_LIST_SUB, "GET /auth/tasks")
REF_CREATE = RefPoint(
    Req("/auth/tasks", "POST", REF_CREATE_BODY), REF_CREATE_SUB, "POST /auth/tasks"
)
_C1000 = Budget(zero_errors=True)

POINTS = [
    Point("list", "GET /tasks", _list, LIST_USER, ref=REF_LIST,
          budget=Budget(min_rps=300, min_ratio=0.6, max_p99_ms=700)),
    # A deep page (position 9,950 of 10,000) by keyset cursor and by offset, side by side.
    Point("list_cursor", "GET /tasks?cursor= (deep)", _list_cursor, LIST_USER),
    Point("list_offset", "GET /tasks?offset=9950", _list_offset, LIST_USER),
    Point("filtered", "GET /tasks filtered", _filtered, FILTER_USER,
          budget=Budget(min_rps=220, max_p99_ms=900)),
    Point("search", "GET /tasks?search", _search, SEARCH_USER,
          budget=Budget(min_rps=180, max_p99_ms=1000)),
    Point("get_one", "GET /tasks/{id}", _get_one, GET_USER, ref=REF_LIST,
          budget=Budget(min_rps=500, min_ratio=1.0, max_p99_ms=400)),
    Point("create", "POST /tasks", _create, CREATE_USER, ref=REF_CREATE,
          budget=Budget(min_rps=400, min_ratio=0.5, max_p99_ms=500)),
    # 50 creates with tags in one request: tasks/s is 50 x its req/s, beside `create`'s.
    Point("bulk_50", "POST /tasks/bulk, 50 creates", _bulk_50, CREATE_USER),
    Point("patch", "PATCH /tasks/{id}", _patch, PATCH_USER,
          budget=Budget(min_rps=400, max_p99_ms=500)),
    # bcrypt on one CPU serves a few logins a second: 64 waiting take ~15 s each.
    Point("login", "POST /auth/login", login_req, LOGIN_USER, wrk_timeout_s=30,
          warmup=False),
    Point("list_c1000", "GET /tasks", _list, LIST_USER, connections=1000, heavy=True,
          ref=REF_LIST, budget=_C1000),
    Point("create_c1000", "POST /tasks", _create, CREATE_USER, connections=1000, heavy=True,
          ref=REF_CREATE, budget=_C1000),
    Point("login_storm", "GET /tasks + logins", _list, LIST_USER, connections=32, storm=True,
          budget=Budget(max_storm_ratio=MAX_STORM_P99_RATIO)),
    Point("list_w2", "GET /tasks", _list, LIST_USER, workers=2, heavy=True, ref=REF_LIST),
    Point("create_w2", "POST /tasks", _create, CREATE_USER, workers=2, heavy=True,
          ref=REF_CREATE),
    # `make run`'s embedded server; heavy: its first run seeds 1 M tasks more (~85 s).
    Point("list_embedded", "GET /tasks, embedded PG", _list, LIST_USER, heavy=True,
          embedded=True, ref=REF_LIST),
    Point("create_embedded", "POST /tasks, embedded PG", _create, CREATE_USER, heavy=True,
          embedded=True, ref=REF_CREATE),
    # Through PgBouncer (transaction mode), beside the direct points of the same run.
    Point("list_pooler", "GET /tasks, PgBouncer", _list, LIST_USER, pooler=True,
          versus="list", budget=Budget(min_versus_ratio=0.8)),
    Point("create_pooler", "POST /tasks, PgBouncer", _create, CREATE_USER, pooler=True,
          versus="create", budget=Budget(min_versus_ratio=0.8)),
    # A Better Auth (EdDSA) token instead of ours, beside `list` in the same run.
    Point("list_external", "GET /tasks, Better Auth token", _list, LIST_USER, external=True,
          versus="list", budget=Budget(min_versus_ratio=0.95)),
    # The list again with its ETag (If-None-Match): 304, beside `list`.
    Point("list_304", "GET /tasks, If-None-Match", _list_304, LIST_USER, versus="list"),
    # Delta sync: 10 tasks changed since the cursor, of a user's 10,000.
    Point("sync_incremental", "GET /sync, 10 changes", _sync_incremental, SYNC_USER),
    # The counts of a 10,000-task user, in one statement (app/tasks/stats.py).
    Point("stats", "GET /tasks/stats", _stats, LIST_USER, budget=Budget(min_rps=500)),
    Point("health", "GET /health", _health, LIST_USER, default=False),
]  # fmt: skip
BY_KEY = {p.key: p for p in POINTS}
