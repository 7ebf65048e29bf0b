"""notify session revocations

Every deleted user_session row (logout, revocation, password change, account deletion
by cascade, refresh-token reuse) sends NOTIFY on the channel `user_session_revoked`
with the session id, so each server process can evict it from its in-memory cache of
live sessions (app/auth/revocations.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_user_session_revoked() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('user_session_revoked', OLD.id::text);
            RETURN OLD;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER user_session_revoked AFTER DELETE ON user_session
        FOR EACH ROW EXECUTE FUNCTION notify_user_session_revoked()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS user_session_revoked ON user_session")
    op.execute("DROP FUNCTION IF EXISTS notify_user_session_revoked()")
