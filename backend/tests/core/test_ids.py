"""Task ids are RFC 9562 version 7 UUIDs: time-ordered, random below the millisecond."""

import time
import uuid

from app.core.ids import uuid7


def test_version_and_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_time_prefix_is_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after


def test_ids_are_unique_and_ordered_across_milliseconds() -> None:
    first = [uuid7() for _ in range(1000)]
    assert len(set(first)) == 1000
    time.sleep(0.002)
    later = uuid7()
    assert all(later > earlier for earlier in first)
