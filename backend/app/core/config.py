"""Settings: one class, read from the environment (and `.env` when present)."""

import ipaddress
import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

# Placeholders that must never sign tokens outside development (the official
# full-stack template refuses "changethis" the same way).
_PLACEHOLDER_SECRETS = {
    "changethis",
    "changeme",
    "change-me",
    "secret",
    "secret-key",
    "your-secret-key",
    "please-change-me",
    "development",
}
MIN_SECRET_BYTES = 32
# A key of 32+ bytes drawn from fewer symbols ("aaaa…", "0000…") is a placeholder too;
# random keys (token_urlsafe, hex) use far more distinct characters than this.
MIN_SECRET_DISTINCT_CHARS = 10


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


# `.env` at the repository root (the one docker compose reads, see .env.example), then
# `.env` in the working directory; a later file wins, real environment variables win
# over both. In the container neither file exists: compose passes the environment.
_ENV_FILES = (Path(__file__).resolve().parents[3] / ".env", Path(".env"))


# Secrets that may come from a file instead (Docker/Kubernetes secrets, mounted under
# /run/secrets): `SECRET_KEY_FILE=/run/secrets/secret_key` reads SECRET_KEY from it.
FILE_SETTINGS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "DATABASE_DIRECT_URL",
    "REDIS_URL",
    "EXTERNAL_JWT_SECRET",
)


