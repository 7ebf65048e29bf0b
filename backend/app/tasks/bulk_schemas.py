"""POST /tasks/bulk: the request (a list of operations, a union discriminated on `op`)
and the answer (one result per operation).

Two levels of validation, as a client of the single routes would expect:
- the envelope (the list, each operation's `op`, `id`, `ref`, `if_match`...) is checked
  before anything runs: any error there is a 422 for the whole request;
- each operation's `data` is the body of its single route (TaskCreate, TaskUpdate),
  checked by the same model, and an invalid one fails that operation alone (a 422 in
  its result, the others still run), as the same body sent alone would fail alone.

Adding an operation: a model with `op: Literal["<name>"]` here, in `Operation`'s union
(and `OPS`); a runner in bulk.py's RUNNERS. Every task id an operation names (`id`,
`before`, `after`, `data.parent_id`) may be the ref of an earlier create (`_named`).
"""

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from app.core.conditional import IfMatch
from app.core.schemas import InputModel, NotNull, Problem
from app.tasks.schemas import TaskCreate, TaskPublic, TaskUpdate

MAX_OPERATIONS = 100
MAX_REF = 64


class InvalidData:
    """An operation's `data` that its single route would refuse: pydantic's errors (each
    located inside `data`), kept to be answered as that operation's 422."""

    __slots__ = ("errors", "raw")

    def __init__(self, raw: Any, errors: list[dict[str, Any]]) -> None:
        self.raw = raw
        self.errors = errors


def _lenient(model: type[BaseModel]) -> GetPydanticSchema:
    """`model`'s own validation (and JSON schema), but an invalid value is kept as
    InvalidData instead of failing the whole request."""

    def validate(value: Any, handler: core_schema.ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            return InvalidData(value, [dict(e) for e in exc.errors(include_url=False)])

    return GetPydanticSchema(
        lambda _, handler: core_schema.no_info_wrap_validator_function(
            validate,
            handler(model),
            serialization=core_schema.plain_serializer_function_ser_schema(_dump),
        )
    )


def _dump(value: Any) -> Any:
    """For the Idempotency-Key's request hash: a PATCH body is what it sets (an omitted
    field is not an explicit null), a POST body all its fields (defaults included, as
    POST /tasks hashes it)."""
    if isinstance(value, InvalidData):
        return {"invalid": value.raw}
    if isinstance(value, TaskUpdate):
        return value.model_dump(mode="json", exclude_unset=True)
    assert isinstance(value, BaseModel)
    return value.model_dump(mode="json")


TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_REF,
        description="A task id (UUID), or the `ref` of a create earlier in the request",
    ),
]


class BulkTaskCreate(TaskCreate):
    """POST /tasks' body, whose `parent_id` may also be the ref of an earlier create."""

    parent_id: TaskId | None = Field(  # type: ignore[assignment]
        default=None,
        description="A task id (UUID) or the `ref` of a create earlier in the request; "
        "null: a top-level task",
    )


class BulkTaskUpdate(TaskUpdate):
    """PATCH's body, whose `parent_id` may also be the ref of an earlier create."""

    parent_id: TaskId | None = Field(  # type: ignore[assignment]
        default=None,
        description="A task id (UUID) or the `ref` of a create earlier in the request",
    )


CreateData = Annotated[
    BulkTaskCreate | InvalidData,
    _lenient(BulkTaskCreate),
]
UpdateData = Annotated[
    BulkTaskUpdate | InvalidData,
    _lenient(BulkTaskUpdate),
]
Ref = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_REF,
        description="The client's name for the task this create makes (unique in the "
        "request): later operations may use it as `id`",
    ),
]
IfMatchValue = Annotated[
    StrictInt | Annotated[str, Field(max_length=1024)] | None,
    Field(
        description='As the If-Match header: `"<version>"` (the ETag), a list of them, or '
        "`*`; or the version as an integer. A stale one fails the operation with 412"
    ),
]


def if_match(value: int | str | None) -> IfMatch | None:
    if value is None:
        return None
    if isinstance(value, int):
        return IfMatch(any=False, versions=frozenset({value}))
    return IfMatch.parse(value)


class CreateOperation(InputModel):
    op: Literal["create"]
    ref: Ref | None = None
    data: CreateData


class UpdateOperation(InputModel):
    op: Literal["update"]
    id: TaskId
    if_match: IfMatchValue = None
    data: UpdateData


class CompleteOperation(InputModel):
    op: Literal["complete"]
    id: TaskId
    if_match: IfMatchValue = None
    completed: Annotated[
        StrictBool | None, Field(description="Set it; omitted or `null`: toggle")
    ] = None


