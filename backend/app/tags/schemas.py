"""Tag names and the tag request and response bodies."""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from app.core.sanitize import forbidden_character, sanitize_text
from app.core.schemas import NON_BLANK_PATTERN, InputModel

MAX_TAG_LENGTH = 50


def normalize_tag_name(value: str) -> str:
    """Sanitized, trimmed, inner whitespace collapsed: `  Work   Stuff ` -> `Work Stuff`."""
    return " ".join(sanitize_text(value).split())


def tag_key(name: str) -> str:
    """What makes two tag names the same tag: the normalized name, casefolded."""
    return normalize_tag_name(name).casefold()


def _tag_name(value: Any) -> Any:
    if isinstance(value, str):
        if forbidden_character(value):
            raise ValueError("Control characters and unpaired surrogates are not allowed")
        return normalize_tag_name(value)
    return value


# Normalized before the length check, so limits apply to what is stored.
TagName = Annotated[
    str,
    BeforeValidator(_tag_name),
    Field(
        min_length=1, max_length=MAX_TAG_LENGTH, json_schema_extra={"pattern": NON_BLANK_PATTERN}
    ),
]


class TagRename(InputModel):
    name: TagName


class TagPublic(BaseModel):
    name: str
    usage_count: int = Field(description="How many of the user's tasks carry the tag")
