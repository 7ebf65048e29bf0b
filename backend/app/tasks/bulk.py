"""POST /tasks/bulk: up to 100 task writes in one request, each by its single route's
rules (the same service code: service.insert, write_on, delete_on), in order.

Transactions:
- not atomic, no Idempotency-Key: every operation runs and commits on its own, exactly
  as its single route would (one statement, or its own short transaction): no lock is
  held from one operation to the next, and a failed one changed nothing;
- atomic, or with an Idempotency-Key: one transaction, a savepoint per operation (a
  failed one is rolled back to its savepoint and the others still run). Atomic: any
  failure rolls everything back (409 bulk_aborted). With a key, the key is claimed in
  that transaction and the answer stored in it, so the request runs exactly once (a
  concurrent retry waits on the key's row, then replays) and a request that never
  finished leaves nothing behind. The price: the rows written stay locked until the
  request's end (at most 100 operations).

A run of two or more consecutive creates is one multi-row statement
(statements.CREATE_MANY); a single create keeps the one-row CREATE of POST /tasks.
"""

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from app.core.db import Connection, Database
from app.core.errors import AppError, ValidationFailed
from app.core.handlers import field_error, problem_body, validation_class
from app.core.schemas import utcnow
from app.tags import links
from app.tasks import idempotency, order, service, statements, tree
from app.tasks.bulk_schemas import (
    BulkRequest,
    CompleteOperation,
    CreateOperation,
    DeleteOperation,
    InvalidData,
    MoveOperation,
    UpdateOperation,
    if_match,
)
from app.tasks.exceptions import BulkAborted, RefNotCreated, RolledBack, TaskProjectNotFound
from app.tasks.schemas import TaskCreate, TaskMove, TaskUpdate

# ref -> the id of the task its create made; None when that create failed.
Refs = dict[str, uuid.UUID | None]


@dataclass(slots=True)
class Outcome:
    """One operation's result: `task` is the task's JSON, as its single route answers."""

    status: int
    id: uuid.UUID | None = None
    ref: str | None = None
    task: bytes | None = None
    error: AppError | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    """An operation's references, refs replaced by the ids they name (see `resolve`)."""

    id: uuid.UUID | None
    parent_id: uuid.UUID | None = None  # data.parent_id
    before: uuid.UUID | None = None
    after: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class BulkAnswer:
    body: bytes
    replayed: bool = False


def resolve(op: Any, refs: Refs) -> Resolved:
    """The ids an operation names: a ref of an earlier create is its new id (a failed
    create's ref: 404 ref_not_created); anything else is a UUID (the request's
    validation made sure). The one place refs are read: `id`, `data.parent_id`, and a
    move's `before` / `after`."""

    def one(value: str | None) -> uuid.UUID | None:
        if value is None:
            return None
        if value in refs:
            target = refs[value]
            if target is None:
                raise RefNotCreated()
            return target
        return uuid.UUID(value)

    data = getattr(op, "data", None)
    return Resolved(
        id=one(getattr(op, "id", None)),
        parent_id=one(getattr(data, "parent_id", None)),
        before=one(getattr(op, "before", None)),
        after=one(getattr(op, "after", None)),
    )


