"""anonymous mass evaluation

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:58:09.745549
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evaluationround",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("quarter", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("opens_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closes_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("settings", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "quarter"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("evaluationround", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evaluationround_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "evaluationcode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("rater_group", sa.String(length=20), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["evaluationround.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    with op.batch_alter_table("evaluationcode", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluationcode_round_id"), ["round_id"], unique=False)

    op.create_table(
        "evaluationcomments",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("texts", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["evaluationround.id"],
        ),
        sa.PrimaryKeyConstraint("round_id", "target"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "evaluationparticipation",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("rater", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["evaluationround.id"],
        ),
        sa.PrimaryKeyConstraint("round_id", "rater", "target"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "evaluationtally",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("item", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["evaluationround.id"],
        ),
        sa.PrimaryKeyConstraint("round_id", "target", "item", "level"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "evaluationtarget",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("leadership", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["evaluationround.id"],
        ),
        sa.PrimaryKeyConstraint("round_id", "target"),
    )


def downgrade() -> None:
    op.drop_table("evaluationtarget")
    op.drop_table("evaluationtally")
    op.drop_table("evaluationparticipation")
    op.drop_table("evaluationcomments")
    with op.batch_alter_table("evaluationcode", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluationcode_round_id"))

    op.drop_table("evaluationcode")
    with op.batch_alter_table("evaluationround", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluationround_organisation_id"))

    op.drop_table("evaluationround")
