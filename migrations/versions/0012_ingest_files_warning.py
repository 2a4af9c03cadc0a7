"""ingest_files.warning: why a file was read only in part (a gzip stream cut short)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 13:00:00.000000

``status`` lists each source's files with a warning; the ingest output already says it.
"""

from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingest_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warning', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ingest_files', schema=None) as batch_op:
        batch_op.drop_column('warning')
