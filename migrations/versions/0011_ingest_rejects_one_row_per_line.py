"""ingest_rejects: one row per rejected line (unique on source + line_key, not on the raw bytes)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 12:00:00.000000

Until now a line whose bytes had been rejected before (``"just a string"`` many times) had
no row of its own: ingest_rejects was unique on (source, sha256 of the line). ``line_key``
is the sha256 of the line's location, position and bytes (``reject_line_key``): each
rejected line keeps its own position and reason, and a line read twice still has one row.
Existing rows get their key here.
"""
import hashlib

from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def reject_line_key(location: str, position: int, raw_sha256: str) -> str:
    """As ``worker.models.events.reject_line_key`` is at this revision (copied: a migration stands alone)."""
    return hashlib.sha256(f"{location[-1000:]}\n{position}\n{raw_sha256}".encode("utf-8", "surrogatepass")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('ingest_rejects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('line_key', sa.String(length=64), nullable=True))
    conn = op.get_bind()
    rejects = sa.table('ingest_rejects', sa.column('id', sa.BigInteger), sa.column('location', sa.String),
                       sa.column('position', sa.BigInteger), sa.column('raw_sha256', sa.String),
                       sa.column('line_key', sa.String))
    rows = conn.execute(sa.select(rejects.c.id, rejects.c.location, rejects.c.position, rejects.c.raw_sha256)).all()
    if rows:
        conn.execute(sa.update(rejects).where(rejects.c.id == sa.bindparam('rid')).values(
            line_key=sa.bindparam('key')), [{'rid': r.id, 'key': reject_line_key(r.location, r.position, r.raw_sha256)}
                                            for r in rows])
    with op.batch_alter_table('ingest_rejects', schema=None) as batch_op:
        batch_op.alter_column('line_key', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_ingest_rejects_source_raw_sha256'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_ingest_rejects_source_line_key'), ['source', 'line_key'])


def downgrade() -> None:
    # Identical lines collapse back to one row per (source, bytes): keep the first of each.
    op.execute("DELETE FROM ingest_rejects WHERE id NOT IN "
               "(SELECT MIN(id) FROM ingest_rejects GROUP BY source, raw_sha256)")
    with op.batch_alter_table('ingest_rejects', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_ingest_rejects_source_line_key'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_ingest_rejects_source_raw_sha256'), ['source', 'raw_sha256'])
        batch_op.drop_column('line_key')
