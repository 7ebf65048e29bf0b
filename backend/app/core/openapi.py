"""OpenAPI helpers: routes declare their error responses, all problem+json."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from app.core.schemas import Problem

PROBLEM_JSON = "application/problem+json"
_REF = "#/components/schemas/"
# FastAPI's own 422 body, which this API never sends (its 422 is a Problem).
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting each status as application/problem+json."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {}},
        }
        for status in statuses
    }


def document_problems(app: FastAPI) -> None:
    """Make the generated document say what the handlers send.

    FastAPI documents a response `model` under the route's media type
    (application/json) and adds its HTTPValidationError 422 to every route with
    parameters; both are rewritten once, when the document is first built."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _rewrite_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _rewrite_errors(schema: dict[str, Any]) -> None:
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if _is_error(status):
                    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": _REF + "Problem"}}}
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    if "Problem" not in schemas:
        _add_problem_schemas(schemas)


def _is_error(status: str) -> bool:
    return status in ("4XX", "5XX", "default") or (status.isdigit() and int(status) >= 400)


def _add_problem_schemas(schemas: dict[str, Any]) -> None:
    """Only needed when no route used problems() (FastAPI then never saw Problem)."""
    generated = Problem.model_json_schema(ref_template=_REF + "{model}")
    schemas.update(generated.pop("$defs", {}))
    schemas["Problem"] = generated
