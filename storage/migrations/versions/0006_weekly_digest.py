"""weekly digest settings of a campaign

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digestreceipt",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("member_id"),
    )
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(sa.Column("digest_weekday", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("digest_when_quiet", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Campaigns loaded before this get the default digest day, Monday. (No server default:
    # NULL, "no digest", must stay storable.)
    op.execute("UPDATE campaign SET digest_weekday = 0")


def downgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("digest_when_quiet")
        batch.drop_column("digest_weekday")
    op.drop_table("digestreceipt")
