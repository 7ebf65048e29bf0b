"""Tag errors (domain exceptions: status and code, no FastAPI)."""

from app.core.errors import NotFound


class TagNotFound(NotFound):
    code = "tag_not_found"
    detail = "Tag not found"
