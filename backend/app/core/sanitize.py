"""Plain-text sanitizing: the one place that knows about bleach.

bleach 6.4 is end-of-life and `bleach.clean` returns *escaped HTML*, not text:
`a < b` comes back as `a &lt; b`, and naively `html.unescape`-ing its output turns
the text `&lt;script&gt;` into live `<script>`. `sanitize_text` keeps the unescaped
text only when re-cleaning it would strip nothing, so the result is plain text,
ordinary characters survive exactly, and sanitize(sanitize(x)) == sanitize(x).
"""

import html
import re
from typing import Any

import bleach

# Refused before sanitizing (bleach would silently drop NUL, PostgreSQL rejects it
# with an error, and lone surrogates cannot be encoded for the database or the
# response). Tab, LF and CR are allowed.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")

# Strings longer than this are refused before bleach sees them (bleach costs ~350 µs
# per 1,000 characters); the longest field of the API is 1,000 characters.
MAX_STRING_CHARS = 10_000

# Keys whose values are secrets: checked for forbidden characters, never altered.
_VERBATIM_SUFFIXES = ("password", "token")


def forbidden_character(value: str) -> bool:
    return _FORBIDDEN.search(value) is not None


def _clean(value: str) -> str:
    return bleach.clean(value, tags=set(), attributes={}, strip=True, strip_comments=True)


def sanitize_text(value: str) -> str:
    """Remove HTML markup (keeping its text); return plain text, idempotently."""
    if "<" not in value and "&" not in value:
        return value  # nothing bleach could change: skip its cost
    cleaned = _clean(value)
    text = html.unescape(cleaned)
    if html.unescape(_clean(text)) == text:
        return text
    # Unescaping revealed markup (the input held escaped tags such as `&lt;b&gt;`):
    # keep the escaped form, which is inert text and a fixpoint of this function.
    return cleaned


def is_verbatim_key(key: str) -> bool:
    return key.lower().endswith(_VERBATIM_SUFFIXES)


class UnsafeString(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def sanitize_json(value: Any, path: str = "body", verbatim: bool = False) -> Any:
    """Check and sanitize every string of a parsed JSON document.

    Raises `UnsafeString` (with the field path, never the value) for a forbidden
    character or an oversized string.
    """
    if isinstance(value, str):
        if forbidden_character(value):
            raise UnsafeString(path, "Control characters and unpaired surrogates are not allowed")
        if len(value) > MAX_STRING_CHARS:
            raise UnsafeString(path, f"String is longer than {MAX_STRING_CHARS} characters")
        return value if verbatim else sanitize_text(value)
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if forbidden_character(key):
                raise UnsafeString(path, "Control characters are not allowed in keys")
            result[key] = sanitize_json(item, f"{path}.{key}", is_verbatim_key(key))
        return result
    if isinstance(value, list):
        return [sanitize_json(item, f"{path}.{i}", verbatim) for i, item in enumerate(value)]
    return value
