"""Which rows a tenant may see, as SQL conditions the views add to their queries.

A tenant viewer sees the accounts the accounts table gives its tenant, and the accounts
whose usage this month or last carried its tenant id (the monthly summaries' grain keeps
both: a row per account, tenant and month, however many days), so an account that was never imported still counts as the tenant's once it is
used under it. Alerts: the tenant's own (scope ``tenant``) and its accounts'. Reports:
the versions archived for that tenant.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Connection, and_, or_, select, union

from worker import clock
from worker.clock import month_start
from worker.models import Account, Alert, MonthlySummary
from worker.settings import Settings


def tenant_accounts(settings: Settings, tenant: str, today: date | None = None):
    """A subquery of the account ids that belong to ``tenant``."""
    today = today or clock.now().astimezone(settings.tz).date()
    since = month_start(month_start(today) - timedelta(days=1))  # the start of last month
    return union(select(Account.account_id).where(Account.tenant_id == tenant),
                 select(MonthlySummary.account_id).where(MonthlySummary.tenant_id == tenant,
                                                         MonthlySummary.month >= since)).subquery()


def account_visible(conn: Connection, settings: Settings, tenant: str | None, account_id: str) -> bool:
    if tenant is None:
        return True
    sub = tenant_accounts(settings, tenant)
    return conn.execute(select(sub.c.account_id).where(sub.c.account_id == account_id).limit(1)).first() is not None


def alerts_of(settings: Settings, tenant: str):
    """The condition on ``alerts`` rows a tenant sees."""
    sub = tenant_accounts(settings, tenant)
    return or_(and_(Alert.scope == "tenant", Alert.scope_id == tenant),
               and_(Alert.scope == "account", Alert.scope_id.in_(select(sub.c.account_id))))

