"""Auth dependencies: `CurrentUser` loads and checks the caller in one step."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth import service
from app.auth.exceptions import InvalidToken
from app.auth.models import User
from app.core.context import set_user_id
from app.core.db import SessionDep
from app.core.errors import Unauthorized
from app.core.security import AccessClaims, TokenError

# tokenUrl makes the /docs "Authorize" button log in through the OAuth2 form route.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_auth_context(request: Request) -> service.AuthContext:
    auth: service.AuthContext = request.app.state.auth
    return auth


AuthDep = Annotated[service.AuthContext, Depends(get_auth_context)]


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


async def get_current_user(db: SessionDep, claims: Claims) -> User:
    user = await service.authenticate(db, claims)
    set_user_id(str(user.id))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


@dataclass(slots=True, frozen=True)
class ClientInfo:
    address: str
    user_agent: str | None


async def get_client_info(request: Request) -> ClientInfo:
    # Behind a proxy, run uvicorn with --proxy-headers/--forwarded-allow-ips so that
    # request.client is the real client (the rate limits are keyed on it).
    address = request.client.host if request.client else "unknown"
    agent = request.headers.get("user-agent")
    if agent:
        agent = "".join(ch for ch in agent if ch.isprintable())[:255] or None
    return ClientInfo(address=address, user_agent=agent)


Client = Annotated[ClientInfo, Depends(get_client_info)]
