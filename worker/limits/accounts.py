"""Accounts: import from CSV (account_id, tenant_id, tier, email) and list.

An import marks its accounts for the limits job (``worker.limits.dirty``), which brings their
current windows to their tiers; ``accounts set`` applies a tier to the windows at once."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from worker import clock
from worker.limits import budgets, windows as limits
from worker.limits.dirty import mark_accounts
from worker.sql import insert_ignore
from worker.models import Account
from worker.settings import Settings

COLUMNS = ("account_id", "tenant_id", "tier", "email")


class AccountImportError(ValueError):
    pass


def read_csv(path: Path, settings: Settings) -> list[dict[str, Any]]:
    """Validate the whole file first: one bad row and nothing is imported."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccountImportError(f"{path}: cannot read: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "account_id" not in header:
        raise AccountImportError(f"{path}: the header must name account_id (columns: {', '.join(COLUMNS)})")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise AccountImportError(f"{path}: unknown column(s) {', '.join(unknown)} (columns: {', '.join(COLUMNS)})")
    rows: dict[str, dict[str, Any]] = {}
    for line, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() or None for k, v in raw.items() if k}
        if not row.get("account_id"):
            raise AccountImportError(f"{path}:{line}: account_id is empty")
        tier = row.get("tier")
        if tier and tier not in settings.tiers:
            raise AccountImportError(f"{path}:{line}: tier {tier!r} is not configured "
                                     f"(tiers: {', '.join(settings.tiers) or 'none'})")
        rows[row["account_id"]] = {c: row.get(c) for c in COLUMNS}
    return list(rows.values())


def import_csv(path: Path, settings: Settings, engine: Engine) -> dict[str, int]:
    rows = read_csv(path, settings)
    now = clock.now()
    created = updated = 0
    with engine.begin() as conn:
        existing = {r[0] for r in conn.execute(select(Account.account_id))}
        for row in rows:
            if row["account_id"] in existing:
                conn.execute(update(Account).where(Account.account_id == row["account_id"])
                             .values(tenant_id=row["tenant_id"], tier=row["tier"], email=row["email"],
                                     updated_at=now))
                updated += 1
            else:
                conn.execute(insert_ignore(conn.dialect.name, Account, ["account_id"]),
                             {**row, "created_at": now, "updated_at": now})
                created += 1
        # the limits job brings these accounts' current windows to their (new) tiers
        today = now.astimezone(settings.tz).date()
        mark_accounts(conn, [(row["account_id"], today) for row in rows], now)
    return {"rows": len(rows), "created": created, "updated": updated}


def set_account(engine: Engine, settings: Settings, account_id: str, *, tier: str | None = None,
                tenant_id: str | None = None, email: str | None = None, default_tier: bool = False) -> dict[str, Any]:
    """Create or change one account; a new tier applies to its current windows at once
    (limits, and blocked/warned state re-evaluated against the new limits)."""
    if not account_id.strip():
        raise AccountImportError("account_id is empty")
    if tier is not None and tier not in settings.tiers:
        raise AccountImportError(f"tier {tier!r} is not configured (tiers: {', '.join(settings.tiers) or 'none'})")
    now = clock.now()
    changes: dict[str, Any] = {k: v for k, v in (("tier", tier), ("tenant_id", tenant_id), ("email", email))
                               if v is not None}
    if default_tier:
        changes["tier"] = None
    with engine.begin() as conn:
        conn.execute(insert_ignore(conn.dialect.name, Account, ["account_id"]),
                     {"account_id": account_id, "tenant_id": None, "tier": None, "email": None,
                      "created_at": now, "updated_at": now})
        if changes:
            conn.execute(update(Account).where(Account.account_id == account_id).values(**changes, updated_at=now))
        retiered = limits.apply_tier(conn, settings, account_id, now)
        evaluated = budgets.evaluate(conn, settings, now, account_id=account_id)
        row = conn.execute(select(Account).where(Account.account_id == account_id)).one()
    return {"account_id": row.account_id, "tenant_id": row.tenant_id, "tier": row.tier or settings.default_tier,
            "tier_source": "account" if row.tier else "default", "email": row.email,
            "windows_updated": retiered, "unblocked": evaluated.unblocked, "blocked": evaluated.blocked}


def list_accounts(engine: Engine, settings: Settings) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(Account).order_by(Account.account_id)).all()
    return [{"account_id": r.account_id, "tenant_id": r.tenant_id,
             "tier": r.tier or settings.default_tier, "tier_source": "account" if r.tier else "default",
             "email": r.email} for r in rows]
