"""call attempts and provider reconciliations

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:42:46.231582
"""
from alembic import op
import sqlalchemy as sa
import worker.models.base
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

def upgrade() -> None:

    op.create_table('call_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('attempt_id', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('started_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=200), nullable=True),
    sa.Column('service', sa.String(length=200), nullable=True),
    sa.Column('provider', sa.String(length=100), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('estimated_tokens', sa.BigInteger(), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('flagged_at', worker.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('matched_at', worker.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('actual_tokens', sa.BigInteger(), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_attempts')),
    sa.UniqueConstraint('attempt_id', name=op.f('uq_call_attempts_attempt_id'))
    )
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_attempts_state_started_at'), ['state', 'started_at'], unique=False)

    op.create_table('reconciliations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('provider_requests', sa.BigInteger(), nullable=True),
    sa.Column('provider_input_tokens', sa.BigInteger(), nullable=True),
    sa.Column('provider_output_tokens', sa.BigInteger(), nullable=True),
    sa.Column('provider_cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=True),
    sa.Column('ledger_requests', sa.BigInteger(), nullable=False),
    sa.Column('ledger_input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('ledger_output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('ledger_cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('checked_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliations')),
    sa.UniqueConstraint('provider', 'day', 'model', name=op.f('uq_reconciliations_provider_day_model'))
    )
    with op.batch_alter_table('reconciliations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliations_day'), ['day'], unique=False)

def downgrade() -> None:

    with op.batch_alter_table('reconciliations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliations_day'))

    op.drop_table('reconciliations')
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_attempts_state_started_at'))

    op.drop_table('call_attempts')

