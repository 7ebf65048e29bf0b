"""Task request and response bodies, the list's query parameters, and If-Match."""

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.core.conditional import IfMatch as IfMatch  # re-exported (tasks, tests)
from app.core.sanitize import forbidden_character
from app.core.schemas import (
    InputModel,
    IsoDate,
    IsoDateTime,
    NotNull,
    PlainText,
    Timestamp,
    TrimmedText,
    as_utc,
)
from app.tags.schemas import TagName
from app.tasks import recurrence
from app.tasks.exceptions import InvalidRecurrence, InvalidTimeZone, RecurrenceNeedsDue
from app.tasks.models import Priority

MAX_TAGS = 20
# Far beyond any real list; keeps the value inside a 64-bit integer for the database.
MAX_OFFSET = 10_000_000
MAX_LIMIT = 100
# What a cursor can look like at all (cursors.py: base64url, at most 2,048 characters).
# Documented, not enforced here: any other value is 422 invalid_cursor, like a cursor
# of the right form that is not one of ours.
CURSOR_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": 2048}

Title = Annotated[TrimmedText, Field(min_length=1, max_length=200)]
Description = Annotated[PlainText, Field(max_length=1000)]
TagList = Annotated[list[TagName], Field(max_length=MAX_TAGS)]


def _time_zone(value: str) -> str:
    try:
        return recurrence.check_time_zone(value)
    except ValueError as exc:
        raise PydanticCustomError(InvalidTimeZone.code, str(exc)) from None


def _recurrence(value: str) -> str:
    try:
        return recurrence.check(value)
    except ValueError as exc:
        raise PydanticCustomError(InvalidRecurrence.code, str(exc)) from None


# The first and last instants whose date is a valid date in every zone (±14 hours),
# and never 9999-12-31: date.max, which asyncpg stores as PostgreSQL's `infinity`.
_EARLIEST_DUE = datetime(1, 1, 2, tzinfo=UTC)
_LATEST_DUE = datetime(9999, 12, 29, tzinfo=UTC)


def _due_date(value: date) -> date:
    if value in (date.min, date.max):
        raise ValueError("Date out of range: 0001-01-02 to 9999-12-30")
    return value


def _due_at(value: datetime) -> datetime:
    try:
        moment = as_utc(value)
    except OverflowError:
        raise ValueError("Timestamp out of range") from None
    if not _EARLIEST_DUE <= moment <= _LATEST_DUE:
        raise ValueError("Timestamp out of range")
    return moment


TimeZoneName = Annotated[
    str,
    AfterValidator(_time_zone),
    WithJsonSchema({"type": "string", "maxLength": 64, "examples": ["Europe/Paris"]}),
]
# The length is checked by the rule's parser, so that a rule too long is 422
# invalid_recurrence, as the contract says, not a generic string_too_long.
Recurrence = Annotated[
    str,
    Field(json_schema_extra={"maxLength": recurrence.MAX_LENGTH}),
    AfterValidator(_recurrence),
]
DueAt = Annotated[IsoDateTime, AfterValidator(_due_at)]
# 0001-01-01 and 9999-12-31 are date.min and date.max, which asyncpg stores as
# PostgreSQL's -infinity and infinity: the task would be answered with no due date.
DueDate = Annotated[IsoDate, AfterValidator(_due_date)]
_TIME_ZONE_DOC = "An IANA time zone name (e.g. Europe/Paris); none: UTC"
_DUE_AT_DOC = "The due instant (RFC 3339, any offset; answered in UTC). Not with due_date"
_RECURRENCE_DOC = (
    "An RFC 5545 RRULE: FREQ=DAILY|WEEKLY|MONTHLY|YEARLY with INTERVAL, BYDAY, "
    "BYMONTHDAY, BYMONTH, COUNT or UNTIL; needs a due_date or due_at"
)


def _one_due(model: Any) -> Any:
    if model.due_date is not None and model.due_at is not None:
        raise ValueError("Send either due_date (a day) or due_at (an instant), not both")
    return model


