"""channel accounts: a member's identity per channel, instead of a Telegram id on the member

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

Each member's Telegram id becomes a "telegram" channel account, with when it was bound and
whether they blocked the bot there; the member's own columns go. Outbox rows name the account
they go to. Writes to channel accounts raise the roster version, as member writes do, so the
identity cache forgets an account bound or let go by any process.

On SQLite the member table is rebuilt to drop its columns, which drops its triggers: they are
made again (the same as 0010's).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TELEGRAM = "telegram"
_SQLITE_TRIGGER = """
CREATE TRIGGER {table}_{event}_raises_roster_version AFTER {event_sql} ON {table}
BEGIN UPDATE rosterversion SET version = version + 1; END
"""
_POSTGRES_TRIGGER = """
CREATE TRIGGER channelaccount_write_raises_roster_version
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON channelaccount
FOR EACH STATEMENT EXECUTE PROCEDURE raise_roster_version()
"""
_EVENTS = ("insert", "update", "delete")

_member = sa.table(
    "member",
    sa.column("id", sa.Integer()),
    sa.column("telegram_user_id", sa.BigInteger()),
    sa.column("bound_at"),
    sa.column("unreachable_since"),
    sa.column("updated_at"),
)
_account = sa.table(
    "channelaccount",
    sa.column("member_id", sa.Integer()),
    sa.column("channel", sa.String()),
    sa.column("external_id", sa.String()),
    sa.column("bound_at"),
    sa.column("unreachable_since"),
)
_outbox = sa.table(
    "outboxmessage",
    sa.column("member_id", sa.Integer()),
    sa.column("channel", sa.String()),
    sa.column("external_id", sa.String()),
    sa.column("status", sa.String()),
    sa.column("error", sa.String()),
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _sqlite_triggers(table: str, *, create: bool) -> None:
    for event in _EVENTS:
        if create:
            op.execute(_SQLITE_TRIGGER.format(table=table, event=event, event_sql=event.upper()))
        else:
            op.execute(f"DROP TRIGGER {table}_{event}_raises_roster_version")


def _telegram_account_of(member_id, column):
    """The member's Telegram account's `column`, as a correlated subquery."""
    return (
        sa.select(column)
        .where(_account.c.member_id == member_id, _account.c.channel == TELEGRAM)
        .scalar_subquery()
    )


def upgrade() -> None:
    op.create_table(
        "channelaccount",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("bound_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("unreachable_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id"),
        sa.UniqueConstraint("member_id", "channel"),
    )
    op.create_index("ix_channelaccount_member_id", "channelaccount", ["member_id"])
    # Accounts bound before bound_at was kept count from the member's last change.
    op.execute(
        _account.insert().from_select(
            ["member_id", "channel", "external_id", "bound_at", "unreachable_since"],
            sa.select(
                _member.c.id,
                sa.literal(TELEGRAM),
                sa.cast(_member.c.telegram_user_id, sa.String(64)),
                sa.func.coalesce(_member.c.bound_at, _member.c.updated_at),
                _member.c.unreachable_since,
            ).where(_member.c.telegram_user_id.is_not(None)),
        )
    )

    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(
            sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    op.execute(
        _outbox.update().values(
            channel=TELEGRAM,
            external_id=_telegram_account_of(_outbox.c.member_id, _account.c.external_id),
        )
    )
    # What the sender would have done with them: nobody to send them to.
    op.execute(
        _outbox.update()
        .where(_outbox.c.external_id.is_(None), _outbox.c.status.in_(["pending", "claimed"]))
        .values(status="skipped", error="not a bound member")
    )
    op.execute(_outbox.update().where(_outbox.c.external_id.is_(None)).values(channel=None))

    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_column("telegram_user_id")
        batch_op.drop_column("unreachable_since")
        batch_op.drop_column("bound_at")

    if _sqlite():
        _sqlite_triggers("member", create=True)
        _sqlite_triggers("channelaccount", create=True)
    else:
        op.execute(_POSTGRES_TRIGGER)


def downgrade() -> None:
    if _sqlite():
        _sqlite_triggers("channelaccount", create=False)
        _sqlite_triggers("member", create=False)
    else:
        op.execute("DROP TRIGGER channelaccount_write_raises_roster_version ON channelaccount")

    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.add_column(sa.Column("telegram_user_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("unreachable_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("bound_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.create_unique_constraint("member_telegram_user_id_key", ["telegram_user_id"])
    if _sqlite():
        _sqlite_triggers("member", create=True)
    # Accounts on other channels have no place to go back to.
    op.execute(
        _member.update().values(
            telegram_user_id=sa.cast(
                _telegram_account_of(_member.c.id, _account.c.external_id), sa.BigInteger()
            ),
            bound_at=_telegram_account_of(_member.c.id, _account.c.bound_at),
            unreachable_since=_telegram_account_of(_member.c.id, _account.c.unreachable_since),
        )
    )

    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.drop_column("external_id")
        batch_op.drop_column("channel")
    op.drop_index("ix_channelaccount_member_id", table_name="channelaccount")
    op.drop_table("channelaccount")
