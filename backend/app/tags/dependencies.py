"""Tag dependencies: `OwnedTag` loads the caller's tag named in the path, or 404."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import CurrentPrincipal
from app.core.db import SessionDep
from app.tags import service
from app.tags.models import Tag


async def get_owned_tag(name: str, db: SessionDep, user: CurrentPrincipal) -> Tag:
    return await service.get_owned_tag(db, user.id, name)


OwnedTag = Annotated[Tag, Depends(get_owned_tag)]
