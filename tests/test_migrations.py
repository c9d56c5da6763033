"""The Alembic migrations and the SQLModel models describe the same schema."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
