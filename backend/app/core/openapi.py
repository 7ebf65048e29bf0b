"""OpenAPI helpers: routes declare their error responses, all problem+json."""

from http import HTTPStatus
from typing import Any

from app.core.schemas import Problem


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting each status as application/problem+json."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }
