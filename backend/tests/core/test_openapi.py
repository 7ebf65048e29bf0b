"""The OpenAPI document promises problem+json for every error, never FastAPI's 422."""

from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import AppFactory, client_for

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
METHODS = {"get", "post", "put", "patch", "delete"}


def _operations(schema: dict[str, Any], prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith(prefix)
        for method, operation in item.items()
        if method in METHODS
    ]


def _assert_errors_are_problems(schema: dict[str, Any], prefix: str) -> None:
    operations = _operations(schema, prefix)
    assert operations
    for path, method, operation in operations:
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        assert errors, (method, path)
        for status, response in errors.items():
            _assert_problem_content(response, int(status), (method, path))


def _assert_problem_content(response: dict[str, Any], status: int, where: Any) -> list[str]:
    """problem+json only: a Problem whose status is pinned and whose code is an enum.
    Returns the codes."""
    assert set(response["content"]) == {"application/problem+json"}, where
    schema = response["content"]["application/problem+json"]["schema"]
    problem, pinned = schema["allOf"]
    assert problem == PROBLEM_REF, where
    assert pinned["properties"]["status"]["enum"] == [status], where
    codes: list[str] = pinned["properties"]["code"]["enum"]
    assert codes, where
    return codes


class TestOpenApi:
    async def test_api_errors_are_problem_json(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        schema = response.json()
        _assert_errors_are_problems(schema, "/api/v1/")
        assert "HTTPValidationError" not in response.text
        assert "ValidationError" not in schema["components"]["schemas"]

    async def test_problem_schema_has_every_field(self, client: httpx.AsyncClient) -> None:
        schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
        problem = schemas["Problem"]
        assert set(problem["properties"]) == {
            "type",
            "title",
            "status",
            "detail",
            "code",
            "request_id",
            "errors",
        }
        assert set(schemas["FieldError"]["required"]) == {"field", "message", "type"}

    async def test_every_route_with_input_documents_422(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        for path, method, operation in _operations(schema, "/api/v1/"):
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in operation["responses"], (method, path)

    async def test_docs_page(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/docs")
        assert response.status_code == 200
        assert "swagger" in response.text.lower()


async def _item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


async def test_routes_without_declared_errors_get_problem_422(make_app: AppFactory) -> None:
    """A route added without problems() still documents our 422, not FastAPI's."""
    app: FastAPI = make_app()
    app.add_api_route("/extra/{item_id}", _item, methods=["GET"])
    async with client_for(app) as client:
        response = await client.get("/openapi.json")
    assert "HTTPValidationError" not in response.text
    operation = response.json()["paths"]["/extra/{item_id}"]["get"]
    codes = _assert_problem_content(operation["responses"]["422"], 422, "extra")
    assert codes == ["validation_error"]
