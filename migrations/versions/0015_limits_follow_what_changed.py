"""limits follow what changed: limit_dirty_accounts, and limit_windows.revision / evaluated_revision

Revision ID: 0015
Revises: 0019
Create Date: 2026-12-01 14:00:00.000000

Ingest marks the accounts it wrote per local day (``limit_dirty_accounts``); the limits
job refreshes only those. A window's ``revision`` goes up when its usage or limits
change; the budgets job judges the windows whose ``evaluated_revision`` is behind
(partial index ``ix_limit_windows_unevaluated``); rollover finds the open windows
by ``ix_limit_windows_open_reset_at``. Existing windows start judged
(revision 1, evaluated 1): the budgets job had judged every one of them.
"""

from alembic import op
import sqlalchemy as sa
import worker.models.base

revision = '0015'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('limit_dirty_accounts',
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('marked_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'day', name=op.f('pk_limit_dirty_accounts'))
    )
    op.create_index(op.f('ix_limit_dirty_accounts_day'), 'limit_dirty_accounts', ['day'], unique=False)
    # plain ADD COLUMN (no table rebuild: the account_limits view reads limit_windows)
    op.add_column('limit_windows', sa.Column('revision', sa.Integer(), nullable=False, server_default='1'))
    op.add_column('limit_windows', sa.Column('evaluated_revision', sa.Integer(), nullable=False,
                                             server_default='1'))
    op.create_index('ix_limit_windows_open_reset_at', 'limit_windows', ['reset_at'], unique=False,
                    postgresql_where=sa.text('closed_at IS NULL'), sqlite_where=sa.text('closed_at IS NULL'))
    op.create_index('ix_limit_windows_unevaluated', 'limit_windows', ['kind'], unique=False,
                    postgresql_where=sa.text('revision <> evaluated_revision'),
                    sqlite_where=sa.text('revision <> evaluated_revision'))


def downgrade() -> None:
    op.drop_index('ix_limit_windows_unevaluated', table_name='limit_windows')
    op.drop_index('ix_limit_windows_open_reset_at', table_name='limit_windows')
    op.drop_column('limit_windows', 'evaluated_revision')
    op.drop_column('limit_windows', 'revision')
    op.drop_index(op.f('ix_limit_dirty_accounts_day'), table_name='limit_dirty_accounts')
    op.drop_table('limit_dirty_accounts')
