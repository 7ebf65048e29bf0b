"""sync change log

The change log of delta sync (app/sync/models.py): the table, the triggers that fill
it, and an index of each user's tasks by id (a first sync pages through them in id
order).

Every trigger is a statement-level AFTER trigger with a transition table, so a
statement touching one row or 50,000 appends its rows in one INSERT. The xid is the
top-level transaction's (`pg_current_xact_id()`, as bigint). Triggers on deletions
and updates skip owners whose account row no longer exists: deleting an account
cascades to its tasks, links, tags and projects, and those statements' triggers run
after the account row is gone (see migration 0004); the account's own trigger
deletes its log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROJECT, TAG, TASK = 1, 2, 3

_XID = "pg_current_xact_id()::text::bigint"
_LIVE = "EXISTS (SELECT FROM user_account AS u WHERE u.id = {}.user_id)"


def _function(name: str, select: str) -> str:
    return f"""
    CREATE FUNCTION {name}() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO sync_change (user_id, xid, kind, key, created_at)
        SELECT DISTINCT c.user_id, {_XID}, c.kind, c.key, now() FROM ({select}) AS c
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END
    $$
    """


# (function, table, event, transition table, the (user_id, kind, key) rows it logs)
_TRIGGERS = [
    (
        "sync_task_insert", "task", "INSERT", "NEW TABLE AS n",
        f"""SELECT n.user_id, {TASK} AS kind, n.id::text AS key FROM n
        UNION ALL
        SELECT n.user_id, {PROJECT}, n.project_id::text FROM n WHERE n.project_id IS NOT NULL""",
    ),
    (
        "sync_task_update", "task", "UPDATE", "OLD TABLE AS o NEW TABLE AS n",
        f"""SELECT n.user_id, {TASK} AS kind, n.id::text AS key FROM n WHERE {_LIVE.format("n")}
        UNION ALL
        SELECT m.user_id, {PROJECT}, p.id::text
        FROM o JOIN n AS m ON m.id = o.id
        CROSS JOIN LATERAL (VALUES (o.project_id), (m.project_id)) AS p(id)
        WHERE o.project_id IS DISTINCT FROM m.project_id AND p.id IS NOT NULL
          AND {_LIVE.format("m")}""",
    ),
    (
        "sync_task_delete", "task", "DELETE", "OLD TABLE AS o",
        f"""SELECT o.user_id, {TASK} AS kind, o.id::text AS key FROM o WHERE {_LIVE.format("o")}
        UNION ALL
        SELECT o.user_id, {PROJECT}, o.project_id::text FROM o
        WHERE o.project_id IS NOT NULL AND {_LIVE.format("o")}""",
    ),
    (
        "sync_task_tag_insert", "task_tag", "INSERT", "NEW TABLE AS n",
        f"""SELECT t.user_id, {TAG} AS kind, t.name::text AS key
        FROM n JOIN tag AS t ON t.id = n.tag_id""",
    ),
    (
        # A link removed with its tag (the tag deleted) finds no tag: the tag's own
        # trigger logs it.
        "sync_task_tag_delete", "task_tag", "DELETE", "OLD TABLE AS o",
        f"""SELECT t.user_id, {TAG} AS kind, t.name::text AS key
        FROM o JOIN tag AS t ON t.id = o.tag_id WHERE {_LIVE.format("t")}""",
    ),
    (
        "sync_tag_insert", "tag", "INSERT", "NEW TABLE AS n",
        f"SELECT n.user_id, {TAG} AS kind, n.name::text AS key FROM n",
    ),
    (
        "sync_tag_update", "tag", "UPDATE", "OLD TABLE AS o NEW TABLE AS n",
        f"""SELECT m.user_id, {TAG} AS kind, x.name::text AS key
        FROM o JOIN n AS m ON m.id = o.id
        CROSS JOIN LATERAL (VALUES (o.name), (m.name)) AS x(name)
        WHERE {_LIVE.format("m")}""",
    ),
    (
        "sync_tag_delete", "tag", "DELETE", "OLD TABLE AS o",
        f"SELECT o.user_id, {TAG} AS kind, o.name::text AS key FROM o WHERE {_LIVE.format('o')}",
    ),
    (
        "sync_project_insert", "project", "INSERT", "NEW TABLE AS n",
        f"SELECT n.user_id, {PROJECT} AS kind, n.id::text AS key FROM n",
    ),
    (
        "sync_project_update", "project", "UPDATE", "NEW TABLE AS n",
        f"SELECT n.user_id, {PROJECT} AS kind, n.id::text AS key FROM n WHERE {_LIVE.format('n')}",
    ),
    (
        "sync_project_delete", "project", "DELETE", "OLD TABLE AS o",
        f"SELECT o.user_id, {PROJECT} AS kind, o.id::text AS key FROM o WHERE {_LIVE.format('o')}",
    ),
]  # fmt: skip

_FORGET_ACCOUNT = """
CREATE FUNCTION sync_forget_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sync_change WHERE user_id IN (SELECT id FROM o);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "sync_change",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("key", sa.Text(collation="C"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "xid", "kind", "key", name=op.f("pk_sync_change")),
    )
    op.create_index(
        "ix_sync_change_created_at", "sync_change", ["created_at"], postgresql_using="brin"
    )
    op.create_index("ix_task_user_id_id", "task", ["user_id", "id"])
    for name, table, event, transition, select in _TRIGGERS:
        op.execute(_function(name, select))
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    op.execute(_FORGET_ACCOUNT)
    op.execute(
        "CREATE TRIGGER sync_forget_account AFTER DELETE ON user_account "
        "REFERENCING OLD TABLE AS o FOR EACH STATEMENT EXECUTE FUNCTION sync_forget_account()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS sync_forget_account ON user_account")
    op.execute("DROP FUNCTION IF EXISTS sync_forget_account()")
    for name, table, *_ in reversed(_TRIGGERS):
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index("ix_task_user_id_id", table_name="task")
    op.drop_index("ix_sync_change_created_at", table_name="sync_change")
    op.drop_table("sync_change")