async def run_bulk(
    db: Database, user_id: uuid.UUID, request: BulkRequest, key: str | None
) -> BulkAnswer:
    """Run the operations (see the module docstring for the transactions)."""
    operations = request.operations
    if key is None and not request.atomic:
        async with db.connection() as conn:
            return BulkAnswer(_render(await _run(db, conn, user_id, operations)))
    async with db.transaction() as conn:
        if key is not None:
            stored = await idempotency.claim(conn, user_id, key, _hash(request))
            if stored is not None:
                return BulkAnswer(stored.encode(), replayed=True)
        if not all(_in_a_run(op) for op in operations):
            # One transaction holds each operation's rows to its end, and a reshaping
            # operation (a subtask, a parent or project, a move, a trash) takes the tree
            # lock: taken first, as every single route takes it before its rows, so a
            # later operation never waits for it holding an earlier one's rows (which a
            # single reshaping write waiting for those rows would make a deadlock).
            await tree.lock(conn, user_id)
        named = _existing_ids(operations)
        if named:
            # And the tasks it names, in id order, the order of every write that locks
            # many (a tag rename, a project deletion): in the operations' order, it
            # could hold one of them waiting for another such a write holds.
            await conn.execute(_LOCK_NAMED, user_id, named)
        outcomes = await _run(db, conn, user_id, operations)
        if request.atomic and any(o.error is not None for o in outcomes):
            raise BulkAborted(_aborted(outcomes))  # rolls back, the key's claim too
        body = _render(outcomes)
        if key is not None:
            await idempotency.store(conn, user_id, key, 200, body.decode())
    return BulkAnswer(body)


_LOCK_NAMED = """
SELECT id FROM task WHERE user_id = $1 AND id = ANY($2::uuid[]) ORDER BY id FOR NO KEY UPDATE
"""


def _existing_ids(operations: Sequence[Any]) -> list[uuid.UUID]:
    """The ids of existing tasks the operations name as `id` (not an earlier create's
    ref), sorted."""
    refs = {op.ref for op in operations if isinstance(op, CreateOperation) and op.ref}
    named: set[uuid.UUID] = set()
    for op in operations:
        value = getattr(op, "id", None)
        if isinstance(value, str) and value not in refs:
            try:
                named.add(uuid.UUID(value))
            except ValueError:  # a ref of no create: the operation fails on its own
                continue
    return sorted(named)


def _hash(request: BulkRequest) -> str:
    """The request hash of POST /tasks, of this body, marked as a bulk request so a key
    used on both routes never replays the other's answer."""
    return hashlib.sha256(b"bulk:" + idempotency.request_hash(request).encode()).hexdigest()


async def _run(
    db: Database, conn: Connection, user_id: uuid.UUID, operations: Sequence[Any]
) -> list[Outcome]:
    refs: Refs = {}
    outcomes: list[Outcome] = []
    index = 0
    while index < len(operations):
        end = index
        while end < len(operations) and _in_a_run(operations[end]):
            end += 1
        if end - index >= 2:
            outcomes += await _create_run(db, conn, user_id, operations[index:end], index, refs)
            index = end
            continue
        outcomes.append(await _run_one(db, conn, user_id, index, operations[index], refs))
        index += 1
    return outcomes


def _in_a_run(op: Any) -> bool:
    """A create that CREATE_MANY can make: not a subtask (its parent is checked under
    the tree lock, one by one: service.insert)."""
    return isinstance(op, CreateOperation) and getattr(op.data, "parent_id", None) is None


@contextlib.asynccontextmanager
async def _step(conn: Connection) -> AsyncIterator[None]:
    """One operation inside the request's transaction: a savepoint, so a failure undoes
    only it. Outside one, each service function commits as on its single route."""
    if not conn.is_in_transaction():
        yield
        return
    async with conn.transaction():
        yield


async def _run_one(
    db: Database, conn: Connection, user_id: uuid.UUID, index: int, op: Any, refs: Refs
) -> Outcome:
    ref = op.ref if isinstance(op, CreateOperation) else None
    target: uuid.UUID | None = None
    try:
        resolved = resolve(op, refs)
        target = resolved.id
        _check_data(op, index)
        async with _step(conn):
            outcome = await RUNNERS[type(op)](db, conn, user_id, op, resolved)
    except AppError as exc:
        outcome = failed(exc, index, target)
    outcome.ref = ref
    if ref is not None:
        refs[ref] = outcome.id if outcome.error is None else None
    return outcome


