"""Alembic environment: runs on a connection handed in by Database.migrate, or on its own."""

from alembic import context
from sqlalchemy import create_engine

from storage import models  # noqa: F401  (registers every table on the metadata)
from storage.models import SQLModel

target_metadata = SQLModel.metadata


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as own_connection:
        run(own_connection)
    engine.dispose()
