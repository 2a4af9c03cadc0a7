"""The scope budgets in force: ``[budgets."<scope>"]`` from the settings, and those the CLI stored
(``scope_budgets``), which win for the same scope.

Every change to the stored budgets writes a new random token into the ``scope_budgets`` row
of ``system_state`` in the same transaction. The gate reads that token in the query it runs
anyway (``worker.limits.live.READ``) and reloads its cached budgets when it differs, so a
``budgets set`` in one process applies to the next call in every other process.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, update

from worker.models import StoredScopeBudget, SystemState
from worker.settings import ScopeBudget, Settings
from worker.sql import insert_ignore

REVISION_KEY = "scope_budgets"  # system_state row whose data.token changes with every stored change
BUDGET_FIELDS = ("action", "daily_tokens", "daily_cost_usd", "weekly_tokens", "weekly_cost_usd", "monthly_tokens",
                 "monthly_cost_usd", "every_days", "start", "tokens", "cost_usd")


def _from_row(row: Any) -> ScopeBudget:
    money = {k: (Decimal(getattr(row, k)) if getattr(row, k) is not None else None)
             for k in ("daily_cost_usd", "weekly_cost_usd", "monthly_cost_usd", "cost_usd")}
    values = {k: getattr(row, k) for k in BUDGET_FIELDS if k not in money}
    return ScopeBudget(scope=row.scope, **values, **money, warn_at=tuple(float(x) for x in row.warn_at),
                       source="cli")


def stored_budgets(conn: Connection) -> dict[str, ScopeBudget]:
    return {r.scope: _from_row(r) for r in conn.execute(select(StoredScopeBudget))}


def all_budgets(conn: Connection, settings: Settings) -> dict[str, ScopeBudget]:
    """scope -> its budget: the settings' tables, then the stored ones over them."""
    return {**settings.scope_budgets, **stored_budgets(conn)}


def revision_token(conn: Connection) -> str | None:
    data = conn.execute(select(SystemState.data).where(SystemState.key == REVISION_KEY)).scalar()
    return (data or {}).get("token")


def token_of(data: Any) -> str | None:
    """The token in the ``system_state.data`` the gate's read returned (None: never changed)."""
    return data.get("token") if isinstance(data, dict) else None


def bump_revision(conn: Connection, now: datetime, by: str) -> str:
    """A new token: every cached copy of the stored budgets is out of date."""
    ss = SystemState
    token = uuid.uuid4().hex
    conn.execute(insert_ignore(conn.dialect.name, ss, ["key"]).values(
        key=REVISION_KEY, active=True, reason=None, period=None, changed_at=now, changed_by=by, data={}))
    conn.execute(update(ss).where(ss.key == REVISION_KEY).values(data={"token": token}, changed_at=now,
                                                                 changed_by=by))
    return token


def store(conn: Connection, budget: ScopeBudget, now: datetime, by: str) -> bool:
    """Write the budget (insert or replace); True when the scope had no stored budget before."""
    sb = StoredScopeBudget
    values = {k: getattr(budget, k) for k in BUDGET_FIELDS}
    values.update(warn_at=list(budget.warn_at), updated_at=now, updated_by=by)
    created = conn.execute(insert_ignore(conn.dialect.name, sb, ["scope"]).values(
        scope=budget.scope, created_at=now, **values).returning(sb.scope)).first() is not None
    if not created:
        conn.execute(update(sb).where(sb.scope == budget.scope).values(**values))
    bump_revision(conn, now, by)
    return created


def remove(conn: Connection, scope: str, now: datetime, by: str) -> bool:
    sb = StoredScopeBudget
    gone = conn.execute(sb.__table__.delete().where(sb.scope == scope)).rowcount == 1
    if gone:
        bump_revision(conn, now, by)
    return gone
