"""budget_pending_days: closed local days that got new usage, for the budgets job to evaluate

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import worker.models.base

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('budget_pending_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('marked_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_budget_pending_days'))
    )


def downgrade() -> None:
    op.drop_table('budget_pending_days')
