"""web access: api_tokens (hashed), login_links (one-time), web_keys (the signing key); source_status.duplicates

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-01 14:00:00.000000

The console and HTTP API sign in with tokens kept as SHA-256 hashes; the first start's
one-time admin link is a login_links row; web_keys keeps the generated signing key.
source_status.duplicates counts each source's records received again (/metrics).
"""

from alembic import op
import sqlalchemy as sa

from worker.models.base import Id, UTCDateTime

revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('source_status', schema=None) as batch_op:
        batch_op.add_column(sa.Column('duplicates', sa.BigInteger(), nullable=False, server_default='0'))
    with op.batch_alter_table('source_status', schema=None) as batch_op:
        batch_op.alter_column('duplicates', server_default=None)
    op.create_table(
        'api_tokens',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('scope', sa.String(length=10), nullable=False),
        sa.Column('tenant', sa.String(length=200), nullable=True),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=True),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.Column('last_used_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash')),
    )
    op.create_table(
        'login_links',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('token_id', Id, nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], name=op.f('fk_login_links_token_id_api_tokens'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_links')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_login_links_code_hash')),
    )
    op.create_index(op.f('ix_login_links_token_id'), 'login_links', ['token_id'], unique=False)
    op.create_table(
        'web_keys',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('secret', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_web_keys')),
    )


def downgrade() -> None:
    op.drop_table('web_keys')
    op.drop_index(op.f('ix_login_links_token_id'), table_name='login_links')
    op.drop_table('login_links')
    op.drop_table('api_tokens')
    with op.batch_alter_table('source_status', schema=None) as batch_op:
        batch_op.drop_column('duplicates')
