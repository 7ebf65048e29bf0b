"""The OpenAPI document describes the task, project and tag routes of the contract."""

import re
from typing import Annotated

import pytest
from fastapi import Depends

from app.core import errors as e
from app.core.errors import stable_codes
from app.core.openapi import raises
from tests.conftest import AppFactory, UserHandle, client_for
from tests.core.conftest import assert_problem
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import MISSING_ID, TASKS

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


def _operations(openapi: dict) -> dict[str, tuple[str, str, dict]]:
    """operationId -> (method, path, operation)."""
    return {
        operation["operationId"]: (method, path, operation)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
    }


def _codes(response: dict) -> list[str]:
    schema = response["content"]["application/problem+json"]["schema"]
    return schema["allOf"][1]["properties"]["code"]["enum"]


PUBLIC = {"auth-signup", "auth-login", "auth-token", "auth-refresh-tokens", "health-live",
          "health-ready"}  # fmt: skip
INPUTLESS = {"auth-read-me", "auth-logout", "auth-logout-all", "auth-list-sessions",
             "health-live", "health-ready"}  # fmt: skip


class TestOperationIds:
    def test_short_unique_and_named_after_the_tag(self, openapi: dict) -> None:
        ids = [op["operationId"] for item in openapi["paths"].values() for op in item.values()]
        assert len(ids) == len(set(ids))
        for operation_id in ids:
            assert re.fullmatch(r"[a-z]+(-[a-z]+){1,3}", operation_id), operation_id
            assert len(operation_id) <= 32
        assert {"tasks-list", "tasks-create", "tasks-get", "tasks-update", "auth-login",
                "projects-list", "tags-rename", "compat-tasks-list",
                "compat-tags-list"} <= set(ids)  # fmt: skip

    def test_compat_routes_have_their_own_tag(self, openapi: dict) -> None:
        for operation_id, (_, path, operation) in _operations(openapi).items():
            compat = path.startswith("/api/{user_id}")
            assert (operation["tags"] == ["compat"]) is compat, operation_id
            assert operation_id.startswith("compat-") is compat
        assert "compat" in {tag["name"] for tag in openapi["tags"]}

    def test_servers(self, openapi: dict) -> None:
        assert openapi["servers"]
        assert openapi["servers"][0]["url"]


class TestSecurity:
    def test_public_routes_say_security_none(self, openapi: dict) -> None:
        operations = _operations(openapi)
        for operation_id in PUBLIC:
            assert operations[operation_id][2]["security"] == [], operation_id

    def test_every_other_route_needs_the_bearer_token(self, openapi: dict) -> None:
        for operation_id, (_, _, operation) in _operations(openapi).items():
            if operation_id not in PUBLIC:
                assert operation["security"] == [{"OAuth2PasswordBearer": []}], operation_id
                assert _codes(operation["responses"]["401"]) == [
                    "invalid_token", "not_authenticated",
                ] or "invalid_credentials" in _codes(operation["responses"]["401"])  # fmt: skip


