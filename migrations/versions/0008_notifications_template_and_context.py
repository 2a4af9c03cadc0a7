"""notifications: template and context (alert messages rendered at send time)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                                        'postgresql'), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('context')
        batch_op.drop_column('template')
