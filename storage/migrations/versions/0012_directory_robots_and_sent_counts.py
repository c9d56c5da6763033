"""WeCom's directory, group robots and per-recipient counts that survive a restart

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

A channel account the roster gave from the organisation's WeCom directory is `unseen` until
its member first writes from it, and they are welcomed then; accounts bound before this were
all bound by writing. A bound group chat names its channel (all Telegram so far). Group announcements through a channel's group robots are queued
once (`groupmessage`); and what each channel sent each recipient per minute is counted for an
hour (`sentcount`), so that per-member limits still hold after a restart.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0011's triggers on channel accounts, made again after SQLite rebuilds the table.
_SQLITE_TRIGGER = """
CREATE TRIGGER channelaccount_{event}_raises_roster_version AFTER {event_sql} ON channelaccount
BEGIN UPDATE rosterversion SET version = version + 1; END
"""


def upgrade() -> None:
    # A plain ALTER TABLE on SQLite too: a rebuild would drop the table's triggers.
    op.add_column(
        "channelaccount",
        sa.Column("unseen", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # Groups bound so far were all bound on Telegram.
    with op.batch_alter_table("boundchat", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "channel",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="telegram",
            )
        )
    op.create_table(
        "groupmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("chat", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("send_after", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("claimed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "chat", "subject"),
    )
    op.create_index("ix_groupmessage_status", "groupmessage", ["status"])
    op.create_table(
        "sentcount",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("minute", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "recipient", "minute"),
    )


def downgrade() -> None:
    op.drop_table("sentcount")
    op.drop_index("ix_groupmessage_status", table_name="groupmessage")
    op.drop_table("groupmessage")
    with op.batch_alter_table("boundchat", schema=None) as batch_op:
        batch_op.drop_column("channel")
    with op.batch_alter_table("channelaccount", schema=None) as batch_op:
        batch_op.drop_column("unseen")
    if op.get_bind().dialect.name == "sqlite":  # the rebuilt table lost its triggers
        for event in ("insert", "update", "delete"):
            op.execute(_SQLITE_TRIGGER.format(event=event, event_sql=event.upper()))