class TestErrorCodes:
    def test_shared_enum_is_every_registered_code(self, openapi: dict) -> None:
        enum = openapi["components"]["schemas"]["ErrorCode"]["enum"]
        assert enum == stable_codes()
        assert {"task_not_found", "validation_error", "malformed_json", "rate_limited",
                "database_unavailable", "internal_error", "email_taken"} <= set(enum)  # fmt: skip
        problem = openapi["components"]["schemas"]["Problem"]
        assert problem["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}

    def test_each_response_names_its_codes(self, openapi: dict) -> None:
        enum = set(openapi["components"]["schemas"]["ErrorCode"]["enum"])
        for operation_id, (_, _, operation) in _operations(openapi).items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    codes = _codes(response)
                    assert codes, (operation_id, status)
                    assert set(codes) <= enum, (operation_id, status)
                    assert all(e.AppError.registry[c][0] for c in codes)
        responses = _operations(openapi)["tasks-get"][2]["responses"]
        assert _codes(responses["404"]) == ["not_found", "task_not_found"]
        responses = _operations(openapi)["tasks-create"][2]["responses"]
        assert _codes(responses["422"]) == [
            "invalid_parent", "invalid_recurrence", "invalid_time_zone", "parent_not_found",
            "project_not_found", "recurrence_needs_due", "validation_error",
        ]  # fmt: skip
        assert _codes(responses["400"]) == ["malformed_json"]
        assert _codes(responses["415"]) == ["unsupported_media_type"]
        assert _codes(responses["413"]) == ["payload_too_large"]
        login = _operations(openapi)["auth-login"][2]["responses"]
        assert _codes(login["401"]) == ["invalid_credentials"]
        assert _codes(login["429"]) == ["rate_limited"]
        assert "rate_limit_unavailable" in _codes(login["503"])
        compat = _operations(openapi)["compat-tasks-list"][2]["responses"]
        assert _codes(compat["403"]) == ["forbidden"]

    async def test_a_new_error_class_is_documented_by_being_defined(
        self, make_app: AppFactory
    ) -> None:
        class IdentityProviderDown(e.ServiceUnavailable):
            code = "test_identity_provider_down"

        try:
            document = make_app().openapi()
            assert (
                "test_identity_provider_down"
                in document["components"]["schemas"]["ErrorCode"]["enum"]
            )
        finally:
            e.AppError.registry.pop("test_identity_provider_down")
        assert IdentityProviderDown.status_code == 503

    async def test_a_dependency_documents_what_it_raises(self, make_app: AppFactory) -> None:
        """@raises on a dependency puts its codes on every route that uses it."""
        app = make_app()

        @raises(e.Forbidden)
        async def guard() -> None:
            raise e.Forbidden()

        async def guarded(_: Annotated[None, Depends(guard)]) -> dict[str, str]:
            return {}

        app.add_api_route("/guarded", guarded, methods=["GET"])
        async with client_for(app) as client:
            document = (await client.get("/openapi.json")).json()
            assert_problem(await client.get("/guarded"), 403, "forbidden")
        responses = document["paths"]["/guarded"]["get"]["responses"]
        assert _codes(responses["403"]) == ["forbidden"]
        assert "422" not in responses  # no input


class TestHeaders:
    def test_every_response_declares_x_request_id(self, openapi: dict) -> None:
        for operation_id, (_, _, operation) in _operations(openapi).items():
            for status, response in operation["responses"].items():
                assert response["headers"]["X-Request-ID"]["required"], (operation_id, status)
                if status == "401":
                    assert "WWW-Authenticate" in response["headers"], operation_id
                if status in ("429", "503"):
                    assert "Retry-After" in response["headers"], operation_id

    def test_success_headers(self, openapi: dict) -> None:
        operations = _operations(openapi)

        def headers(operation_id: str, status: str) -> set[str]:
            return set(operations[operation_id][2]["responses"][status]["headers"])

        assert {"Location", "ETag", "Idempotent-Replayed"} <= headers("tasks-create", "201")
        for operation_id in ("tasks-get", "tasks-replace", "tasks-update", "tasks-complete"):
            assert "ETag" in headers(operation_id, "200")
        assert "Location" in headers("projects-create", "201")
        for operation_id in ("auth-login", "auth-token", "auth-refresh-tokens"):
            assert "Cache-Control" in headers(operation_id, "200")
        assert "Cache-Control" in headers("auth-signup", "201")

    async def test_declared_headers_are_sent(self, client, user: UserHandle) -> None:
        response = await client.post(TASKS, json={"title": "t"}, headers=user.headers)
        assert response.status_code == 201
        assert re.fullmatch(r'"[0-9]+"', response.headers["etag"])
        assert response.headers["location"] == f"{TASKS}/{response.json()['id']}"
        assert response.headers["x-request-id"]
        unauthenticated = await client.get(TASKS)
        assert unauthenticated.headers["www-authenticate"] == "Bearer"


class TestNoValidationErrorWithoutInput:
    def test_routes_without_input_document_no_422(self, openapi: dict) -> None:
        operations = _operations(openapi)
        for operation_id in INPUTLESS:
            assert "422" not in operations[operation_id][2]["responses"], operation_id
        for operation_id, (_, _, operation) in operations.items():
            if not operation.get("parameters") and not operation.get("requestBody"):
                assert "422" not in operation["responses"], operation_id
                assert "415" not in operation["responses"], operation_id

    @pytest.mark.parametrize(
        ("content", "media_type"),
        [("not json", "text/plain"), ('{"a": "\\u0000"}', "application/json"), ("{", "application/json")],
    )  # fmt: skip
    async def test_a_body_sent_to_a_route_without_one_is_ignored(
        self, client, user: UserHandle, content: str, media_type: str
    ) -> None:
        """POST /auth/logout reads no body: it never answers 400, 415 or 422."""
        response = await client.post(
            "/api/v1/auth/logout",
            content=content,
            headers={**user.headers, "Content-Type": media_type},
        )
        assert response.status_code == 204, response.text


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("OPTIONS", "/api/v1/tasks", "GET, POST"),
            ("HEAD", "/api/v1/tasks", "GET, POST"),
            ("PUT", "/api/v1/tasks", "GET, POST"),
            ("POST", f"/api/v1/tasks/{MISSING_ID}", "DELETE, GET, PATCH, PUT"),
            ("GET", "/api/v1/auth/logout", "POST"),
            ("PATCH", "/api/v1/auth/me", None),  # PATCH is allowed: no 405
        ],
    )
    async def test_allow_lists_every_method_of_the_path(
        self, client, user: UserHandle, method: str, path: str, allow: str | None
    ) -> None:
        body = None if method == "HEAD" else {}
        response = await client.request(method, path, headers=user.headers, json=body)
        if method == "HEAD":  # no body to read
            assert (response.status_code, response.headers["allow"]) == (405, allow)
            return
        if allow is None:
            assert response.status_code != 405
            return
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == allow


