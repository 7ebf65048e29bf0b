"""Tag use cases. Tags come into being by being named on a task (`set_task_tags`);
they are listed with their usage, renamed (merging) and deleted here.

The tasks domain depends on this one, never the reverse: the few statements that touch
tasks (bumping the version of tasks whose tag list changed) name the task table's
columns below instead of importing `app.tasks`.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    ScalarSelect,
    Select,
    Uuid,
    any_,
    bindparam,
    column,
    delete,
    func,
    literal,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped
from sqlmodel import SQLModel, col

from app.core.sanitize import forbidden_character
from app.core.schemas import utcnow
from app.tags.exceptions import TagNotFound
from app.tags.models import Tag, TaskTag
from app.tags.schemas import MAX_TAG_LENGTH, TagPublic, normalize_tag_name, tag_key

_task = table(
    "task",
    column("id", Uuid),
    column("user_id", Uuid),
    column("version", Integer),
    column("updated_at", DateTime(timezone=True)),
)
# A deleted tag can make a concurrent "create or find" miss its row; try again.
_ENSURE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class TagRef:
    id: uuid.UUID
    name: str
    key: str


def insert_ignore(db: AsyncSession, entity: type[SQLModel]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can take ON CONFLICT DO NOTHING (both dialects support it)."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(entity)
    return sqlite.insert(entity)


def unique_by_key(names: Sequence[str]) -> dict[str, str]:
    """key -> first spelling, for names already normalized (see TagName)."""
    spellings: dict[str, str] = {}
    for name in names:
        spellings.setdefault(name.casefold(), name)
    return spellings


# Built once per dialect (values are bound per execution): constructing these
# statements cost more CPU than running them.
@lru_cache(maxsize=4)
def _insert_tags_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Tag).on_conflict_do_nothing(index_elements=["user_id", "name_key"])


@lru_cache(maxsize=4)
def _insert_links_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(TaskTag).on_conflict_do_nothing()


@lru_cache(maxsize=1)
def _select_tags_statement() -> Any:
    return (
        select(col(Tag.id), col(Tag.name), col(Tag.name_key))
        .where(
            col(Tag.user_id) == bindparam("user_id"),
            col(Tag.name_key).in_(bindparam("keys", expanding=True)),
        )
        .with_for_update(read=True, key_share=True)
    )


async def ensure_tags(db: AsyncSession, user_id: uuid.UUID, names: Sequence[str]) -> list[TagRef]:
    """The user's tags with these names, created when missing (first spelling kept).

    INSERT ... ON CONFLICT DO NOTHING lets concurrent requests create the same new tag
    without failing (the unique constraint decides); rows are inserted in key order so
    two requests never lock the same tags in opposite orders (no deadlock). The select
    takes FOR KEY SHARE on PostgreSQL, so a concurrent tag deletion waits for our links.
    """
    spellings = unique_by_key(names)
    keys = sorted(spellings)
    found: dict[str, TagRef] = {}
    for _ in range(_ENSURE_ATTEMPTS):
        missing = [key for key in keys if key not in found]
        if not missing:
            break
        now = utcnow()
        rows = [
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "name": spellings[key],
                "name_key": key,
                "created_at": now,
            }
            for key in missing
        ]
        dialect = db.get_bind().dialect.name
        # executemany of one cached statement: rows keep their (key) order.
        await db.execute(_insert_tags_statement(dialect), rows)
        result = await db.execute(_select_tags_statement(), {"user_id": user_id, "keys": missing})
        found.update({row.name_key: TagRef(row.id, row.name, row.name_key) for row in result})
    return [found[key] for key in keys if key in found]


async def set_task_tags(
    db: AsyncSession,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    names: Sequence[str],
    *,
    new_task: bool = False,
) -> list[str]:
    """Make these (normalized) names the task's tags; return them as stored, in order."""
    tags = await ensure_tags(db, user_id, names)
    ids = [tag.id for tag in tags]
    if not new_task:
        await db.execute(
            delete(TaskTag).where(col(TaskTag.task_id) == task_id, col(TaskTag.tag_id).not_in(ids))
        )
    if ids:
        links = [{"task_id": task_id, "tag_id": tag_id} for tag_id in ids]
        await db.execute(_insert_links_statement(db.get_bind().dialect.name), links)
    return [tag.name for tag in tags]


def sort_names(names: Iterable[str]) -> list[str]:
    """Tag names in one order everywhere: by key (the casefolded name, code point
    order), whatever the database's collation."""
    return sorted(names, key=str.casefold)


def tag_names_of(
    task_id: ColumnElement[uuid.UUID] | Mapped[uuid.UUID], dialect: str
) -> ScalarSelect[Any]:
    """A subquery correlated to `task_id`: the names of the task's tags, aggregated (an
    array on PostgreSQL, a JSON array on SQLite). Read it with `decode_names`."""
    names = col(Tag.name)
    aggregate = func.array_agg(names) if dialect == "postgresql" else func.json_group_array(names)
    return _aggregate_names(aggregate, task_id)


def tag_names_json_of(task_id: Any) -> ScalarSelect[Any]:
    """PostgreSQL only: the same names as a JSON array, already in `sort_names` order
    (by key, code point order), `[]` for none, for JSON rendered by the database."""
    ordered = aggregate_order_by(col(Tag.name), col(Tag.name_key).collate("C"))
    return _aggregate_names(
        func.coalesce(func.json_agg(ordered), literal_column("'[]'::json")), task_id
    )


def _aggregate_names(aggregate: Any, task_id: Any) -> ScalarSelect[Any]:
    return (
        select(aggregate)
        .select_from(TaskTag)
        .join(Tag, col(Tag.id) == col(TaskTag.tag_id))
        .where(col(TaskTag.task_id) == task_id)
        .scalar_subquery()
    )


