"""usage_events partitioned by month on PostgreSQL; usage_event_ids; ledger_exports

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-01 14:10:00.000000

PostgreSQL: the plain table is renamed aside, a partitioned ``usage_events`` (range of
``occurred_at``, one partition per UTC month, see ``worker.ledger.partitions``) is created
with the same columns, a partition is made for every month the ledger holds plus the current
and next month, the rows are copied over and the old table dropped. The id sequence is kept.
A partitioned table can only be unique on keys holding the partition key, so the event id's
uniqueness moves to ``usage_event_ids`` (both databases, filled from the ledger).

SQLite: ``usage_events.event_id`` loses its unique constraint for a plain index, and
``usage_event_ids`` is filled the same way.
"""

from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa

import worker.models.base
from worker.ledger import partitions

revision = '0016'
down_revision = '0012'
branch_labels = None
depends_on = None

_INDEXES = (("ix_usage_events_account_id_occurred_at", "(account_id, occurred_at)"),
            ("ix_usage_events_occurred_at", "(occurred_at)"), ("ix_usage_events_event_id", "(event_id)"))


def _common() -> None:
    op.create_table('usage_event_ids',
                    sa.Column('event_id', sa.String(length=200), nullable=False),
                    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_usage_event_ids')))
    op.create_table('ledger_exports',
                    sa.Column('month', sa.Date(), nullable=False),
                    sa.Column('first_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
                    sa.Column('end_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
                    sa.Column('path', sa.String(length=1000), nullable=False),
                    sa.Column('sha256', sa.String(length=64), nullable=False),
                    sa.Column('rows', sa.BigInteger(), nullable=False),
                    sa.Column('cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=False),
                    sa.Column('exported_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('month', name=op.f('pk_ledger_exports')))


def upgrade() -> None:
    _common()
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table('usage_events', schema=None) as batch_op:
            batch_op.drop_constraint('uq_usage_events_event_id', type_='unique')
            batch_op.create_index('ix_usage_events_event_id', ['event_id'], unique=False)
        op.execute("INSERT INTO usage_event_ids (event_id) SELECT event_id FROM usage_events")
        return
    bind = op.get_bind()
    op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE usage_events RENAME TO usage_events_plain")
    op.execute("ALTER TABLE usage_events_plain RENAME CONSTRAINT pk_usage_events TO pk_usage_events_plain")
    op.execute("ALTER TABLE usage_events_plain DROP CONSTRAINT uq_usage_events_event_id")
    for name, _ in _INDEXES[:2]:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_plain")
    op.execute("CREATE TABLE usage_events (LIKE usage_events_plain INCLUDING DEFAULTS) "
               "PARTITION BY RANGE (occurred_at)")
    op.execute("ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events PRIMARY KEY (id, occurred_at)")
    for name, columns in _INDEXES:
        op.execute(f"CREATE INDEX {name} ON usage_events {columns}")
    op.execute(f"CREATE TABLE {partitions.DEFAULT} PARTITION OF usage_events DEFAULT")
    now = partitions.month_of(datetime.now(UTC))
    held = bind.execute(sa.text(
        "SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date FROM usage_events_plain "
        "WHERE occurred_at >= :floor"), {"floor": datetime.combine(partitions.FLOOR, datetime.min.time(), UTC)})
    months = {m for (m,) in held} | {now, partitions.next_month(now)}
    for month in sorted(months):
        op.execute(partitions.create_ddl(month))
    columns = ", ".join(f'"{c}"' for c in bind.execute(sa.text(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'usage_events_plain' "
        "ORDER BY ordinal_position")).scalars())
    op.execute(f"INSERT INTO usage_events ({columns}) SELECT {columns} FROM usage_events_plain")
    op.execute("INSERT INTO usage_event_ids (event_id) SELECT event_id FROM usage_events_plain")
    op.execute("DROP TABLE usage_events_plain")
    op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id")


def downgrade() -> None:
    """Back to one plain table (every partition's rows, the default one's too)."""
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table('usage_events', schema=None) as batch_op:
            batch_op.drop_index('ix_usage_events_event_id')
            batch_op.create_unique_constraint('uq_usage_events_event_id', ['event_id'])
    else:
        op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY NONE")
        op.execute("ALTER TABLE usage_events RENAME TO usage_events_parted")
        op.execute("ALTER TABLE usage_events_parted RENAME CONSTRAINT pk_usage_events TO pk_usage_events_parted")
        for name, _ in _INDEXES:
            op.execute(f"ALTER INDEX {name} RENAME TO {name}_parted")
        op.execute("CREATE TABLE usage_events (LIKE usage_events_parted INCLUDING DEFAULTS)")
        op.execute("INSERT INTO usage_events SELECT * FROM usage_events_parted")
        op.execute("DROP TABLE usage_events_parted")
        op.execute("ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events PRIMARY KEY (id)")
        op.execute("ALTER TABLE usage_events ADD CONSTRAINT uq_usage_events_event_id UNIQUE (event_id)")
        for name, columns in _INDEXES[:2]:
            op.execute(f"CREATE INDEX {name} ON usage_events {columns}")
        op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id")
    op.drop_table('ledger_exports')
    op.drop_table('usage_event_ids')
