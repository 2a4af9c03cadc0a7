"""accounts import / list."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import accounts as accounts_mod
from . import app, fail, state
from .output import Format, emit_object, emit_rows

accounts_app = typer.Typer(no_args_is_help=True, help="Accounts and their tiers.")
app.add_typer(accounts_app, name="accounts")


@accounts_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV with columns account_id, tenant_id, tier, email"),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Create or update accounts from a CSV file (all rows or none)."""
    st = state(ctx)
    try:
        result = accounts_mod.import_csv(file, st.settings(), st.engine())
    except accounts_mod.AccountImportError as exc:
        fail(str(exc))
    emit_object(result, fmt, title="accounts import")


@accounts_app.command("list")
def list_(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """List accounts with their tier (the default tier where none is set)."""
    st = state(ctx)
    rows = accounts_mod.list_accounts(st.engine(), st.settings())
    emit_rows(rows, ["account_id", "tenant_id", "tier", "tier_source", "email"], fmt, title="accounts")
