"""Every table module, imported once so SQLModel.metadata knows them all
(Alembic's env.py and the tests import this module)."""

from app.auth.models import RefreshToken, User, UserSession
from app.core.db import metadata

__all__ = ["RefreshToken", "User", "UserSession", "metadata"]
