"""accounts import / list."""

from __future__ import annotations

from pathlib import Path

import typer

from worker.limits import accounts as accounts_mod
from cli.output import Format, ObjectFormat, emit_object, emit_rows
from cli.state import fail, state

accounts_app = typer.Typer(no_args_is_help=True, help="Accounts and their tiers.")


@accounts_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV with columns account_id, tenant_id, tier, email"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Create or update accounts from a CSV file (all rows or none)."""
    st = state(ctx)
    try:
        result = accounts_mod.import_csv(file, st.settings(), st.engine())
    except accounts_mod.AccountImportError as exc:
        fail(str(exc))
    emit_object(result, fmt, title="accounts import")


@accounts_app.command("set")
def set_(
    ctx: typer.Context,
    account_id: str = typer.Argument(..., help="The account (created if new)"),
    tier: str = typer.Option(None, "--tier", help="A tier from settings.toml [tiers]"),
    default: bool = typer.Option(False, "--default-tier", help="Forget the account's own tier: default_tier applies"),
    tenant: str = typer.Option(None, "--tenant", help="Tenant id"),
    email: str = typer.Option(None, "--email", help="Contact email"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Create or change one account; a new tier takes effect in its current windows at once."""
    if tier is not None and default:
        fail("give --tier or --default-tier, not both")
    st = state(ctx)
    try:
        result = accounts_mod.set_account(st.engine(), st.settings(), account_id, tier=tier, tenant_id=tenant,
                                          email=email, default_tier=default)
    except accounts_mod.AccountImportError as exc:
        fail(str(exc))
    emit_object(result, fmt, title="account")


@accounts_app.command("list")
def list_(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """List accounts with their tier (the default tier where none is set)."""
    st = state(ctx)
    rows = accounts_mod.list_accounts(st.engine(), st.settings())
    emit_rows(rows, ["account_id", "tenant_id", "tier", "tier_source", "email"], fmt, title="accounts")
