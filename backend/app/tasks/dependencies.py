"""Task dependencies: the If-Match and Idempotency-Key headers."""

from typing import Annotated

from fastapi import Header

from app.core.conditional import Precondition as Precondition  # re-exported

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
