"""reviews and rectification

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 07:23:53.739061
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("reviewee", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("achievements", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("problems", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("direction", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("requirements", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("track_problems", sa.Boolean(), nullable=False),
        sa.Column("refused_text", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("acknowledged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
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
            ["reviewer_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["campaignstep.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("step_id", "reviewee"),
    )
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_branch_id"), ["branch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_reviewer_id"), ["reviewer_id"], unique=False)

    op.create_table(
        "revieweroverride",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("reviewee", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "reviewee"),
    )
    op.create_table(
        "rectification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("done_note", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("done_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
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
            ["review_id"],
            ["review.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rectification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rectification_branch_id"), ["branch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rectification_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rectification_review_id"), ["review_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rectification_status"), ["status"], unique=False)

    op.create_table(
        "rectificationprogress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rectification_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["rectification_id"],
            ["rectification.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rectificationprogress", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rectificationprogress_rectification_id"),
            ["rectification_id"],
            unique=False,
        )

    op.create_table(
        "summaryrectification",
        sa.Column("summary_id", sa.Integer(), nullable=False),
        sa.Column("rectification_id", sa.Integer(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["rectification_id"],
            ["rectification.id"],
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"],
            ["summary.id"],
        ),
        sa.PrimaryKeyConstraint("summary_id", "rectification_id"),
    )


def downgrade() -> None:
    op.drop_table("summaryrectification")
    with op.batch_alter_table("rectificationprogress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rectificationprogress_rectification_id"))

    op.drop_table("rectificationprogress")
    with op.batch_alter_table("rectification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rectification_status"))
        batch_op.drop_index(batch_op.f("ix_rectification_review_id"))
        batch_op.drop_index(batch_op.f("ix_rectification_member_id"))
        batch_op.drop_index(batch_op.f("ix_rectification_branch_id"))

    op.drop_table("rectification")
    op.drop_table("revieweroverride")
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_reviewer_id"))
        batch_op.drop_index(batch_op.f("ix_review_member_id"))
        batch_op.drop_index(batch_op.f("ix_review_branch_id"))

    op.drop_table("review")
