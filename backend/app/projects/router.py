"""/api/v1/projects: the user's projects, each with its task count."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import CurrentPrincipal
from app.core.db import SessionDep
from app.core.openapi import problems
from app.projects import service
from app.projects.dependencies import OwnedProject
from app.projects.schemas import ProjectCreate, ProjectList, ProjectPublic, ProjectUpdate

router = APIRouter(prefix="/projects", tags=["projects"])

# Far beyond any real list; keeps the value inside a 64-bit integer for the database.
MAX_OFFSET = 10_000_000


@router.post("", status_code=201, response_model=ProjectPublic, responses=problems(401, 409, 415))
async def create_project(
    data: ProjectCreate, db: SessionDep, user: CurrentPrincipal, response: Response
) -> ProjectPublic:
    """Create a project (names are unique per user, ignoring case)."""
    project = await service.create_project(db, user.id, data)
    response.headers["Location"] = f"/api/v1/projects/{project.id}"
    return project


@router.get("", response_model=ProjectList, responses=problems(401))
async def list_projects(
    db: SessionDep,
    user: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ProjectList:
    """List the user's projects by name."""
    return await service.list_projects(db, user.id, limit, offset)


@router.get("/{project_id}", response_model=ProjectPublic, responses=problems(401, 404))
async def get_project(db: SessionDep, project: OwnedProject) -> ProjectPublic:
    """Get one project."""
    return await service.read_project(db, project)


@router.patch("/{project_id}", response_model=ProjectPublic, responses=problems(401, 404, 409, 415))
async def update_project(
    data: ProjectUpdate, db: SessionDep, project: OwnedProject
) -> ProjectPublic:
    """Change a project's name, description or color (`null` clears the latter two)."""
    return await service.update_project(db, project, data)


@router.delete("/{project_id}", status_code=204, responses=problems(401, 404))
async def delete_project(
    db: SessionDep,
    project: OwnedProject,
    delete_tasks: Annotated[
        bool,
        Query(description="Also delete the project's tasks (else they stay, without a project)"),
    ] = False,
) -> None:
    """Delete a project; its tasks stay without a project unless `delete_tasks=true`."""
    await service.delete_project(db, project, delete_tasks)
