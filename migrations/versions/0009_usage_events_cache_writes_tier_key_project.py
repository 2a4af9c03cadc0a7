"""usage_events: cache writes (5m + 1h, and of those 1h), service tier, API key and project

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 11:30:00.000000

The token columns get a server default of 0 so that existing rows (booked before cache
writes were counted) read as "none written"; the writer always gives every column. The
default stays (in the model too): dropping it would make SQLite rebuild the whole ledger.
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cache_write_tokens', sa.BigInteger(), server_default=sa.text('0'),
                                      nullable=False))
        batch_op.add_column(sa.Column('cache_write_1h_tokens', sa.BigInteger(), server_default=sa.text('0'),
                                      nullable=False))
        batch_op.add_column(sa.Column('service_tier', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('api_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('project_id', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_column('project_id')
        batch_op.drop_column('api_key')
        batch_op.drop_column('service_tier')
        batch_op.drop_column('cache_write_1h_tokens')
        batch_op.drop_column('cache_write_tokens')