def failed(error: AppError, index: int, task_id: uuid.UUID | None = None) -> Outcome:
    """A failed operation's outcome; the fields its 422 names (`body.project_id` on the
    single route) are located in the bulk body (`body.operations.3.data.project_id`)."""
    if error.errors is not None:
        prefix = f"body.operations.{index}.data."
        error.errors = [
            item | {"field": prefix + item["field"].removeprefix("body.")}
            if item["field"].startswith("body.") and not item["field"].startswith(prefix)
            else item
            for item in error.errors
        ]
    return Outcome(error.status_code, id=task_id, error=error)


def _check_data(op: Any, index: int) -> None:
    """An operation whose `data` its single route would refuse fails with that 422."""
    data = getattr(op, "data", None)
    if isinstance(data, InvalidData):
        prefix = ("body", "operations", index, "data")
        errors = [field_error((*prefix, *error["loc"]), error) for error in data.errors]
        failed = validation_class(errors)  # e.g. invalid_time_zone, as its route says
        raise ValidationFailed(failed.detail, code=failed.code, errors=errors)


async def _create(
    db: Database, conn: Connection, user_id: uuid.UUID, op: Any, to: Resolved
) -> Outcome:
    assert isinstance(op.data, TaskCreate)
    fields = {name: getattr(op.data, name) for name in TaskCreate.model_fields}
    # Validated already (BulkTaskCreate), its parent's ref now resolved to an id.
    data = TaskCreate.model_construct(**(fields | {"parent_id": to.parent_id}))
    task = await service.insert(db, conn, user_id, data)
    return Outcome(201, id=task.id, task=task.model_dump_json().encode())


async def _update(
    _: Database, conn: Connection, user_id: uuid.UUID, op: Any, to: Resolved
) -> Outcome:
    assert isinstance(op.data, TaskUpdate)
    assert to.id is not None
    changes = service.patch_changes(op.data)
    if "parent_id" in changes:
        changes["parent_id"] = to.parent_id
    task = await service.write_on(conn, user_id, to.id, changes, if_match(op.if_match))
    return Outcome(200, id=to.id, task=task.body)


async def _complete(
    _: Database, conn: Connection, user_id: uuid.UUID, op: Any, to: Resolved
) -> Outcome:
    assert to.id is not None
    changes = service.completion_changes(op.completed)
    task = await service.write_on(conn, user_id, to.id, changes, if_match(op.if_match))
    return Outcome(200, id=to.id, task=task.body)


async def _delete(
    _: Database, conn: Connection, user_id: uuid.UUID, op: Any, to: Resolved
) -> Outcome:
    assert to.id is not None
    await service.delete_on(conn, user_id, to.id, if_match(op.if_match))
    return Outcome(204, id=to.id)


async def _move(
    _: Database, conn: Connection, user_id: uuid.UUID, op: Any, to: Resolved
) -> Outcome:
    assert to.id is not None
    where = TaskMove(before=to.before) if to.before is not None else TaskMove(after=to.after)
    moved = await order.move_on(conn, user_id, to.id, where, if_match(op.if_match))
    return Outcome(200, id=to.id, task=moved[1])


Runner = Callable[[Database, Connection, uuid.UUID, Any, Resolved], Awaitable[Outcome]]
# One runner per operation type: a new operation (move) is a schema and a runner here.
RUNNERS: dict[type, Runner] = {
    CreateOperation: _create,
    UpdateOperation: _update,
    CompleteOperation: _complete,
    DeleteOperation: _delete,
    MoveOperation: _move,
}


