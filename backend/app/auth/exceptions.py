"""Auth errors (domain exceptions: status and code, no FastAPI)."""

from app.core.errors import Conflict, Forbidden, InvalidCredentials, InvalidToken, NotFound

__all__ = [
    "EmailTaken",
    "ExternalAccount",
    "InvalidCredentials",
    "InvalidToken",
    "LocalAuthDisabled",
    "SessionNotFound",
]


class EmailTaken(Conflict):
    code = "email_taken"
    detail = "An account with this email already exists"


class SessionNotFound(NotFound):
    code = "session_not_found"
    detail = "Session not found"


class ExternalAccount(Forbidden):
    code = "external_account"
    detail = (
        "This account signs in with its identity provider: sessions, refresh tokens "
        "and passwords are managed there"
    )


class LocalAuthDisabled(NotFound):
    """LOCAL_AUTH_ENABLED=false: the route of our own sign-in does not exist."""

    code = "not_found"
    detail = "Not found"
