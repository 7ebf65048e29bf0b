"""Every table module, imported once so SQLModel.metadata knows them all
(Alembic's env.py and the tests import this module)."""

from app.auth.models import RefreshToken, User, UserSession
from app.core.db import metadata
from app.projects.models import Project
from app.sync.models import SyncChange
from app.tags.models import Tag, TaskTag
from app.tasks.models import IdempotencyKey, TaskCount, TaskRow

__all__ = [
    "IdempotencyKey",
    "Project",
    "RefreshToken",
    "SyncChange",
    "Tag",
    "TaskRow",
    "TaskCount",
    "TaskTag",
    "User",
    "UserSession",
    "metadata",
]
