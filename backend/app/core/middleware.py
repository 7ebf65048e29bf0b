"""Pure ASGI middleware (not BaseHTTPMiddleware, which breaks context variables and
streaming): request context and access log, then body limits and sanitizing."""

import json
import logging
import re
import time
import uuid
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import RequestContext, set_context
from app.core.handlers import internal_error_response, problem_response
from app.core.sanitize import UnsafeString, sanitize_json

access_logger = logging.getLogger("app.access")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# FastAPI parses application/json and any application/*+json, case-insensitively.
_JSON_TYPE = re.compile(r"^application/(?:[a-z0-9.\-]+\+)?json$")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _request_id(headers: Headers) -> str:
    candidate = headers.get("x-request-id", "")
    return candidate if _SANE_REQUEST_ID.match(candidate) else uuid.uuid4().hex


class RequestContextMiddleware:
    """Outermost: request id in and out, one JSON log line per request, and the 500
    for anything unhandled (so that 500 also carries the request id and a log line)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = RequestContext(request_id=_request_id(Headers(scope=scope)))
        set_context(ctx)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", ctx.request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:
                access_logger.error("exception after the response started", exc_info=exc)
            else:
                await internal_error_response(exc)(scope, receive, send_with_id)
        finally:
            self._log(scope, ctx, status, start)

    @staticmethod
    def _log(scope: Scope, ctx: RequestContext, status: int, start: float) -> None:
        # The route template (e.g. /api/v1/tasks/{task_id}), never the query string.
        # FastAPI keeps the full template on its effective route context; fall back
        # to the route's own path, then to the raw path (e.g. for a 404).
        effective = scope.get("fastapi", {}).get("effective_route_context")
        path = (
            getattr(effective, "path_format", None)
            or getattr(scope.get("route"), "path", None)
            or scope.get("path", "")
        )
        access_logger.info(
            "request",
            extra={
                "method": scope.get("method"),
                "route": path,
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                "user_id": ctx.user_id,
            },
        )


class BodyMiddleware:
    """Limits every request body, and for JSON under /api: refuses other content types
    (415), malformed JSON (400), forbidden characters (422), then sanitizes each string
    and hands the rewritten body on."""

    def __init__(self, app: ASGIApp, max_bytes: int, form_paths: frozenset[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.form_paths = form_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send, 413, "payload_too_large")
            return
        body = await self._read_body(receive)
        if body is None:
            await self._reject(scope, receive, send, 413, "payload_too_large")
            return
        if body and scope["path"].startswith("/api/"):
            rewritten = await self._json_body(scope, receive, send, headers, body)
            if rewritten is None:
                return
            body = rewritten
        await self.app(self._with_body(scope, len(body)), _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (chunked bodies included)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _json_body(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, body: bytes
    ) -> bytes | None:
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if scope["path"] in self.form_paths and media_type in _FORM_TYPES:
            return body
        if not _JSON_TYPE.match(media_type):
            await self._reject(scope, receive, send, 415, "unsupported_media_type")
            return None
        try:
            document = _parse_json(body)
        except ValueError:
            await self._reject(scope, receive, send, 400, "malformed_json")
            return None
        try:
            clean = sanitize_json(document)
        except UnsafeString as exc:
            errors = [{"field": exc.field, "message": exc.message}]
            response = problem_response(
                422, "validation_error", "The request is not valid", errors=errors
            )
            await response(scope, receive, send)
            return None
        return body if clean == document else orjson.dumps(clean)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, status: int, code: str) -> None:
        details = {
            413: "The request body is larger than the limit",
            415: "Send the body as application/json",
            400: "The request body is not valid JSON",
        }
        await problem_response(status, code, details[status])(scope, receive, send)

    @staticmethod
    def _with_body(scope: Scope, length: int) -> Scope:
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k not in (b"content-length", b"transfer-encoding")
        ]
        headers.append((b"content-length", str(length).encode()))
        scope["headers"] = headers
        return scope


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses escaped lone surrogates as malformed; the standard parser
        # accepts them, so sanitize_json can answer 422 for them as the contract says.
        return json.loads(body.decode("utf-8"))


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when the client goes away

    return replay

