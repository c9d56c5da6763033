"""broadcasts in batches: a reminder to everyone is written into the outbox batch by batch

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-02

A planned reminder remembers how far its recipients have been written (in sending order:
priority, then member id) and whether more remain. Reminders planned before are complete.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plannedreminder") as table:
        table.add_column(
            sa.Column("expanding", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        table.add_column(
            sa.Column("written_priority", sa.Integer(), nullable=False, server_default="0")
        )
        table.add_column(
            sa.Column("written_member_id", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("plannedreminder") as table:
        table.drop_column("written_member_id")
        table.drop_column("written_priority")
        table.drop_column("expanding")
