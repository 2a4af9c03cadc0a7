"""ledger foundation: usage_events, ingest_rejects, ingest_files, source_cursors, accounts, job_runs

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 10:43:17.254694
"""
from alembic import op
import sqlalchemy as sa
import worker.models.base
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=200), nullable=True),
    sa.Column('tier', sa.String(length=100), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('created_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_accounts'))
    )
    op.create_table('ingest_files',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('tail_len', sa.Integer(), nullable=False),
    sa.Column('tail_hash', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_files')),
    sa.UniqueConstraint('source', 'fingerprint', name=op.f('uq_ingest_files_source_fingerprint'))
    )
    op.create_table('ingest_rejects',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('location', sa.String(length=1000), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('header', sa.LargeBinary(), nullable=True),
    sa.Column('raw_sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('resolved_at', worker.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('event_id', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_rejects')),
    sa.UniqueConstraint('source', 'raw_sha256', name=op.f('uq_ingest_rejects_source_raw_sha256'))
    )
    with op.batch_alter_table('ingest_rejects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_rejects_status'), ['status'], unique=False)

    op.create_table('job_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job', sa.String(length=100), nullable=False),
    sa.Column('scheduled_for', worker.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('started_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', worker.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('stats', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs')),
    sa.UniqueConstraint('job', 'scheduled_for', name=op.f('uq_job_runs_job_scheduled_for'))
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_runs_job_started_at'), ['job', 'started_at'], unique=False)

    op.create_table('source_cursors',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('cursor_value', sa.String(length=200), nullable=False),
    sa.Column('cursor_type', sa.String(length=16), nullable=False),
    sa.Column('rows_read', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', name=op.f('pk_source_cursors'))
    )
    op.create_table('usage_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('occurred_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ingested_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=200), nullable=True),
    sa.Column('service', sa.String(length=200), nullable=True),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('model_used', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('prompt_tokens', sa.BigInteger(), nullable=False),
    sa.Column('completion_tokens', sa.BigInteger(), nullable=False),
    sa.Column('total_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_tokens', sa.BigInteger(), nullable=False),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=True),
    sa.Column('cost_computed', worker.models.base.MoneyType(precision=20, scale=10), nullable=True),
    sa.Column('cost_reported', worker.models.base.MoneyType(precision=20, scale=10), nullable=True),
    sa.Column('cost_status', sa.String(length=12), nullable=False),
    sa.Column('price_source', sa.String(length=300), nullable=True),
    sa.Column('price_effective_from', sa.Date(), nullable=True),
    sa.Column('unattributed', sa.Boolean(), nullable=False),
    sa.Column('model_defaulted', sa.Boolean(), nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_usage_events_event_id'))
    )
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_events_account_id_occurred_at'), ['account_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_usage_events_occurred_at'), ['occurred_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_events_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_usage_events_account_id_occurred_at'))

    op.drop_table('usage_events')
    op.drop_table('source_cursors')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_runs_job_started_at'))

    op.drop_table('job_runs')
    with op.batch_alter_table('ingest_rejects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_rejects_status'))

    op.drop_table('ingest_rejects')
    op.drop_table('ingest_files')
    op.drop_table('accounts')
