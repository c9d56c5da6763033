"""invite tokens kept only as digests; a roster version raised by every member write

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Existing tokens are replaced by their SHA-256 digests: links already handed out keep working,
but can no longer be printed again (`python -m bot invites --reissue` gives new ones).

The roster version is raised by a trigger, so a member removed or given another role by any
process (the roster command line, or an administrator's SQL) is seen by the running bot on
its next update.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGER = """
CREATE TRIGGER member_{event}_raises_roster_version AFTER {event_sql} ON member
BEGIN UPDATE rosterversion SET version = version + 1; END
"""
_POSTGRES_FUNCTION = """
CREATE FUNCTION raise_roster_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE rosterversion SET version = version + 1; RETURN NULL; END $$
"""
_POSTGRES_TRIGGER = """
CREATE TRIGGER member_write_raises_roster_version
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON member
FOR EACH STATEMENT EXECUTE PROCEDURE raise_roster_version()
"""
_EVENTS = ("insert", "update", "delete")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upgrade() -> None:
    op.add_column(
        "invite", sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
    )
    connection = op.get_bind()
    invite = sa.table("invite", sa.column("id"), sa.column("token"), sa.column("digest"))
    for invite_id, token in connection.execute(sa.select(invite.c.id, invite.c.token)).all():
        connection.execute(
            invite.update().where(invite.c.id == invite_id).values(digest=_digest(token))
        )
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.alter_column("digest", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint("invite_digest_key", ["digest"])
        batch_op.drop_column("token")

    op.create_table(
        "rosterversion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO rosterversion (id, version) VALUES (1, 0)")
    if connection.dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
        op.execute(_POSTGRES_TRIGGER)
    else:
        for event in _EVENTS:
            op.execute(_SQLITE_TRIGGER.format(event=event, event_sql=event.upper()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER member_write_raises_roster_version ON member")
        op.execute("DROP FUNCTION raise_roster_version()")
    else:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER member_{event}_raises_roster_version")
    op.drop_table("rosterversion")
    # A digest cannot be turned back into its token: every open invite has to be reissued.
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.drop_constraint("invite_digest_key", type_="unique")
        batch_op.alter_column("digest", new_column_name="token", existing_type=sa.String(length=64))
        batch_op.create_unique_constraint("invite_token_key", ["token"])