async def _create_run(
    db: Database,
    conn: Connection,
    user_id: uuid.UUID,
    ops: Sequence[CreateOperation],
    first: int,
    refs: Refs,
) -> list[Outcome]:
    """Consecutive creates: the valid ones in multi-row statements, the others failed
    as alone. What a statement could not settle (a tag created or deleted meanwhile, a
    project deleted during it) is retried, then created one by one as POST /tasks."""
    outcomes: dict[int, Outcome] = {}
    valid: dict[int, TaskCreate] = {}
    for offset, op in enumerate(ops):
        if isinstance(op.data, TaskCreate):
            valid[offset] = op.data
        else:
            outcomes[offset] = await _run_one(db, conn, user_id, first + offset, op, refs)
    pending = dict(valid)
    for _ in range(links.ENSURE_ATTEMPTS):
        if len(pending) < 2:
            break
        try:
            async with _step(conn):
                settled = await _create_many(conn, user_id, pending, first)
        except asyncpg.ForeignKeyViolationError:
            break  # one by one: each answers its own 422 (or 401)
        outcomes.update(settled)
        pending = {offset: data for offset, data in pending.items() if offset not in settled}
    for offset in pending:
        outcomes[offset] = await _run_one(db, conn, user_id, first + offset, ops[offset], refs)
    for offset, op in enumerate(ops):
        outcomes[offset].ref = op.ref
        if op.ref is not None:
            outcome = outcomes[offset]
            refs[op.ref] = outcome.id if outcome.error is None else None
    return [outcomes[offset] for offset in range(len(ops))]


async def _create_many(
    conn: Connection, user_id: uuid.UUID, pending: dict[int, TaskCreate], first: int
) -> dict[int, Outcome]:
    """One CREATE_MANY: the outcome of each row it settled (created, or its project
    refused); a row whose tags it missed is left out, to be tried again."""
    now = utcnow()
    offsets = list(pending)
    rows = [service.new_row(user_id, pending[offset], now) for offset in offsets]
    columns: dict[str, list[Any]] = {name: [] for name in _MANY_PARAMS}
    tags: dict[str, list[Any]] = {"n": [], "id": [], "name": [], "key": []}
    for n, row in enumerate(rows, 1):
        for name in _MANY_PARAMS:
            columns[name].append(row.params[name])
        for name, key in zip(row.params["tag_names"], row.params["tag_keys"], strict=True):
            tags["n"].append(n)
            tags["id"].append(uuid.uuid4())
            tags["name"].append(name)
            tags["key"].append(key)
    args = [user_id, now, *columns.values(), *tags.values()]
    settled: dict[int, Outcome] = {}
    rows_out = await conn.fetch(statements.CREATE_MANY, *args)
    for n, project_ok, created, names, position, due_date in rows_out:
        offset, row = offsets[n - 1], rows[n - 1]
        if not project_ok:
            settled[offset] = failed(TaskProjectNotFound(), first + offset)
        elif created:
            task = row.public(names, position, due_date)
            settled[offset] = Outcome(201, id=row.id, task=task.model_dump_json().encode())
    return settled


# CREATE_MANY's per-row arrays, from each row's CREATE parameters (`id` is `task_id`).
_MANY_PARAMS = tuple("task_id" if c == "id" else c for c in statements.MANY_COLUMNS)


def _result(outcome: Outcome) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if outcome.ref is not None:
        result["ref"] = outcome.ref
    if outcome.id is not None:
        result["id"] = str(outcome.id)
    result["status"] = outcome.status
    if outcome.task is not None:
        result["task"] = orjson.Fragment(outcome.task)
    if outcome.error is not None:
        result["error"] = _problem(outcome.error)
    return result


def _problem(error: AppError) -> dict[str, Any]:
    return problem_body(error.status_code, error.code, error.detail, error.errors)


def _render(outcomes: list[Outcome]) -> bytes:
    return orjson.dumps({"results": [_result(outcome) for outcome in outcomes]})


def _aborted(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """An aborted atomic request's results: each failure as it failed, every other
    operation 424 rolled_back (a create's id is left out: that task does not exist)."""
    results = []
    for outcome in outcomes:
        if outcome.error is None:
            created = outcome.status == 201
            outcome = Outcome(
                424, id=None if created else outcome.id, ref=outcome.ref, error=RolledBack()
            )
        results.append(_result(outcome))
    return results