class FileVariables(PydanticBaseSettingsSource):
    """`X_FILE` environment variables for the settings in FILE_SETTINGS: when `X_FILE`
    is set and `X` is not, X is the file's content less one trailing newline (what
    `echo` and editors add). Both set is refused: one of the two would be silently
    ignored. Messages name the variable and the path, never the content."""

    def __init__(self, settings_cls: type[BaseSettings], *others: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self._others = others

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # noqa: ARG002
        return None, field_name, False  # unused: __call__ does the work

    def __call__(self) -> dict[str, Any]:
        given = {name.upper() for source in self._others for name in source()}
        environ = {name.upper(): value for name, value in os.environ.items()}
        values: dict[str, Any] = {}
        for name in FILE_SETTINGS:
            path = environ.get(f"{name}_FILE", "")
            if not path:
                continue
            if name in given:
                raise ValueError(f"{name} and {name}_FILE are both set: set only one of them")
            values[name] = _read_secret_file(f"{name}_FILE", Path(path))
        return values


def _read_secret_file(variable: str, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{variable}: cannot read {path}: {exc.__class__.__name__}") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        raise ValueError(f"{variable}: {path} is empty")
    return text


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting must not print the others (SECRET_KEY,
    # the password inside DATABASE_URL) into a crash log.
    model_config = SettingsConfigDict(
        env_file=_ENV_FILES, extra="ignore", env_file_encoding="utf-8", hide_input_in_errors=True
    )

    ENVIRONMENT: Environment = Environment.DEVELOPMENT
    DATA_DIR: Path = Path("data")
    DATABASE_URL: str = ""
    # `transaction`: DATABASE_URL goes through a transaction-pooling proxy (PgBouncer,
    # Neon's -pooler host, Supabase's pooler): no prepared statement or session state
    # may outlive a transaction there.
    DATABASE_POOLER: Literal["none", "transaction"] = "none"
    # A direct (unpooled) URL of the same database, for migrations and the session
    # listener; unset: DATABASE_URL.
    DATABASE_DIRECT_URL: str = ""
    DB_POOL_SIZE: int = Field(default=10, ge=1, le=200)
    DB_POOL_TIMEOUT: float = Field(default=10.0, gt=0)
    DB_CONNECT_TIMEOUT: float = Field(default=5.0, gt=0)
    DB_STATEMENT_TIMEOUT: float = Field(default=5.0, gt=0)
    REQUEST_TIMEOUT: float = Field(default=30.0, gt=0)

    SECRET_KEY: SecretStr | None = None
    JWT_ISSUER: str = "todo-api"
    JWT_AUDIENCE: str = "todo-api"
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=15, ge=1)
    REFRESH_TOKEN_EXPIRE_DAYS: int = Field(default=30, ge=1)
    BCRYPT_ROUNDS: int = Field(default=12, ge=4, le=31)
    PASSWORD_HASH_THREADS: int = Field(default=2, ge=1, le=32)

    # Tokens from an external identity provider (Better Auth's JWT plugin): see
    # app/core/tokens.py and the README's "Signing in with Better Auth".
    EXTERNAL_JWKS_URL: str = ""
    EXTERNAL_JWT_SECRET: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("EXTERNAL_JWT_SECRET", "BETTER_AUTH_SECRET")
    )
    EXTERNAL_JWT_ISSUER: str = ""
    EXTERNAL_JWT_AUDIENCE: str = ""
    EXTERNAL_JWKS_CACHE_SECONDS: int = Field(default=300, ge=1)
    # false: only external tokens; signup, login, token, refresh, password, logout and
    # session routes answer 404.
    LOCAL_AUTH_ENABLED: bool = True

    # Delta sync (GET /sync): deletions are remembered this long; an older cursor is
    # 410. Every process purges older change-log rows every MAINTENANCE_INTERVAL
    # seconds (app/maintenance.py; 0 turns it off, e.g. when a cron job runs
    # `python -m app.maintenance` instead).
    SYNC_RETENTION_DAYS: int = Field(default=30, ge=1, le=3650)
    # Trashed tasks are deleted for good this long after they were trashed (by the same
    # clean-up).
    TRASH_RETENTION_DAYS: int = Field(default=30, ge=1, le=3650)
    MAINTENANCE_INTERVAL: float = Field(default=3600.0, ge=0)

    RATE_LIMIT_ENABLED: bool = True
    LOGIN_RATE_LIMIT: str = "10/minute"
    SIGNUP_RATE_LIMIT: str = "5/minute"
    REFRESH_RATE_LIMIT: str = "30/minute"
    FAILED_LOGIN_LIMIT: str = "5/15 minutes"
    REDIS_URL: str | None = None

    CORS_ORIGINS: Annotated[list[str], NoDecode] = []
    # Peers whose X-Forwarded-For / X-Forwarded-Proto count (addresses or CIDR networks,
    # `*` for any); by default none, so the rate limits key on the peer address and a
    # client cannot pick its own bucket by sending the header.
    FORWARDED_ALLOW_IPS: Annotated[list[str], NoDecode] = []
    LOG_LEVEL: str = "INFO"
    MAX_BODY_BYTES: int = Field(default=1024 * 1024, ge=1024)

    # The served process (`python -m app.serve`: make serve, the Docker image); `make run`
    # and a bare `uvicorn app.main:app` read none of these.
    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8000, ge=1, le=65535)
    WEB_CONCURRENCY: int = Field(default=1, ge=1, le=64)
    # Per worker process: one more connection is answered 503 `server_busy` at once.
    HTTP_MAX_CONNECTIONS: int = Field(default=2048, ge=1)
    # From the connection's opening (or the previous response's end) to a complete
    # request head; past it the connection is closed.
    HTTP_HEADER_TIMEOUT: float = Field(default=10.0, gt=0)
    # Longest silence while a request body arrives, and longest a whole body may take.
    HTTP_BODY_TIMEOUT: float = Field(default=10.0, gt=0)
    HTTP_BODY_TOTAL_TIMEOUT: float = Field(default=60.0, gt=0)
    # An idle keep-alive connection is closed after this many seconds.
    HTTP_KEEPALIVE_TIMEOUT: int = Field(default=5, ge=1)
    # On SIGTERM: how long in-flight requests may take to finish before they are cancelled.
    HTTP_GRACEFUL_TIMEOUT: int = Field(default=20, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values passed to Settings(...) first, then X_FILE, then the environment and .env
        # (X_FILE beside X from either is refused by FileVariables).
        files = FileVariables(settings_cls, env_settings, dotenv_settings)
        return init_settings, files, env_settings, dotenv_settings, file_secret_settings

    @field_validator("CORS_ORIGINS", "FORWARDED_ALLOW_IPS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("DATABASE_URL", "DATABASE_DIRECT_URL")
    @classmethod
    def _postgresql_only(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith("postgresql+asyncpg://"):
            # The message names the scheme only: the URL may hold a password.
            scheme = value.split("://", 1)[0] if "://" in value else "(no scheme)"
            raise ValueError(
                f"DATABASE_URL must be a PostgreSQL URL of the form "
                f"postgresql+asyncpg://user:password@host:port/database, not {scheme}://...; "
                "leave it unset to run on the embedded PostgreSQL under DATA_DIR"
            )
        return value

    @field_validator("FORWARDED_ALLOW_IPS")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        """Addresses, networks or `*`: anything else would silently trust nobody."""
        for entry in value:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"FORWARDED_ALLOW_IPS: {entry!r} is not an IP address, a CIDR network or *"
                    ) from None
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _defaults_and_secret(self) -> Self:
        if self.SECRET_KEY is not None and not self.SECRET_KEY.get_secret_value().strip():
            self.SECRET_KEY = None  # `SECRET_KEY=` copied from .env.example means unset
        if self.SECRET_KEY is None and self.ENVIRONMENT is Environment.DEVELOPMENT:
            self.SECRET_KEY = SecretStr(_local_dev_secret(self.DATA_DIR))
        self._check_secret()
        self._check_external()
        return self

    def _check_external(self) -> None:
        secret = self.EXTERNAL_JWT_SECRET
        if secret is not None and not secret.get_secret_value().strip():
            self.EXTERNAL_JWT_SECRET = secret = None
        self.EXTERNAL_JWKS_URL = self.EXTERNAL_JWKS_URL.strip()
        if secret is not None:
            value = secret.get_secret_value()
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"EXTERNAL_JWT_SECRET (BETTER_AUTH_SECRET) must be at least "
                    f"{MIN_SECRET_BYTES} bytes"
                )
            if self.SECRET_KEY is not None and value == self.SECRET_KEY.get_secret_value():
                raise ValueError(
                    "EXTERNAL_JWT_SECRET must differ from SECRET_KEY: a token the identity "
                    "provider signs must never pass for one of ours"
                )
        if self.EXTERNAL_JWKS_URL:
            problem = _jwks_url_problem(self.EXTERNAL_JWKS_URL, self.ENVIRONMENT)
            if problem:
                raise ValueError(problem)
        if not self.LOCAL_AUTH_ENABLED and secret is None and not self.EXTERNAL_JWKS_URL:
            raise ValueError(
                "LOCAL_AUTH_ENABLED=false needs EXTERNAL_JWKS_URL or EXTERNAL_JWT_SECRET: "
                "otherwise nobody could sign in"
            )

    def _check_secret(self) -> None:
        if self.ENVIRONMENT is Environment.DEVELOPMENT:
            return
        key = self.SECRET_KEY.get_secret_value().strip() if self.SECRET_KEY else ""
        if (
            key.lower() in _PLACEHOLDER_SECRETS
            or len(key.encode()) < MIN_SECRET_BYTES
            or len(set(key)) < MIN_SECRET_DISTINCT_CHARS
        ):
            raise ValueError(
                f"SECRET_KEY must be a random value of at least {MIN_SECRET_BYTES} bytes "
                f"(not a placeholder) when ENVIRONMENT={self.ENVIRONMENT.value} "
                '(python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )

    @property
    def direct_database_url(self) -> str:
        """Where migrations and LISTEN go: DATABASE_DIRECT_URL, else DATABASE_URL."""
        return self.DATABASE_DIRECT_URL or self.DATABASE_URL

    @property
    def session_listener_url(self) -> str | None:
        """LISTEN needs a session of its own: through a transaction pooler PgBouncer
        drops every NOTIFY, so without a direct URL there is no listener (and so no
        session cache: every request checks the database)."""
        if self.DATABASE_POOLER == "transaction" and not self.DATABASE_DIRECT_URL:
            return None
        return self.direct_database_url or None

    @property
    def embedded_database(self) -> bool:
        """No DATABASE_URL: the app runs its own PostgreSQL under DATA_DIR (embedded.py)."""
        return not self.DATABASE_URL

    @property
    def secret_key_bytes(self) -> bytes:
        assert self.SECRET_KEY is not None  # guaranteed by _defaults_and_secret
        return self.SECRET_KEY.get_secret_value().encode()


def _jwks_url_problem(url: str, environment: Environment) -> str | None:
    """Why EXTERNAL_JWKS_URL is refused, if it is: https only, except plain http to a
    loopback host (or in development). The message holds no part of the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "EXTERNAL_JWKS_URL must be an https:// URL"
    if parts.scheme == "http" and environment is not Environment.DEVELOPMENT:
        if not _loopback(parts.hostname):
            return (
                "EXTERNAL_JWKS_URL must use https:// outside development "
                "(plain http only to a loopback host)"
            )
    return None


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_dev_secret(data_dir: Path) -> str:
    """Generate a development key once and keep it, so tokens survive a restart."""
    path = data_dir / ".secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
