"""ingest_leases: which process reads a file or table source now (replicas share the files)

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-01 14:30:00.000000
"""

from alembic import op
import sqlalchemy as sa

import worker.models.base

revision = '0019'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_leases',
                    sa.Column('source', sa.String(length=100), nullable=False),
                    sa.Column('key', sa.String(length=1000), nullable=False),
                    sa.Column('owner', sa.String(length=200), nullable=False),
                    sa.Column('expires_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('source', 'key', name=op.f('pk_ingest_leases')))


def downgrade() -> None:
    op.drop_table('ingest_leases')
