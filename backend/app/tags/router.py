"""/api/v1/tags: the user's tags with usage counts, rename (merging) and delete."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import CurrentPrincipal
from app.core.db import DatabaseDep
from app.tags import service
from app.tags.dependencies import TagKey
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


@router.get("", response_model=list[TagPublic])
async def list_tags(
    db: DatabaseDep, user: CurrentPrincipal, prefix: PrefixQuery = None
) -> list[TagPublic]:
    """List the user's tags with usage counts, most used first, then by name."""
    return await service.list_tags(db, user.id, prefix)


@router.patch("/{name:path}", response_model=TagPublic)
async def rename_tag(
    data: TagRename, db: DatabaseDep, user: CurrentPrincipal, key: TagKey
) -> TagPublic:
    """Rename a tag, merging it into an existing tag of the new name."""
    return await service.rename_tag(db, user.id, key, data.name)


@router.delete("/{name:path}", status_code=204)
async def delete_tag(db: DatabaseDep, user: CurrentPrincipal, key: TagKey) -> None:
    """Delete a tag and remove it from every task."""
    await service.delete_tag(db, user.id, key)


# The older user-scoped contract only lists tags (`GET /api/{user_id}/tags`).
compat_router = APIRouter(tags=["tags"])
compat_router.add_api_route(
    "/tags",
    list_tags,
    methods=["GET"],
    response_model=list[TagPublic],
)
