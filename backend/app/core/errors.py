"""Domain errors. They carry their HTTP status and stable code but never import FastAPI;
`app.core.handlers` renders every one of them as RFC 9457 problem+json.

Every class that sets its own `code` is recorded in `AppError.registry`: the OpenAPI
document's `ErrorCode` enum is built from it, so a new error class is documented by
being defined (nothing to list by hand). A code is sent only through its class, so
the enum is every code a client can see."""

from http import HTTPStatus
from typing import Any, ClassVar


class AppError(Exception):
    status_code: int = 400
    code: str = "bad_request"
    detail: str = "Bad request"
    # code -> the classes that send it (one code may be sent with two statuses, e.g.
    # project_not_found: 404 on /projects/{id}, 422 for a task's project_id).
    registry: ClassVar[dict[str, list[type["AppError"]]]] = {}
    # More members of the problem object (RFC 9457 §3.2 extensions), e.g. a bulk
    # request's per-operation `results`.
    extensions: dict[str, Any] | None = None
    # The JSON schemas of those members (name -> schema), for the OpenAPI document.
    extension_schemas: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            AppError.registry.setdefault(cls.code, []).append(cls)

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.detail = detail or type(self).detail
        self.code = code or type(self).code
        self.headers = headers or {}
        self.errors = errors
        super().__init__(self.detail)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status_code).phrase


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"
    detail = "Bad request"


class MalformedJson(AppError):
    status_code = 400
    code = "malformed_json"
    detail = "The request body is not valid JSON"


class Unauthorized(AppError):
    status_code = 401
    code = "not_authenticated"
    detail = "Not authenticated"

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class InvalidToken(Unauthorized):
    code = "invalid_token"
    detail = "The token is invalid, expired or revoked"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    detail = "Incorrect email or password"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    detail = "You cannot access this resource"


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    detail = "Not found"


class MethodNotAllowed(AppError):
    status_code = 405
    code = "method_not_allowed"
    detail = "Method Not Allowed"


class NotAcceptable(AppError):
    status_code = 406
    code = "not_acceptable"
    detail = "Not Acceptable"


class HeaderTimeout(AppError):
    """Sent by the served process (app/core/protocol.py), before the app sees a request."""

    status_code = 408
    code = "header_timeout"
    detail = "The request head came too slowly"


class BodyTimeout(AppError):
    status_code = 408
    code = "body_timeout"
    detail = "The request body came too slowly"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    detail = "Conflict"


class PreconditionFailed(AppError):
    status_code = 412
    code = "precondition_failed"
    detail = "The resource was changed since you read it (If-Match does not match)"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    detail = "The request body is too large"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"
    detail = "Send the body as application/json"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"
    detail = "The request is not valid"


class InvalidCursor(ValidationFailed):
    """A `cursor` that is not one we made (cut short, made up, altered), or one made for
    something else: another sort of the task list, another user's sync."""

    code = "invalid_cursor"
    detail = "The cursor is not valid here; start again without it"

    def __init__(self, message: str = "Not a cursor of this listing") -> None:
        super().__init__(errors=[{"field": "query.cursor", "message": message, "type": self.code}])


class SyncCursorExpired(AppError):
    """A sync cursor older than SYNC_RETENTION_DAYS: deletions since may be forgotten."""

    status_code = 410
    code = "sync_cursor_expired"
    detail = "The cursor is too old; sync again without it"


class HeadersTooLarge(AppError):
    status_code = 431
    code = "headers_too_large"
    detail = "The request line and headers are too large"


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    detail = "Too many requests, retry later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


class InternalError(AppError):
    status_code = 500
    code = "internal_error"
    detail = "An unexpected error occurred; quote the request id if you report it"


class HttpError(AppError):
    """Starlette's own HTTPException with a status this API has no code for (none is
    raised today; kept so such an answer still carries a documented code)."""

    code = "http_error"
    detail = "The request failed"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "database_unavailable"
    detail = "The database is unavailable, retry later"


class DatabaseTimeout(ServiceUnavailable):
    """A statement (or its wait for a row lock) ran past DB_STATEMENT_TIMEOUT, or the
    database cancelled it: nothing was written, and a retry may well succeed."""

    code = "database_timeout"
    detail = "The database took too long to answer, retry later"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class DatabaseConflict(ServiceUnavailable):
    """The database ended the transaction to break a deadlock with a concurrent one (or
    a serialization failure): nothing was written, and a retry succeeds."""

    code = "database_conflict"
    detail = "The request collided with a concurrent one and wrote nothing, retry it"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class RequestTimeout(ServiceUnavailable):
    """The request held its worker past REQUEST_TIMEOUT and was cancelled."""

    code = "request_timeout"
    detail = "The request took too long and was cancelled; retry later"


class ServerBusy(ServiceUnavailable):
    """Sent by the served process beyond HTTP_MAX_CONNECTIONS (app/core/protocol.py)."""

    code = "server_busy"
    detail = "Too many open connections; retry later"


class GenericServiceUnavailable(ServiceUnavailable):
    """Starlette's HTTPException(503), which nothing raises today."""

    code = "service_unavailable"
    detail = "The service is unavailable, retry later"


def codes_of(status: int) -> list[str]:
    """Every registered code sent with this status."""
    return sorted(
        code
        for code, classes in AppError.registry.items()
        if any(c.status_code == status for c in classes)
    )


def stable_codes() -> list[str]:
    return sorted(AppError.registry)
