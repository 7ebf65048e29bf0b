"""Task errors (domain exceptions: status and code, no FastAPI)."""

from app.core.errors import (
    Conflict,
    InvalidCursor,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)

__all__ = [
    "IdempotencyKeyInProgress",
    "IdempotencyKeyReused",
    "InvalidCursor",
    "PreconditionFailed",
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
