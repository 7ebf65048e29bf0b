"""Plain-text sanitizing: the one place that knows about bleach.

bleach 6.4 is end-of-life and `bleach.clean` returns *escaped HTML*, not text:
`a < b` comes back as `a &lt; b`, and naively `html.unescape`-ing its output once
turns the text `&lt;script&gt;` into live `<script>`. `sanitize_text` therefore
repeats "strip markup, then unescape" until nothing changes. The result is a fixed
point: plain text that holds no tag and no entity that would decode into one, so
it reads the same whether a client shows it as text or (wrongly) as HTML, ordinary
characters (`a < b && c > d`, `Tom & Jerry`) survive exactly, and
sanitize(sanitize(x)) == sanitize(x) by construction.
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

# Each pass peels one level of escaping (`&amp;lt;` -> `&lt;` -> `<`); legitimate
# text is plain after one or two. Deeper nesting is refused rather than stored
# half-decoded, which would break idempotence.
MAX_PASSES = 8

# Nesting deeper than this is refused: no request body of the API nests beyond a
# few levels, and deep documents cost recursion in the parser and in this module.
MAX_DEPTH = 32

# Keys whose values are secrets: checked for forbidden characters, never altered.
_VERBATIM_SUFFIXES = ("password", "token")


def forbidden_character(value: str) -> bool:
    return _FORBIDDEN.search(value) is not None


def _clean(value: str) -> str:
    return str(bleach.clean(value, tags=set(), attributes={}, strip=True, strip_comments=True))


def sanitize_text(value: str) -> str:
    """Remove HTML markup (keeping its text); return plain text, idempotently.

    Raises ValueError when the text nests escaped markup more than MAX_PASSES deep.
    Note: html5lib normalizes CR LF to LF in text it has to parse (text with `<` or
    `&`); text without either is returned untouched.
    """
    text = value
    for _ in range(MAX_PASSES):
        if "<" not in text and "&" not in text:
            return text  # nothing bleach could change: skip its cost
        plain = html.unescape(_clean(text))
        if plain == text:
            return text
        text = plain
    raise ValueError("Text nests escaped markup too deeply")


def is_verbatim_key(key: str) -> bool:
    return key.lower().endswith(_VERBATIM_SUFFIXES)


class UnsafeString(ValueError):
    """`type` is the 422 item's `type`: `forbidden_character`, `string_too_long` or
    `too_deeply_nested`."""

    def __init__(self, field: str, message: str, kind: str = "forbidden_character") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.type = kind


def sanitize_json(value: Any, path: str = "body", verbatim: bool = False, depth: int = 0) -> Any:
    """Check and sanitize every string of a parsed JSON document.

    Raises `UnsafeString` (with the field path, never the value) for a forbidden
    character, an oversized string or a document nested too deeply.
    """
    if depth > MAX_DEPTH:
        raise UnsafeString(path, f"Nested more than {MAX_DEPTH} levels deep", "too_deeply_nested")
    if isinstance(value, str):
        return _sanitize_string(value, path, verbatim)
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if forbidden_character(key):
                raise UnsafeString(path, "Control characters are not allowed in keys")
            result[key] = sanitize_json(item, f"{path}.{key}", is_verbatim_key(key), depth + 1)
        return result
    if isinstance(value, list):
        return [
            sanitize_json(item, f"{path}.{i}", verbatim, depth + 1) for i, item in enumerate(value)
        ]
    return value


def _sanitize_string(value: str, path: str, verbatim: bool) -> str:
    if forbidden_character(value):
        raise UnsafeString(path, "Control characters and unpaired surrogates are not allowed")
    if len(value) > MAX_STRING_CHARS:
        raise UnsafeString(
            path, f"String is longer than {MAX_STRING_CHARS} characters", "string_too_long"
        )
    if verbatim:
        return value
    try:
        return sanitize_text(value)
    except ValueError as exc:
        raise UnsafeString(path, str(exc)) from None