def decode_names(value: Any) -> list[str]:
    if value is None:  # array_agg over no rows
        return []
    return sort_names(orjson.loads(value) if isinstance(value, str) else value)


def tag_keys(names: Sequence[str]) -> list[str]:
    """The distinct keys of these tag names, as `tasks_with_all_tags` expects them."""
    return sorted({tag_key(name) for name in names})


def tasks_with_all_tags(
    user_id: Any, keys: Any, key_count: Any, *, keys_array: bool = False
) -> Select[uuid.UUID]:
    """Ids of the user's tasks that carry every one of these tags (for list filters).
    Takes expressions (bound parameters), so one statement serves any tag list:
    `keys` from `tag_keys()` (an expanding parameter, or with `keys_array` a
    PostgreSQL array parameter) and their number."""
    key = col(Tag.name_key)
    return (
        select(col(TaskTag.task_id))
        .join(Tag, col(Tag.id) == col(TaskTag.tag_id))
        .where(col(Tag.user_id) == user_id, key == any_(keys) if keys_array else key.in_(keys))
        .group_by(col(TaskTag.task_id))
        .having(func.count() == key_count)
    )


def prefix_key(prefix: str) -> str:
    """An autocomplete prefix compared like tag names; a trailing space is kept, so
    `work ` finds `work stuff` but not `workshop`."""
    key = " ".join(prefix.split()).casefold()
    return f"{key} " if key and prefix[-1].isspace() else key


async def list_tags(db: AsyncSession, user_id: uuid.UUID, prefix: str | None) -> list[TagPublic]:
    usage = func.count(col(TaskTag.task_id))
    stmt = (
        select(col(Tag.name), usage.label("usage_count"))
        .outerjoin(TaskTag, col(TaskTag.tag_id) == col(Tag.id))
        .where(col(Tag.user_id) == user_id)
        .group_by(col(Tag.id), col(Tag.name), col(Tag.name_key))
        .order_by(usage.desc(), col(Tag.name_key), col(Tag.id))
    )
    if prefix and (key := prefix_key(prefix)):
        stmt = stmt.where(col(Tag.name_key).startswith(key, autoescape=True))
    result = await db.execute(stmt)
    return [TagPublic(name=name, usage_count=count) for name, count in result]


async def get_owned_tag(db: AsyncSession, user_id: uuid.UUID, name: str) -> Tag:
    """The user's tag of that name (ignoring case); else 404."""
    if forbidden_character(name):
        raise TagNotFound()  # no stored name can contain one
    key = tag_key(name)
    if not key or len(normalize_tag_name(name)) > MAX_TAG_LENGTH:
        raise TagNotFound()
    result = await db.execute(
        select(Tag).where(col(Tag.user_id) == user_id, col(Tag.name_key) == key)
    )
    tag = result.scalars().first()
    if tag is None:
        raise TagNotFound()
    return tag


async def _touch_tasks_then_lock(db: AsyncSession, tag: Tag) -> None:
    """Give the tasks whose tag list changes a new version (so ETags and updated_since
    tell), then lock the tag, or 404 if a concurrent request removed it.

    Task rows first, the tag second: the order in which a task write takes them (its
    row, then its tags), so a tag change and a task change never deadlock.
    """
    tagged = select(col(TaskTag.task_id)).where(col(TaskTag.tag_id) == tag.id)
    await db.execute(
        update(_task)
        .where(_task.c.user_id == tag.user_id, _task.c.id.in_(tagged))
        .values(version=_task.c.version + 1, updated_at=utcnow())
    )
    locked = await db.execute(
        select(col(Tag.id))
        .where(col(Tag.id) == tag.id, col(Tag.user_id) == tag.user_id)
        .with_for_update()
    )
    if locked.first() is None:
        raise TagNotFound()


async def _usage_count(db: AsyncSession, tag_id: uuid.UUID) -> int:
    count = await db.scalar(
        select(func.count()).select_from(TaskTag).where(col(TaskTag.tag_id) == tag_id)
    )
    return int(count or 0)


async def rename_tag(db: AsyncSession, tag: Tag, new_name: str) -> TagPublic:
    """Rename; when the user already has a tag of the new name, merge into it (its
    spelling is kept, a task carrying both ends up with it once)."""
    if new_name == tag.name:
        return TagPublic(name=tag.name, usage_count=await _usage_count(db, tag.id))
    await _touch_tasks_then_lock(db, tag)
    if new_name.casefold() == tag.name_key:  # a new spelling of the same tag
        tag.name = new_name
        db.add(tag)
        target = TagRef(tag.id, new_name, tag.name_key)
    else:
        [target] = await ensure_tags(db, tag.user_id, [new_name])
        moved = select(col(TaskTag.task_id), literal(target.id, Uuid)).where(
            col(TaskTag.tag_id) == tag.id
        )
        await db.execute(
            insert_ignore(db, TaskTag)
            .from_select(["task_id", "tag_id"], moved)
            .on_conflict_do_nothing()
        )
        await db.execute(delete(Tag).where(col(Tag.id) == tag.id))
    await db.flush()
    count = await _usage_count(db, target.id)
    await db.commit()
    return TagPublic(name=target.name, usage_count=count)


async def delete_tag(db: AsyncSession, tag: Tag) -> None:
    """Delete the tag; its links go with it (ON DELETE CASCADE)."""
    await _touch_tasks_then_lock(db, tag)
    await db.execute(delete(Tag).where(col(Tag.id) == tag.id))
    await db.commit()
