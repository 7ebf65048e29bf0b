"""Shared schema building blocks: request base model, text types, timestamps, problems."""

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

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


# What every string of a request refuses (the sanitizing step, before validation):
# C0 control characters other than tab, LF and CR. The document says so on each input
# string (app/core/openapi.py adds it where a string has no pattern of its own).
_ALLOWED = r"[^\u0000-\u0008\u000B\u000C\u000E-\u001F]"
TEXT_PATTERN = f"^{_ALLOWED}*$"
# ...and trimmed names must keep a character that is not whitespace. The whitespace is
# spelled out: exactly what Python's str.strip() removes (str.isspace), since `\s` means
# other sets in other regex engines (ECMAScript's lacks U+0085 and has U+FEFF), and
# schemathesis generated a tag of U+0085 alone, which the schema allowed and trimming
# made empty (422).
_SPACE = (
    r"\u0009-\u000D\u001C-\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F"
    r"\u205F\u3000"
)
NON_BLANK_PATTERN = rf"^{_ALLOWED}*[^{_SPACE}\u0000-\u0008\u000B\u000C\u000E-\u001F]{_ALLOWED}*$"

# Free text stored as sent (after sanitizing), e.g. descriptions.
PlainText = Annotated[str, BeforeValidator(_plain_text)]
# Names and titles: sanitized, then trimmed, then length-checked by the field.
TrimmedText = Annotated[
    str, BeforeValidator(_trimmed_text), Field(json_schema_extra={"pattern": NON_BLANK_PATTERN})
]


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


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 `date-time` (what the document's `format: date-time` means): an offset is
# required, and the separator is `T` (RFC 3339 allows `t`; JSON Schema validators too).
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _date_text(value: Any) -> Any:
    """pydantic's lax mode takes `0` or `"0"` as 1970-01-01 and a midnight timestamp as
    its date; the document says `format: date`, so only `YYYY-MM-DD` gets through."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        return value
    raise ValueError("Must be a date written YYYY-MM-DD")


def _date_time_text(value: Any) -> Any:
    """Likewise for timestamps: `0.5` (seconds since 1970) or an offset-less time was
    taken as some instant; only RFC 3339 with an offset is."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str) and _DATE_TIME.fullmatch(value):
        return value
    raise ValueError("Must be an RFC 3339 date-time with an offset, e.g. 2026-11-22T10:15:00Z")


# Input types that accept exactly what their JSON Schema format says.
IsoDate = Annotated[date, BeforeValidator(_date_text)]
IsoDateTime = Annotated[datetime, BeforeValidator(_date_time_text)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class InputModel(BaseModel):
    """Base for request bodies: unknown (including server-owned) fields are refused."""

    model_config = ConfigDict(extra="forbid")


def _drop_null(schema: dict[str, Any]) -> None:
    """`X | None = None` documented as an optional X: for fields where `null` is refused
    (a validator says so) or never sent, so the document says what the server does."""
    members = schema.get("anyOf")
    if isinstance(members, list):
        rest = [m for m in members if m != {"type": "null"}]
        if len(rest) == 1:
            del schema["anyOf"]
            for key, value in rest[0].items():
                schema.setdefault(key, value)
        else:
            schema["anyOf"] = rest
    if "default" in schema and schema["default"] is None:
        del schema["default"]


# Metadata for `Annotated[X | None, NotNull] = None`: optional, but not nullable.
NotNull = Field(json_schema_extra=_drop_null)


class FieldError(BaseModel):
    """One item of a 422's `errors`: where, what in words, which check failed and its
    limit (e.g. `min_length` for `string_too_short`). Never the submitted value."""

    field: str = Field(examples=["body.title"])
    message: str = Field(examples=["String should have at least 1 character"])
    type: str = Field(
        description="The failed check: `missing`, `string_too_short`, `string_too_long`, "
        "`string_type`, `enum`, `extra_forbidden`, `value_error`, `forbidden_character`, ...",
        examples=["string_too_short"],
    )
    min_length: Annotated[int | None, NotNull] = None
    max_length: Annotated[int | None, NotNull] = None
    ge: Annotated[float | str | None, NotNull] = None
    gt: Annotated[float | str | None, NotNull] = None
    le: Annotated[float | str | None, NotNull] = None
    lt: Annotated[float | str | None, NotNull] = None
    multiple_of: Annotated[float | None, NotNull] = None
    pattern: Annotated[str | None, NotNull] = None
    expected: Annotated[str | None, NotNull] = Field(
        default=None, description="The accepted values, for `enum` and `literal_error`"
    )


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is rendered."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: Annotated[list[FieldError] | None, NotNull] = Field(
        default=None, description="On 422 only: one item per invalid field"
    )
