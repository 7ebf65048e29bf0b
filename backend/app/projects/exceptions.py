"""Project errors (domain exceptions: status and code, no FastAPI)."""

from app.core.errors import Conflict, NotFound


class ProjectNotFound(NotFound):
    code = "project_not_found"
    detail = "Project not found"


class ProjectNameTaken(Conflict):
    code = "project_name_taken"
    detail = "You already have a project with this name"