class TestSchemaMatchesBehaviour:
    def test_updated_since_is_a_date_time(self, openapi: dict) -> None:
        params = {p["name"]: p for p in openapi["paths"]["/api/v1/tasks"]["get"]["parameters"]}
        schema = params["updated_since"]["schema"]["anyOf"][0]
        assert schema == {"type": "string", "format": "date-time"}

    @pytest.mark.parametrize("value", ["0.5", "0", "2026-01-01", "2026-01-01T10:00:00"])
    async def test_updated_since_that_is_no_date_time_is_422(
        self, client, user: UserHandle, value: str
    ) -> None:
        response = await client.get(TASKS, params={"updated_since": value}, headers=user.headers)
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"] == "query.updated_since"

    @pytest.mark.parametrize("value", [0, "0", 20260101, "2026-01-01T00:00:00"])
    async def test_due_date_that_is_no_date_is_422(
        self, client, user: UserHandle, value: object
    ) -> None:
        response = await client.post(
            TASKS, json={"title": "t", "due_date": value}, headers=user.headers
        )
        assert_problem(response, 422, "validation_error")

    def test_passwords_have_length_limits(self, openapi: dict) -> None:
        schemas = openapi["components"]["schemas"]
        for schema, field in (("SignupRequest", "password"), ("PasswordChange", "new_password")):
            prop = schemas[schema]["properties"][field]
            assert (prop["minLength"], prop["maxLength"]) == (8, 128), schema

    async def test_short_password_names_the_limit(self, client) -> None:
        response = await client.post(
            "/api/v1/auth/signup", json={"email": "short@example.com", "password": "1234567"}
        )
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"] == [
            {
                "field": "body.password",
                "message": "String should have at least 8 characters",
                "type": "string_too_short",
                "min_length": 8,
            }
        ]

    async def test_field_error_names_type_and_limit(self, client, user: UserHandle) -> None:
        response = await client.post(TASKS, json={"title": " "}, headers=user.headers)
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"] == [
            {
                "field": "body.title",
                "message": "String should have at least 1 character",
                "type": "string_too_short",
                "min_length": 1,
            }
        ]

    @pytest.mark.parametrize(
        ("schema", "nullable", "not_nullable"),
        [
            ("TaskUpdate", {"description", "due_date", "project_id"},
             {"title", "priority", "tags", "completed"}),
            ("ProjectUpdate", {"description", "color"}, {"name"}),
            ("UserUpdate", {"name"}, set()),
        ],
    )  # fmt: skip
    def test_nullable_only_where_null_is_accepted(
        self, openapi: dict, schema: str, nullable: set[str], not_nullable: set[str]
    ) -> None:
        properties = openapi["components"]["schemas"][schema]["properties"]
        for name in nullable:
            assert {"type": "null"} in properties[name]["anyOf"], name
        for name in not_nullable:
            assert "anyOf" not in properties[name], name
            assert "default" not in properties[name], name

    @pytest.mark.parametrize("field", ["title", "priority", "tags", "completed"])
    async def test_null_where_the_schema_says_not_nullable_is_422(
        self, client, user: UserHandle, task_factory: TaskFactory, field: str
    ) -> None:
        task = await task_factory(title="t")
        response = await client.patch(
            f"{TASKS}/{task['id']}", json={field: None}, headers=user.headers
        )
        assert_problem(response, 422, "validation_error")

    @pytest.mark.parametrize("field", ["description", "due_date", "project_id"])
    async def test_null_where_the_schema_says_nullable_clears(
        self, client, user: UserHandle, task_factory: TaskFactory, field: str
    ) -> None:
        task = await task_factory(title="t", description="d", due_date="2026-01-01")
        response = await client.patch(
            f"{TASKS}/{task['id']}", json={field: None}, headers=user.headers
        )
        assert response.status_code == 200
        assert response.json()[field] is None
