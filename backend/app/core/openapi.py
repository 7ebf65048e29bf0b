"""The OpenAPI document says what the server does.

Routes declare their errors by class (`responses=problems(TaskNotFound, 412)`),
dependencies by `@raises(...)`; the document is then rewritten once, when first built:

- every error response is `application/problem+json` whose `code` is an enum of the
  codes that route can send with that status (the codes of the declared classes, of its
  dependencies, and of what the middleware or the handlers send on any route: 400, 413,
  415, 422, 500, 503), and `components.schemas.ErrorCode` lists every stable code, from
  the error classes' registry (`AppError.registry`: a new class is documented by being
  defined);
- 422 only on routes with input (parameters or a body), 400/415 only on routes with a
  JSON body, 413 on every route that can be sent a body;
- response headers: `X-Request-ID` on every response, `WWW-Authenticate` on 401,
  `Retry-After` on 429 and 503, and each route's own (`sends(...)`: ETag, Location, ...);
- `security: []` on public routes, the compatibility routes in their own tag.
"""

from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

from app.core import errors as e
from app.core.errors import AppError
from app.core.schemas import TEXT_PATTERN, Problem

PROBLEM_JSON = "application/problem+json"
_REF = "#/components/schemas/"
# FastAPI's own 422 body, which this API never sends (its 422 is a Problem).
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_CODES_KEY = "x-problem-codes"  # carried from problems() to the rewrite, then removed
COMPAT_PREFIX = "/api/{user_id}"
_BODY_METHODS = {"post", "put", "patch", "delete"}

F = TypeVar("F", bound=Callable[..., Any])


def raises(*errors: type[AppError]) -> Callable[[F], F]:
    """Mark a dependency with the errors it raises: every route that uses it (however
    deep) documents them."""

    def mark(function: F) -> F:
        function.__raises__ = errors  # type: ignore[attr-defined]
        return function

    return mark


