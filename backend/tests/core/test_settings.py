"""Settings: secrets refused outside development, a kept development key, parsing."""

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from app.core.config import Environment, Settings
from app.main import create_app
from tests.conftest import PASSWORD, client_for


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class TestSecretKey:
    @pytest.mark.parametrize("environment", ["production", "test"])
    @pytest.mark.parametrize(
        "key",
        [
            None,
            "",
            "changethis",
            "CHANGETHIS",
            "secret",
            "short-key",
            "a" * 64,
            " " * 40,
            "0123456789" * 3,
        ],
    )
    def test_weak_or_missing_key_refuses_to_start(
        self, tmp_path: Path, environment: str, key: str | None
    ) -> None:
        with pytest.raises(ValidationError, match="SECRET_KEY"):
            _settings(ENVIRONMENT=environment, SECRET_KEY=key, DATA_DIR=tmp_path)

    def test_error_does_not_print_the_key(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError) as caught:
            _settings(ENVIRONMENT="production", SECRET_KEY="my-weak-key", DATA_DIR=tmp_path)
        assert "my-weak-key" not in str(caught.value)

    def test_random_key_is_accepted(self, tmp_path: Path) -> None:
        key = secrets.token_urlsafe(32)
        settings = _settings(ENVIRONMENT="production", SECRET_KEY=key, DATA_DIR=tmp_path)
        assert settings.secret_key_bytes == key.encode()
        assert not (tmp_path / ".secret_key").exists()

    def test_production_reads_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")
        monkeypatch.setenv("DATA_DIR", str(tmp_path))
        monkeypatch.delenv("SECRET_KEY")
        with pytest.raises(ValidationError):
            Settings(_env_file=None)  # type: ignore[call-arg]
        monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
        assert Settings(_env_file=None).ENVIRONMENT is Environment.PRODUCTION  # type: ignore[call-arg]

    def test_development_generates_a_key_once(self, tmp_path: Path) -> None:
        first = _settings(ENVIRONMENT="development", SECRET_KEY=None, DATA_DIR=tmp_path)
        second = _settings(ENVIRONMENT="development", SECRET_KEY=None, DATA_DIR=tmp_path)
        assert len(first.secret_key_bytes) >= 32
        assert first.secret_key_bytes == second.secret_key_bytes
        key_file = tmp_path / ".secret_key"
        assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only
        other = _settings(ENVIRONMENT="development", SECRET_KEY=None, DATA_DIR=tmp_path / "x")
        assert other.secret_key_bytes != first.secret_key_bytes


@pytest.fixture
def dev_apps(tmp_path: Path, migrated_url: str) -> Iterator[list[FastAPI]]:
    """Two development apps started one after the other on the same DATA_DIR."""
    apps = [
        create_app(
            _settings(
                ENVIRONMENT="development",
                SECRET_KEY=None,
                DATA_DIR=tmp_path,
                DATABASE_URL=migrated_url,
                BCRYPT_ROUNDS=4,
                RATE_LIMIT_ENABLED=False,
            )
        )
        for _ in range(2)
    ]
    yield apps
    for app in apps:
        app.state.auth.hasher.close()