class TaskCreate(InputModel):
    """The body of POST and PUT (where omitted fields return to these defaults)."""

    title: Title
    description: Description | None = None
    priority: Priority = Priority.MEDIUM
    due_date: DueDate | None = None
    due_at: DueAt | None = Field(default=None, description=_DUE_AT_DOC)
    time_zone: TimeZoneName | None = Field(default=None, description=_TIME_ZONE_DOC)
    recurrence: Recurrence | None = Field(default=None, description=_RECURRENCE_DOC)
    project_id: uuid.UUID | None = None
    tags: TagList = Field(default_factory=list)
    parent_id: uuid.UUID | None = Field(
        default=None,
        description="Another of the user's tasks (this one becomes its subtask, in its "
        "project), or null: a top-level task",
    )

    @model_validator(mode="after")
    def _due(self) -> "TaskCreate":
        _one_due(self)
        if self.recurrence is not None and self.due_date is None and self.due_at is None:
            raise PydanticCustomError(RecurrenceNeedsDue.code, RecurrenceNeedsDue.detail)
        return self


class TaskReplace(TaskCreate):
    """The body of PUT: POST's, and `completed` (omitted: unchanged; completing a
    recurring task moves it to its next occurrence)."""

    completed: Annotated[StrictBool | None, NotNull] = None

    @field_validator("completed")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field cannot be null")
        return value


class TaskUpdate(InputModel):
    """PATCH: omitted fields stay; an explicit `null` clears description, due_date or
    project_id; `tags` replaces the whole set; `completed` works as in /complete."""

    # Not nullable (a validator refuses null): only the fields below that say so are.
    title: Annotated[Title | None, NotNull] = None
    description: Description | None = None
    priority: Annotated[Priority | None, NotNull] = None
    due_date: DueDate | None = None
    due_at: DueAt | None = Field(default=None, description=_DUE_AT_DOC)
    time_zone: TimeZoneName | None = Field(default=None, description=_TIME_ZONE_DOC)
    recurrence: Recurrence | None = Field(default=None, description=_RECURRENCE_DOC)
    project_id: uuid.UUID | None = None
    tags: Annotated[TagList | None, NotNull] = None
    completed: Annotated[StrictBool | None, NotNull] = None
    parent_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _due(self) -> "TaskUpdate":
        return _one_due(self)  # type: ignore[no-any-return]

    @field_validator("title", "priority", "tags", "completed")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field cannot be null")
        return value


class TaskCompletion(InputModel):
    """`completed` sets the state; an empty body (or `{}`) toggles it."""

    completed: StrictBool | None = None


class TaskPublic(BaseModel):
    id: uuid.UUID
    title: str
    description: str | None
    completed: bool
    completed_at: Timestamp | None
    priority: Priority
    due_date: date | None = Field(description="The due day; for a timed task, its local date")
    due_at: Timestamp | None
    time_zone: str | None
    recurrence: str | None
    last_completed_at: Timestamp | None
    project_id: uuid.UUID | None
    tags: list[str]
    created_at: Timestamp
    updated_at: Timestamp
    version: int = Field(description="Grows on every change; the ETag is this number, quoted")
    parent_id: uuid.UUID | None = Field(description="The parent task; null: a top-level task")
    position: str = Field(
        description="Manual order among siblings (same project and parent): opaque, "
        "sorts in byte order; change it with POST /tasks/{id}/move"
    )


class TrashedTask(TaskPublic):
    deleted_at: Timestamp = Field(
        description="When it went to the trash; it is deleted for good TRASH_RETENTION_DAYS later"
    )


class TrashList(BaseModel):
    items: list[TrashedTask] = Field(description="Newest first")
    total: int
    limit: int
    offset: int


