"""/api/v1/auth: sign-up, tokens, sessions and the account."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import ValidationError

from app.auth import service
from app.auth.dependencies import (
    AuthDep,
    Claims,
    Client,
    CurrentUser,
    LocalUser,
    require_local_auth,
)
from app.auth.exceptions import (
    EmailTaken,
    ExternalAccount,
    InvalidCredentials,
    InvalidToken,
    SessionNotFound,
)
from app.auth.schemas import (
    AccountDeletion,
    AuthResponse,
    LoginRequest,
    PasswordChange,
    RefreshRequest,
    SessionPublic,
    SignupRequest,
    TokenResponse,
    UserPublic,
    UserUpdate,
)
from app.core.db import DatabaseDep
from app.core.errors import AppError, RateLimited, ServiceUnavailable, ValidationFailed
from app.core.handlers import field_error
from app.core.openapi import problems, sends
from app.core.ratelimit import RateLimitUnavailable
from app.core.sanitize import forbidden_character, sanitize_text
from app.core.tokens import ExternalIdentity, TokenError

router = APIRouter(prefix="/auth", tags=["auth"])
# Our own sign-in and sessions: 404 with LOCAL_AUTH_ENABLED=false.
LOCAL = [Depends(require_local_auth)]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM_FIELD = {"email": "username", "password": "password"}
_LIMITED = (RateLimited, RateLimitUnavailable)


def _tokens(status: int, *errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """A route answering tokens (never cached) that may refuse with these errors."""
    return {**problems(*errors, *_LIMITED), **sends(status, "Cache-Control", "Pragma")}


def _no_store(response: Response) -> None:
    response.headers.update(NO_STORE)


def _auth_response(issued: service.IssuedTokens) -> AuthResponse:
    return AuthResponse(
        user=UserPublic.model_validate(issued.user, from_attributes=True),
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


@router.post(
    "/signup",
    dependencies=LOCAL,
    status_code=201,
    response_model=AuthResponse,
    responses=_tokens(201, EmailTaken),
)
async def signup(
    data: SignupRequest, db: DatabaseDep, auth: AuthDep, client: Client, response: Response
) -> AuthResponse:
    """Create an account and start a session."""
    await auth.limiter.hit(auth.settings.SIGNUP_RATE_LIMIT, "signup", client.address)
    issued = await service.signup(db, auth, data, client.user_agent)
    _no_store(response)
    return _auth_response(issued)


@router.post(
    "/login",
    dependencies=LOCAL,
    response_model=AuthResponse,
    responses=_tokens(200, InvalidCredentials),
)
async def login(
    data: LoginRequest, db: DatabaseDep, auth: AuthDep, client: Client, response: Response
) -> AuthResponse:
    """Log in with email and password (JSON)."""
    await auth.limiter.hit(auth.settings.LOGIN_RATE_LIMIT, "login", client.address)
    issued = await service.login(db, auth, data.email, data.password, client.user_agent)
    _no_store(response)
    return _auth_response(issued)


@router.post(
    "/token",
    dependencies=LOCAL,
    response_model=TokenResponse,
    responses=_tokens(200, InvalidCredentials),
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DatabaseDep,
    auth: AuthDep,
    client: Client,
    response: Response,
) -> TokenResponse:
    """Log in with the OAuth2 password form (used by the docs' Authorize button)."""
    credentials = _form_credentials(form)  # before counting, as /login validates first
    await auth.limiter.hit(auth.settings.LOGIN_RATE_LIMIT, "login", client.address)
    issued = await service.login(
        db, auth, credentials.email, credentials.password, client.user_agent
    )
    _no_store(response)
    return TokenResponse(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


def _form_credentials(form: OAuth2PasswordRequestForm) -> LoginRequest:
    """The form bypasses the JSON body middleware: apply the JSON route's rules here
    (control characters refused, the username sanitized like any JSON string, then
    the same validation as /login), answering 422 with the form's field names."""
    fields = (("username", form.username), ("password", form.password))
    errors = [
        {
            "field": f"body.{name}",
            "message": "Control characters are not allowed",
            "type": "forbidden_character",
        }
        for name, value in fields
        if forbidden_character(value)
    ]
    if not errors:
        try:
            return LoginRequest(email=sanitize_text(form.username), password=form.password)
        except ValidationError as exc:
            errors = [field_error(("body", _FORM_FIELD[str(e["loc"][0])]), e) for e in exc.errors()]
    raise ValidationFailed(errors=errors)


@router.post(
    "/refresh",
    dependencies=LOCAL,
    response_model=AuthResponse,
    responses=_tokens(200, InvalidToken, ExternalAccount),
)
async def refresh_tokens(
    data: RefreshRequest,
    db: DatabaseDep,
    auth: AuthDep,
    client: Client,
    response: Response,
    request: Request,
) -> AuthResponse:
    """Trade a refresh token for a new pair; the old one is spent."""
    # A public route (no security in the document): the header is only looked at.
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if bearer and scheme.lower() == "bearer" and auth.tokens.external_enabled:
        await _refuse_external(auth, bearer.strip())
    await auth.limiter.hit(auth.settings.REFRESH_RATE_LIMIT, "refresh", client.address)
    issued = await service.refresh(db, auth, data.refresh_token, client.user_agent)
    _no_store(response)
    return _auth_response(issued)


async def _refuse_external(auth: service.AuthContext, token: str) -> None:
    """An external account's token sent to refresh: its provider refreshes it (403)."""
    try:
        verified = await auth.tokens.verify(token)
    except (TokenError, ServiceUnavailable):
        return  # not a token this route acts on: the body decides
    if isinstance(verified, ExternalIdentity):
        raise ExternalAccount()


@router.post("/logout", dependencies=LOCAL, status_code=204)
async def logout(db: DatabaseDep, auth: AuthDep, claims: Claims, _: LocalUser) -> None:
    """End this session: its access and refresh tokens stop working at once."""
    await service.logout(db, auth, claims)


@router.post("/logout-all", dependencies=LOCAL, status_code=204)
async def logout_all(db: DatabaseDep, auth: AuthDep, user: LocalUser) -> None:
    """End every session of the user."""
    await service.logout_all(db, auth, user)


@router.get("/me", response_model=UserPublic)
async def read_me(user: CurrentUser) -> UserPublic:
    """The current user."""
    return UserPublic.model_validate(user, from_attributes=True)


@router.patch("/me", response_model=UserPublic)
async def update_me(data: UserUpdate, db: DatabaseDep, user: CurrentUser) -> UserPublic:
    """Change the user's name (`null` clears it)."""
    if "name" in data.model_fields_set:
        user = await service.update_name(db, user, data.name)
    return UserPublic.model_validate(user, from_attributes=True)


@router.post(
    "/password",
    dependencies=LOCAL,
    status_code=204,
    responses=problems(InvalidCredentials, *_LIMITED),
)
async def change_password(
    data: PasswordChange, db: DatabaseDep, auth: AuthDep, user: LocalUser, claims: Claims
) -> None:
    """Change the password; every other session ends."""
    await service.change_password(db, auth, user, claims, data.current_password, data.new_password)


@router.delete("/me", status_code=204, responses=problems(InvalidCredentials, *_LIMITED))
async def delete_me(
    db: DatabaseDep, auth: AuthDep, user: CurrentUser, data: AccountDeletion | None = None
) -> None:
    """Delete the account and all its data. Our own accounts confirm with their
    password; an external account (signed in by its identity provider) needs no body."""
    await service.delete_account(db, auth, user, data.password if data else None)


@router.get("/sessions", dependencies=LOCAL, response_model=list[SessionPublic])
async def list_sessions(db: DatabaseDep, user: LocalUser, claims: Claims) -> list[SessionPublic]:
    """The user's active sessions; `current` marks the caller's."""
    sessions = await service.list_sessions(db, user)
    return [
        SessionPublic(
            id=s.id,
            created_at=s.created_at,
            last_used_at=s.last_used_at,
            user_agent=s.user_agent,
            current=s.id == claims.session_id,
        )
        for s in sessions
    ]


@router.delete(
    "/sessions/{session_id}",
    dependencies=LOCAL,
    status_code=204,
    responses=problems(SessionNotFound),
)
async def revoke_session(
    session_id: uuid.UUID, db: DatabaseDep, auth: AuthDep, user: LocalUser
) -> None:
    """End one of the user's sessions."""
    await service.revoke_session(db, auth, user, session_id)
