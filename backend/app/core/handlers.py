"""The one place that renders errors: every failure becomes RFC 9457 problem+json."""

import logging
import socket
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from app.core import errors as e
from app.core.context import current_request_id
from app.core.errors import AppError, ServiceUnavailable
from app.core.openapi import document_problems

logger = logging.getLogger("app.errors")

PROBLEM_JSON = "application/problem+json"

# Starlette's own HTTPExceptions (no route, wrong method, ...), by status.
_HTTP_ERRORS: dict[int, type[AppError]] = {
    cls.status_code: cls
    for cls in (
        e.BadRequest,
        e.Unauthorized,
        e.Forbidden,
        e.NotFound,
        e.MethodNotAllowed,
        e.NotAcceptable,
        e.PayloadTooLarge,
        e.UnsupportedMediaType,
        e.ValidationFailed,
        e.RateLimited,
        e.InternalError,
        e.GenericServiceUnavailable,
    )
}


def problem_body(
    status: int, code: str, detail: str, errors: Sequence[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The problem object itself (also what a bulk request answers per failed operation)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
    }
    if errors is not None:
        body["errors"] = list(errors)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    body = problem_body(status, code, detail, errors)
    if extensions:
        body.update(extensions)
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def _location(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


# The limits a failed constraint names (pydantic's `ctx`), copied beside the message so
# a client can say "at most 200 characters" in its own words; never `input`.
_LIMITS = ("min_length", "max_length", "ge", "gt", "le", "lt", "multiple_of", "pattern", "expected")


_STRING_LENGTH = {
    "too_short": ("string_too_short", "least"),
    "too_long": ("string_too_long", "most"),
}


def field_error(loc: Sequence[int | str], error: Mapping[str, Any]) -> dict[str, Any]:
    """`{field, message, type, <limits>}` for one pydantic error, e.g. `{"field":
    "body.title", "message": "String should have at least 1 character", "type":
    "string_too_short", "min_length": 1}`. Never the submitted `input` (it may be a
    password)."""
    kind = str(error.get("type", "value_error"))
    message = str(error.get("msg", "Invalid value")).removeprefix("Value error, ")
    context = error.get("ctx") or {}
    if kind in _STRING_LENGTH and isinstance(error.get("input"), str):
        # A length checked after a BeforeValidator (trimmed titles and names) is
        # pydantic's generic "at least 1 item after validation": say it of a string.
        kind, word = _STRING_LENGTH[kind]
        limit = context.get("min_length" if word == "least" else "max_length")
        message = f"String should have at {word} {limit} character{'' if limit == 1 else 's'}"
    if kind == "json_invalid":
        message = "Malformed JSON"
    elif _echoes_input(message, error.get("input")):
        message = "Invalid value"
    item: dict[str, Any] = {"field": _location(loc), "message": message, "type": kind}
    for name in _LIMITS:
        if name in context:
            value = context[name]
            item[name] = value if isinstance(value, int | float | str) else str(value)
    return item


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [field_error(error.get("loc", ()), error) for error in exc.errors()]


def _echoes_input(message: str, value: Any) -> bool:
    """Some validators (e.g. email-validator) quote parts of what they refuse; a
    message quoting the whole submitted string is replaced rather than trusted."""
    return isinstance(value, str) and len(value) >= 4 and value in message


async def handle_app_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(
        exc.status_code,
        exc.code,
        exc.detail,
        headers=exc.headers,
        errors=exc.errors,
        extensions=exc.extensions,
    )


async def handle_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    if any(error["type"] == "json_invalid" for error in errors):
        malformed = e.MalformedJson
        return problem_response(malformed.status_code, malformed.code, malformed.detail)
    failed = validation_class(errors)
    return problem_response(failed.status_code, failed.code, failed.detail, errors=errors)


def validation_class(errors: list[dict[str, Any]]) -> type[AppError]:
    """The 422 these field errors answer: the first whose type is the code of a 422 of
    ours (a validator raised it so, e.g. invalid_time_zone), else validation_error."""
    for error in errors:
        coded = [c for c in AppError.registry.get(error["type"], ()) if c.status_code == 422]
        if coded:
            return coded[0]
    return e.ValidationFailed


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_ERRORS.get(status, e.HttpError).code
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    if status == 404 and detail == "Not Found":
        detail = "No such route"
    headers = exc.headers
    if status == 405:
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return problem_response(status, code, detail, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method of every route of this path. Starlette's own 405 names only the
    first route that matched the path (OPTIONS /api/v1/tasks said `Allow: POST`)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


# SQLSTATE classes meaning "the database cannot serve now": connection exceptions,
# insufficient resources (e.g. 53300 too many connections), operator intervention
# (e.g. 57P03 cannot connect now, the server is starting or shutting down).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")
_NETWORK_ERRORS = (ConnectionError, TimeoutError, socket.gaierror)


def _connection_lost(exc: Exception) -> bool:
    """Only failures to reach or use the database; any other OSError (a missing file,
    say) is a bug and stays a 500."""
    if isinstance(exc, _NETWORK_ERRORS):
        return True
    if isinstance(exc, asyncpg.InterfaceError):  # most are bugs, these are not
        return str(exc).startswith(("connection is closed", "pool is clos"))
    if isinstance(exc, asyncpg.PostgresError):
        code = getattr(exc, "sqlstate", None) or ""
        return isinstance(exc, asyncpg.PostgresConnectionError) or code.startswith(
            _UNAVAILABLE_SQLSTATES
        )
    return False


async def handle_database_unavailable(_: Request, exc: Exception) -> Response:
    if not _connection_lost(exc):
        return internal_error_response(exc)
    # The cause (refused, timed out, auth failed) is for operators, not clients.
    logger.error("database unavailable: %s", type(exc).__name__, exc_info=exc)
    err = ServiceUnavailable(headers={"Retry-After": "5"})
    return problem_response(err.status_code, err.code, err.detail, headers=err.headers)


def internal_error_response(exc: BaseException) -> Response:
    """A 500 that says nothing of the internals; the log line holds the traceback."""
    logger.error("unhandled exception", exc_info=exc)
    error = e.InternalError
    return problem_response(error.status_code, error.code, error.detail)


def register_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, handle_app_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    # Registered by class (not `Exception`), so they run inside our middleware and
    # keep the request id; anything else is caught by RequestContextMiddleware.
    database_errors = (asyncpg.PostgresError, asyncpg.InterfaceError)
    for exc_class in (*database_errors, *_NETWORK_ERRORS):
        app.add_exception_handler(exc_class, handle_database_unavailable)
    # What these handlers render is what the OpenAPI document must promise.
    document_problems(app)
