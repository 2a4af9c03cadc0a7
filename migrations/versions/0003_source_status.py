"""source_status: per-source freshness (last ingest, newest event)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:53:42.423973
"""
from alembic import op
import sqlalchemy as sa
import worker.models.base


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('source_status',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('last_ingest_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('newest_event_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('source', name=op.f('pk_source_status'))
    )


def downgrade() -> None:
    op.drop_table('source_status')
