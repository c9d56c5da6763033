"""pledges and summaries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "chatstate",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("flow", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("data", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_table(
        "pledge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("goal", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("measures", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("status_note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pledge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pledge_branch_id"), ["branch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pledge_member_id"), ["member_id"], unique=False)

    op.create_table(
        "summary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("short_form", sa.Boolean(), nullable=False),
        sa.Column("achievements", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("problems", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("causes", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("next_steps", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("refused_text", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("submitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["campaignstep.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("step_id", "owner"),
    )
    with op.batch_alter_table("summary", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_summary_branch_id"), ["branch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_summary_member_id"), ["member_id"], unique=False)

    op.create_table(
        "pledgeprogress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("evidence_file_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("evidence_kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pledge_id"],
            ["pledge.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pledgeprogress", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pledgeprogress_pledge_id"), ["pledge_id"], unique=False
        )

    op.create_table(
        "summarypledge",
        sa.Column("summary_id", sa.Integer(), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["pledge_id"],
            ["pledge.id"],
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"],
            ["summary.id"],
        ),
        sa.PrimaryKeyConstraint("summary_id", "pledge_id"),
    )
    with op.batch_alter_table("campaignphase", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pledges", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:

    with op.batch_alter_table("campaignphase", schema=None) as batch_op:
        batch_op.drop_column("pledges")

    op.drop_table("summarypledge")
    with op.batch_alter_table("pledgeprogress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pledgeprogress_pledge_id"))

    op.drop_table("pledgeprogress")
    with op.batch_alter_table("summary", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_summary_member_id"))
        batch_op.drop_index(batch_op.f("ix_summary_branch_id"))

    op.drop_table("summary")
    with op.batch_alter_table("pledge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pledge_member_id"))
        batch_op.drop_index(batch_op.f("ix_pledge_branch_id"))

    op.drop_table("pledge")
    op.drop_table("chatstate")
