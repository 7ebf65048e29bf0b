"""Auth request and response bodies."""

import re
import uuid
from typing import Annotated, Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import AfterValidator, BaseModel, BeforeValidator, EmailStr, Field

from app.auth.passwords import MAX_LENGTH, MIN_LENGTH, check_password_policy
from app.core.schemas import NON_BLANK_PATTERN, InputModel, Timestamp, TrimmedText


def _normalize_email(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


# Emails are trimmed and compared case-insensitively: stored lower-cased.
# email-validator refuses special-use domains (RFC 6761: `x@y.test`, `.local`, ...):
# the document says so, as a pattern beside `format: email`.
# (JSON Schema patterns have no flags: each letter is matched in either case.)
_SPECIAL_USE = "|".join(
    "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in name)
    for name in SPECIAL_USE_DOMAIN_NAMES
)
Email = Annotated[
    EmailStr,
    BeforeValidator(_normalize_email),
    AfterValidator(str.lower),
    Field(json_schema_extra={"pattern": rf"^(?![\s\S]*[.@](?:{_SPECIAL_USE})\.?\s*$)"}),
]
LoginEmail = Annotated[
    str,
    BeforeValidator(_normalize_email),
    Field(min_length=1, max_length=320, json_schema_extra={"pattern": NON_BLANK_PATTERN}),
]
# The length limits are the policy's, checked (and documented) by the field itself.
NewPassword = Annotated[
    str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH), AfterValidator(check_password_policy)
]
# Checked against a hash, never against the policy (an old password may predate it).
GivenPassword = Annotated[str, Field(min_length=1, max_length=4 * MAX_LENGTH)]
UserName = Annotated[TrimmedText, Field(min_length=1, max_length=100)]


class SignupRequest(InputModel):
    email: Email
    password: NewPassword
    name: UserName | None = None


class LoginRequest(InputModel):
    email: LoginEmail
    password: GivenPassword


class RefreshRequest(InputModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class UserUpdate(InputModel):
    name: UserName | None = None


class PasswordChange(InputModel):
    current_password: GivenPassword
    new_password: NewPassword


class AccountDeletion(InputModel):
    password: GivenPassword


class UserPublic(BaseModel):
    id: uuid.UUID
    # None only for an external account whose identity provider sent no email claim.
    email: str | None
    name: str | None
    auth_provider: Literal["local", "external"] = Field(
        description="`local`: signs in here; `external`: by its identity provider's tokens"
    )
    created_at: Timestamp


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Access token lifetime in seconds")
    refresh_token: str


class AuthResponse(TokenResponse):
    user: UserPublic


class SessionPublic(BaseModel):
    id: uuid.UUID
    created_at: Timestamp
    last_used_at: Timestamp
    user_agent: str | None
    current: bool
