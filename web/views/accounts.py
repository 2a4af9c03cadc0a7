"""Accounts and budgets for the console: each account's tier, its windows in force (used against
limits, when they reset, their state) and what the gate decides for it, a page at a time.

Rows are the accounts' current windows of one kind (``day`` by default, or ``month``), in account
order, filtered to warned or blocked ones on request; the page's other windows are read in one
query for its accounts, and the decision is the gate's own (``worker.gate.decide_many``: ``decide`` with its inputs read
for the whole page at once), so the page says what an app calling the gate is told. One page holds :data:`web.views.paging.PAGE` accounts however
many there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from worker import clock, gate
from worker.limits import windows as limits
from worker.models import LimitWindow
from worker.settings import Settings

from web.views.paging import Page, fetch
from web.views.tenancy import tenant_accounts

KINDS = ("day", "month")
STATES = ("warned", "blocked")


@dataclass
class AccountRow:
    account_id: str
    tier: str | None
    action: str | None
    windows: list[Any]  # the windows in force, minute -> month
    decision: gate.Decision
    fraction: float | None  # of the listed window's budget used


def list_accounts(conn: Connection, settings: Settings, tenant: str | None, *, kind: str = "day",
                  state: str | None = None, account: str | None = None, page: int = 1,
                  size: int = 50) -> Page[AccountRow]:
    now = clock.now()
    kind = kind if kind in KINDS else "day"
    lw = LimitWindow
    query = select(lw).where(lw.kind == kind, lw.closed_at.is_(None), limits.in_force(now)).order_by(lw.account_id)
    if state in STATES:
        query = query.where(lw.state == state)
    if account:
        query = query.where(lw.account_id == account)
    if tenant is not None:
        sub = tenant_accounts(settings, tenant)
        query = query.where(lw.account_id.in_(select(sub.c.account_id)))
    found = fetch(conn, query, page, size)
    ids = [w.account_id for w in found.rows]
    others: dict[str, list[Any]] = {}
    if ids:
        for w in conn.execute(select(lw).where(lw.account_id.in_(ids), lw.closed_at.is_(None), limits.in_force(now))
                              .order_by(lw.account_id, lw.window_start.desc())):
            others.setdefault(w.account_id, []).append(w)
    order = {k: i for i, k in enumerate(limits.KIND_LIMITS)}
    decisions = gate.decide_many(conn, settings, ids, now)
    rows = []
    for w in found.rows:
        windows = sorted(others.get(w.account_id, [w]), key=lambda x: order.get(x.kind, 9))
        rows.append(AccountRow(w.account_id, w.tier, w.action, windows, decisions[w.account_id],
                               limits.fraction_used(w)))
    return Page(rows, found.page, found.size, found.more)
