"""The Alembic migrations and the SQLModel models describe the same schema."""

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from storage.models import SQLModel


async def test_migrations_match_the_models(database):
    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    async with database.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == []


async def test_migrating_twice_is_harmless(database):
    await database.migrate()
    async with database.engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: sync.dialect.get_table_names(sync))
    assert {"member", "branch", "invite", "outsider", "alembic_version"} <= set(tables)


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(database):
    if not database.is_sqlite:
        return
    async with database.engine.connect() as connection:
        journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
        keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    assert (journal, keys) == ("wal", 1)


_BEFORE_ACCOUNTS = [
    "INSERT INTO organisation (id, name, timezone, created_at) VALUES (1, '示范局', 'UTC', :t)",
    "INSERT INTO branch (id, organisation_id, name, is_organ) VALUES (1, 1, '一支部', false)",
    "INSERT INTO member (id, organisation_id, name, branch_id, category, roles, "
    "telegram_user_id, active, reminders_muted, unreachable_since, bound_at, created_at, "
    "updated_at) VALUES "
    "(1, 1, '郑强', 1, 'ordinary', 'member', 4200000001, true, false, :t, :t, :t, :t), "
    "(2, 1, '林娜', 1, 'ordinary', 'member', NULL, true, false, NULL, NULL, :t, :t)",
    "INSERT INTO outboxmessage (id, organisation_id, reminder, subject, member_id, priority, "
    "send_after, expires_at, status, attempts) VALUES "
    "(1, 1, 'phase_start', 'phase:1', 1, 1, :t, :t, 'pending', 0), "
    "(2, 1, 'phase_start', 'phase:1', 2, 1, :t, :t, 'pending', 0)",
]


async def _rows(database, query: str) -> list[tuple]:
    async with database.engine.connect() as connection:
        return [tuple(row) for row in (await connection.exec_driver_sql(query)).all()]


async def _raises_roster_version(database, statement: str) -> bool:
    """Whether the statement raises the roster version (it is rolled back)."""
    async with database.engine.connect() as connection:
        read = "SELECT version FROM rosterversion"
        before = (await connection.exec_driver_sql(read)).scalar()
        await connection.exec_driver_sql(statement)
        after = (await connection.exec_driver_sql(read)).scalar()
        await connection.rollback()
    return after > before


async def test_channel_accounts_migration_copies_telegram_ids_and_restores_them(database):
    """0011 turns each member's Telegram id into a "telegram" account (bound and blocked
    times too) and names it on their outbox rows; the downgrade puts the ids back."""
    when = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    await database.downgrade("0010")
    async with database.engine.begin() as connection:
        for statement in _BEFORE_ACCOUNTS:
            await connection.execute(text(statement), {"t": when})
    await database.migrate()
    accounts = await _rows(
        database,
        "SELECT member_id, channel, external_id, bound_at IS NOT NULL, "
        "unreachable_since IS NOT NULL FROM channelaccount",
    )
    assert accounts == [(1, "telegram", "4200000001", True, True)]
    queued = await _rows(
        database, "SELECT member_id, channel, external_id, status FROM outboxmessage ORDER BY id"
    )
    assert queued == [
        (1, "telegram", "4200000001", "pending"),
        (2, None, None, "skipped"),  # nobody to send it to, as the sender would have found
    ]
    assert await _raises_roster_version(
        database, "UPDATE channelaccount SET unreachable_since = NULL"
    )

    await database.downgrade("0010")
    members = await _rows(
        database,
        "SELECT id, telegram_user_id, bound_at IS NOT NULL, unreachable_since IS NOT NULL "
        "FROM member ORDER BY id",
    )
    assert members == [(1, 4200000001, True, True), (2, None, False, False)]
    # The member triggers survived the table's rebuild on SQLite.
    assert await _raises_roster_version(database, "UPDATE member SET locale = 'en'")
    await database.migrate()
