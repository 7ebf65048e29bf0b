"""The change log that sync reads: one row per object a transaction touched.

Written only by triggers (migration 0008), never by the app: every statement that
inserts, changes or deletes a task, project, tag or task-tag link appends, for each
object whose state (as a client sees it) changed, a row `(user_id, xid, kind, key)`:
`xid` is the writing transaction's id (`pg_current_xact_id()`), so the row becomes
visible exactly when the change commits. A task counts as changed when its row
changes; a project also when its `task_count` does (a task added, removed or moved);
a tag when it is created, renamed (old and new name), deleted, or its `usage_count`
changes (a link added or removed). Deletions need no other record: an object logged
since a cursor but gone now is reported deleted.

Rows are only appended (one transaction never conflicts with another's), a
transaction logs an object once (the primary key, ON CONFLICT DO NOTHING), and rows
older than SYNC_RETENTION_DAYS (+ a day) are purged (app/sync/service.py). The table
has no foreign key to the user: deleting an account deletes its rows by a trigger,
and the triggers skip owners that no longer exist (an account deletion's cascades).
"""

import uuid
from datetime import datetime
from enum import IntEnum

from sqlalchemy import BigInteger, Column, DateTime, Index, SmallInteger, Text
from sqlmodel import Field, SQLModel


class Kind(IntEnum):
    """What a change log row names; also the order in which a sync lists them."""

    PROJECT = 1
    TAG = 2
    TASK = 3


class SyncChange(SQLModel, table=True):
    __tablename__ = "sync_change"
    __table_args__ = (
        # The purge reads rows by age; appended in time order, a BRIN index serves it.
        Index("ix_sync_change_created_at", "created_at", postgresql_using="brin"),
    )

    # The key serves a sync: one user's rows from the oldest transaction a cursor may
    # not have seen (an index range), deduplicated per transaction.
    user_id: uuid.UUID = Field(primary_key=True)
    xid: int = Field(sa_type=BigInteger, primary_key=True)
    kind: int = Field(sa_type=SmallInteger, primary_key=True)
    # A task's or project's id as text, or a tag's name (as spelt): C collation, so
    # it sorts in byte order (ids then sort like uuids).
    key: str = Field(sa_column=Column(Text(collation="C"), primary_key=True))
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
