"""The OpenAPI document describes the task, project and tag routes of the contract."""

import pytest

ROUTES = {
    "/api/v1/tasks": {"get": {"200", "401", "422"}, "post": {"201", "401", "409", "422"}},
    "/api/v1/tasks/{task_id}": {
        "get": {"200", "404"}, "put": {"200", "404", "412", "422"},
        "patch": {"200", "404", "412", "422"}, "delete": {"204", "404", "412"},
    },
    "/api/v1/tasks/{task_id}/complete": {"patch": {"200", "404", "412"}},
    "/api/v1/projects": {"get": {"200"}, "post": {"201", "409", "422"}},
    "/api/v1/projects/{project_id}": {
        "get": {"200", "404"}, "patch": {"200", "404", "409"}, "delete": {"204", "404"},
    },
    "/api/v1/tags": {"get": {"200"}},
    "/api/v1/tags/{name}": {"patch": {"200", "404"}, "delete": {"204", "404"}},
}  # fmt: skip


@pytest.fixture(scope="module")
def openapi(app) -> dict:
    return app.openapi()


class TestOpenApi:
    @pytest.mark.parametrize("path", ROUTES)
    def test_routes_and_their_responses(self, openapi: dict, path: str) -> None:
        for method, statuses in ROUTES[path].items():
            operation = openapi["paths"][path][method]
            assert statuses <= set(operation["responses"]), (path, method)
            assert operation["summary"]  # the one-line docstring
            for status in statuses - {"200", "201", "204"}:
                content = operation["responses"][status]["content"]
                assert "application/problem+json" in content

    def test_list_parameters(self, openapi: dict) -> None:
        params = {p["name"] for p in openapi["paths"]["/api/v1/tasks"]["get"]["parameters"]}
        assert params >= {
            "status", "priority", "tags", "tags[]", "project_id", "search", "due_before",
            "due_after", "updated_since", "sort_by", "sort_direction", "limit", "offset",
        }  # fmt: skip

    def test_request_bodies_forbid_unknown_fields(self, openapi: dict) -> None:
        schemas = openapi["components"]["schemas"]
        for name in ("TaskCreate", "TaskUpdate", "TaskCompletion", "ProjectCreate",
                     "ProjectUpdate", "TagRename"):  # fmt: skip
            assert schemas[name]["additionalProperties"] is False

    def test_headers_are_documented(self, openapi: dict) -> None:
        post = openapi["paths"]["/api/v1/tasks"]["post"]
        assert "Idempotency-Key" in {p["name"] for p in post["parameters"]}
        put = openapi["paths"]["/api/v1/tasks/{task_id}"]["put"]
        assert "If-Match" in {p["name"] for p in put["parameters"]}
