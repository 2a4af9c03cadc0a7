"""daemons (heartbeat), job_runs.owner, outages: runs whose daemon went away, a database that went away

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 14:00:00.000000

Each daemon has a row whose ``last_seen`` it refreshes (its heartbeat); a running job
run names its daemon in ``owner``, so any daemon can mark the runs of one whose
heartbeat is gone as ``interrupted`` and take over their scheduled tick. ``outages``
records each time a daemon could not reach the database, written once it could again.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import worker.models.base

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

UTC_TS = worker.models.base.UTCDateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'daemons',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', UTC_TS, nullable=False),
        sa.Column('last_seen', UTC_TS, nullable=False),
        sa.Column('stopped_at', UTC_TS, nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_daemons')),
    )
    op.create_table(
        'outages',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('daemon', sa.String(length=64), nullable=False),
        sa.Column('started_at', UTC_TS, nullable=False),
        sa.Column('alerted_at', UTC_TS, nullable=True),
        sa.Column('ended_at', UTC_TS, nullable=False),
        sa.Column('skipped_runs', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('alerts', JSON, nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outages')),
        sa.UniqueConstraint('daemon', 'started_at', name=op.f('uq_outages_daemon_started_at')),
    )
    op.create_index(op.f('ix_outages_ended_at'), 'outages', ['ended_at'], unique=False)
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_job_runs_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_runs_status'))
        batch_op.drop_column('owner')
    op.drop_index(op.f('ix_outages_ended_at'), table_name='outages')
    op.drop_table('outages')
    op.drop_table('daemons')
