"""summaries: daily_summaries, daily_rollups, monthly_summaries, summary_dirty_days, summary_days, summary_corrections

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:51:42.563778
"""
from alembic import op
import sqlalchemy as sa
import worker.models.base
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('daily_summaries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('tenant_id', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('computed_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('errors', sa.BigInteger(), nullable=False),
    sa.Column('timeouts', sa.BigInteger(), nullable=False),
    sa.Column('prompt_tokens', sa.BigInteger(), nullable=False),
    sa.Column('completion_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_tokens', sa.BigInteger(), nullable=False),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
    sa.Column('total_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=False),
    sa.Column('unpriced_requests', sa.BigInteger(), nullable=False),
    sa.Column('latency_count', sa.BigInteger(), nullable=False),
    sa.Column('latency_sum', sa.BigInteger(), nullable=False),
    sa.Column('latency_min', sa.Integer(), nullable=True),
    sa.Column('latency_max', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_daily_summaries'))
    )
    with op.batch_alter_table('daily_summaries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_daily_summaries_day'), ['day'], unique=False)

    op.create_table('daily_rollups',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('tenant_id', sa.String(length=200), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('computed_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('errors', sa.BigInteger(), nullable=False),
    sa.Column('timeouts', sa.BigInteger(), nullable=False),
    sa.Column('prompt_tokens', sa.BigInteger(), nullable=False),
    sa.Column('completion_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_tokens', sa.BigInteger(), nullable=False),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
    sa.Column('total_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=False),
    sa.Column('unpriced_requests', sa.BigInteger(), nullable=False),
    sa.Column('latency_count', sa.BigInteger(), nullable=False),
    sa.Column('latency_sum', sa.BigInteger(), nullable=False),
    sa.Column('latency_min', sa.Integer(), nullable=True),
    sa.Column('latency_max', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_daily_rollups'))
    )
    with op.batch_alter_table('daily_rollups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_daily_rollups_day'), ['day'], unique=False)

    op.create_table('monthly_summaries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('tenant_id', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('computed_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('errors', sa.BigInteger(), nullable=False),
    sa.Column('timeouts', sa.BigInteger(), nullable=False),
    sa.Column('prompt_tokens', sa.BigInteger(), nullable=False),
    sa.Column('completion_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_tokens', sa.BigInteger(), nullable=False),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
    sa.Column('total_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=False),
    sa.Column('unpriced_requests', sa.BigInteger(), nullable=False),
    sa.Column('latency_count', sa.BigInteger(), nullable=False),
    sa.Column('latency_sum', sa.BigInteger(), nullable=False),
    sa.Column('latency_min', sa.Integer(), nullable=True),
    sa.Column('latency_max', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monthly_summaries'))
    )
    with op.batch_alter_table('monthly_summaries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monthly_summaries_month'), ['month'], unique=False)

    op.create_table('summary_corrections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('detected_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('before', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('after', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('changed', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_summary_corrections'))
    )
    with op.batch_alter_table('summary_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_summary_corrections_day'), ['day'], unique=False)

    op.create_table('summary_dirty_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('marked_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_summary_dirty_days'))
    )


    op.create_table('summary_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('computed_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('final', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_summary_days'))
    )
    _mark_existing_days_dirty()


def _mark_existing_days_dirty() -> None:
    """A ledger that predates summaries: mark every day that has events, so the
    summaries job builds them. The time zone is a setting the migration cannot
    see, so each UTC date marks the day before and after too (recomputing an
    empty day is harmless)."""
    from datetime import date, timedelta

    from worker import clock

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        query = "SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM usage_events"
    else:
        query = "SELECT DISTINCT date(occurred_at) FROM usage_events"
    days = set()
    for (value,) in bind.execute(sa.text(query)):
        day = value if isinstance(value, date) else date.fromisoformat(value)
        days.update({day - timedelta(days=1), day, day + timedelta(days=1)})
    if days:
        now = clock.now()
        table = sa.table("summary_dirty_days", sa.column("day", sa.Date), sa.column("generation", sa.BigInteger),
                         sa.column("marked_at", worker.models.base.UTCDateTime()))
        op.bulk_insert(table, [{"day": d, "generation": 1, "marked_at": now} for d in sorted(days)])


def downgrade() -> None:
    op.drop_table('daily_rollups')
    op.drop_table('summary_days')
    op.drop_table('summary_dirty_days')
    with op.batch_alter_table('summary_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_summary_corrections_day'))

    op.drop_table('summary_corrections')
    with op.batch_alter_table('monthly_summaries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monthly_summaries_month'))

    op.drop_table('monthly_summaries')
    with op.batch_alter_table('daily_summaries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_daily_summaries_day'))

    op.drop_table('daily_summaries')
