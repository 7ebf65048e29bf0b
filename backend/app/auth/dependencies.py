"""Auth dependencies: `CurrentUser` loads and checks the caller in one step."""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth import service
from app.auth.exceptions import InvalidToken
from app.auth.models import User
from app.core.context import set_user_id
from app.core.db import DatabaseDep
from app.core.errors import Unauthorized
from app.core.openapi import raises
from app.core.security import AccessClaims, TokenError

# tokenUrl makes the /docs "Authorize" button log in through the OAuth2 form route.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_auth_context(request: Request) -> service.AuthContext:
    auth: service.AuthContext = request.app.state.auth
    return auth


AuthDep = Annotated[service.AuthContext, Depends(get_auth_context)]


@raises(Unauthorized, InvalidToken)
async def get_claims(
    auth: AuthDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> AccessClaims:
    if not token:
        raise Unauthorized()
    try:
        return auth.tokens.decode_access_token(token)
    except TokenError:
        raise InvalidToken() from None


Claims = Annotated[AccessClaims, Depends(get_claims)]


async def get_current_user(db: DatabaseDep, claims: Claims) -> User:
    user = await service.authenticate(db, claims)
    set_user_id(str(user.id))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


@dataclass(slots=True, frozen=True)
class Principal:
    """The authenticated caller, without their user row: what owner-scoped routes need."""

    id: uuid.UUID
    session_id: uuid.UUID


async def get_principal(db: DatabaseDep, auth: AuthDep, claims: Claims) -> Principal:
    """Checks the session like CurrentUser, but answers from the in-memory cache of live
    sessions when it can (exact: revocations evict it at once, see revocations.py)."""
    sessions = auth.sessions
    if not sessions.is_live(claims.session_id, claims.user_id):
        generation = sessions.generation
        expires_at = await service.check_session(db, claims)
        sessions.remember(claims.session_id, claims.user_id, expires_at, generation)
    set_user_id(str(claims.user_id))
    return Principal(claims.user_id, claims.session_id)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


@dataclass(slots=True, frozen=True)
class ClientInfo:
    address: str
    user_agent: str | None


async def get_client_info(request: Request) -> ClientInfo:
    # Behind a proxy, FORWARDED_ALLOW_IPS names it, so that
    # request.client is the real client (the rate limits are keyed on it).
    address = request.client.host if request.client else "unknown"
    agent = request.headers.get("user-agent")
    if agent:
        agent = "".join(ch for ch in agent if ch.isprintable())[:255] or None
    return ClientInfo(address=address, user_agent=agent)


Client = Annotated[ClientInfo, Depends(get_client_info)]
