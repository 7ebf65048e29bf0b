"""Domain errors. They carry their HTTP status and stable code but never import FastAPI;
`app.core.handlers` renders every one of them as RFC 9457 problem+json."""

from http import HTTPStatus


class AppError(Exception):
    status_code: int = 400
    code: str = "bad_request"
    detail: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
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


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    detail = "Too many requests, retry later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


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
