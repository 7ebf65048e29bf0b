"""Task errors (domain exceptions: status and code, no FastAPI)."""

from typing import Any, ClassVar

from app.core.errors import (
    AppError,
    Conflict,
    InvalidCursor,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)

__all__ = [
    "BulkAborted",
    "IdempotencyKeyInProgress",
    "IdempotencyKeyReused",
    "InvalidCursor",
    "InvalidRecurrence",
    "InvalidTimeZone",
    "InvalidParent",
    "InvalidPosition",
    "ParentNotFound",
    "PreconditionFailed",
    "RecurrenceNeedsDue",
    "RefNotCreated",
    "RolledBack",
    "TaskNotFound",
    "TaskProjectNotFound",
]


class TaskNotFound(NotFound):
    code = "task_not_found"
    detail = "Task not found"


class TaskProjectNotFound(ValidationFailed):
    """A task names a project that is missing or someone else's: the same answer."""

    code = "project_not_found"
    detail = "The project does not exist"

    def __init__(self) -> None:
        super().__init__(
            errors=[{"field": "body.project_id", "message": "Project not found", "type": self.code}]
        )


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    detail = "This Idempotency-Key was already used with a different request body"


class IdempotencyKeyInProgress(Conflict):
    code = "idempotency_key_in_progress"
    detail = "A request with this Idempotency-Key is still being processed; retry later"


class InvalidTimeZone(ValidationFailed):
    """Raised as a validation error of this type (`time_zone`, body or query): the
    handler answers it with this code (app/core/handlers.py)."""

    code = "invalid_time_zone"
    detail = "The time zone is not an IANA time zone name"


class InvalidRecurrence(ValidationFailed):
    code = "invalid_recurrence"
    detail = "The recurrence is not a supported RRULE"


class RecurrenceNeedsDue(ValidationFailed):
    """A rule on a task without a due day or instant (a body validator, or the
    database's check on the row a PATCH leaves)."""

    code = "recurrence_needs_due"
    detail = "A recurring task needs a due_date or due_at"

    def __init__(self) -> None:
        super().__init__(
            errors=[{"field": "body.recurrence", "message": self.detail, "type": self.code}]
        )


class ParentNotFound(ValidationFailed):
    """`parent_id` names a task that is missing, someone else's or in the trash."""

    code = "parent_not_found"
    detail = "The parent task does not exist"

    def __init__(self) -> None:
        super().__init__(
            errors=[{"field": "body.parent_id", "message": "Task not found", "type": self.code}]
        )


class InvalidParent(ValidationFailed):
    """A cycle, a tree too deep, or a subtask's project set apart from its parent's."""

    code = "invalid_parent"
    detail = (
        "A task cannot be its own ancestor, subtasks go at most 4 levels deep, and a "
        "subtask's project is its parent's"
    )

    def __init__(self, field: str = "body.parent_id") -> None:
        super().__init__(errors=[{"field": field, "message": self.detail, "type": self.code}])


class InvalidPosition(ValidationFailed):
    """A move relative to a task that is not a sibling (same project and parent)."""

    code = "invalid_position"
    detail = "Tasks move before or after one of their siblings (same project and parent)"

    def __init__(self, field: str = "body") -> None:
        super().__init__(errors=[{"field": field, "message": self.detail, "type": self.code}])


class BulkAborted(Conflict):
    """An atomic bulk request of which an operation failed: nothing was written. The
    problem's `results` say which operations failed and why (the others: 424)."""

    code = "bulk_aborted"
    detail = "An operation failed, so none was applied (atomic request)"
    extension_schemas: ClassVar[dict[str, Any]] = {
        "results": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/OperationResult"},
            "description": "One per operation, in order: each failure's problem; "
            "424 rolled_back for the others",
        }
    }

    def __init__(self, results: list[dict[str, Any]]) -> None:
        super().__init__()
        self.extensions = {"results": results}


class RefNotCreated(AppError):
    """A bulk operation names (by `ref`) a task whose create failed in the same request:
    404, like any task that does not exist (a failed operation's status is one of 404,
    409, 412, 422 by contract), with a code of its own that says why."""

    status_code = 404
    code = "ref_not_created"
    detail = "The task this ref names was not created: its create operation failed"


class RolledBack(AppError):
    """In an atomic bulk request that failed: this operation was not applied."""

    status_code = 424
    code = "rolled_back"
    detail = "Not applied: another operation of this atomic request failed"
