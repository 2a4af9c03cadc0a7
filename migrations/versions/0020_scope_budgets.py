"""budgets on scopes: scope_budgets (set by the CLI), scope_windows, limit_dirty_scopes

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-01 16:40:00.000000

Budgets on tenants, members, services, models, projects and keys. ``scope_budgets`` holds
the budgets ``tokentally budgets set`` stores; ``scope_windows`` each scope's day / week /
month / rolling window (unique by scope, kind and start; a partial index finds the windows
the budgets job has still to judge); ingest marks the scopes it wrote per local day in
``limit_dirty_scopes`` and the limits job refreshes only those.
"""

from alembic import op
import sqlalchemy as sa
import worker.models.base
from sqlalchemy.dialects import postgresql

revision = '0020'
down_revision = '0015'
branch_labels = None
depends_on = None

MONEY = worker.models.base.MoneyType(precision=20, scale=10)
WHEN = worker.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('scope_budgets',
    sa.Column('scope', sa.String(length=400), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('daily_tokens', sa.BigInteger(), nullable=True),
    sa.Column('daily_cost_usd', MONEY, nullable=True),
    sa.Column('weekly_tokens', sa.BigInteger(), nullable=True),
    sa.Column('weekly_cost_usd', MONEY, nullable=True),
    sa.Column('monthly_tokens', sa.BigInteger(), nullable=True),
    sa.Column('monthly_cost_usd', MONEY, nullable=True),
    sa.Column('every_days', sa.Integer(), nullable=True),
    sa.Column('start', sa.Date(), nullable=True),
    sa.Column('tokens', sa.BigInteger(), nullable=True),
    sa.Column('cost_usd', MONEY, nullable=True),
    sa.Column('warn_at', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
              nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('updated_at', WHEN, nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('scope', name=op.f('pk_scope_budgets'))
    )
    op.create_table('scope_windows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('scope', sa.String(length=400), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('window_start', WHEN, nullable=False),
    sa.Column('reset_at', WHEN, nullable=False),
    sa.Column('period', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=True),
    sa.Column('limit_tokens', sa.BigInteger(), nullable=True),
    sa.Column('limit_cost_usd', MONEY, nullable=True),
    sa.Column('ledger_requests', sa.BigInteger(), nullable=False),
    sa.Column('ledger_tokens', sa.BigInteger(), nullable=False),
    sa.Column('ledger_cost_usd', MONEY, nullable=False),
    sa.Column('live_requests', sa.BigInteger(), nullable=False),
    sa.Column('live_tokens', sa.BigInteger(), nullable=False),
    sa.Column('live_cost_usd', MONEY, nullable=False),
    sa.Column('used_requests', sa.BigInteger(), nullable=False),
    sa.Column('used_tokens', sa.BigInteger(), nullable=False),
    sa.Column('used_cost_usd', MONEY, nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('warned_level', sa.Float(), nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('updated_at', WHEN, nullable=False),
    sa.Column('closed_at', WHEN, nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('evaluated_revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scope_windows')),
    sa.UniqueConstraint('scope', 'kind', 'window_start', name=op.f('uq_scope_windows_scope_kind_window_start'))
    )
    op.create_index(op.f('ix_scope_windows_reset_at'), 'scope_windows', ['reset_at'], unique=False)
    op.create_index('ix_scope_windows_unevaluated', 'scope_windows', ['kind'], unique=False,
                    postgresql_where=sa.text('revision <> evaluated_revision'),
                    sqlite_where=sa.text('revision <> evaluated_revision'))
    op.create_table('limit_dirty_scopes',
    sa.Column('scope', sa.String(length=400), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('marked_at', WHEN, nullable=False),
    sa.PrimaryKeyConstraint('scope', 'day', name=op.f('pk_limit_dirty_scopes'))
    )
    op.create_index(op.f('ix_limit_dirty_scopes_day'), 'limit_dirty_scopes', ['day'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_limit_dirty_scopes_day'), table_name='limit_dirty_scopes')
    op.drop_table('limit_dirty_scopes')
    op.drop_index('ix_scope_windows_unevaluated', table_name='scope_windows')
    op.drop_index(op.f('ix_scope_windows_reset_at'), table_name='scope_windows')
    op.drop_table('scope_windows')
    op.drop_table('scope_budgets')
