"""Tag dependencies: `TagKey`, the key of the tag named in the path, or 404."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import CurrentPrincipal
from app.core.openapi import raises
from app.tags import service
from app.tags.exceptions import TagNotFound


@raises(TagNotFound)
async def get_tag_key(name: str, _caller: CurrentPrincipal) -> str:
    """No read: the service's statements find the tag by owner and key, in the write's
    own transaction. Authenticates first, so an anonymous caller learns nothing about
    the path but 401."""
    return service.path_key(name)


TagKey = Annotated[str, Depends(get_tag_key)]
