"""Shared schema building blocks: request base model, text types, timestamps, problems."""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from app.core.sanitize import forbidden_character, sanitize_text


def _plain_text(value: Any) -> Any:
    """Schema-level twin of the sanitizing middleware (idempotent, so running both is safe)."""
    if isinstance(value, str):
        if forbidden_character(value):
            raise ValueError("Control characters and unpaired surrogates are not allowed")
        return sanitize_text(value)
    return value


def _trimmed_text(value: Any) -> Any:
    value = _plain_text(value)
    return value.strip() if isinstance(value, str) else value


# Free text stored as sent (after sanitizing), e.g. descriptions.
PlainText = Annotated[str, BeforeValidator(_plain_text)]
# Names and titles: sanitized, then trimmed, then length-checked by the field.
TrimmedText = Annotated[str, BeforeValidator(_trimmed_text)]


def format_timestamp(value: datetime) -> str:
    """RFC 3339, UTC, always with microseconds: 2026-11-22T10:15:00.123456Z."""
    if value.tzinfo is None:  # a naive value is taken to be UTC (the database stores UTC)
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = Annotated[
    datetime,
    AfterValidator(as_utc),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class InputModel(BaseModel):
    """Base for request bodies: unknown (including server-owned) fields are refused."""

    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is rendered."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[FieldError] | None = None
