"""Task dependencies: the If-Match and Idempotency-Key headers."""

from typing import Annotated

from fastapi import Depends, Header

from app.core.openapi import raises
from app.tasks.exceptions import PreconditionFailed
from app.tasks.schemas import IfMatch


@raises(PreconditionFailed)  # a stale If-Match, checked by the write itself
async def get_precondition(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=1024,
            description='`"<version>"` as in the ETag; a stale one is 412, `*` matches any',
        ),
    ] = None,
) -> IfMatch | None:
    return IfMatch.parse(if_match) if if_match is not None else None


Precondition = Annotated[IfMatch | None, Depends(get_precondition)]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e][\x20-\x7e]*$",
        description="Printable ASCII, 1-255 characters; retries with the same key and body "
        "replay the first response for 24 hours",
    ),
]
