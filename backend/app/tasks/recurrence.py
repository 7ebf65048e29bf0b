"""Due times and recurrence: IANA zones (zoneinfo) and RFC 5545 RRULEs (dateutil).

A rule is checked here before anything is stored (422 invalid_recurrence): only
FREQ=DAILY|WEEKLY|MONTHLY|YEARLY with INTERVAL, BYDAY, BYMONTHDAY, BYMONTH, COUNT,
UNTIL, at most 500 characters, and never a rule that can have no occurrence at all
(BYMONTHDAY=31;BYMONTH=2, an ordinal weekday with a month day): dateutil would
search such a rule up to the year 9999 (seconds of CPU) before giving up.

Occurrences are computed from the series' start (the task's `recurrence_anchor`, a
wall-clock time in the task's zone) with an aware DTSTART in that zone: dateutil
builds each occurrence from the wall-clock date and time, so 09:00 Europe/Paris stays
09:00 across both DST changes, and COUNT counts from the first occurrence.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from dateutil import rrule

MAX_LENGTH = 500
MAX_INTERVAL = 1000
MAX_COUNT = 10_000
_FREQUENCIES = {
    "DAILY": rrule.DAILY,
    "WEEKLY": rrule.WEEKLY,
    "MONTHLY": rrule.MONTHLY,
    "YEARLY": rrule.YEARLY,
}
_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_BYDAY = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_NUMBER = re.compile(r"[+-]?[0-9]{1,5}")
_UNTIL = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")
# The most days each month can have (February: 29, in leap years).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """The IANA zone names: the tzdata package's list (zoneinfo alone would also take
    the system's `localtime`, which PostgreSQL does not know). A test checks that
    PostgreSQL knows each of them, as the statements convert with them too."""
    listed = resources.files("tzdata").joinpath("zones").read_text().split()
    return frozenset(listed) & frozenset(available_timezones())


def check_time_zone(name: str) -> str:
    if name not in time_zones():
        raise ValueError("Must be an IANA time zone name, e.g. Europe/Paris")
    return name


def zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


@dataclass(frozen=True, slots=True)
class Rule:
    """A checked rule: dateutil's keyword arguments, UNTIL kept as written."""

    kwargs: dict[str, Any]
    until: tuple[str, str | None, bool] | None  # (date, time or None, in UTC)


def _numbers(value: str, low: int, high: int, name: str) -> list[int]:
    numbers = []
    for item in value.split(","):
        if not _NUMBER.fullmatch(item) or not low <= abs(int(item)) <= high:
            raise ValueError(f"{name} must list numbers from {low} to {high}")
        numbers.append(int(item))
    return numbers


def _weekdays(value: str, ordinals: int) -> list[Any]:
    days = []
    for item in value.split(","):
        match = _BYDAY.fullmatch(item)
        if match is None:
            raise ValueError("BYDAY must list MO, TU, WE, TH, FR, SA or SU")
        number, day = match.groups()
        weekday = rrule.weekday(_WEEKDAYS[day])
        if number is not None:
            if not ordinals or not 1 <= abs(int(number)) <= ordinals:
                raise ValueError("This BYDAY ordinal is out of range for the FREQ")
            weekday = weekday(int(number))
        days.append(weekday)
    return days


