"""/api/v1/tags: the user's tags with usage counts, rename (merging) and delete."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import CurrentPrincipal
from app.core.db import SessionDep
from app.core.openapi import problems
from app.tags import service
from app.tags.dependencies import OwnedTag
from app.tags.schemas import MAX_TAG_LENGTH, TagPublic, TagRename

router = APIRouter(prefix="/tags", tags=["tags"])

PrefixQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_TAG_LENGTH,
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$",
        description="Only tags whose name starts with this (ignoring case)",
    ),
]


@router.get("", response_model=list[TagPublic], responses=problems(401))
async def list_tags(
    db: SessionDep, user: CurrentPrincipal, prefix: PrefixQuery = None
) -> list[TagPublic]:
    """List the user's tags with usage counts, most used first, then by name."""
    return await service.list_tags(db, user.id, prefix)


@router.patch("/{name:path}", response_model=TagPublic, responses=problems(401, 404, 415))
async def rename_tag(data: TagRename, db: SessionDep, tag: OwnedTag) -> TagPublic:
    """Rename a tag, merging it into an existing tag of the new name."""
    return await service.rename_tag(db, tag, data.name)


@router.delete("/{name:path}", status_code=204, responses=problems(401, 404))
async def delete_tag(db: SessionDep, tag: OwnedTag) -> None:
    """Delete a tag and remove it from every task."""
    await service.delete_tag(db, tag)


# The older user-scoped contract only lists tags (`GET /api/{user_id}/tags`).
compat_router = APIRouter(tags=["tags"])
compat_router.add_api_route(
    "/tags",
    list_tags,
    methods=["GET"],
    response_model=list[TagPublic],
    responses=problems(401, 403),
)
