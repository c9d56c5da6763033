"""anonymity in batches: comments as rows under random keys, code uses, counted_at

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:50:00
"""

import json
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evaluationround", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("counted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    # Rounds that ended before batches existed counted every ballot as it came.
    op.execute(
        "UPDATE evaluationround SET counted_at = COALESCE(closed_at, closes_at) "
        "WHERE closed_at IS NOT NULL"
    )
    comment = op.create_table(
        "evaluationcomment",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("slot", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["evaluationround.id"]),
        sa.PrimaryKeyConstraint("round_id", "target", "slot"),
        sqlite_with_rowid=False,
    )
    rows = op.get_bind().execute(sa.text("SELECT round_id, target, texts FROM evaluationcomments"))
    op.bulk_insert(
        comment,
        [
            {"round_id": round_id, "target": target, "slot": secrets.token_hex(16), "text": t}
            for round_id, target, texts in rows
            for t in json.loads(texts)
        ],
    )
    op.drop_table("evaluationcomments")
    op.create_table(
        "evaluationcodeuse",
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("evaluationcodeuse")
    op.create_table(
        "evaluationcomments",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("texts", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["evaluationround.id"]),
        sa.PrimaryKeyConstraint("round_id", "target"),
        sqlite_with_rowid=False,
    )
    lists: dict[tuple[int, str], list[str]] = {}
    for round_id, target, text in op.get_bind().execute(
        sa.text("SELECT round_id, target, text FROM evaluationcomment")
    ):
        lists.setdefault((round_id, target), []).append(text)
    op.execute(
        "INSERT INTO evaluationcomments (round_id, target, texts) "
        "SELECT round_id, target, '[]' FROM evaluationtarget"
    )
    for (round_id, target), texts in lists.items():
        op.get_bind().execute(
            sa.text(
                "UPDATE evaluationcomments SET texts = :texts "
                "WHERE round_id = :round_id AND target = :target"
            ),
            {
                "texts": json.dumps(texts, ensure_ascii=False),
                "round_id": round_id,
                "target": target,
            },
        )
    op.drop_table("evaluationcomment")
    with op.batch_alter_table("evaluationround", schema=None) as batch_op:
        batch_op.drop_column("counted_at")
