"""GET /sync: its query and its answer (the objects exactly as their routes answer them)."""

import uuid

from pydantic import BaseModel, Field

from app.projects.schemas import ProjectPublic
from app.tags.schemas import TagPublic
from app.tasks.schemas import TaskPublic

MAX_SYNC_LIMIT = 1000


class Deleted(BaseModel):
    tasks: list[uuid.UUID] = Field(description="Tasks deleted since the cursor")
    projects: list[uuid.UUID] = Field(description="Projects deleted since the cursor")
    tags: list[str] = Field(
        description="Tag names gone since the cursor (deleted, renamed or respelt)"
    )


class SyncResponse(BaseModel):
    tasks: list[TaskPublic] = Field(description="Tasks created or changed, in their current state")
    projects: list[ProjectPublic] = Field(
        description="Projects created or changed (task_count included), in their current state"
    )
    tags: list[TagPublic] = Field(description="Tags created or changed (usage_count included)")
    deleted: Deleted
    cursor: str = Field(
        description="Send it back as `cursor`: at once while has_more, later to catch up"
    )
    has_more: bool = Field(
        description="More of this sync is waiting: call again at once with the cursor"
    )