class TaskMove(InputModel):
    """Where to move a task: just before or just after one of its siblings (exactly one
    of the two, not null)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["before"]}, {"required": ["after"]}]},
    )

    before: Annotated[uuid.UUID | None, NotNull] = None
    after: Annotated[uuid.UUID | None, NotNull] = None

    @field_validator("before", "after", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field cannot be null")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> "TaskMove":
        if (self.before is None) == (self.after is None):
            raise ValueError("Give exactly one of `before` and `after`")
        return self


class TaskList(BaseModel):
    items: list[TaskPublic]
    total: int = Field(description="Every task that matches the filters, on any page")
    limit: int
    offset: int = Field(
        description="The request's offset: 0 on a page reached by `cursor` (it starts "
        "after the cursor's task; its position is not counted)"
    )
    next_cursor: str | None = Field(
        description="Send it as `cursor` (with the same other parameters) for the next "
        "page; `null` on the last page. Opaque; the `Link` header carries the same"
    )


class TaskStatus(StrEnum):
    ALL = "all"
    PENDING = "pending"
    COMPLETED = "completed"


class SortBy(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    TITLE = "title"
    DUE_DATE = "due_date"
    PRIORITY = "priority"
    POSITION = "position"


class SortDirection(StrEnum):
    ASC = "asc"
    DESC = "desc"


def _project_filter(value: Any) -> uuid.UUID | Literal["none"]:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        if value == "none":
            return "none"
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValueError("Must be a project id (UUID) or `none`")


ProjectFilter = Annotated[
    uuid.UUID | Literal["none"],
    PlainValidator(_project_filter),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "uuid"}, {"const": "none"}]}),
]


def _parent_filter(value: Any) -> uuid.UUID | Literal["none"]:
    try:
        return _project_filter(value)
    except ValueError:
        raise ValueError("Must be a task id (UUID) or `none`") from None


ParentFilter = Annotated[
    uuid.UUID | Literal["none"],
    PlainValidator(_parent_filter),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "uuid"}, {"const": "none"}]}),
]


def _no_control_characters(value: str) -> str:
    if forbidden_character(value):
        raise ValueError("Control characters and unpaired surrogates are not allowed")
    return value


def _utc_timestamp(value: datetime) -> datetime:
    """Naive timestamps are taken as UTC; out-of-range conversions are a 422, not a 500."""
    try:
        return as_utc(value)
    except OverflowError:
        raise ValueError("Timestamp out of range") from None


class TaskQuery(BaseModel):
    """GET /tasks query parameters, all combinable; unknown ones are ignored."""

    status: TaskStatus = TaskStatus.ALL
    priority: list[Priority] = Field(default_factory=list, description="Repeatable")
    tags: list[TagName] = Field(
        default_factory=list, max_length=MAX_TAGS, description="Repeatable; a task must carry all"
    )
    tags_brackets: list[TagName] = Field(
        default_factory=list, alias="tags[]", max_length=MAX_TAGS, description="Same as `tags`"
    )
    project_id: ProjectFilter | None = Field(
        default=None, description="A project id, or `none` for tasks without a project"
    )
    parent_id: ParentFilter | None = Field(
        default=None, description="A task id (its direct subtasks), or `none` (top-level tasks)"
    )
    search: Annotated[str, Field(max_length=200), AfterValidator(_no_control_characters)] | None = (
        Field(
            default=None,
            description="Case-insensitive substring of title or description (`%` and `_` are literal)",
        )
    )
    due_before: IsoDate | None = Field(default=None, description="Due on or before this date")
    due_after: IsoDate | None = Field(default=None, description="Due on or after this date")
    updated_since: Annotated[IsoDateTime, AfterValidator(_utc_timestamp)] | None = Field(
        default=None, description="Changed at or after this instant (RFC 3339, with an offset)"
    )
    sort_by: SortBy = SortBy.CREATED_AT
    sort_direction: SortDirection = SortDirection.DESC
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    # Before offset, which is checked against it.
    cursor: Annotated[str, WithJsonSchema(CURSOR_SCHEMA)] | None = Field(
        default=None,
        description="A `next_cursor` of this list: the page after it, which never repeats "
        "or skips a task, whatever changed since (keep the other parameters; a cursor of "
        "another sort_by or sort_direction is 422 invalid_cursor). Not with `offset`",
    )
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)

    @field_validator("offset")
    @classmethod
    def _not_with_a_cursor(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("cursor") is not None:
            raise ValueError("Use either offset or cursor, not both")
        return value

    @property
    def tag_names(self) -> list[str]:
        return [*self.tags, *self.tags_brackets]


class StatsQuery(BaseModel):
    """GET /tasks/stats query parameters."""

    time_zone: TimeZoneName | None = Field(
        default=None, description='Whose "today" counts (an IANA name); default UTC'
    )
