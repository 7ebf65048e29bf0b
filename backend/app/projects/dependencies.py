"""Project dependencies: `OwnedProject` loads the caller's project by id, or 404."""

import uuid
from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import CurrentPrincipal
from app.core.db import SessionDep
from app.projects import service
from app.projects.models import Project


async def get_owned_project(
    project_id: uuid.UUID, db: SessionDep, user: CurrentPrincipal
) -> Project:
    return await service.get_owned_project(db, user.id, project_id)


OwnedProject = Annotated[Project, Depends(get_owned_project)]
