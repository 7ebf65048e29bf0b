"""/api/v1/projects: the user's projects, each with its task count."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import CurrentPrincipal
from app.core import conditional
from app.core.conditional import IfNoneMatchHeader, Precondition
from app.core.db import DatabaseDep
from app.core.openapi import header_schema, problems, sends
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
    responses={**problems(ProjectNameTaken), **sends(201, "Location", "ETag")},
)
async def create_project(
    data: ProjectCreate, db: DatabaseDep, user: CurrentPrincipal, response: Response
) -> ProjectPublic:
    """Create a project (names are unique per user, ignoring case)."""
    project = await service.create_project(db, user.id, data)
    response.headers["Location"] = f"/api/v1/projects/{project.id}"
    response.headers["ETag"] = _etag(project)
    return project


def _etag(project: ProjectPublic) -> str:
    return f'"{project.version}"'


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
@router.get(
    "/{project_id}",
    response_model=ProjectPublic,
    responses={
        **problems(ProjectNotFound),
        **sends(200, "ETag"),
        **conditional.documented(header_schema("ETag")),
    },
)
async def get_project(
    project_id: uuid.UUID,
    db: DatabaseDep,
    user: CurrentPrincipal,
    response: Response,
    if_none_match: IfNoneMatchHeader = None,
) -> ProjectPublic | Response:
    """Get one project (its ETag is its version; If-None-Match with it: 304)."""
    project = await service.get_project(db, user.id, project_id)
    etag = _etag(project)
    if conditional.matches(if_none_match, etag):
        return conditional.not_modified(etag)
    response.headers["ETag"] = etag
    return project


@router.patch(
    "/{project_id}",
    response_model=ProjectPublic,
    responses={**problems(ProjectNotFound, ProjectNameTaken), **sends(200, "ETag")},
)
async def update_project(
    project_id: uuid.UUID,
    data: ProjectUpdate,
    db: DatabaseDep,
    user: CurrentPrincipal,
    precondition: Precondition,
    response: Response,
) -> ProjectPublic:
    """Change a project's name, description or color (`null` clears the latter two);
    If-Match: a stale version is 412 and changes nothing."""
    project = await service.update_project(db, user.id, project_id, data, precondition)
    response.headers["ETag"] = _etag(project)
    return project


@router.delete("/{project_id}", status_code=204, responses=problems(ProjectNotFound))
async def delete_project(
    project_id: uuid.UUID,
    db: DatabaseDep,
    user: CurrentPrincipal,
    precondition: Precondition,
    delete_tasks: Annotated[
        bool,
        Query(description="Also delete the project's tasks (else they stay, without a project)"),
    ] = False,
) -> None:
    """Delete a project; its tasks stay without a project unless `delete_tasks=true`.
    If-Match: a stale version is 412 and deletes nothing (its tasks included)."""
    await service.delete_project(db, user.id, project_id, delete_tasks, precondition)
