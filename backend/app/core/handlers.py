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
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.core.context import current_request_id
from app.core.errors import AppError, ServiceUnavailable
from app.core.openapi import document_problems

logger = logging.getLogger("app.errors")

PROBLEM_JSON = "application/problem+json"

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[dict[str, str]] | None = None,
) -> Response:
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
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def _location(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """`{field, message}` per error. Never the submitted `input` (it may be a password)."""
    result = []
    for error in exc.errors():
        message = str(error.get("msg", "Invalid value")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            message = "Malformed JSON"
        elif _echoes_input(message, error.get("input")):
            message = "Invalid value"
        result.append({"field": _location(error.get("loc", ())), "message": message})
    return result


def _echoes_input(message: str, value: Any) -> bool:
    """Some validators (e.g. email-validator) quote parts of what they refuse; a
    message quoting the whole submitted string is replaced rather than trusted."""
    return isinstance(value, str) and len(value) >= 4 and value in message


async def handle_app_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(
        exc.status_code, exc.code, exc.detail, headers=exc.headers, errors=exc.errors
    )


async def handle_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    if any(e["message"] == "Malformed JSON" for e in errors):
        return problem_response(400, "malformed_json", "The request body is not valid JSON")
    return problem_response(422, "validation_error", "The request is not valid", errors=errors)


async def handle_http_exception(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    if status == 404 and detail == "Not Found":
        detail = "No such route"
    return problem_response(status, code, detail, headers=exc.headers)


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
    return problem_response(
        500, "internal_error", "An unexpected error occurred; quote the request id if you report it"
    )


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
