"""Project request and response bodies."""

import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, field_validator

from app.core.schemas import InputModel, NotNull, PlainText, Timestamp, TrimmedText

ProjectName = Annotated[TrimmedText, Field(min_length=1, max_length=100)]
ProjectDescription = Annotated[PlainText, Field(max_length=1000)]
# A CSS hex color, stored lower-cased: "#1E90FF" -> "#1e90ff".
Color = Annotated[
    str,
    Field(pattern=r"^#[0-9a-fA-F]{6}$", examples=["#1e90ff"]),
    AfterValidator(str.lower),
]


class ProjectCreate(InputModel):
    name: ProjectName
    description: ProjectDescription | None = None
    color: Color | None = None


class ProjectUpdate(InputModel):
    """Partial update: omitted fields stay, an explicit `null` clears description or
    color. The name cannot be cleared."""

    name: Annotated[ProjectName | None, NotNull] = None
    description: ProjectDescription | None = None
    color: Color | None = None

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("The name cannot be null")
        return value


class ProjectPublic(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    color: str | None
    task_count: int = Field(description="How many tasks are filed in the project")
    created_at: Timestamp
    updated_at: Timestamp
    version: int = Field(
        description="Grows on every change of the name, description or color (not of "
        "task_count); the ETag is this number, quoted"
    )


class ProjectList(BaseModel):
    items: list[ProjectPublic]
    total: int
    limit: int
    offset: int
