"""limit windows, system state and the account_limits view

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:15:24.655828
"""
from alembic import op
import sqlalchemy as sa
import worker.models.base
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('limit_windows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('window_start', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reset_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('tier', sa.String(length=100), nullable=True),
    sa.Column('action', sa.String(length=10), nullable=True),
    sa.Column('limit_requests', sa.BigInteger(), nullable=True),
    sa.Column('limit_tokens', sa.BigInteger(), nullable=True),
    sa.Column('limit_cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=True),
    sa.Column('ledger_requests', sa.BigInteger(), nullable=False),
    sa.Column('ledger_tokens', sa.BigInteger(), nullable=False),
    sa.Column('ledger_cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=False),
    sa.Column('live_requests', sa.BigInteger(), nullable=False),
    sa.Column('live_tokens', sa.BigInteger(), nullable=False),
    sa.Column('live_cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=False),
    sa.Column('used_requests', sa.BigInteger(), nullable=False),
    sa.Column('used_tokens', sa.BigInteger(), nullable=False),
    sa.Column('used_cost_usd', worker.models.base.MoneyType(precision=20, scale=10), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('blocked_until', worker.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('warned_level', sa.Float(), nullable=True),
    sa.Column('projected_at', worker.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', worker.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_limit_windows')),
    sa.UniqueConstraint('account_id', 'kind', 'window_start', name=op.f('uq_limit_windows_account_id_kind_window_start'))
    )
    with op.batch_alter_table('limit_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_limit_windows_kind_closed_at'), ['kind', 'closed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_limit_windows_reset_at'), ['reset_at'], unique=False)

    op.create_table('system_state',
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('period', sa.String(length=40), nullable=True),
    sa.Column('changed_at', worker.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_by', sa.String(length=200), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_system_state'))
    )


    op.execute(account_limits_view(op.get_bind().dialect.name))


def account_limits_view(dialect: str) -> str:
    """The windows in force now, one row per account and window kind, for apps in any language.

    ``can_call`` is false when the kill switch is on, the window is blocked, its request
    limit is used up, or a hard (block) budget is used up. NULL limits and remainders mean
    "not limited". No row for a kind: nothing was used in the window in force yet.
    Costs are exact: numeric on PostgreSQL, decimal text on SQLite.
    """
    if dialect == "postgresql":
        now, greatest = "now()", "GREATEST"

        def money(col: str) -> str:
            return col
    else:
        now, greatest = "strftime('%Y-%m-%d %H:%M:%f', 'now')", "MAX"

        def money(col: str) -> str:  # SQLite stores 1e-10 USD units as integers
            return f"CASE WHEN {col} IS NULL THEN NULL ELSE printf('%d.%010d', {col} / 10000000000, {col} % 10000000000) END"

    def remaining(used: str, limit: str) -> str:
        return f"CASE WHEN w.{limit} IS NULL THEN NULL ELSE {greatest}(w.{limit} - w.{used}, 0) END"

    kill = "COALESCE((SELECT s.active FROM system_state s WHERE s.key = 'kill_switch'), FALSE)"
    over_budget = ("(w.action = 'block' AND ((w.limit_tokens IS NOT NULL AND w.used_tokens >= w.limit_tokens)"
                   " OR (w.limit_cost_usd IS NOT NULL AND w.used_cost_usd >= w.limit_cost_usd)))")
    return f"""CREATE VIEW account_limits AS
SELECT w.account_id, w.tier, w.action, w.kind, w.period, w.window_start, w.reset_at,
       w.used_requests, w.limit_requests, {remaining('used_requests', 'limit_requests')} AS remaining_requests,
       w.used_tokens, w.limit_tokens, {remaining('used_tokens', 'limit_tokens')} AS remaining_tokens,
       {money('w.used_cost_usd')} AS used_cost_usd, {money('w.limit_cost_usd')} AS limit_cost_usd,
       {money(remaining('used_cost_usd', 'limit_cost_usd'))} AS remaining_cost_usd,
       w.state, w.blocked_until, {kill} AS kill_switch,
       (NOT {kill} AND w.state <> 'blocked'
        AND (w.limit_requests IS NULL OR w.used_requests < w.limit_requests)
        AND NOT {over_budget}) AS can_call
FROM limit_windows w
WHERE w.window_start <= {now} AND w.reset_at > {now}"""


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS account_limits")
    op.drop_table('system_state')
    with op.batch_alter_table('limit_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_limit_windows_reset_at'))
        batch_op.drop_index(batch_op.f('ix_limit_windows_kind_closed_at'))

    op.drop_table('limit_windows')
