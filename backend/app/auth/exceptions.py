"""Auth errors (domain exceptions: status and code, no FastAPI)."""

from app.core.errors import Conflict, InvalidCredentials, InvalidToken, NotFound

__all__ = ["EmailTaken", "InvalidCredentials", "InvalidToken", "SessionNotFound"]


class EmailTaken(Conflict):
    code = "email_taken"
    detail = "An account with this email already exists"


class SessionNotFound(NotFound):
    code = "session_not_found"
    detail = "Session not found"