_PARTS = frozenset({"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "COUNT", "UNTIL"})


def parse(text: str) -> Rule:
    """The rule, checked; ValueError (a message for the client) otherwise."""
    parts = _parts(text)
    frequency = parts.get("FREQ")
    if frequency not in _FREQUENCIES:
        raise ValueError("FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
    kwargs: dict[str, Any] = {"freq": _FREQUENCIES[frequency], **_repeats(parts)}
    months = _numbers(parts["BYMONTH"], 1, 12, "BYMONTH") if "BYMONTH" in parts else []
    if any(month < 0 for month in months):
        raise ValueError("BYMONTH must list months from 1 to 12")
    if months:
        kwargs["bymonth"] = months
    if "BYMONTHDAY" in parts:
        kwargs["bymonthday"] = _month_days(parts["BYMONTHDAY"], frequency, months)
    if "BYDAY" in parts:
        # RFC 5545: an ordinal (2MO, -1FR) only with MONTHLY, or YEARLY (within the
        # months of BYMONTH, else the year's weeks); never beside month days here.
        ordinals = 0
        if frequency == "MONTHLY" or (frequency == "YEARLY" and months):
            ordinals = 5
        elif frequency == "YEARLY":
            ordinals = 53
        if "BYMONTHDAY" in parts:
            ordinals = 0
        kwargs["byweekday"] = _weekdays(parts["BYDAY"], ordinals)
    return Rule(kwargs, _parse_until(parts.get("UNTIL")))


def _parts(text: str) -> dict[str, str]:
    """NAME=VALUE parts, each name once and one we support (case-insensitive, an
    `RRULE:` prefix allowed)."""
    if len(text) > MAX_LENGTH:
        raise ValueError(f"At most {MAX_LENGTH} characters")
    parts: dict[str, str] = {}
    for part in text.upper().removeprefix("RRULE:").split(";"):
        name, equals, value = part.partition("=")
        if not equals or not value or name in parts:
            raise ValueError("Must be NAME=VALUE parts separated by ';', each name once")
        parts[name] = value
    unknown = set(parts) - _PARTS
    if unknown:
        raise ValueError(f"Not supported: {', '.join(sorted(unknown))}")
    return parts


def _positive(value: str, high: int, name: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= high:
        raise ValueError(f"{name} must be a number from 1 to {high}")
    return int(value)


def _repeats(parts: dict[str, str]) -> dict[str, int]:
    """INTERVAL and COUNT (not with UNTIL, RFC 5545)."""
    repeats = {}
    if "INTERVAL" in parts:
        repeats["interval"] = _positive(parts["INTERVAL"], MAX_INTERVAL, "INTERVAL")
    if "COUNT" in parts:
        if "UNTIL" in parts:
            raise ValueError("COUNT and UNTIL cannot both be given")
        repeats["count"] = _positive(parts["COUNT"], MAX_COUNT, "COUNT")
    return repeats


def _month_days(value: str, frequency: str, months: list[int]) -> list[int]:
    """BYMONTHDAY, refusing a list that names no day of the rule's months (31 with
    only 30-day months, 30 in February): dateutil would search it until 9999."""
    if frequency == "WEEKLY":
        raise ValueError("BYMONTHDAY cannot be used with FREQ=WEEKLY")
    days = _numbers(value, 1, 31, "BYMONTHDAY")
    longest = max(_MONTH_DAYS[month - 1] for month in months or range(1, 13))
    if all(abs(day) > longest for day in days):
        raise ValueError("BYMONTHDAY names no day of the months of the rule")
    return days


def _parse_until(value: str | None) -> tuple[str, str | None, bool] | None:
    if value is None:
        return None
    match = _UNTIL.fullmatch(value)
    if match is None:
        raise ValueError("UNTIL must be YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ")
    until = (match[1], match[2], match[3] == "Z")
    _until(until, ZoneInfo("UTC"))  # a real date and time
    return until


def check(text: str) -> str:
    parse(text)
    return text


def _until(until: tuple[str, str | None, bool], tz: ZoneInfo) -> datetime:
    """UNTIL as an instant: in UTC with Z, else a wall-clock time in the task's zone; a
    date alone includes that whole day."""
    day, clock, in_utc = until
    try:
        moment = datetime.strptime(day + (clock or "235959"), "%Y%m%d%H%M%S")
    except ValueError:
        raise ValueError("UNTIL is not a real date and time") from None
    return moment.replace(tzinfo=UTC if in_utc else tz)


def next_due(text: str, anchor: datetime, current: datetime, tz: ZoneInfo) -> datetime | None:
    """The rule's first occurrence after `current` (an aware instant) in the series that
    starts at `anchor` (a wall-clock time in `tz`), as an aware time in `tz`; None when
    the rule has no further occurrence (COUNT or UNTIL reached, or past the year 9999)."""
    rule = parse(text)
    kwargs = dict(rule.kwargs)
    if rule.until is not None:
        kwargs["until"] = _until(rule.until, tz)
    series = rrule.rrule(dtstart=anchor.replace(tzinfo=tz), **kwargs)
    try:
        following: datetime | None = series.after(current.astimezone(tz))
    except (OverflowError, ValueError):  # beyond the year 9999
        return None
    return following


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def today_bounds(tz: ZoneInfo, now: datetime) -> tuple[date, datetime, datetime]:
    """Today in `tz` and the instants its day starts and the next one starts."""
    today = now.astimezone(tz).date()
    tomorrow = today + timedelta(days=1)
    return today, day_start(today, tz).astimezone(UTC), day_start(tomorrow, tz).astimezone(UTC)