async def test_development_tokens_survive_a_restart(dev_apps: list[FastAPI]) -> None:
    before, after = dev_apps
    async with client_for(before) as client:
        response = await client.post(
            "/api/v1/auth/signup", json={"email": "restart@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        token = response.json()["access_token"]
    async with client_for(after) as client:
        me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "restart@example.com"
    for app in dev_apps:
        await app.state.database.close()


def test_empty_key_means_unset(tmp_path: Path) -> None:
    settings = _settings(ENVIRONMENT="development", SECRET_KEY="  ", DATA_DIR=tmp_path)
    assert len(settings.secret_key_bytes) >= 32
    with pytest.raises(ValidationError):
        _settings(ENVIRONMENT="production", SECRET_KEY="", DATA_DIR=tmp_path)


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).resolve().parents[3] / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert set(Settings.model_fields) <= documented


class TestParsing:
    @pytest.mark.parametrize(
        ("raw", "parsed"),
        [
            ("a,b", ["a", "b"]),
            ("https://a.example, https://b.example ,", ["https://a.example", "https://b.example"]),
            ("", []),
        ],
    )
    def test_cors_origins_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, raw: str, parsed: list[str]
    ) -> None:
        monkeypatch.setenv("CORS_ORIGINS", raw)
        assert Settings(_env_file=None).CORS_ORIGINS == parsed  # type: ignore[call-arg]

    def test_cors_origins_as_a_value(self) -> None:
        assert _settings(CORS_ORIGINS="a,b").CORS_ORIGINS == ["a", "b"]

    def test_database_defaults_to_the_embedded_server(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        settings = _settings(DATA_DIR=tmp_path)
        assert settings.DATABASE_URL == ""
        assert settings.embedded_database

    @pytest.mark.parametrize(
        "url",
        [
            "sqlite:///data/todo.db",
            "postgresql://postgres@127.0.0.1/todo",
            "postgresql+psycopg://postgres@127.0.0.1/todo",
            "mysql://root:hunter2@db/todo",
            "not a url",
        ],
    )
    def test_other_databases_are_refused_clearly(self, url: str) -> None:
        with pytest.raises(ValidationError) as raised:
            _settings(DATABASE_URL=url)
        message = str(raised.value)
        assert "postgresql+asyncpg://" in message
        assert "hunter2" not in message

    def test_documented_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("ENVIRONMENT", "BCRYPT_ROUNDS", "RATE_LIMIT_ENABLED", "LOG_LEVEL"):
            monkeypatch.delenv(name, raising=False)
        settings = _settings()
        assert settings.ENVIRONMENT is Environment.DEVELOPMENT
        assert settings.ACCESS_TOKEN_EXPIRE_MINUTES == 15
        assert settings.REFRESH_TOKEN_EXPIRE_DAYS == 30
        assert settings.BCRYPT_ROUNDS == 12
        assert settings.RATE_LIMIT_ENABLED is True
        assert settings.LOGIN_RATE_LIMIT == "10/minute"
        assert settings.REDIS_URL is None
        assert settings.CORS_ORIGINS == []
        assert settings.LOG_LEVEL == "INFO"
        assert settings.MAX_BODY_BYTES == 1024 * 1024

    def test_log_level_is_case_insensitive(self) -> None:
        assert _settings(LOG_LEVEL="debug").LOG_LEVEL == "DEBUG"


async def test_cors_preflight_exposes_the_request_id(make_app: Any) -> None:
    app = make_app(CORS_ORIGINS=["https://app.example"])
    async with client_for(app) as client:
        preflight = await client.options(
            "/api/v1/auth/me",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert preflight.headers["x-request-id"]
        response = await client.get("/health", headers={"Origin": "https://app.example"})
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
        other: httpx.Response = await client.get(
            "/health", headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


class TestPooler:
    DIRECT = "postgresql+asyncpg://app@db.internal:5432/todo"
    POOLED = "postgresql+asyncpg://app@pooler.internal:6432/todo"

    def test_direct_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("DATABASE_POOLER", raising=False)  # make test-pooler sets it
        settings = _settings(DATABASE_URL=self.DIRECT)
        assert settings.DATABASE_POOLER == "none"
        assert settings.direct_database_url == self.DIRECT
        assert settings.session_listener_url == self.DIRECT

    def test_through_a_pooler_the_listener_uses_the_direct_url(self) -> None:
        settings = _settings(
            DATABASE_URL=self.POOLED,
            DATABASE_POOLER="transaction",
            DATABASE_DIRECT_URL=self.DIRECT,
        )
        assert settings.direct_database_url == self.DIRECT
        assert settings.session_listener_url == self.DIRECT

    def test_through_a_bare_pooler_there_is_no_listener(self) -> None:
        settings = _settings(DATABASE_URL=self.POOLED, DATABASE_POOLER="transaction")
        assert settings.session_listener_url is None  # LISTEN would hear nothing there
        assert settings.direct_database_url == self.POOLED

    @pytest.mark.parametrize(
        "overrides",
        [{"DATABASE_POOLER": "session"}, {"DATABASE_DIRECT_URL": "postgres://db/todo"}],
    )
    def test_bad_values_are_refused(self, overrides: dict[str, str]) -> None:
        with pytest.raises(ValidationError):
            _settings(DATABASE_URL=self.POOLED, **overrides)


class TestFileVariables:
    """X_FILE (Docker/Kubernetes secrets): the file's content when X is not set."""

    @pytest.fixture(autouse=True)
    def _no_secret_in_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("SECRET_KEY", "DATABASE_URL", "DATABASE_DIRECT_URL", "REDIS_URL"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(f"{name}_FILE", raising=False)

    def _secret(self, tmp_path: Path, name: str, content: str) -> Path:
        path = tmp_path / name
        path.write_text(content)
        return path

    def test_secret_key_from_a_file(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        key = secrets.token_urlsafe(48)
        monkeypatch.setenv("SECRET_KEY_FILE", str(self._secret(tmp_path, "key", key + "\n")))
        settings = _settings(ENVIRONMENT="production", DATA_DIR=tmp_path / "data")
        assert settings.secret_key_bytes == key.encode()  # the trailing newline is gone

    @pytest.mark.parametrize(
        ("content", "value"),
        [
            ("postgresql+asyncpg://todo:pw@db:5432/todo\n", "postgresql+asyncpg://todo:pw@db:5432/todo"),
            ("postgresql+asyncpg://todo:pw@db:5432/todo\r\n", "postgresql+asyncpg://todo:pw@db:5432/todo"),
            ("postgresql+asyncpg://todo:pw@db:5432/todo", "postgresql+asyncpg://todo:pw@db:5432/todo"),
        ],
    )  # fmt: skip
    def test_database_url_from_a_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str, value: str
    ) -> None:
        monkeypatch.setenv("DATABASE_URL_FILE", str(self._secret(tmp_path, "url", content)))
        monkeypatch.setenv(
            "REDIS_URL_FILE", str(self._secret(tmp_path, "redis", "redis://r:6379/0\n"))
        )
        settings = _settings(SECRET_KEY=secrets.token_urlsafe(48))
        assert settings.DATABASE_URL == value
        assert settings.REDIS_URL == "redis://r:6379/0"
        assert not settings.embedded_database

    def test_the_file_is_still_validated(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("SECRET_KEY_FILE", str(self._secret(tmp_path, "key", "changethis\n")))
        with pytest.raises(ValidationError, match="SECRET_KEY"):
            _settings(ENVIRONMENT="production", DATA_DIR=tmp_path)

    def test_both_set_refuses_to_start(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("SECRET_KEY_FILE", str(self._secret(tmp_path, "key", "from-the-file")))
        monkeypatch.setenv("SECRET_KEY", "from-the-environment")
        with pytest.raises(
            ValueError, match="SECRET_KEY and SECRET_KEY_FILE are both set"
        ) as raised:
            _settings(DATA_DIR=tmp_path)
        assert "from-the" not in str(raised.value)

    def test_both_set_through_dotenv_refuses_to_start(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        dotenv = self._secret(tmp_path, ".env", "DATABASE_URL=postgresql+asyncpg://a@b/c\n")
        monkeypatch.setenv("DATABASE_URL_FILE", str(self._secret(tmp_path, "url", "x")))
        with pytest.raises(ValueError, match="DATABASE_URL and DATABASE_URL_FILE"):
            Settings(_env_file=dotenv)  # type: ignore[call-arg]

    @pytest.mark.parametrize("content", [None, "", "\n"])
    def test_missing_or_empty_file_refuses_to_start(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None
    ) -> None:
        path = tmp_path / "key"
        if content is not None:
            path.write_text(content)
        monkeypatch.setenv("SECRET_KEY_FILE", str(path))
        with pytest.raises(ValueError, match=f"SECRET_KEY_FILE: .*{path}"):
            _settings(DATA_DIR=tmp_path)

    def test_unset_file_variable_changes_nothing(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("SECRET_KEY_FILE", "")
        monkeypatch.setenv("SECRET_KEY", "k" + secrets.token_hex(20))
        assert _settings(DATA_DIR=tmp_path).secret_key_bytes.startswith(b"k")