class DeleteOperation(InputModel):
    op: Literal["delete"]
    id: TaskId
    if_match: IfMatchValue = None


class MoveOperation(InputModel):
    """POST /tasks/{id}/move: just before or just after a sibling (exactly one)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["before"]}, {"required": ["after"]}]},
    )

    op: Literal["move"]
    id: TaskId
    if_match: IfMatchValue = None
    before: Annotated[TaskId | None, NotNull] = None
    after: Annotated[TaskId | None, NotNull] = None

    @model_validator(mode="after")
    def _one_of(self) -> "MoveOperation":
        if (self.before is None) == (self.after is None):
            raise ValueError("Give exactly one of `before` and `after`")
        return self


Operation = Annotated[
    CreateOperation | UpdateOperation | CompleteOperation | DeleteOperation | MoveOperation,
    Field(discriminator="op"),
]
OPS = ("create", "update", "complete", "delete", "move")


class BulkRequest(InputModel):
    """1-100 operations, run in order. Not atomic: each commits (or fails) on its own."""

    operations: list[Operation] = Field(min_length=1, max_length=MAX_OPERATIONS)
    atomic: StrictBool = Field(
        default=False, description="All or nothing: any failure is 409 bulk_aborted"
    )

    @model_validator(mode="wrap")
    @classmethod
    def _located(cls, value: Any, handler: Any) -> "BulkRequest":
        """Errors located as a client reads the body (`operations.3.data.title`, not
        pydantic's `operations.3.create.data.title`), and the refs checked: unique,
        and an `id` that is not a UUID must be the ref of an earlier create."""
        try:
            request: BulkRequest = handler(value)
        except ValidationError as exc:
            raise _relocated(exc) from None
        problems = _ref_errors(request.operations)
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return request


def _relocated(exc: ValidationError) -> ValidationError:
    details: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        if len(loc) > 2 and loc[0] == "operations" and loc[2] in OPS:
            del loc[2]
        kind: Any = error["type"]
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            # pydantic's message quotes the submitted tag: never echo input.
            kind = PydanticCustomError(kind, f"`op` must be one of: {', '.join(OPS)}")
            loc.append("op")
        detail: InitErrorDetails = {"type": kind, "loc": tuple(loc), "input": error["input"]}
        if "ctx" in error and isinstance(kind, str):
            detail["ctx"] = error["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(exc.title, details)


def _named(op: Any) -> list[tuple[tuple[str, ...], str]]:
    """The task ids (or refs) an operation names, by where they are in it."""
    named: list[tuple[tuple[str, ...], Any]] = [
        ((name,), getattr(op, name, None)) for name in ("id", "before", "after")
    ]
    data = getattr(op, "data", None)
    if isinstance(data, BaseModel):
        named.append((("data", "parent_id"), getattr(data, "parent_id", None)))
    return [(where, value) for where, value in named if value is not None]


def _ref_errors(operations: list[Any]) -> list[InitErrorDetails]:
    refs: set[str] = set()
    errors: list[InitErrorDetails] = []
    for index, op in enumerate(operations):
        for where, task_id in _named(op):
            if task_id not in refs and not _is_uuid(task_id):
                message = "Must be a task id (UUID) or the ref of a create earlier in the request"
                errors.append(_error(index, where, "unknown_ref", message))
        ref = getattr(op, "ref", None)
        if ref is not None:
            if ref in refs:
                errors.append(_error(index, "ref", "duplicate_ref", "This ref is already used"))
            refs.add(ref)
    return errors


def _error(index: int, field: str | tuple[str, ...], kind: str, message: str) -> InitErrorDetails:
    where = (field,) if isinstance(field, str) else field
    return {
        "type": PydanticCustomError(kind, message),
        "loc": ("operations", index, *where),
        "input": None,
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class OperationResult(BaseModel):
    """One operation's outcome, in the request's order."""

    ref: Annotated[str | None, NotNull] = Field(
        default=None, description="A create's `ref`: the client's name for `id`"
    )
    id: Annotated[uuid.UUID | None, NotNull] = Field(
        default=None, description="The task's id (a new one for a create)"
    )
    status: int = Field(
        description="201 created, 200 changed, 204 deleted; failed: 404 (also "
        "`ref_not_created`: its ref's create failed), 409, 412, 422; 424 in an aborted "
        "atomic request: not applied"
    )
    task: Annotated[TaskPublic | None, NotNull] = None
    error: Annotated[Problem | None, NotNull] = Field(
        default=None, description="Why it failed: the problem its single route answers"
    )


class BulkResults(BaseModel):
    results: list[OperationResult]
