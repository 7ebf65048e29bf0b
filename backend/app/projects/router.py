"""/api/v1/projects: the user's projects, each with its task count."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import CurrentPrincipal
from app.core.db import DatabaseDep
from app.core.openapi import problems, sends
from app.projects import service
from app.projects.exceptions import ProjectNameTaken, ProjectNotFound
from app.projects.schemas import ProjectCreate, ProjectList, ProjectPublic, ProjectUpdate

router = APIRouter(prefix="/projects", tags=["projects"])

# Far beyond any real list; keeps the value inside a 64-bit integer for the database.
MAX_OFFSET = 10_000_000


@router.post(
    "",
    status_code=201,
    response_model=ProjectPublic,
    responses={**problems(ProjectNameTaken), **sends(201, "Location")},
)
async def create_project(
    data: ProjectCreate, db: DatabaseDep, user: CurrentPrincipal, response: Response
) -> ProjectPublic:
    """Create a project (names are unique per user, ignoring case)."""
    project = await service.create_project(db, user.id, data)
    response.headers["Location"] = f"/api/v1/projects/{project.id}"
    return project


@router.get("", response_model=ProjectList)
async def list_projects(
    db: DatabaseDep,
    user: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ProjectList:
    """List the user's projects by name."""
    return await service.list_projects(db, user.id, limit, offset)


# The routes below pass the path's id to the service, whose statements are scoped to
# the caller (see service.py): another user's project is answered 404.
@router.get("/{project_id}", response_model=ProjectPublic, responses=problems(ProjectNotFound))
async def get_project(
    project_id: uuid.UUID, db: DatabaseDep, user: CurrentPrincipal
) -> ProjectPublic:
    """Get one project."""
    return await service.get_project(db, user.id, project_id)


@router.patch(
    "/{project_id}",
    response_model=ProjectPublic,
    responses=problems(ProjectNotFound, ProjectNameTaken),
)
async def update_project(
    project_id: uuid.UUID, data: ProjectUpdate, db: DatabaseDep, user: CurrentPrincipal
) -> ProjectPublic:
    """Change a project's name, description or color (`null` clears the latter two)."""
    return await service.update_project(db, user.id, project_id, data)


@router.delete("/{project_id}", status_code=204, responses=problems(ProjectNotFound))
async def delete_project(
    project_id: uuid.UUID,
    db: DatabaseDep,
    user: CurrentPrincipal,
    delete_tasks: Annotated[
        bool,
        Query(description="Also delete the project's tasks (else they stay, without a project)"),
    ] = False,
) -> None:
    """Delete a project; its tasks stay without a project unless `delete_tasks=true`."""
    await service.delete_project(db, user.id, project_id, delete_tasks)
