"""The keyset cursors of GET /tasks: an opaque, signed position in one sort of the list.

A cursor names the last task of a page by its sort key and id; the next page is the
tasks after that (key, id) in the list's order (queries.py), so tasks created, changed
or deleted between two calls never make a page repeat or skip a task that kept its
key, which offsets cannot promise.

Format: base64url (no padding) of `1|<sort_by>|<sort_direction>|<key JSON>` followed
by the first 16 bytes of its HMAC-SHA256. `<key JSON>` is `[<sort key>, "<id>"]` as
PostgreSQL rendered it for the page (json_page.py), so building a cursor parses
nothing. The key is derived from SECRET_KEY for this one purpose, so a cursor can
never pass for a token or the other way round. Signed, a cursor that was cut short,
made up or tampered with is a clean 422 `invalid_cursor`, before any SQL, instead of a
position no page ever ended at (it could not reach another user's tasks either way:
the statement is always scoped to the caller). A cursor is not bound to its user or
to the filters: it is a position in a sort, used with whatever else the request says.
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from app.tasks.exceptions import InvalidCursor
from app.tasks.schemas import SortBy, SortDirection

VERSION = "1"
MAC_BYTES = 16
# The longest cursor we make: a title of 200 characters whose casefolded key is 6
# UTF-8 bytes each (U+0390) gives ~1,700 characters; anything longer is not ours.
MAX_LENGTH = 2048
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_PURPOSE = b"todo-api/tasks/list-cursor"
# Query parameters that a Link to the next page does not repeat.
_PAGING = frozenset({"offset", "cursor"})


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the page before ended: that task's sort key (None: no due date) and id."""

    key: Any
    id: uuid.UUID


@lru_cache(maxsize=8)
def _mac_key(secret: bytes) -> bytes:
    return hmac.new(secret, _PURPOSE, hashlib.sha256).digest()


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(_mac_key(secret), payload, hashlib.sha256).digest()[:MAC_BYTES]


def encode(secret: bytes, sort_by: SortBy, direction: SortDirection, key_json: str) -> str:
    """The cursor after the task whose `[key, id]` PostgreSQL rendered as `key_json`."""
    payload = f"{VERSION}|{sort_by.value}|{direction.value}|{key_json}".encode()
    return _unpadded(payload + _mac(secret, payload))


def _unpadded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(secret: bytes, token: str, sort_by: SortBy, direction: SortDirection) -> Cursor:
    """The position a cursor of ours names, for this sort; else InvalidCursor (422)."""
    if not token or len(token) > MAX_LENGTH or not _BASE64URL.fullmatch(token):
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):  # e.g. a length no encoding has
        raise InvalidCursor() from None
    if _unpadded(raw) != token:  # spare bits set: not the spelling we hand out
        raise InvalidCursor()
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if len(raw) <= MAC_BYTES or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise InvalidCursor()
    # Ours from here on: what follows can only fail for a cursor of another version.
    try:
        version, sort, order, key_json = payload.decode().split("|", 3)
        if version != VERSION:
            raise ValueError(version)
        if (sort, order) != (sort_by.value, direction.value):
            raise InvalidCursor("The cursor belongs to another sort_by or sort_direction")
        key, task_id = json.loads(key_json)
        return Cursor(_key(sort_by, key), uuid.UUID(task_id))
    except (ValueError, TypeError, AttributeError):  # JSONDecodeError is a ValueError
        raise InvalidCursor() from None


def _key(sort_by: SortBy, value: Any) -> Any:
    """The sort key as the statement binds it (json_page.cursor_key renders it)."""
    if sort_by in (SortBy.CREATED_AT, SortBy.UPDATED_AT):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("no offset")
        return moment
    if sort_by is SortBy.DUE_DATE:  # [day, instant or null] (before 0010: the day alone)
        day, instant = (value, None) if value is None or isinstance(value, str) else value
        if day is None:  # an undated task
            return None
        at = None if instant is None else datetime.fromisoformat(instant)
        if at is not None and at.tzinfo is None:
            raise ValueError("no offset")
        return (date.fromisoformat(day), at)
    if sort_by is SortBy.PRIORITY:
        if type(value) is not int:
            raise TypeError("not a rank")
        return value
    if not isinstance(value, str):
        raise TypeError("not a title key")
    return value


def next_link(path: str, params: Iterable[tuple[str, str]], cursor: str) -> str:
    """`Link` to the next page: this request's path (relative) and query parameters,
    as sent, without offset and cursor, then `cursor=`."""
    kept = [(name, value) for name, value in params if name not in _PAGING]
    query = urlencode([*kept, ("cursor", cursor)], quote_via=quote)
    return f'<{path}?{query}>; rel="next"'
