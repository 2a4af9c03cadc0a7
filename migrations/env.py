"""Alembic environment: runs on the connection tokentally hands it (worker.db.migrate)."""

from alembic import context
from sqlalchemy import create_engine

from worker.ledger.partitions import include_name
from worker.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.attributes["url"])
        with engine.begin() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,  # the ledger's monthly partitions are not tables of the models
    )
    with context.begin_transaction():
        context.run_migrations()


run()
