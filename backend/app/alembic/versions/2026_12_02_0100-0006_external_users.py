"""external users

Users provisioned from an external identity provider's tokens (EXTERNAL_JWKS_URL,
EXTERNAL_JWT_SECRET): `external_subject` holds the token's `sub`, unique, and such an
account has no password. Emails stay unique among our own accounts only: an external
account's email is the provider's claim (two subs may share one), and it is never
used to sign in or to find an account.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_account", sa.Column("external_subject", sa.String(255), nullable=True))
    op.create_unique_constraint(
        "uq_user_account_external_subject", "user_account", ["external_subject"]
    )
    op.alter_column("user_account", "email", existing_type=sa.String(320), nullable=True)
    op.alter_column("user_account", "hashed_password", existing_type=sa.String(255), nullable=True)
    op.drop_constraint("uq_user_account_email", "user_account", type_="unique")
    op.create_index(
        "uq_user_account_local_email",
        "user_account",
        ["email"],
        unique=True,
        postgresql_where=sa.text("external_subject IS NULL"),
    )
    # Our own accounts keep both; an external one has no password.
    op.create_check_constraint(
        "ck_user_account_local_or_external",
        "user_account",
        "(external_subject IS NULL AND email IS NOT NULL AND hashed_password IS NOT NULL)"
        " OR (external_subject IS NOT NULL AND hashed_password IS NULL)",
    )


def downgrade() -> None:
    op.execute("DELETE FROM user_account WHERE external_subject IS NOT NULL")
    op.drop_constraint("ck_user_account_local_or_external", "user_account", type_="check")
    op.drop_index("uq_user_account_local_email", table_name="user_account")
    op.create_unique_constraint("uq_user_account_email", "user_account", ["email"])
    op.alter_column("user_account", "hashed_password", existing_type=sa.String(255), nullable=False)
    op.alter_column("user_account", "email", existing_type=sa.String(320), nullable=False)
    op.drop_constraint("uq_user_account_external_subject", "user_account", type_="unique")
    op.drop_column("user_account", "external_subject")