def problems(*errors: int | type[AppError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting each status (or error class: its status and
    code) as application/problem+json."""
    codes: dict[int, list[str]] = {}
    for error in errors:
        if isinstance(error, int):
            codes.setdefault(error, [])
        else:
            codes.setdefault(error.status_code, []).append(error.code)
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {}},
            _CODES_KEY: sorted(set(found)),
        }
        for status, found in codes.items()
    }


_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The client's own X-Request-ID when it sent a sane one, else a new "
        "id; it is also in every problem's `request_id` and in the log",
        "required": True,
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"},
    },
    "ETag": {
        "description": 'The version, quoted (`"3"`): send it back in If-Match',
        "required": True,
        "schema": {"type": "string", "pattern": r'^"[0-9]+"$'},
    },
    "ETag (body)": {
        "description": "A hash of the body, quoted: send it back in If-None-Match to get 304 "
        "while nothing in the page (or its total) changed",
        "required": True,
        "schema": {"type": "string", "pattern": r'^"[0-9a-f]{32}"$'},
    },
    "Link": {
        "description": '`<…>; rel="next"`: the next page, i.e. this request (its path, '
        "relative, and its query parameters but offset and cursor) with `cursor=` the "
        "body's `next_cursor`; absent on the last page",
        "required": False,
        "schema": {"type": "string", "pattern": '^<[^>]*>; rel="next"$'},
    },
    "Location": {
        "description": "The new resource's URL",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the replay of an earlier request with the "
        "same Idempotency-Key (nothing new was created)",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Cache-Control": {
        "description": "Responses that carry tokens are never stored",
        "required": True,
        "schema": {"type": "string", "enum": ["no-store"]},
    },
    "Pragma": {
        "description": "`no-cache`, for HTTP/1.0 caches",
        "required": True,
        "schema": {"type": "string", "enum": ["no-cache"]},
    },
    "WWW-Authenticate": {
        "description": "`Bearer`: send `Authorization: Bearer <access_token>`",
        "required": True,
        "schema": {"type": "string", "pattern": "^Bearer"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}


def sends(status: int, *headers: str) -> dict[int | str, dict[str, Any]]:
    """A `responses=` entry documenting the headers a route's success response carries
    (`"ETag (body)"`: the ETag header, described as a hash of the body)."""
    return {status: {"headers": {name.split(" ")[0]: _HEADERS[name] for name in headers}}}


def header_schema(name: str) -> dict[str, Any]:
    return _HEADERS[name]


def operation_id(route: APIRoute) -> str:
    """Short, stable and unique: `<tag>-<handler name without the tag's noun>`, e.g.
    create_task under `tasks` -> `tasks-create`; the compatibility routes get `compat-`
    before (`compat-tasks-list`)."""
    tag = str(route.tags[-1]) if route.tags else "api"
    nouns = {tag, tag.removesuffix("s")}
    words = [word for word in route.name.split("_") if word not in nouns] or [route.name]
    prefix = ["compat"] if _is_compat(route) else []
    return "-".join([*prefix, tag, *words])


def _is_compat(route: APIRoute | RouteContext) -> bool:
    return (route.path_format or "").startswith(COMPAT_PREFIX)


def document_problems(app: FastAPI) -> None:
    """Rewrite the generated document once, when it is first built (see the module)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _rewrite(schema, list(api_routes(app.routes)))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[RouteContext]:
    """Every API route as served: FastAPI 0.165 shares one APIRoute between the routers
    that include it (the tasks routes under /api/v1 and /api/{user_id}), each inclusion
    being a context with its full path, tags and dependencies."""
    for context in iter_route_contexts(list(routes)):
        if isinstance(context.original_route, APIRoute):
            yield context


def _rewrite(schema: dict[str, Any], routes: list[RouteContext]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    if "Problem" not in schemas:
        _add_problem_schemas(schemas)
    schemas["ErrorCode"] = {
        "type": "string",
        "enum": e.stable_codes(),
        "description": "Every stable `code` a problem can carry; clients switch on it",
    }
    schemas["Problem"]["properties"]["code"] = {"$ref": _REF + "ErrorCode"}
    _document_refused_characters(schema)
    for route in routes:
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            operation = schema["paths"][route.path_format][method.lower()]
            _rewrite_operation(route, method.lower(), operation)


def _rewrite_operation(route: RouteContext, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    codes = _route_codes(route, method, operation)
    for key in [s for s in responses if _is_error(s)]:
        found = codes.setdefault(int(key), set())
        found.update(responses[key].pop(_CODES_KEY, []))
        if not found:  # a bare status: any code sent with it
            found.update(e.codes_of(int(key)))
    if not _has_input(operation):
        codes.pop(422, None)
        responses.pop("422", None)
    for status, found in sorted(codes.items()):
        phrase = HTTPStatus(status).phrase
        response = responses.setdefault(str(status), {"description": phrase})
        response["content"] = {PROBLEM_JSON: {"schema": _problem_schema(status, found)}}
        headers = response.setdefault("headers", {})
        if status == 401:
            headers["WWW-Authenticate"] = _HEADERS["WWW-Authenticate"]
        if status in (429, 503):
            headers["Retry-After"] = _HEADERS["Retry-After"]
    for response in responses.values():
        response.setdefault("headers", {})["X-Request-ID"] = _HEADERS["X-Request-ID"]
    operation["responses"] = dict(sorted(responses.items()))
    if "security" not in operation:
        operation["security"] = []  # public: no token needed
    if _is_compat(route):
        operation["tags"] = ["compat"]


def _route_codes(
    route: RouteContext, method: str, operation: dict[str, Any]
) -> dict[int, set[str]]:
    """What any route of this shape can answer, besides its declared errors."""
    found: dict[int, set[str]] = {}

    def add(*errors: type[AppError]) -> None:
        for error in errors:
            found.setdefault(error.status_code, set()).add(error.code)

    for error in _dependency_errors(route.dependant):
        add(error)
    add(e.InternalError, e.RequestTimeout, e.ServerBusy)
    if _has_input(operation):
        add(e.ValidationFailed)
    if any(p.get("in") == "path" for p in operation.get("parameters", ())):
        add(e.NotFound)  # a path that does not route (e.g. an id with a slash in it)
    if method in _BODY_METHODS:
        add(e.PayloadTooLarge)  # the limit applies whether the route reads a body or not
    if route.body_field is not None:
        add(e.MalformedJson, e.UnsupportedMediaType, e.ValidationFailed)
    return found


def _dependency_errors(dependant: Dependant) -> Iterator[type[AppError]]:
    for dependency in _walk(dependant):
        yield from getattr(dependency.call, "__raises__", ())


def _walk(dependant: Dependant) -> Iterable[Dependant]:
    yield dependant
    for child in dependant.dependencies:
        yield from _walk(child)


def _has_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters") or operation.get("requestBody"))


def _problem_schema(status: int, codes: set[str]) -> dict[str, Any]:
    """The Problem, with this response's status and codes pinned down (and the
    extension members its error classes add, e.g. bulk_aborted's `results`)."""
    extensions: dict[str, Any] = {}
    for code in sorted(codes):
        for error in e.AppError.registry.get(code, ()):
            if error.status_code == status:
                extensions.update(error.extension_schemas)
    return {
        "allOf": [
            {"$ref": _REF + "Problem"},
            {
                "type": "object",
                "required": ["code", "status"],
                "properties": {
                    "status": {"type": "integer", "enum": [status]},
                    "code": {"type": "string", "enum": sorted(codes)},
                    **extensions,
                },
            },
        ]
    }


def _document_refused_characters(schema: dict[str, Any]) -> None:
    """Every string of a request body (and of the query) refuses control characters
    (422, the sanitizing step): say so with TEXT_PATTERN wherever a string has no
    pattern, format or enum of its own."""
    schemas = schema["components"]["schemas"]
    names: set[str] = set()
    for item in schema["paths"].values():
        for operation in item.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                _collect_refs(content.get("schema", {}), schemas, names)
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") == "query":
                    _add_text_pattern(parameter.get("schema", {}))
    for name in names:
        _add_text_pattern(schemas[name])


def _collect_refs(node: Any, schemas: dict[str, Any], names: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect_refs(item, schemas, names)
    elif isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF) :] not in names:
            names.add(ref[len(_REF) :])
            _collect_refs(schemas[ref[len(_REF) :]], schemas, names)
        for value in node.values():
            _collect_refs(value, schemas, names)


def _add_text_pattern(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _add_text_pattern(item)
    elif isinstance(node, dict):
        own = ("pattern", "format", "enum", "const", "$ref")
        if node.get("type") == "string" and not any(key in node for key in own):
            node["pattern"] = TEXT_PATTERN
        for key in ("properties", "items", "anyOf", "allOf", "oneOf", "additionalProperties"):
            if key in node:
                value = node[key]
                _add_text_pattern(list(value.values()) if key == "properties" else value)


def _is_error(status: str) -> bool:
    return status.isdigit() and int(status) >= 400


def _add_problem_schemas(schemas: dict[str, Any]) -> None:
    """Only needed when no route used problems() (FastAPI then never saw Problem)."""
    generated = Problem.model_json_schema(ref_template=_REF + "{model}")
    schemas.update(generated.pop("$defs", {}))
    schemas["Problem"] = generated
