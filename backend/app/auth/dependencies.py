"""Auth dependencies: `CurrentUser` loads and checks the caller in one step."""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth import service
from app.auth.exceptions import ExternalAccount, InvalidToken, LocalAuthDisabled
from app.auth.models import User
from app.core.context import set_user_id
from app.core.db import Database, DatabaseDep
from app.core.errors import Unauthorized
from app.core.openapi import raises
from app.core.tokens import AccessClaims, IdentityProviderUnavailable, TokenError

# tokenUrl makes the /docs "Authorize" button log in through the OAuth2 form route.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_auth_context(request: Request) -> service.AuthContext:
    auth: service.AuthContext = request.app.state.auth
    return auth


AuthDep = Annotated[service.AuthContext, Depends(get_auth_context)]


@raises(Unauthorized, InvalidToken, IdentityProviderUnavailable)
async def get_claims(
    db: DatabaseDep, auth: AuthDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> AccessClaims:
    """Our token's claims, or an external token's, with the account its subject maps
    to (created by its first valid token)."""
    if not token:
        raise Unauthorized()
    try:
        verified = await auth.tokens.verify(token)
    except TokenError:
        raise InvalidToken() from None
    if isinstance(verified, AccessClaims):
        return verified
    return await auth.external.claims(db, verified)


Claims = Annotated[AccessClaims, Depends(get_claims)]


async def _again_if_external(
    db: Database, auth: service.AuthContext, claims: AccessClaims, error: InvalidToken
) -> AccessClaims:
    """An external subject whose account was deleted (by another worker, say) since this
    worker looked it up: its next valid token creates a new one, like a first sign-in."""
    if claims.identity is None:
        raise error
    auth.external.forget(claims.identity.subject)
    return await auth.external.claims(db, claims.identity)


async def get_current_user(db: DatabaseDep, auth: AuthDep, claims: Claims) -> User:
    try:
        user = await service.authenticate(db, claims)
    except InvalidToken as exc:
        claims = await _again_if_external(db, auth, claims, exc)
        user = await service.authenticate(db, claims)
    set_user_id(str(user.id))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


@raises(ExternalAccount)
async def get_local_user(user: CurrentUser) -> User:
    """The caller, who must be one of our own accounts (403 `external_account`)."""
    service.require_local(user)
    return user


LocalUser = Annotated[User, Depends(get_local_user)]


@raises(LocalAuthDisabled)
async def require_local_auth(auth: AuthDep) -> None:
    """LOCAL_AUTH_ENABLED=false: our own sign-in routes answer 404."""
    if not auth.settings.LOCAL_AUTH_ENABLED:
        raise LocalAuthDisabled()


@dataclass(slots=True, frozen=True)
class Principal:
    """The authenticated caller, without their user row: what owner-scoped routes need."""

    id: uuid.UUID
    session_id: uuid.UUID
    # An external account's identity provider `sub` (the compatibility routes take it).
    subject: str | None = None


async def get_principal(db: DatabaseDep, auth: AuthDep, claims: Claims) -> Principal:
    """Checks the session like CurrentUser, but answers from the in-memory cache of live
    sessions when it can (exact: revocations evict it at once, see revocations.py)."""
    sessions = auth.sessions
    if not sessions.is_live(claims.session_id, claims.user_id):
        generation = sessions.generation
        try:
            expires_at = await service.check_session(db, claims)
        except InvalidToken as exc:
            claims = await _again_if_external(db, auth, claims, exc)
            expires_at = await service.check_session(db, claims)
        sessions.remember(claims.session_id, claims.user_id, expires_at, generation)
    set_user_id(str(claims.user_id))
    subject = claims.identity.subject if claims.identity else None
    return Principal(claims.user_id, claims.session_id, subject)


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
