"""Sync cursors: opaque to clients, bound to their user, checked strictly.

A cursor names what the client has seen as a PostgreSQL snapshot (`xmin:xmax:xip`,
the text form of `pg_snapshot`): every transaction the snapshot sees as committed is
in the client's copy, and the next sync reports the changes of every other one. While
a client pages through one sync (`has_more`), the cursor also carries the snapshot
the sync began with and how far the pages got (a kind and a key): see service.py.

Encoded as base64url JSON. Nothing in it is secret (ids of the user's own objects, a
snapshot, times), and a forged one cannot reach another user's data (every statement
is scoped to the caller); a cursor of another user, or anything malformed, is 422
invalid_cursor.
"""

import base64
import binascii
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from app.core.errors import InvalidCursor
from app.sync.models import Kind

MAX_CURSOR_LENGTH = 8192
_XID_LIMIT = 2**63
_SNAPSHOT = re.compile(r"^(\d{1,19}):(\d{1,19}):((?:\d{1,19})(?:,\d{1,19})*)?$")
_KINDS = frozenset(int(kind) for kind in Kind)
_KEY = re.compile(r"^[^\x00]{1,200}$")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A pg_snapshot (text form) and when it was taken."""

    text: str
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class Position:
    """Where the pages of a sync got: the last object listed (kind, key)."""

    kind: Kind
    key: str


@dataclass(frozen=True, slots=True)
class Cursor:
    # What the client has seen; None for its first sync (everything).
    seen: Snapshot | None
    # While paging: the snapshot this sync began with and the last object listed.
    paging: tuple[Snapshot, Position] | None = None


def _owner_tag(user_id: uuid.UUID) -> str:
    return hashlib.sha256(b"sync-cursor:" + user_id.bytes).hexdigest()[:16]


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _snapshot_of(text: object, micros: object) -> Snapshot:
    if not isinstance(text, str) or not isinstance(micros, int) or isinstance(micros, bool):
        raise InvalidCursor()
    match = _SNAPSHOT.match(text)
    if match is None:
        raise InvalidCursor()
    xmin, xmax = int(match[1]), int(match[2])
    xip = [int(x) for x in match[3].split(",")] if match[3] else []
    # What pg_snapshot_in accepts: 0 < xmin <= xmax, xip ascending within [xmin, xmax).
    if not 0 < xmin <= xmax < _XID_LIMIT or xip != sorted(set(xip)):
        raise InvalidCursor()
    if xip and (xip[0] < xmin or xip[-1] >= xmax):
        raise InvalidCursor()
    try:
        taken_at = datetime.fromtimestamp(micros / 1_000_000, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidCursor() from None
    return Snapshot(text, taken_at)


def encode(cursor: Cursor, user_id: uuid.UUID) -> str:
    payload: dict[str, object] = {"u": _owner_tag(user_id)}
    if cursor.seen is not None:
        payload |= {"s": cursor.seen.text, "st": _micros(cursor.seen.taken_at)}
    if cursor.paging is not None:
        began, position = cursor.paging
        payload |= {"b": began.text, "bt": _micros(began.taken_at)}
        payload |= {"k": int(position.kind), "p": position.key}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


def decode(value: str, user_id: uuid.UUID) -> Cursor:
    """The cursor, or 422 invalid_cursor (malformed, or another user's)."""
    if not value or len(value) > MAX_CURSOR_LENGTH:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value:
            raise InvalidCursor()  # a character changed in its spare bits, or not base64url
        payload = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidCursor() from None
    if not isinstance(payload, dict) or payload.get("u") != _owner_tag(user_id):
        raise InvalidCursor()
    if set(payload) - {"u", "s", "st", "b", "bt", "k", "p"}:
        raise InvalidCursor()
    seen = _snapshot_of(payload["s"], payload.get("st")) if "s" in payload else None
    if "b" not in payload:
        if {"bt", "k", "p"} & set(payload):
            raise InvalidCursor()
        if seen is None:
            raise InvalidCursor()  # a finished sync always has a snapshot
        return Cursor(seen)
    began = _snapshot_of(payload["b"], payload.get("bt"))
    kind, key = payload.get("k"), payload.get("p")
    if not isinstance(kind, int) or kind not in _KINDS or not isinstance(key, str):
        raise InvalidCursor()
    if not _KEY.match(key):
        raise InvalidCursor()
    if Kind(kind) is not Kind.TAG:
        try:
            canonical = str(uuid.UUID(key))
        except ValueError:
            raise InvalidCursor() from None
        if canonical != key:
            raise InvalidCursor()
    return Cursor(seen, (began, Position(Kind(kind), key)))
