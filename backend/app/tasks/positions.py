"""Manual order: positions that never run out (fractional indexing).

A position is a string of base-62 digits compared byte by byte (the column is in the
C collation, and `0-9 < A-Z < a-z` in ASCII). It is an integer part whose first
character says how many digits follow (`a`..`z`: 1..26 more, larger numbers; `A`..`Z`
the negative ones), then an optional fraction that never ends in `0`. Between any two
positions there is always another: the same integer part with a longer fraction, so a
thousand moves into one gap only make that key longer (about one character per six
moves), never impossible. The scheme is David Greenspan's "Implementing Fractional
Indexing" (https://observablehq.com/@dgreensp/implementing-fractional-indexing), as in
the `fractional-indexing` packages.

A new task needs no read of its siblings: the database gives it
`task_position_key(now, id)` (migration 0009), the current microsecond as the integer
part, so it sorts after every older sibling. Moves (service: `move_task`) compute the
key between the two neighbours here.
"""

import uuid
from datetime import UTC, datetime, timedelta

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX = {digit: number for number, digit in enumerate(DIGITS)}
_ZERO, _LAST = DIGITS[0], DIGITS[-1]
_SMALLEST = "A" + _ZERO * 26
_MICROSECOND = timedelta(microseconds=1)


def _integer_length(head: str) -> int:
    if "a" <= head <= "z":
        return ord(head) - ord("a") + 2
    if "A" <= head <= "Z":
        return ord("Z") - ord(head) + 2
    raise ValueError("not a position")


def _split(key: str) -> tuple[str, str]:
    length = _integer_length(key[0])
    if length > len(key):
        raise ValueError("not a position")
    return key[:length], key[length:]


def _midpoint(a: str, b: str | None) -> str:
    """A fraction strictly between fractions `a` and `b` (None: 1)."""
    if b is not None:
        n = 0
        while (a[n] if n < len(a) else _ZERO) == b[n]:
            n += 1
        if n > 0:
            return b[:n] + _midpoint(a[n:], b[n:])
    low = _INDEX[a[0]] if a else 0
    high = _INDEX[b[0]] if b is not None else len(DIGITS)
    if high - low > 1:
        return DIGITS[(low + high + 1) // 2]
    if b is not None and len(b) > 1:
        return b[:1]
    return DIGITS[low] + _midpoint(a[1:], None)


def _increment(integer: str) -> str | None:
    head, digits = integer[0], list(integer[1:])
    for i in reversed(range(len(digits))):
        if digits[i] != _LAST:
            digits[i] = DIGITS[_INDEX[digits[i]] + 1]
            return head + "".join(digits)
        digits[i] = _ZERO
    if head == "Z":
        return "a" + _ZERO
    if head == "z":
        return None
    head = chr(ord(head) + 1)
    if head > "a":
        digits.append(_ZERO)
    else:
        digits.pop()
    return head + "".join(digits)


def _decrement(integer: str) -> str | None:
    head, digits = integer[0], list(integer[1:])
    for i in reversed(range(len(digits))):
        if digits[i] != _ZERO:
            digits[i] = DIGITS[_INDEX[digits[i]] - 1]
            return head + "".join(digits)
        digits[i] = _LAST
    if head == "a":
        return "Z" + _LAST
    if head == "A":
        return None
    head = chr(ord(head) - 1)
    if head < "Z":
        digits.append(_LAST)
    else:
        digits.pop()
    return head + "".join(digits)


def between(a: str | None, b: str | None) -> str:
    """A position after `a` and before `b` (None: no bound on that side); `a < b`."""
    if a is None and b is None:
        return "a" + _ZERO
    if a is None:
        assert b is not None
        integer, fraction = _split(b)
        if integer == _SMALLEST:
            return integer + _midpoint("", fraction)
        if integer < b:
            return integer
        lower = _decrement(integer)
        if lower is None:  # pragma: no cover - 62**26 moves to the front
            raise ValueError("no position before this one")
        return lower
    integer, fraction = _split(a)
    if b is None:
        higher = _increment(integer)
        return integer + _midpoint(fraction, None) if higher is None else higher
    if a >= b:
        raise ValueError("positions out of order")
    upper, upper_fraction = _split(b)
    if integer == upper:
        return integer + _midpoint(fraction, upper_fraction)
    higher = _increment(integer)
    if higher is not None and higher < b:
        return higher
    return integer + _midpoint(fraction, None)


def key_at(at: datetime, salt: uuid.UUID) -> str:
    """`task_position_key(at, salt)` of migration 0009, for the seeding of benchmarks
    (COPY sets every column itself); a test compares the two."""
    micros = max((at - datetime(1970, 1, 1, tzinfo=UTC)) // _MICROSECOND, 0)
    digits = ""
    for _ in range(9):
        micros, digit = divmod(micros, 62)
        digits = DIGITS[digit] + digits
    s = int(str(salt)[-8:], 16)
    return "i" + digits + DIGITS[s % 62] + DIGITS[s // 62 % 62] + DIGITS[s // 3844 % 61 + 1]
