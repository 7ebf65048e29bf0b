"""Pure ASGI middleware (not Starlette's base HTTP middleware class, which breaks
context variables and streaming): request context and access log, then body limits
and sanitizing."""

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import RequestContext, reset_context, set_context
from app.core.errors import (
    AppError,
    MalformedJson,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
)
from app.core.handlers import internal_error_response, problem_response
from app.core.openapi import api_routes
from app.core.sanitize import UnsafeString, sanitize_json

access_logger = logging.getLogger("app.access")

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# FastAPI parses application/json and any application/*+json, case-insensitively.
_JSON_TYPE = re.compile(r"application/(?:[a-z0-9.\-]+\+)?json")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# nginx's convention for "the client went away before we answered".
_CLIENT_CLOSED = 499


def _request_id(headers: Headers) -> str:
    candidate = headers.get("x-request-id", "")
    # fullmatch: `$` would let a trailing newline through into logs and headers.
    return candidate if _SANE_REQUEST_ID.fullmatch(candidate) else uuid.uuid4().hex


class RequestContextMiddleware:
    """Outermost: request id in and out, one JSON log line per request, the 500 for
    anything unhandled (so that 500 also carries the request id and a log line), and
    REQUEST_TIMEOUT: a request that holds the worker longer is cancelled (its database
    statement with it: asyncpg cancels a statement whose task is cancelled) and
    answered 503 `request_timeout`. A request whose client hangs up before the response
    is complete is cancelled the same way (logged as 499), so no database work goes on
    for no one (see `_DisconnectWatch`)."""

    def __init__(self, app: ASGIApp, timeout: float = 30.0) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = RequestContext(request_id=_request_id(Headers(scope=scope)))
        token = set_context(ctx)
        start = time.perf_counter()
        status: int | None = None

        watch = _DisconnectWatch(scope, receive)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", ctx.request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                watch.response_complete = True
            await send(message)

        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                try:
                    await self.app(scope, watch.receive, send_with_id)
                finally:
                    watch.close()
        except asyncio.CancelledError:
            if not watch.client_gone:
                raise
            # Our own cancellation: the client left, there is no one to answer.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            status = None
        except Exception as exc:
            timed_out = isinstance(exc, TimeoutError) and deadline.expired()
            if status is not None:
                access_logger.error("failed after the response started", exc_info=exc)
            elif timed_out:
                await _timed_out(self.timeout)(scope, receive, send_with_id)
            else:  # anything else unhandled, a TimeoutError of the app's own included
                await internal_error_response(exc)(scope, receive, send_with_id)
        finally:
            self._log(scope, ctx, status or _CLIENT_CLOSED, start)
            reset_context(token)

    @staticmethod
    def _log(scope: Scope, ctx: RequestContext, status: int, start: float) -> None:
        access_logger.info(
            "request",
            extra={
                "method": scope.get("method"),
                "route": _route_template(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                "user_id": ctx.user_id,
            },
        )


class _DisconnectWatch:
    """Cancels the request's task when its client hangs up before the response is
    complete: asyncpg then cancels the statement on the server, and the connection goes
    back to the pool in working order. Servers do not do this themselves (uvicorn only
    answers a later `receive()` with `http.disconnect`).

    The watch owns the server's `receive`, so that it never takes a body chunk from the
    app: it listens only once the body is complete (at once for a request without a
    body, keeping that empty first message for the app; after the app has read the last
    chunk otherwise). Its listening `receive()` also returns once the response is
    complete (uvicorn then says `http.disconnect` too), which cancels nothing."""

    __slots__ = ("_first", "_listener", "_receive", "_task", "client_gone", "response_complete")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self._receive = receive
        self._task = asyncio.current_task()
        self._listener: asyncio.Task[Message] | None = None
        self._first: asyncio.Future[Message] | None = None
        self.client_gone = False
        self.response_complete = False
        if not _has_body(scope):
            self._first = asyncio.get_running_loop().create_future()
            self._listen()

    def _listen(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(self._wait())

    async def _wait(self) -> Message:
        if self._first is not None:
            first = await self._read_empty_body()
            self._first.set_result(first)
            if first["type"] == "http.disconnect":
                self._gone()
                return first
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self._gone()
        return message

    async def _read_empty_body(self) -> Message:
        """The body of a request without Content-Length or Transfer-Encoding, as one
        message. A server may send it in several (httpx's ASGITransport sends b"" with
        more_body, then the end): listening right after the first took the last one as
        the next message, and every later `receive()` returned that `http.request` at
        once, so Starlette's FileResponse, which loops on `receive()` until
        `http.disconnect`, spun for ever (every static file under the test client)."""
        message = await self._receive()
        body = b""
        while message["type"] == "http.request" and message.get("more_body", False):
            body += message.get("body", b"")
            message = await self._receive()
        if message["type"] != "http.request" or not body:
            return message
        return {"type": "http.request", "body": body + message.get("body", b""), "more_body": False}

    def _gone(self) -> None:
        if not self.response_complete and self._task is not None:
            self.client_gone = True
            self._task.cancel()

    async def receive(self) -> Message:
        if self._listener is None:
            message = await self._receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                self._listen()
            return message
        if self._first is not None:
            first = await asyncio.shield(self._first)
            self._first = None
            if first["type"] == "http.request":
                return first
        return await asyncio.shield(self._listener)

    def close(self) -> None:
        """No cancellation from here on: the app has returned."""
        self._task = None
        if self._listener is not None and not self._listener.done():
            self._listener.cancel()


def _has_body(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return bool(value != b"0")
        if key == b"transfer-encoding":
            return True
    return False


def _timed_out(timeout: float) -> Response:
    return problem_response(
        RequestTimeout.status_code,
        RequestTimeout.code,
        f"The request took longer than {timeout:g} s and was cancelled; retry later",
        headers={"Retry-After": "1"},
    )


def _route_template(scope: Scope) -> str:
    """The route template (e.g. /api/v1/tasks/{task_id}), never the query string.

    FastAPI keeps the full template on its effective route context; fall back to the
    route's own path, then to the raw path (e.g. for a 404)."""
    effective = scope.get("fastapi", {}).get("effective_route_context")
    path = (
        getattr(effective, "path_format", None)
        or getattr(scope.get("route"), "path", None)
        or scope.get("path", "")
    )
    return str(path)


class _ClientGone(Exception):
    """The client disconnected while sending its body: there is no one to answer."""


BodyRoutes = Sequence[tuple[re.Pattern[str], frozenset[str]]]


def body_routes(routes: Sequence[BaseRoute]) -> BodyRoutes:
    """(path pattern, methods) of every route that reads a request body."""
    return [
        (route.path_regex, frozenset(route.methods or ()))
        for route in api_routes(routes)
        if route.body_field is not None
    ]


class BodyMiddleware:
    """Limits every request body, and for JSON under /api: refuses other content types
    (415), malformed JSON (400), forbidden characters (422), then sanitizes each string
    and hands the rewritten body on.

    With `body_routes`, the JSON checks apply only to the routes that read a body: a
    body sent to one that takes none (POST /auth/logout, say) is ignored as the route
    ignores it, so such a route never answers 400, 415 or 422, as its document says.
    The size limit still applies to every request."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        form_paths: frozenset[str],
        body_routes: BodyRoutes | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.form_paths = form_paths
        self.body_routes = body_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _reject(scope, receive, send, PayloadTooLarge)
            return
        try:
            body = await self._read_body(receive)
        except _ClientGone:
            return
        if body is None:
            await _reject(scope, receive, send, PayloadTooLarge)
            return
        if body and scope["path"].startswith("/api/") and self._reads_body(scope):
            rewritten = await self._json_body(scope, receive, send, headers, body)
            if rewritten is None:
                return
            body = rewritten
        await self.app(_with_length(scope, len(body)), _replay(body, receive), send)

    def _reads_body(self, scope: Scope) -> bool:
        if self.body_routes is None:
            return True
        path, method = scope["path"], scope["method"]
        return any(method in methods and rx.match(path) for rx, methods in self.body_routes)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (chunked bodies included)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _json_body(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, body: bytes
    ) -> bytes | None:
        """The sanitized body, or None when a problem response was sent instead."""
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if scope["path"] in self.form_paths and media_type in _FORM_TYPES:
            return body
        if not _JSON_TYPE.fullmatch(media_type):
            await _reject(scope, receive, send, UnsupportedMediaType)
            return None
        try:
            document = _parse_json(body)
            clean = sanitize_json(document)
        except UnsafeString as exc:
            errors = [{"field": exc.field, "message": exc.message, "type": exc.type}]
            failed = ValidationFailed
            response = problem_response(
                failed.status_code, failed.code, failed.detail, errors=errors
            )
            await response(scope, receive, send)
            return None
        except ValueError:
            await _reject(scope, receive, send, MalformedJson)
            return None
        return body if clean == document else _dump_json(clean)


async def _reject(scope: Scope, receive: Receive, send: Send, error: type[AppError]) -> None:
    await problem_response(error.status_code, error.code, error.detail)(scope, receive, send)


def _with_length(scope: Scope, length: int) -> Scope:
    """The body is now fully read: announce its exact length instead of chunks.

    The scope is changed in place, not copied: the router records the matched route
    in it, and the access log reads the route template from the same dict."""
    headers = [
        (k, v) for k, v in scope["headers"] if k not in (b"content-length", b"transfer-encoding")
    ]
    headers.append((b"content-length", str(length).encode()))
    scope["headers"] = headers
    return scope


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(body: bytes) -> Any:
    """Parse like FastAPI would, but stricter. Raises ValueError (malformed) or
    UnsafeString (nested too deeply)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses escaped lone surrogates as malformed (and nesting past 1024); the
    # standard parser accepts the former, so sanitize_json can answer 422 for them as
    # the contract says. NaN and Infinity are not JSON: refused like orjson does.
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise UnsafeString("body", "Nested too deeply", "too_deeply_nested") from None


def _dump_json(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits, which the standard library handles
        return json.dumps(value, ensure_ascii=False).encode()


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when the client goes away

    return replay
